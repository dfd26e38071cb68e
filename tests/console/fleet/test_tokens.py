import os
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from console.fleet.models import AgentToken, ApiToken, Host, Team

pytestmark = pytest.mark.django_db


def make_host(name: str = "web-03", team: str = "payments") -> Host:
    return Host.objects.create(name=name, team=Team.objects.get_or_create(name=team)[0])


def test_token_is_shown_once_and_stored_only_as_a_digest():
    host = make_host()
    token, plaintext = AgentToken.issue(host=host)
    stored = AgentToken.objects.get(pk=token.pk)
    assert plaintext.startswith("wfa_")
    assert plaintext not in (stored.key, stored.digest)
    assert stored.digest != "" and len(stored.digest) == 64
    assert AgentToken.authenticate(plaintext) == token


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: "wfu" + t[3:],                            # right secret, wrong kind of token
    lambda t: "",
    lambda t: "garbage",
    lambda t: t + "x" * 500,
])
def test_wrong_tokens_are_refused(mangle):
    _, plaintext = AgentToken.issue(host=make_host())
    assert AgentToken.authenticate(mangle(plaintext)) is None


def test_revoked_token_stops_working():
    token, plaintext = AgentToken.issue(host=make_host())
    token.revoke()
    assert AgentToken.authenticate(plaintext) is None


def test_last_used_is_recorded():
    token, plaintext = ApiToken.issue(user=User.objects.create_user("ann"))
    assert token.last_used is None
    ApiToken.authenticate(plaintext)
    token.refresh_from_db()
    assert token.last_used is not None


def test_createhost_prints_a_working_token_and_makes_the_team():
    out = StringIO()
    call_command("createhost", "web-03", "--team", "payments", "--label", "env=prod", stdout=out)
    plaintext = out.getvalue().strip().splitlines()[-1]
    token = AgentToken.authenticate(plaintext)
    assert token is not None and token.host.name == "web-03"
    assert token.host.team.name == "payments" and token.host.labels == {"env": "prod"}


def test_createhost_refuses_an_existing_host_and_bad_labels():
    make_host("web-03")
    with pytest.raises(CommandError, match="exists"):
        call_command("createhost", "web-03", "--team", "payments", stdout=StringIO())
    with pytest.raises(CommandError, match="NAME=VALUE"):
        call_command("createhost", "web-04", "--team", "payments", "--label", "oops", stdout=StringIO())


def test_rotatetoken_revokes_the_old_token(tmp_path):
    host = make_host()
    _, old = AgentToken.issue(host=host)
    path = tmp_path / "token"
    call_command("rotatetoken", "web-03", "--token-file", str(path), stdout=StringIO(), stderr=StringIO())
    new = path.read_text().strip()
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert AgentToken.authenticate(old) is None
    assert AgentToken.authenticate(new).host == host


def test_hosts_visible_to_members_staff_and_nobody_else():
    ann, bob = User.objects.create_user("ann"), User.objects.create_user("bob")
    boss = User.objects.create_user("boss", is_staff=True)
    pay, shop = make_host("pay-1", "payments"), make_host("shop-1", "shop")
    pay.team.members.add(ann)
    assert list(Host.objects.visible_to(ann)) == [pay]
    assert list(Host.objects.visible_to(bob)) == []
    assert set(Host.objects.visible_to(boss)) == {pay, shop}
    assert shop not in Host.objects.visible_to(ann)

