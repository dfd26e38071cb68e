"""Settings for the test suite: production settings, served over plain HTTP.

The suite runs with DEBUG off so it exercises what production runs; only
what needs HTTPS (redirects, secure cookies) is relaxed for the local
servers the browser and WebSocket tests talk to.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SQLITE_PATH", "/tmp/wsgi-fleet-tests.sqlite3")

from console.settings import *  # noqa: F403

SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests

if DATABASE_URL:  # noqa: F405
    # Consumers use the database from worker threads; persistent connections
    # would keep the test database busy when pytest-django drops it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_wsgi_fleet_{os.getpid()}"}  # noqa: F405
