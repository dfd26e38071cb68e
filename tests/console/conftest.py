"""Fixtures of the console's tests: the console as its own process (support.deployment),
and a test database that can always be dropped."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from support.deployment import deploy, work

__all__ = ["deploy", "work"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, and on PostgreSQL the sessions that are still open
    on it ended before it is dropped.

    A consumer's ``database_sync_to_async`` runs in asgiref's worker threads,
    and a connection made there is closed by nobody: on a busy machine one
    can still be open at the end of the session, and PostgreSQL refuses to
    drop a database in use (an error at teardown, after every test passed).
    """
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
