"""System checks of a production console (``manage.py check --deploy``), as Django's own.

Each is a warning of the deploy tag, like Django's security checks: the
demo and the tests run without them, and a deployment can silence one it
means (``SILENCED_SYSTEM_CHECKS``). What they catch fails quietly
otherwise: tokens hashed with SECRET_KEY (rotating it would revoke every
agent), workers that cannot share windows or channel groups, static files
found by searching the tree at every request, a Redis that loses what the
console acknowledged.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

from console.windows import durability


def _production() -> bool:
    return not settings.DEBUG


@register(Tags.security, deploy=True)
def pepper_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if not _production() or settings.WSGI_FLEET.get("TOKEN_PEPPERS"):
        return []
    return [Warning(
        "No token pepper is set: agent and API tokens are hashed with SECRET_KEY, and rotating "
        "SECRET_KEY would revoke them all.",
        hint="Set WSGI_FLEET_TOKEN_PEPPERS=id=secret (docs/tokens.md); existing tokens move to it "
             "when next used.",
        id="wsgi_fleet.W001")]


@register(Tags.caches, deploy=True)
def redis_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    url = settings.WSGI_FLEET.get("REDIS_URL")
    if not _production():
        return []
    if not url:
        return [Warning(
            "REDIS_URL is not set: the windows and the channel layer live in one process, so a "
            "second worker (or a restart) shows other or no data and pages miss agents of other workers.",
            hint="Set REDIS_URL (README, 'The console' and 'Redis configuration').",
            id="wsgi_fleet.W002")]
    verdict = durability.check_at_start(url)
    if verdict.state == durability.DURABLE:
        return []
    return [Warning(f"The window store's Redis: {verdict.text}.", hint=verdict.fix or None,
                    id="wsgi_fleet.W004")]


@register(Tags.staticfiles, deploy=True)
def static_finders_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if not _production() or not getattr(settings, "WHITENOISE_USE_FINDERS", False):
        return []
    return [Warning(
        "WhiteNoise serves the static files through the finders (WHITENOISE_USE_FINDERS), straight "
        "from the source tree and uncompressed, not the files collectstatic gathered in STATIC_ROOT.",
        hint="Run manage.py collectstatic and set WHITENOISE_USE_FINDERS=0.",
        id="wsgi_fleet.W003")]
