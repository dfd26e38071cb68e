"""Bearer-token authentication for WebSockets, the Origin rule, and the re-check that keeps
them true for as long as a connection lives.

Browsers always send ``Origin`` on a WebSocket handshake and authenticate
with their session, so they get Django's origin check against
ALLOWED_HOSTS (a page on another site must not read the console with the
user's cookies). Agents and scripts are not browsers: they present a
token in ``Authorization`` and no cookies, so an Origin check would add
nothing for them.

A handshake is checked once, but a connection lives for days. So every
connection checks again, every ``WSGI_FLEET["AUTH_RECHECK"]`` seconds (5),
off the event loop (``keep_checking``): an agent that its token still
works (revoked in the admin or by ``rotatetoken``, expired, its host
deleted: closed with ``REVOKED``, 4401); a page or token client that its
session or token still holds and its user is still active and exists
(4401), and that everything it has joined it may still see (a user taken
off a team, or no longer staff: ``LOST_ACCESS``, 4403). Why polling rather
than a message on revocation: revocation has many paths that send no
signal (``QuerySet.update`` in ``rotatetoken`` and ``createtoken
--revoke-old``, an expiry that simply passes, a row edited in the
database), and a ``manage.py`` process cannot reach the consumers of the
in-memory channel layer at all. A re-check is one or two indexed queries
per connection every few seconds, which a console of a few hundred
connections does not notice. A check that fails (the database is away)
closes nothing: the next one comes as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser

from console.fleet.models import AgentToken, ApiToken, Host

from . import groups
from .queries import host_entry

log = logging.getLogger("console.live")

#: Close code: the connection's token, session or user no longer holds.
REVOKED = 4401
#: Close code: the user may no longer see something the connection has joined.
LOST_ACCESS = 4403


def bearer_token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


@database_sync_to_async
def _agent_host(token: str) -> tuple[Any, int | None]:
    found = AgentToken.authenticate(token)
    return (host_entry(found.host), found.pk) if found is not None else (None, None)


@database_sync_to_async
def _api_user(token: str) -> tuple[Any, int | None]:
    found = ApiToken.authenticate(token)
    if found is None or not found.user.is_active:
        return AnonymousUser(), None
    return found.user, found.pk


class AgentTokenMiddleware:
    """Puts the host an agent token belongs to in ``scope["agent_host"]`` (or None), and the
    token's id in ``scope["agent_token"]`` for the re-check."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        host, token_id = await _agent_host(token) if token else (None, None)
        return await self.app(dict(scope, agent_host=host, agent_token=token_id), receive, send)


class ApiTokenMiddleware:
    """``scope["user"]`` from a user API token (``manage.py createtoken``), for scripts."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        user, token_id = await _api_user(token) if token else (AnonymousUser(), None)
        return await self.app(dict(scope, user=user, auth="token", api_token=token_id), receive, send)


class LiveAuth:
    """Token clients skip the Origin check; everybody else is a browser."""

    def __init__(self, app: Any):
        self.token_app = ApiTokenMiddleware(app)
        self.browser_app = AllowedHostsOriginValidator(AuthMiddlewareStack(app))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if bearer_token(scope) is not None:
            return await self.token_app(scope, receive, send)
        return await self.browser_app(scope, receive, send)


# -- the re-check -----------------------------------------------------------------------------


@database_sync_to_async
def agent_verdict(scope: dict[str, Any]) -> int | None:
    """None while the agent's token works; REVOKED once it does not."""
    token_id = scope.get("agent_token")
    return None if token_id is not None and AgentToken.still_active(token_id) else REVOKED


def _session_user(scope: dict[str, Any]) -> Any:
    """The session's user as Django would find it on the next request (AnonymousUser when the
    session was logged out, its password changed, or the user deactivated or deleted)."""
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if not key:
        return AnonymousUser()
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return auth.get_user(SimpleNamespace(session=fresh))  # type: ignore[arg-type]


def _may_receive(user: Any, joined: list[str]) -> bool:
    """Whether ``user`` may still be in every group of ``joined`` (console.live.groups names)."""
    if not joined or user.is_staff:
        return True
    hosts = list(Host.objects.visible_to(user).values_list("pk", "team_id"))
    allowed = {groups.host_group(pk) for pk, _ in hosts} | {groups.team_group(team) for _, team in hosts}
    return all(group in allowed or group.rpartition(".")[0] in allowed for group in joined)


@database_sync_to_async
def page_verdict(scope: dict[str, Any], joined: list[str]) -> int | None:
    """None while the page's credentials hold and it may see all it joined; else a close code."""
    if scope.get("auth") == "token":
        user_id = getattr(scope.get("user"), "pk", None)
        token_id = scope.get("api_token")
        if token_id is None or not ApiToken.still_active(token_id):
            return REVOKED
        user = auth.get_user_model().objects.filter(pk=user_id, is_active=True).first()
    else:
        user = _session_user(scope)
    if user is None or not user.is_authenticated or not user.is_active:
        return REVOKED
    return None if _may_receive(user, joined) else LOST_ACCESS


async def keep_checking(verdict: Callable[[], Awaitable[int | None]],
                        close: Callable[[int], Awaitable[None]]) -> None:
    """Every AUTH_RECHECK seconds ask ``verdict``; close with its code once it has one."""
    while True:
        await asyncio.sleep(settings.WSGI_FLEET["AUTH_RECHECK"])
        try:
            code = await verdict()
        except Exception as exc:  # the database away, or our bug: the next check comes as usual
            log.warning("credentials re-check failed: %r", exc)
            continue
        if code is not None:
            log.info("connection closed (%d): its credentials or access no longer hold", code)
            await close(code)
            return


def watch(verdict: Callable[[], Awaitable[int | None]],
          close: Callable[[int], Awaitable[None]]) -> asyncio.Task[None]:
    """``keep_checking`` as a task of the connection (cancel it at disconnect)."""
    return asyncio.create_task(keep_checking(verdict, close))
