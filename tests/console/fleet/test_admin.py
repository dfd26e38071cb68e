import pytest
from django.contrib.auth.models import User

from console.fleet.models import AgentToken, ApiToken, Host, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return user


def test_token_and_host_admin_pages_render(client, boss):
    host = Host.objects.create(name="web-1", team=Team.objects.create(name="t"))
    agent, _ = AgentToken.issue(host=host)
    api, _ = ApiToken.issue(user=boss)
    for url in ("/admin/fleet/agenttoken/", f"/admin/fleet/agenttoken/{agent.pk}/change/",
                "/admin/fleet/apitoken/", f"/admin/fleet/apitoken/{api.pk}/change/",
                f"/admin/fleet/host/{host.pk}/change/"):
        assert client.get(url).status_code == 200, url


def test_revoke_action_stops_the_token(client, boss):
    host = Host.objects.create(name="web-1", team=Team.objects.create(name="t"))
    token, plaintext = AgentToken.issue(host=host)
    client.post("/admin/fleet/agenttoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert AgentToken.authenticate(plaintext) is None


def test_issue_action_shows_a_working_token_once(client, boss):
    host = Host.objects.create(name="web-1", team=Team.objects.create(name="t"))
    form = {"action": "issue_agent_token", "_selected_action": [host.pk]}
    response = client.post("/admin/fleet/host/", form, follow=True)
    text = next(str(m) for m in response.context["messages"])
    plaintext = text.split(": ", 1)[1].split(" ")[0]
    assert AgentToken.authenticate(plaintext).host == host
