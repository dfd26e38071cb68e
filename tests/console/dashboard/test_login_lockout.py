"""Failed logins are rate-limited per account and per address (django-axes).

WSGI_FLEET_LOGIN_FAILURE_LIMIT failures (5) lock the account, from any
address, and the address, for any account, for the cool-off; the locked-out
visitor gets the lockout page (HTTP 429) even with the right password.
"""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LIMIT = 5


@pytest.fixture
def ann():
    return User.objects.create_user("ann", password=PASSWORD)


def login(username: str, password: str, address: str = "192.0.2.1"):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username, "password": password})


def locked_out(response) -> bool:
    text = response.content.decode()
    return response.status_code == 429 and "Too many failed logins" in text and "try again in" in text


def test_the_settings_are_what_the_docs_say(settings):
    assert settings.AXES_FAILURE_LIMIT == LIMIT and settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60


def test_an_account_is_locked_after_the_limit_even_for_the_right_password_from_elsewhere(ann):
    for attempt in range(LIMIT - 1):
        response = login("ann", f"wrong-{attempt}", address=f"192.0.2.{attempt + 1}")
        assert response.status_code == 200 and not locked_out(response)  # the form again, with the error
    assert login("ann", PASSWORD).status_code == 302  # below the limit the right password works

    for attempt in range(LIMIT):
        login("ann", f"wrong-{attempt}", address=f"198.51.100.{attempt + 1}")
    response = login("ann", PASSWORD, address="203.0.113.9")
    assert locked_out(response)
    assert "15 minutes" in response.content.decode() and "5 failed attempts" in response.content.decode()
    assert "sessionid" not in response.cookies


def test_an_address_is_locked_for_every_account(ann):
    User.objects.create_user("bob", password=PASSWORD)
    for attempt in range(LIMIT):
        login(f"guess-{attempt}", "wrong", address="192.0.2.77")
    assert locked_out(login("bob", PASSWORD, address="192.0.2.77"))
    assert login("bob", PASSWORD, address="192.0.2.78").status_code == 302


def test_the_admin_login_is_limited_too(ann):
    ann.is_staff = True
    ann.save()
    client = Client(REMOTE_ADDR="192.0.2.5")
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "ann", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "ann", "password": PASSWORD})
    assert locked_out(response)
