"""Every page the console renders carries the Content-Security-Policy (django-csp)."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from console.fleet.models import Host, Team

pytestmark = pytest.mark.django_db

POLICY = {"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
          "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'", "connect-src 'self'"}


def directives(response) -> set[str]:
    return {part.strip() for part in response["Content-Security-Policy"].split(";")}


def test_every_kind_of_page_has_the_policy():
    team = Team.objects.create(name="payments")
    host = Host.objects.create(name="web-1", team=team)
    boss = User.objects.create_superuser("boss", "b@example.com", "pw")
    team.members.add(boss)
    anonymous, client = Client(), Client()
    client.force_login(boss)
    pages = [anonymous.get("/accounts/login/"), client.get("/"), client.get(f"/hosts/{host.name}/"),
             client.get("/accounts/password_change/"), client.get("/admin/"),
             client.get("/admin/fleet/apitoken/add/")]
    for response in pages:
        assert response.status_code == 200, response
        assert directives(response) >= POLICY, response.request["PATH_INFO"]
        assert "unsafe-inline" not in response["Content-Security-Policy"]
