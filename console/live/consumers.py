"""The two WebSocket consumers: agents in, browsers and ``top`` out.

Kept thin: validation lives in ``protocol``, reads and writes in the
window store, per-second frames are built once by the consumer that holds
the host's agent connection (``publish``) and fanned out as ready-made
text to every subscriber through the channel layer. Each connection has
its own rate limits (``limits``); every text to a page goes through
``jsontext.dumps``; faults are counted and logged by ``health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from redis.exceptions import RedisError

from console.windows.batch import InvalidSample

from . import health, protocol, publish, queries, tabs
from .health import error_message, faults
from .jsontext import dumps
from .limits import SLOW_DOWN, AgentLimits, SubscribeLimit
from .protocol import ProtocolError
from .store import StoreUnavailable, store_kind, window_store

log = logging.getLogger("console.live")

try:  # daphne's WebSocket layer raises this when a send meets a closed connection
    from autobahn.exception import Disconnected as _Disconnected
except ImportError:  # pragma: no cover - another ASGI server
    _Disconnected = OSError  # type: ignore[assignment,misc]
_GONE = (_Disconnected, ConnectionError)

#: Seconds between a live consumer's checks of the window store.
STORE_CHECK_INTERVAL = 3.0
#: Seconds between attempts to receive from a channel layer that failed.
LAYER_RETRY = 1.0


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


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/live/``: pages and ``top``; only hosts of the user's teams."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Channels' consumer loop, with a channel-layer receive that survives a Redis outage.

        The stock loop lets the layer's connection error end the consumer
        (the page sees a bare 1011). Here the page is told, the connection
        stays up, and the groups are joined again when Redis is back.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        self.layer_ok = True
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self.layer_receive], self.dispatch)

    async def layer_receive(self) -> dict:
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except (OSError, RedisError) as exc:
                if self.layer_ok:
                    self.layer_ok = False
                    log.warning("channel layer unavailable: %s", exc)
                    await self.report_store(False)
                await asyncio.sleep(LAYER_RETRY)
                continue
            if not self.layer_ok:
                self.layer_ok = True
                await self.join(list(self.joined))
                await self.report_store(await self.store.aping())
            return message

    async def report_store(self, ok: bool) -> None:
        reason = None if ok else "window store unavailable; agents are spooling"
        with contextlib.suppress(Exception):
            await self.send_json({"type": "status", "store_ok": ok, "now": time.time(), "reason": reason})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close()
            return
        self.user = user
        self.store = window_store()
        self.joined: list[str] = []
        self.limit = SubscribeLimit()
        #: set once the connection is closed for flooding: what was queued behind is ignored
        self.closing = False
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username(), "store": store_kind(),
                              "single_process": store_kind() == "memory", "now": time.time()})
        self.watcher = asyncio.create_task(self.watch_store())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "watcher", None) is not None:
            self.watcher.cancel()
        await self.leave()

    async def watch_store(self) -> None:
        """Tell the page when the window store goes away and comes back.

        Checked by each consumer itself: when Redis is down the channel
        layer (also Redis) cannot carry the news either.
        """
        healthy = True
        while True:
            await asyncio.sleep(STORE_CHECK_INTERVAL)
            ok = await self.store.aping()
            if ok != healthy:
                healthy = ok
                await self.report_store(ok)

    async def leave(self) -> None:
        for group in getattr(self, "joined", []):
            with contextlib.suppress(OSError, RedisError):  # gone with Redis anyway
                await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []

    async def join(self, groups: list[str]) -> None:
        await self.leave()
        for group in groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except (OSError, RedisError):
                # A pooled connection that died with Redis fails once; the retry gets a new one.
                await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        """Every message of this consumer as strict, bounded JSON (``jsontext``)."""
        return dumps(content)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: Any) -> None:
        """Rate-limited before anything is decoded: a flood costs a token check a message."""
        if self.closing:
            return
        verdict = self.limit.check()
        if verdict == SubscribeLimit.CLOSE:
            faults.refuse("page over its subscribe limit", "closed")
            self.closing = True
            await self.close(SLOW_DOWN, "too many subscribes; slow down")
            return
        if verdict == SubscribeLimit.REFUSE:
            faults.refuse("page over its subscribe limit", "a message was answered with an error")
            await self.send_json(error_message(
                f"too many messages: at most {self.limit.rate:g} a second; this one was not acted on"))
            return
        try:
            content = json.loads(text_data) if text_data else None
        except (ValueError, RecursionError):
            content = None
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") not in ("subscribe", "unsubscribe"):
            await self.send_json({"type": "error", "reason": "expected subscribe or unsubscribe"})
            return
        try:
            if content["type"] == "unsubscribe":
                await self.leave()
            elif content.get("scope") == "fleet":
                await self.subscribe_fleet()
            elif content.get("scope") == "host":
                await self.subscribe_host(content)
            else:
                await self.send_json({"type": "error", "reason": "scope must be fleet or host"})
        except (StoreUnavailable, OSError, RedisError):  # the store's or the channel layer's Redis
            await self.report_store(False)
        except Exception as exc:  # the console's bug: this answer is lost, the connection is not
            faults.caught("subscribe", None, exc)
            await self.send_json(error_message("the console could not answer this subscribe "
                                               "(internal error, logged)"))

    async def subscribe_fleet(self) -> None:
        hosts = await queries.visible_hosts(self.user)
        await self.join(publish.fleet_groups(self.user, hosts))
        entries = await publish.fleet_entries(self.store, hosts, time.time())
        await self.send_json({"type": "fleet.snapshot", "now": time.time(), "hosts": entries})

    async def subscribe_host(self, content: dict) -> None:
        host = await queries.visible_host(self.user, content.get("host"))
        if host is None:
            await self.send_json({"type": "error", "reason": "no such host"})
            return
        request = tabs.TabRequest.from_message(content, tabs.TABS)
        await self.join([publish.host_group(host["id"]), tabs.tab_group(host["id"], request.tab)])
        now = time.time()
        await self.send_json(await publish.host_snapshot(self.store, host, request, now))
        await self.send_json(await tabs.tab_snapshot(self.store, host, request, now))

    async def live_text(self, event: dict) -> None:
        """Frames built once by the publisher, sent as they are to every subscriber.

        A frame can reach a connection the server has just closed (the page went
        away between the group send and this one): that page needs nothing more,
        and the error must not surface as a traceback of the whole consumer.
        """
        try:
            await self.send(text_data=event["text"])
        except _GONE:
            log.debug("a frame for a page that has gone away was not sent")
