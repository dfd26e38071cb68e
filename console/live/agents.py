"""``/ws/agent/``: the agents' connections in.

Kept thin: validation lives in ``protocol``, reads and writes in the
window store; the per-second frames of the host are built once, by the
connection that holds its agent (``publish``), and fanned out as
ready-made text to every subscriber through the channel layer. Each
connection has its own rate limits (``limits``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from console.windows.batch import InvalidSample

from . import health, protocol, publish, queries
from .health import faults
from .limits import SLOW_DOWN, AgentLimits
from .protocol import ProtocolError
from .store import StoreUnavailable, window_store

log = logging.getLogger("console.live")


class AgentConsumer(AsyncWebsocketConsumer):
    """``/ws/agent/``: one connected agent, authenticated by its host token."""

    #: Agents receive nothing through the channel layer, so they do not listen
    #: on it: when its Redis is down, the connection must live on to answer
    #: 4503 ("keep spooling"), not die with the layer's receive loop.
    channel_layer_alias = "no channel layer for agent connections"

    async def connect(self) -> None:
        self.host = self.scope.get("agent_host")
        if self.host is None:
            await self.close()  # before accept: HTTP 403, whatever was wrong with the token
            return
        self.instance: str | None = None
        self.store = window_store()
        self.groups_seen: set[str] = set()
        #: samples written since the publisher's last second, for the tabs' live data
        self.recent: list[dict] = []
        self.open_seconds = publish.OpenSeconds()
        self.publisher: asyncio.Task | None = None
        self.limits = AgentLimits()
        #: set when the connection is refused: what was queued behind is never acted on
        self.refused = False
        #: the previous heartbeat's counters (for "agent not decoding"); None: not read yet
        self.counters: dict[str, int] | None = None
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "publisher", None) is not None:
            self.publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.publisher

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.refused:
            # Messages the agent sent before it saw the close: none may be written, or the
            # high-water mark would pass the refused batch and the agent would forget it.
            return
        limit = settings.WSGI_FLEET["AGENT_MAX_MESSAGE"]
        over = self.limits.over(len(bytes_data if bytes_data is not None else (text_data or "").encode()))
        if over is not None:
            faults.refuse("agent over its limits", over, host=self.host)
            await queries.count_refused(self.host['id'])
            await self.refuse(SLOW_DOWN, over)
            return
        try:
            if bytes_data is None:
                raise ProtocolError("text frames are not part of the agent protocol")
            if len(bytes_data) > limit:
                await queries.count_refused(self.host['id'])
                await self.refuse(4413, f"message of {len(bytes_data)} bytes is over the {limit}-byte limit")
                return
            message = protocol.unpack(bytes_data)
            handler = self.handlers.get(message["t"])
            if handler is None:
                raise ProtocolError(f"unknown message type {message['t']!r}")
            await handler(self, message)
        except (ProtocolError, InvalidSample) as exc:
            await queries.count_refused(self.host['id'])
            await self.refuse(4400, str(exc))
        except StoreUnavailable:
            await self.refuse(4503, "window store unavailable; keep spooling")
        except Exception as exc:  # the console's bug: the agent resends after a backoff
            faults.caught("agent message", self.host, exc)
            await self.refuse(1011, "internal error of the console (logged); resend later")

    async def refuse(self, code: int, reason: str) -> None:
        self.refused = True
        if code not in (SLOW_DOWN, 1011):  # those are counted and logged with a rate limit
            log.warning("agent of %s refused (%d): %s", self.host["name"], code, reason)
        await self.send(bytes_data=protocol.pack({"t": "error", "reason": reason}))
        await self.close(code)

    async def on_hello(self, message: dict) -> None:
        protocol.validate_hello(message)
        self.instance = message["instance"]
        acked = await self.store.aacked(self.host['id'], self.instance)
        await queries.record_hello(self.host['id'], str(message.get("agent", ""))[:100])
        await self.send(bytes_data=protocol.pack({
            "t": "welcome", "protocol": protocol.PROTOCOL, "host": self.host["name"],
            "max_message": settings.WSGI_FLEET["AGENT_MAX_MESSAGE"], "acked": acked,
        }))
        self.ensure_publisher()

    def ensure_publisher(self) -> None:
        """The connection's publisher, started after hello; started again should it ever end."""
        if self.publisher is not None and self.publisher.done() and not self.publisher.cancelled():
            faults.caught("publisher", self.host, self.publisher.exception())
            self.publisher = None
        if self.publisher is None:
            self.publisher = asyncio.create_task(publish.run(self.host, self.store, self.groups_seen,
                                                             self.recent))

    async def on_batch(self, message: dict) -> None:
        instance, batch_id, samples = protocol.validate_batch(message)
        if self.instance is None or instance != self.instance:
            raise ProtocolError("batch before hello, or from another agent instance")
        result = await self.store.awrite_batch(self.host['id'], instance, batch_id, samples, now=time.time())
        await self.send(bytes_data=protocol.pack(
            {"t": "ack", "id": batch_id, "written": result.written, "duplicate": result.duplicate,
             "dropped": result.dropped}))
        if not result.duplicate:
            self.recent.extend(samples)
            for sample in samples:
                self.groups_seen.add(sample.get("g") or "")
            await publish.publish_increments(self.host, self.open_seconds, result.increments)
            self.ensure_publisher()

    async def on_heartbeat(self, message: dict) -> None:
        counters = protocol.validate_heartbeat(message)
        now = time.time()
        if self.counters is None:  # a reconnect keeps a stall the previous connection saw
            status = (await self.store.ahost_status([self.host['id']])).get(self.host['id'], {})
            self.counters = status.get("counters", {})
        self.counters = health.with_decoding(self.counters, counters, now)
        await self.store.aset_counters(self.host['id'], self.counters, now)
        await queries.record_heartbeat(self.host['id'], counters)

    handlers = {"hello": on_hello, "batch": on_batch, "heartbeat": on_heartbeat}
