"""Log in, log out and change the password with the console's own pages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

pytestmark = pytest.mark.django_db
pytest_plugins = ["dashboard_fixtures"]


def test_login_page_is_ours(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert response.templates[0].name == "registration/login.html"
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_login_then_the_fleet(client, ann, hosts, password):
    response = client.post(reverse("login"),
                           {"username": "ann", "password": password, "next": "/hosts/web-03/"})
    assert response.status_code == 302
    assert response["Location"] == "/hosts/web-03/"
    assert client.get("/").status_code == 200


def test_wrong_password_is_refused(client, ann):
    response = client.post(reverse("login"), {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert client.get("/").status_code == 302


def test_login_does_not_redirect_off_site(client, ann, password):
    response = client.post(reverse("login"), {"username": "ann", "password": password,
                                              "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_login_needs_csrf(ann, password):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "ann", "password": password})
    assert response.status_code == 403


def test_logout_is_post_only(ann_client):
    assert ann_client.get(reverse("logout")).status_code == 405
    assert ann_client.get("/").status_code == 200  # still logged in
    response = ann_client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert ann_client.get("/").status_code == 302


def test_logout_form_in_the_menu_posts_with_csrf(ann_client, hosts):
    body = ann_client.get("/").content.decode()
    form = body[body.index('<form method="post" action="/accounts/logout/">'):]
    form = form[:form.index("</form>")]
    assert 'name="csrfmiddlewaretoken"' in form


def test_password_change(ann_client, ann, password):
    response = ann_client.get(reverse("password_change"))
    assert response.status_code == 200
    assert response.templates[0].name == "registration/password_change_form.html"
    new = "a much longer new passphrase 42"
    response = ann_client.post(reverse("password_change"), {
        "old_password": password, "new_password1": new, "new_password2": new})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    done = ann_client.get(reverse("password_change_done"))
    assert done.status_code == 200
    assert "Password changed" in done.content.decode()
    assert ann_client.get("/").status_code == 200  # this session survives the change
    ann.refresh_from_db()
    assert ann.check_password(new)


def test_password_change_needs_the_old_password(ann_client, ann, password):
    response = ann_client.post(reverse("password_change"), {
        "old_password": "wrong", "new_password1": "x" * 20 + "9a", "new_password2": "x" * 20 + "9a"})
    assert response.status_code == 200
    assert "incorrectly" in response.content.decode()
    ann.refresh_from_db()
    assert ann.check_password(password)


def test_password_reset_by_mail_is_not_offered(client):
    assert client.get("/accounts/password_reset/").status_code in (302, 404)


def test_staff_get_an_admin_link(client, hosts):
    client.force_login(User.objects.create_user("root", is_staff=True))
    assert 'href="/admin/"' in client.get("/").content.decode()
