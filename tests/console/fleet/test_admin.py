"""The admin issues agent and user API tokens (shown once) and revokes them."""

import re

import pytest
from django.contrib.auth.models import User

from console.fleet.models import AgentToken, ApiToken, Host, Team

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'<code class="issued-token">(wf[au]_[^<]+)</code>')


@pytest.fixture
def boss(client):
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return user


def shown_tokens(response) -> list[str]:
    return TOKEN.findall(response.content.decode())


def test_token_and_host_admin_pages_render(client, boss):
    host = Host.objects.create(name="web-1", team=Team.objects.create(name="t"))
    agent, _ = AgentToken.issue(host=host)
    api, _ = ApiToken.issue(user=boss)
    for url in ("/admin/fleet/agenttoken/", f"/admin/fleet/agenttoken/{agent.pk}/change/",
                "/admin/fleet/apitoken/", f"/admin/fleet/apitoken/{api.pk}/change/",
                "/admin/fleet/apitoken/add/", "/admin/fleet/agenttoken/add/",
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
    response = client.post("/admin/fleet/host/", form)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [plaintext] = shown_tokens(response)
    assert AgentToken.authenticate(plaintext).host == host
    # nowhere else: not in a message for the next page, not on the token's own pages
    token = AgentToken.objects.get()
    for url in ("/admin/fleet/host/", f"/admin/fleet/agenttoken/{token.pk}/change/",
                "/admin/fleet/agenttoken/"):
        assert plaintext not in client.get(url).content.decode(), url


def test_add_form_issues_a_user_api_token_shown_once(client, boss):
    ann = User.objects.create_user("ann")
    response = client.post("/admin/fleet/apitoken/add/",
                           {"user": ann.pk, "expires_0": "2099-01-01", "expires_1": "00:00:00",
                            "note": "terminal monitor"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    [plaintext] = shown_tokens(response)
    assert plaintext.startswith("wfu_")
    token = ApiToken.authenticate(plaintext)
    assert token is not None and token.user == ann and token.note == "terminal monitor"
    assert token.expires.year == 2099
    stored = ApiToken.objects.get(pk=token.pk)
    assert plaintext not in (stored.key, stored.digest)
    for url in (f"/admin/fleet/apitoken/{token.pk}/change/", "/admin/fleet/apitoken/"):
        page = client.get(url).content.decode()
        assert stored.key in page and plaintext not in page, url


def test_add_form_issues_an_agent_token(client, boss):
    host = Host.objects.create(name="web-1", team=Team.objects.create(name="t"))
    response = client.post("/admin/fleet/agenttoken/add/", {"host": host.pk, "note": "replacement"})
    [plaintext] = shown_tokens(response)
    assert plaintext.startswith("wfa_") and AgentToken.authenticate(plaintext).host == host


def test_the_add_form_takes_no_key_or_digest_from_the_post(client, boss):
    ann = User.objects.create_user("ann")
    client.post("/admin/fleet/apitoken/add/", {"user": ann.pk, "key": "aaaaaaaaaaaa", "digest": "0" * 64,
                                              "pepper": "mine"})
    token = ApiToken.objects.get()
    assert token.key != "aaaaaaaaaaaa" and token.digest != "0" * 64 and token.pepper != "mine"


def test_a_user_without_the_add_permission_cannot_issue(client):
    staff = User.objects.create_user("clerk", is_staff=True)
    client.force_login(staff)
    ann = User.objects.create_user("ann")
    response = client.post("/admin/fleet/apitoken/add/", {"user": ann.pk})
    assert response.status_code == 403 and not ApiToken.objects.exists()
