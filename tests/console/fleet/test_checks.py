"""``manage.py check --deploy``: clean with the settings the README prints, and a warning for
each of what a production console must not run without (console/fleet/checks.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.redis_server import OwnRedis

ROOT = Path(__file__).resolve().parents[3]
PEPPER = "p1=" + "a-long-random-token-pepper-0123456789"


def check_deploy(**settings: str) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` with production settings plus ``settings``
    (a value of None leaves the variable unset)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEBUG", "SECURE_SSL_REDIRECT", "REDIS_URL", "WSGI_FLEET_TOKEN_PEPPERS",
                        "WHITENOISE_USE_FINDERS", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SECRET_KEY="a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
               ALLOWED_HOSTS="console.example", DJANGO_SETTINGS_MODULE="console.settings")
    env.update({k: v for k, v in settings.items() if v is not None})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory):
    redis = OwnRedis(tmp_path_factory.mktemp("redis"), appendonly="yes", appendfsync="everysec").start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def forgetful_redis(tmp_path_factory):
    redis = OwnRedis(tmp_path_factory.mktemp("redis")).start()  # appendonly no, save ""
    yield redis
    redis.stop()


def test_the_readme_settings_pass_check_deploy(durable_redis):
    readme = (ROOT / "README.md").read_text()
    for name in ("REDIS_URL=", "WSGI_FLEET_TOKEN_PEPPERS=", "WHITENOISE_USE_FINDERS=0", "collectstatic"):
        assert name in readme, name
    result = check_deploy(REDIS_URL=durable_redis.url, WSGI_FLEET_TOKEN_PEPPERS=PEPPER,
                          WHITENOISE_USE_FINDERS="0")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("missing", "check", "says"), [
    ("WSGI_FLEET_TOKEN_PEPPERS", "wsgi_fleet.W001", "rotating SECRET_KEY would revoke them all"),
    ("REDIS_URL", "wsgi_fleet.W002", "REDIS_URL is not set"),
    ("WHITENOISE_USE_FINDERS", "wsgi_fleet.W003", "collectstatic"),
])
def test_each_missing_production_setting_is_a_warning(durable_redis, missing, check, says):
    settings = {"REDIS_URL": durable_redis.url, "WSGI_FLEET_TOKEN_PEPPERS": PEPPER,
                "WHITENOISE_USE_FINDERS": "0", missing: None}
    result = check_deploy(**settings)
    assert result.returncode != 0
    assert f"({check})" in result.stderr and says in result.stderr
    assert result.stderr.count("(wsgi_fleet.") == 1, result.stderr


def test_a_redis_that_would_lose_acknowledged_data_is_a_warning(forgetful_redis):
    result = check_deploy(REDIS_URL=forgetful_redis.url, WSGI_FLEET_TOKEN_PEPPERS=PEPPER,
                          WHITENOISE_USE_FINDERS="0")
    assert result.returncode != 0
    assert "(wsgi_fleet.W004)" in result.stderr and "appendonly is no" in result.stderr
    assert "appendonly yes" in result.stderr  # the fix, as the hint


def test_the_demo_and_debug_runs_are_not_warned_about(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WSGI_FLEET_TOKEN_PEPPERS")}
    env.update(DEBUG="1", DJANGO_SETTINGS_MODULE="console.settings")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "wsgi_fleet" not in result.stdout + result.stderr
