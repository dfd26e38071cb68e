"""A small, real console side of docs/agent-protocol.md, for the forwarder's tests.

It speaks the protocol over a real WebSocket (``websockets.asyncio.server``)
on its own thread and event loop: the token is checked in the handshake
(403 for anything unknown), ``hello`` is answered by ``welcome`` with the
high-water mark of the agent instance, and each batch is "written" to an
in-memory list and its mark raised in one step under a lock (the window
store's atomic write), then acked. The store (``written``, ``marks``)
outlives the server, like Redis outlives a console restart.

Switches for misbehaviour, settable at any time:

- ``crash_after_writes = n``: after the n-th written batch, drop the TCP
  connection before its ack (a console worker killed mid-stream).
- ``unavailable_until``: a ``time.monotonic()`` deadline before which every
  session is closed with 4503 right after ``hello``.
- ``max_message``: batches larger than this are refused with 4413;
  ``advertised_max`` is what ``welcome`` claims (defaults to the same).
- ``frame_limit``: a message (one frame: the agent never fragments) larger
  than this drops the TCP connection with no close frame, as daphne does
  over its ``--websocket-max-frame-size`` (the agent sees 1006); counted in
  ``frame_drops``. Every message's size is kept in ``sizes``.
- ``poison``: a predicate on a sample; a batch holding one is refused with 4400.
- ``bad``: a predicate on a sample; matching samples are left out of the write
  and counted in the ack's ``dropped`` (the console's per-sample check).
- ``slow_down_after = n``: the n-th batch received closes the session with
  4429 before it is written (the console's per-connection rate limit).
- ``stall``: batches are read and neither written nor acked (a hung store).
- ``mute``: ``hello`` is never answered.

The real Django consumer replaces this peer in the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ingest.model.sample import dense_counts


class ConsolePeer:
    def __init__(self, tokens: dict[str, str] | None = None, *, port: int = 0,
                 max_message: int = 4 << 20, advertised_max: int | None = None,
                 frame_limit: int | None = None):
        self.tokens = tokens if tokens is not None else {"good-token": "web-03"}
        self.port = port
        self.max_message = max_message
        self.advertised_max = advertised_max
        self.frame_limit = frame_limit
        self.frame_drops = 0
        self.sizes: list[int] = []  # bytes of every message received after hello
        self.crash_after_writes: int | None = None
        self.unavailable_until = 0.0
        self.poison: Callable[[dict[str, Any]], bool] | None = None
        self.bad: Callable[[dict[str, Any]], bool] | None = None
        self.slow_down_after: int | None = None
        self.connected_at: list[float] = []  # time.monotonic() of every welcome sent
        self.stall = False
        self.mute = False
        self.lock = threading.Lock()
        self.marks: dict[tuple[str, str], int] = {}  # (host, instance) -> highest written batch id
        self.written: list[dict[str, Any]] = []  # {"host", "instance", "batch", "sample"}
        self.batches: list[tuple[str, int, int]] = []  # (instance, id, samples) per received batch
        self.heartbeats: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.closes: list[int] = []  # close codes we sent
        self.refused = 0  # handshakes refused for the token
        self.duplicates = 0
        self.writes = 0  # batches written
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="console-peer", daemon=True)
        self._server: Server | None = None
        self._connections: set[ServerConnection] = set()
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent/"

    def samples(self) -> list[dict[str, Any]]:
        """What was delivered, count arrays back in list form (the agent sends them sparse)."""
        with self.lock:
            samples = [w["sample"] for w in self.written]
        for sample in samples:
            fields = sample["f"]
            for name, value in fields.items():
                if isinstance(value, dict):
                    fields[name] = dense_counts(value)
        return samples

    # -- life cycle (called from the test thread) ------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> ConsolePeer:
        self._call(self._start())
        return self

    def kill(self) -> None:
        """Stop listening and drop every connection without a close frame."""
        self._call(self._kill())

    def close(self) -> None:
        self.kill()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", self.port, process_request=self._check_token,
                                   max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _kill(self) -> None:
        if self._server is None:
            return
        self._server.close(close_connections=False)
        for ws in list(self._connections):
            ws.transport.abort()
        await self._server.wait_closed()
        self._server = None

    # -- the protocol -------------------------------------------------------------------

    def _check_token(self, ws: ServerConnection, request: Request) -> Response | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            self.refused += 1
            return ws.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        return None

    async def _refuse(self, ws: ServerConnection, code: int, reason: str) -> None:
        self.closes.append(code)
        await ws.send(msgpack.packb({"t": "error", "reason": reason}))
        await ws.close(code, reason)

    async def _handle(self, ws: ServerConnection) -> None:
        host = self.tokens[ws.request.headers["Authorization"].partition(" ")[2]]
        self._connections.add(ws)
        try:
            hello = msgpack.unpackb(await ws.recv(), strict_map_key=False)
            if not isinstance(hello, dict) or hello.get("t") != "hello" or hello.get("protocol") != 1:
                return await self._refuse(ws, 4400, "expected hello")
            self.hellos.append(hello)
            if self.mute:
                await ws.wait_closed()
                return None
            if time.monotonic() < self.unavailable_until:
                return await self._refuse(ws, 4503, "window store unavailable")
            key = (host, hello["instance"])
            with self.lock:
                acked = self.marks.get(key, 0)
            self.connected_at.append(time.monotonic())
            await ws.send(msgpack.packb({"t": "welcome", "protocol": 1, "host": host, "acked": acked,
                                         "max_message": self.advertised_max or self.max_message}))
            async for raw in ws:
                self.sizes.append(len(raw))
                if self.frame_limit is not None and len(raw) > self.frame_limit:
                    self.frame_drops += 1  # the WebSocket layer, before the console sees it
                    ws.transport.abort()
                    return None
                if isinstance(raw, str):
                    return await self._refuse(ws, 4400, "text frame")
                if len(raw) > self.max_message:
                    return await self._refuse(ws, 4413, f"message of {len(raw)} bytes")
                message = msgpack.unpackb(raw, strict_map_key=False)
                if message["t"] == "heartbeat":
                    self.heartbeats.append(message)
                elif message["t"] == "batch":
                    if not await self._batch(ws, key, message):
                        return None
                else:
                    return await self._refuse(ws, 4400, f"unknown type {message['t']!r}")
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(ws)
        return None

    async def _batch(self, ws: ServerConnection, key: tuple[str, str], message: dict[str, Any]) -> bool:
        batch_id, samples = message["id"], message["samples"]
        self.batches.append((message["instance"], batch_id, len(samples)))
        if self.stall:
            return True
        if self.poison is not None and any(map(self.poison, samples)):
            await self._refuse(ws, 4400, "bad sample")
            return False
        if self.slow_down_after is not None and len(self.batches) >= self.slow_down_after:
            self.slow_down_after = None
            await self._refuse(ws, 4429, "over the per-connection rate")
            return False
        dropped = 0
        if self.bad is not None:
            kept = [sample for sample in samples if not self.bad(sample)]
            dropped, samples = len(samples) - len(kept), kept
        with self.lock:  # write + raise the mark in one step
            duplicate = batch_id <= self.marks.get(key, 0)
            if duplicate:
                self.duplicates += 1
            else:
                self.written.extend({"host": key[0], "instance": key[1], "batch": batch_id, "sample": s}
                                    for s in samples)
                self.marks[key] = batch_id
                self.writes += 1
        if self.crash_after_writes is not None and self.writes >= self.crash_after_writes and not duplicate:
            self.crash_after_writes = None
            ws.transport.abort()  # written, never acked
            return False
        await ws.send(msgpack.packb({"t": "ack", "id": batch_id, "written": 0 if duplicate else len(samples),
                                     "duplicate": duplicate, "dropped": 0 if duplicate else dropped}))
        return True
