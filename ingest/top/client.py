"""``top``'s connection: the console's ``/ws/live/`` with a user API token, or the agent's
local socket; reconnects with backoff and says why it is not live.

It speaks the live protocol as the pages do (docs/live-protocol.md): one
subscription at a time, a new ``subscribe`` replacing the last. A host is
named by the user (``--host web-03``); the console knows hosts by id, so
the first subscribe is the fleet's, whose snapshot maps names to ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

#: The largest message read: a console's messages stay under 1 MiB a host, a fleet's grow
#: by 0.6 kB a host; the reference's monitor died past 4 MiB.
MAX_MESSAGE = 64 * 1024 * 1024
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 10.0
#: Close codes after which reconnecting cannot help (docs/live-protocol.md, "Limits and close codes").
REFUSED_CODES = {4401: "the token or session no longer holds (revoked, expired, user inactive)",
                 4403: "no longer allowed to see this host", 4429: "too many messages: closed by the console"}


class Refused(Exception):
    """The console will not have this client: a refused token, or a close that says stop."""


@dataclass
class Target:
    """Where to connect: a console URL with a token, or the agent's local socket."""

    console: str | None = None
    token: str | None = None
    local: str | None = None
    ca_file: str | None = None

    def describe(self) -> str:
        return f"local {self.local}" if self.local else str(self.console)

    def live_url(self) -> str:
        """``https://console.example/prefix`` -> ``wss://console.example/prefix/ws/live/``."""
        parts = urlsplit(str(self.console))
        scheme = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}.get(parts.scheme)
        if scheme is None or not parts.netloc:
            raise InvalidURI(str(self.console), "expected https://host[:port][/prefix]")
        path = parts.path.rstrip("/")
        if not path.endswith("/ws/live"):
            path += "/ws/live"
        return urlunsplit((scheme, parts.netloc, path + "/", "", ""))


async def open_connection(target: Target) -> ClientConnection:
    """Connect once; raises Refused for a token the console refuses, OSError and
    websockets' errors for the rest (the caller retries those)."""
    if target.local:
        return await unix_connect(target.local, uri="ws://localhost/ws/live/", max_size=MAX_MESSAGE,
                                  open_timeout=10)
    url = target.live_url()
    context = None
    if url.startswith("wss:"):
        context = ssl.create_default_context(cafile=target.ca_file)
    headers = [("Authorization", f"Bearer {target.token}")] if target.token else []
    try:
        return await connect(url, additional_headers=headers, ssl=context, max_size=MAX_MESSAGE,
                             open_timeout=10, user_agent_header="wsgi-fleet-top")
    except InvalidStatus as exc:
        code = exc.response.status_code
        if code in (401, 403):
            raise Refused(f"the console refused the token (HTTP {code}): check --token-file") from None
        raise


def reason_of(exc: BaseException) -> str:
    """Why the connection is down, in words for the status line and stderr."""
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else None
        if code == 1001:
            return "console going away (restart or deploy)"
        return f"connection closed ({code})" if code else "connection lost"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message}; pass --ca-file PATH for a private CA"
    if isinstance(exc, ConnectionRefusedError | FileNotFoundError):
        return "nothing listens there (console down, or no agent local socket)"
    if isinstance(exc, PermissionError):
        return "permission denied on the agent's local socket (it is owner-only by default)"
    if isinstance(exc, OSError | InvalidHandshake | asyncio.TimeoutError | TimeoutError):
        return f"cannot connect: {exc or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"


class Link:
    """Keeps one connection up, hands every message to ``on_message`` and the connection's
    state to ``on_state`` ("connecting", "live", or the reason it is down)."""

    def __init__(self, target: Target, on_message: Callable[[dict[str, Any]], None],
                 on_state: Callable[[str], None]) -> None:
        self.target = target
        self.on_message = on_message
        self.on_state = on_state
        self.connection: ClientConnection | None = None
        self.wanted: dict[str, Any] = {"type": "subscribe", "scope": "fleet"}
        self.refused: str | None = None
        self.sending: set[asyncio.Future[None]] = set()

    def ask(self, message: dict[str, Any]) -> None:
        """Subscribe with ``message`` now (from a message handler) and after every reconnect."""
        self.wanted = message
        if self.connection is not None:
            task = asyncio.ensure_future(self._send(self.connection, message))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    @staticmethod
    async def _send(connection: ClientConnection, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):  # run() reconnects and subscribes again
            await connection.send(json.dumps(message))

    async def run(self) -> None:
        """Until cancelled, or refused for good (``refused`` then says why)."""
        delay = BACKOFF_FIRST
        while True:
            self.on_state("connecting")
            try:
                self.connection = await open_connection(self.target)
                await self.connection.send(json.dumps(self.wanted))
                self.on_state("live")
                delay = BACKOFF_FIRST
                async for text in self.connection:
                    try:
                        message = json.loads(text)
                    except ValueError:
                        continue
                    if isinstance(message, dict):
                        self.on_message(message)
                code = self.connection.close_code  # closed cleanly: the console said why
                if code in REFUSED_CODES:
                    self.refused = REFUSED_CODES[code]
                    self.on_state(self.refused)
                    return
                self.on_state("console going away (restart or deploy)" if code == 1001
                              else f"connection closed ({code})")
            except Refused as exc:
                self.refused = str(exc)
                self.on_state(self.refused)
                return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in REFUSED_CODES:
                    self.refused = REFUSED_CODES[code]
                    self.on_state(self.refused)
                    return
                self.on_state(reason_of(exc))
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                self.on_state(reason_of(exc))
            finally:
                self.connection = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
