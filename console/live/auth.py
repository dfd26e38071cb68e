"""Bearer-token authentication for WebSockets, and the Origin rule.

Browsers always send ``Origin`` on a WebSocket handshake and authenticate
with their session, so they get Django's origin check against
ALLOWED_HOSTS (a page on another site must not read the console with the
user's cookies). Agents and scripts are not browsers: they present a
token in ``Authorization`` and no cookies, so an Origin check would add
nothing for them.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from console.fleet.models import AgentToken, ApiToken

from .queries import host_entry


def bearer_token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


@database_sync_to_async
def _agent_host(token: str) -> Any:
    found = AgentToken.authenticate(token)
    return host_entry(found.host) if found is not None else None


@database_sync_to_async
def _api_user(token: str) -> Any:
    found = ApiToken.authenticate(token)
    if found is None or not found.user.is_active:
        return AnonymousUser()
    return found.user


class AgentTokenMiddleware:
    """Puts the host an agent token belongs to in ``scope["agent_host"]`` (or None)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        host = await _agent_host(token) if token else None
        return await self.app(dict(scope, agent_host=host), receive, send)


class ApiTokenMiddleware:
    """``scope["user"]`` from a user API token (``manage.py createtoken``), for scripts."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        user = await _api_user(token) if token else AnonymousUser()
        return await self.app(dict(scope, user=user, auth="token"), receive, send)


class LiveAuth:
    """Token clients skip the Origin check; everybody else is a browser."""

    def __init__(self, app: Any):
        self.token_app = ApiTokenMiddleware(app)
        self.browser_app = AllowedHostsOriginValidator(AuthMiddlewareStack(app))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if bearer_token(scope) is not None:
            return await self.token_app(scope, receive, send)
        return await self.browser_app(scope, receive, send)
