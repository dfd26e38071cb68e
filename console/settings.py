"""Settings, all read from the environment here and nowhere else.

Unset, everything falls back to the embedded single-process defaults the
demo uses: SQLite, the in-process window store and the in-memory channel
layer. Production sets DJANGO_SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and
REDIS_URL; with DEBUG off the security settings are those that
``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
#: Where templates/ and static/ are: the checkout, or for an installed wheel the
#: <prefix>/share/wsgi-fleet/ its data files went to (pyproject.toml), which also holds the
#: default SQLite file and collected static files there (a checkout keeps them at its top).
ASSETS_DIR = BASE_DIR if (BASE_DIR / "templates").is_dir() else Path(sys.prefix) / "share" / "wsgi-fleet"


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_peppers(name: str) -> dict[str, str]:
    """``id=secret,id=secret`` (newest first) as an ordered map; docs/tokens.md. A secret
    shorter than 32 characters, a repeated or malformed id, or the reserved id is refused."""
    peppers: dict[str, str] = {}
    for item in env_list(name):
        pepper_id, sep, secret = item.partition("=")
        pepper_id, secret = pepper_id.strip(), secret.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", pepper_id) or pepper_id == "secret-key":
            raise ImproperlyConfigured(f"{name}: {pepper_id!r} is not a pepper id (1-32 of A-Z a-z 0-9 . _ "
                                       "-, not secret-key); the form is id=secret,id=secret, newest first")
        if pepper_id in peppers or len(secret) < 32:
            raise ImproperlyConfigured(f"{name}: pepper {pepper_id!r} is repeated or its secret is shorter "
                                       "than 32 characters")
        peppers[pepper_id] = secret
    return peppers


def env_int(name: str, default: int) -> int:
    value = env(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


# -- core ------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-DEBUG-" + "x" * 20
#: Former keys, comma-separated: sessions, and token hashes still under "secret-key"
#: (docs/tokens.md), keep working through a rotation of DJANGO_SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The path prefix a reverse proxy serves the console under (docs/deploy.md), kept without its
# trailing slash: "/fleet/" and "/fleet" alike (a trailing one would cut the slash off every
# path Django resolves), "/" as no prefix.
FORCE_SCRIPT_NAME = env("FORCE_SCRIPT_NAME").rstrip("/") or None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "console.fleet",
    "console.live",
    "console.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # last, as django-axes asks: it turns a lockout raised by the login into the lockout page
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ASSETS_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# -- data ------------------------------------------------------------------------

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    DATABASES: dict[str, Any] = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH") or ASSETS_DIR / "db.sqlite3",
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: Unset: the in-process window store and channel layer (one process only;
#: the console says so at start and on its status bar).
REDIS_URL = env("REDIS_URL") or None
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis blocks 5 s in BZPOPMIN; redis-py's own 5 s socket timeout would turn
            # a busy event loop into false "Redis is down" errors, so the layer waits without one.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                       "prefix": env("WSGI_FLEET_CHANNEL_PREFIX", "wfc")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

WSGI_FLEET = {
    "REDIS_URL": REDIS_URL,
    "KEY_PREFIX": env("WSGI_FLEET_KEY_PREFIX", "wf:"),
    "RETENTION_RAW": env_int("WSGI_FLEET_RETENTION_RAW", 3600),
    "RETENTION_1S": env_int("WSGI_FLEET_RETENTION_1S", 3600),
    "RETENTION_10S": env_int("WSGI_FLEET_RETENTION_10S", 86400),
    "RETENTION_1M": env_int("WSGI_FLEET_RETENTION_1M", 14 * 86400),
    # An active slow request is stored "expired" once its agent's stream has gone this many
    # seconds past it without repeating it (docs/store-exactly-once.md).
    "SLOW_STALE": env_int("WSGI_FLEET_SLOW_STALE", 60),
    "AGENT_MAX_MESSAGE": env_int("WSGI_FLEET_AGENT_MAX_MESSAGE", 4 * 1024 * 1024),
    # Per-connection limits (console/live/limits.py), far above what a healthy agent (about
    # 10 batches a second) or page (one subscribe per tab change) sends; 0 turns one off.
    "AGENT_MAX_MESSAGES_PER_SECOND": env_int("WSGI_FLEET_AGENT_MAX_MESSAGES_PER_SECOND", 200),
    "AGENT_MAX_BYTES_PER_SECOND": env_int("WSGI_FLEET_AGENT_MAX_BYTES_PER_SECOND", 32 * 1024 * 1024),
    "LIVE_MAX_SUBSCRIBES_PER_SECOND": env_int("WSGI_FLEET_LIVE_MAX_SUBSCRIBES_PER_SECOND", 20),
    "LIVE_SUBSCRIBE_BURST": env_int("WSGI_FLEET_LIVE_SUBSCRIBE_BURST", 20),
    "LIVE_FLOOD_CLOSE": env_int("WSGI_FLEET_LIVE_FLOOD_CLOSE", 100),
    # Token hashes' keys, newest first: the first issues, all verify (console/fleet/tokens.py).
    "TOKEN_PEPPERS": env_peppers("WSGI_FLEET_TOKEN_PEPPERS"),
    # Before peppers had ids: the single pepper of the hashes marked "secret-key", if one was set.
    "TOKEN_PEPPER": env("WSGI_FLEET_TOKEN_PEPPER"),
    # Seconds between the checks of an open connection's credentials and access (console/live/auth.py).
    "AUTH_RECHECK": float(env_int("WSGI_FLEET_AUTH_RECHECK", 5)),
    # The worker allocates many short-lived dicts per sample and keeps few
    # cycles: a first-generation threshold of 50,000 (Python's is 700) took
    # ~10 % off the write path's CPU; 0 leaves the interpreter's default.
    "GC_THRESHOLD": env_int("WSGI_FLEET_GC_THRESHOLD", 50_000),
}

# -- auth and security -------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
#: django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Failed logins (console and admin), counted per account and per address apart: this many
# failures lock the account, or the address, for the cool-off (templates/registration/lockout.html).
# The address is REMOTE_ADDR: behind a reverse proxy run daphne with --proxy-headers.
# ``manage.py axes_reset_username ann`` / ``axes_reset_ip ADDR`` unlocks before the cool-off ends.
AXES_FAILURE_LIMIT = env_int("WSGI_FLEET_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WSGI_FLEET_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_VERBOSE = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("USE_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

#: The pages load scripts and stylesheets from the console only (type=module and theme.js by
#: src; the data of json_script is application/json, which is not executed), draw on canvas and
#: talk to /ws/live/ on the same origin: nothing inline, nothing from elsewhere (django-csp).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# -- i18n, static, logging ------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Absolute under a path prefix: Django prefixes a relative STATIC_URL with the script prefix
# once, when it is first read, and under ASGI that is at start-up, before any request set the
# prefix, so the pages would link /static/ instead of /fleet/static/ (docs/deploy.md).
STATIC_URL = f"{FORCE_SCRIPT_NAME}/static/" if FORCE_SCRIPT_NAME else "static/"
STATICFILES_DIRS = [ASSETS_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT") or ASSETS_DIR / "staticfiles"
#: WhiteNoise serves the static files from daphne itself; without a
#: ``collectstatic`` run it finds them in place (the demo, the tests).
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", "WARNING"),
                           "propagate": False}},
}
