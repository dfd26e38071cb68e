"""``manage.py createtoken``: the one way to issue a user API token."""

import os
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from console.fleet.models import ApiToken

pytestmark = pytest.mark.django_db


def test_createtoken_prints_a_token_that_reads_as_its_user():
    ann = User.objects.create_user("ann")
    out = StringIO()
    call_command("createtoken", "ann", stdout=out)
    plaintext = out.getvalue().strip().splitlines()[-1]
    assert plaintext.startswith("wfu_")
    token = ApiToken.authenticate(plaintext)
    assert token is not None and token.user == ann and token.expires is None
    assert plaintext not in (token.key, token.digest)


def test_createtoken_to_a_file_with_an_expiry_and_revoking_the_old(tmp_path):
    User.objects.create_user("ann")
    _, old = ApiToken.issue(user=User.objects.get(username="ann"))
    path = tmp_path / "token"
    call_command("createtoken", "ann", "--days", "30", "--revoke-old", "--note", "grafana",
                 "--token-file", str(path), stdout=StringIO(), stderr=StringIO())
    assert os.stat(path).st_mode & 0o777 == 0o600
    token = ApiToken.authenticate(path.read_text().strip())
    assert token is not None and token.note == "grafana" and token.expires is not None
    assert ApiToken.authenticate(old) is None


def test_createtoken_refuses_unknown_and_inactive_users():
    with pytest.raises(CommandError, match="no user"):
        call_command("createtoken", "nobody", stdout=StringIO())
    User.objects.create_user("bob", is_active=False)
    with pytest.raises(CommandError, match="not active"):
        call_command("createtoken", "bob", stdout=StringIO())
    User.objects.create_user("eve")
    with pytest.raises(CommandError, match="positive"):
        call_command("createtoken", "eve", "--days", "0", stdout=StringIO())
