"""Fixtures of the dashboard tests: two teams, a member of each, a host of each.

Not a conftest.py: test modules elsewhere import the top-level ``conftest``
by name, and a second conftest.py would shadow it. The test modules load
this one with ``pytest_plugins``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from console.fleet.models import Host, Team

PASSWORD = "correct horse battery staple"


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def teams(db):
    return Team.objects.create(name="payments"), Team.objects.create(name="search")


@pytest.fixture
def ann(teams):
    """A member of payments."""
    user = User.objects.create_user("ann", password=PASSWORD)
    teams[0].members.add(user)
    return user


@pytest.fixture
def bob(teams):
    """A member of search."""
    user = User.objects.create_user("bob", password=PASSWORD)
    teams[1].members.add(user)
    return user


@pytest.fixture
def hosts(teams):
    return (Host.objects.create(name="web-03", team=teams[0], labels={"env": "prod"}),
            Host.objects.create(name="idx-01", team=teams[1], labels={"env": "staging"}))


@pytest.fixture
def ann_client(client, ann):
    client.force_login(ann)
    return client
