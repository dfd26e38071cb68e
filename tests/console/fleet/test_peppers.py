"""Token peppers: their own setting with ids, rotated without revoking, apart from SECRET_KEY."""

import hashlib
import hmac

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from console import settings as console_settings
from console.fleet import tokens
from console.fleet.models import AgentToken, ApiToken, Host, Team

OLD, NEW = "o" * 40, "n" * 40


@pytest.fixture
def peppers(settings):
    def use(**configured: str) -> None:
        settings.WSGI_FLEET = {**settings.WSGI_FLEET, "TOKEN_PEPPERS": configured}
    return use


@pytest.fixture
def host(db):
    return Host.objects.create(name="web-1", team=Team.objects.create(name="t"))


def test_the_newest_pepper_issues_and_its_id_is_stored(peppers, host):
    peppers(p2=NEW, p1=OLD)
    token, plaintext = AgentToken.issue(host=host)
    assert token.pepper == "p2"
    assert token.digest == hmac.new(NEW.encode(), plaintext.encode(), hashlib.sha256).hexdigest()


def test_rotation_keeps_old_tokens_working_and_moves_them_to_the_new_pepper(peppers, host):
    peppers(p1=OLD)
    token, plaintext = AgentToken.issue(host=host)
    peppers(p2=NEW, p1=OLD)  # a new pepper in front: the old one still verifies
    assert AgentToken.authenticate(plaintext) == token
    token.refresh_from_db()
    assert token.pepper == "p2"  # hashed again under the newest when used
    peppers(p2=NEW)  # the old one removed: the moved token still works
    assert AgentToken.authenticate(plaintext) == token


def test_a_token_under_a_pepper_no_longer_configured_fails(peppers, host):
    peppers(p1=OLD)
    _, plaintext = AgentToken.issue(host=host)
    peppers(p2=NEW)
    assert AgentToken.authenticate(plaintext) is None


def test_a_wrong_pepper_id_fails(peppers, host):
    peppers(p2=NEW, p1=OLD)
    token, plaintext = ApiToken.issue(user=User.objects.create_user("ann"))
    ApiToken.objects.filter(pk=token.pk).update(pepper="p1")  # right hash, wrong id
    assert ApiToken.authenticate(plaintext) is None
    ApiToken.objects.filter(pk=token.pk).update(pepper="nope")
    assert ApiToken.authenticate(plaintext) is None


def test_rotating_secret_key_no_longer_touches_tokens(peppers, host, settings):
    peppers(p1=OLD)
    _, plaintext = AgentToken.issue(host=host)
    settings.SECRET_KEY = "another-secret-key-" + "z" * 40
    settings.SECRET_KEY_FALLBACKS = []
    assert AgentToken.authenticate(plaintext) is not None


def legacy_digest(plaintext: str, secret_key: str) -> str:
    """How tokens were hashed before peppers had ids."""
    key = ("wsgi-fleet-token:" + secret_key).encode()
    return hmac.new(key, plaintext.encode(), hashlib.sha256).hexdigest()


def test_secret_key_hashes_verify_under_their_id_also_through_a_secret_key_rotation(peppers, host,
                                                                                      settings):
    peppers(p1=NEW)
    plaintext, key = tokens.generate("wfa")
    token = AgentToken.objects.create(host=host, key=key, pepper=tokens.LEGACY,
                                      digest=legacy_digest(plaintext, settings.SECRET_KEY))
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-rotated-secret-key-" + "y" * 40
    assert AgentToken.authenticate(plaintext) == token
    token.refresh_from_db()
    assert token.pepper == "p1"  # moved off SECRET_KEY by its first use
    settings.SECRET_KEY_FALLBACKS = []
    assert AgentToken.authenticate(plaintext) == token


def test_without_a_pepper_tokens_are_issued_under_the_secret_key_id(peppers, host, settings):
    peppers()
    token, plaintext = AgentToken.issue(host=host)
    assert token.pepper == tokens.LEGACY and token.digest == legacy_digest(plaintext, settings.SECRET_KEY)


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_existing_tokens_valid(peppers, settings):
    executor = MigrationExecutor(connection)
    executor.migrate([("fleet", "0001_initial")])
    old_apps = executor.loader.project_state([("fleet", "0001_initial")]).apps
    team = old_apps.get_model("fleet", "Team").objects.create(name="t")
    old_host = old_apps.get_model("fleet", "Host").objects.create(name="web-1", team=team)
    plaintext, key = tokens.generate("wfa")
    old_apps.get_model("fleet", "AgentToken").objects.create(
        host=old_host, key=key, digest=legacy_digest(plaintext, settings.SECRET_KEY))
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    peppers(p1=NEW)  # peppers configured after the upgrade
    token = AgentToken.authenticate(plaintext)
    assert token is not None and token.host.name == "web-1" and token.pepper == "p1"


@pytest.mark.parametrize("value", ["p1", "p1=short", "bad id=" + "x" * 40, "secret-key=" + "x" * 40,
                                   f"p1={OLD},p1={NEW}"])
def test_malformed_pepper_settings_are_refused(monkeypatch, value):
    monkeypatch.setenv("WSGI_FLEET_TOKEN_PEPPERS", value)
    with pytest.raises(ImproperlyConfigured):
        console_settings.env_peppers("WSGI_FLEET_TOKEN_PEPPERS")


def test_pepper_settings_keep_their_order(monkeypatch):
    monkeypatch.setenv("WSGI_FLEET_TOKEN_PEPPERS", f"2026-b={NEW}, 2026-a={OLD}")
    assert list(console_settings.env_peppers("WSGI_FLEET_TOKEN_PEPPERS").items()) == [
        ("2026-b", NEW), ("2026-a", OLD)]
