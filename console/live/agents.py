"""``/ws/agent/``: the agents' connections in.

Kept thin: validation lives in ``protocol``, reads and writes in the
window store; the per-second frames of the host are built once, by the
connection that holds its agent (``publish``), and fanned out as
ready-made text to every subscriber through the channel layer. Each
connection has its own rate limits (``limits``).

Time is the console's: each heartbeat's ``time`` measures how far the
agent's clock is off (``AgentClock``), the host's pages say so past a few
seconds, and past ``summary.CORRECT_SKEW`` the samples' stamps are moved by
the measured skew before they are written, so an agent whose clock is wrong
neither writes into the future nor looks silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import deque
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from console.windows import durability
from console.windows.batch import InvalidSample
from console.windows.checks import MAX_STAMP, CheckedSamples
from ingest.model.fields import FIELDS
from ingest.model.sample import Sample

from . import auth, health, protocol, publish, queries
from .health import faults
from .limits import SLOW_DOWN, AgentLimits
from .protocol import ProtocolError
from .store import StoreUnavailable, window_store
from .summary import CORRECT_SKEW, SHIFT_MS, SKEW_BEATS, SKEW_MS

log = logging.getLogger("console.live")

#: Sample fields that are instants on the agent's clock (the header's ``t`` is the other).
EPOCH_FIELDS = frozenset(f.name for f in FIELDS if f.unit == "epoch s")
#: Heartbeats the skew is the median of: one heartbeat held up (a busy console, a slow
#: link) reads as the agent being behind, and must not move the samples of everyone.
CLOCK_BEATS = 5
#: Seconds the measured skew must move before a correction in force follows it: a
#: process's samples must not swap places because one heartbeat came a little late.
SHIFT_TOLERANCE = 1.0


def _moved(stamp: float, shift: float) -> float:
    return min(max(stamp - shift, 0.0), MAX_STAMP - 1.0)


def shifted(sample: Sample, shift: float) -> Sample:
    """``sample`` with its instants moved by ``-shift`` seconds (a new dict; fields shared)."""
    out: Sample = {**sample, "t": _moved(sample["t"], shift)}
    fields = sample.get("f")
    if isinstance(fields, dict):
        epochs = EPOCH_FIELDS.intersection(fields)
        if epochs:
            out["f"] = {**fields, **{name: _moved(fields[name], shift) for name in epochs}}
    return out


class AgentClock:
    """How far the agent's clock is from the console's, and the shift its samples get.

    The skew is agent time - console time at each heartbeat; the network's
    delay only makes it read low by milliseconds, which the median of the
    last few and the tolerance before a correction follows absorb.
    """

    def __init__(self, shift: float = 0.0) -> None:
        self.skews: deque[float] = deque(maxlen=CLOCK_BEATS)
        #: seconds taken off every stamp of this agent's samples
        self.shift = shift

    @property
    def skew(self) -> float | None:
        return statistics.median(self.skews) if self.skews else None

    def observe(self, agent_time: float, now: float) -> None:
        self.skews.append(agent_time - now)
        skew = statistics.median(self.skews)
        if abs(skew) > CORRECT_SKEW:
            if abs(skew - self.shift) > SHIFT_TOLERANCE:
                self.shift = skew
        elif abs(skew) < CORRECT_SKEW / 2:  # between the two: as it was, so it does not flap
            self.shift = 0.0

    def counters(self) -> dict[str, int]:
        """What the host's stored status keeps of it (``summary.agent_clock`` reads it back)."""
        skew = self.skew
        if skew is None:
            return {SHIFT_MS: round(self.shift * 1000)}
        return {SKEW_MS: round(skew * 1000), SHIFT_MS: round(self.shift * 1000), SKEW_BEATS: len(self.skews)}

    def place(self, samples: CheckedSamples) -> CheckedSamples:
        """The samples by the console's clock: as they are, unless a correction is in force."""
        if not self.shift:
            return samples
        return CheckedSamples((shifted(s, self.shift) for s in samples), samples.dropped)


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
        self.recent: list[Sample] = []
        self.open_seconds = publish.OpenSeconds()
        self.publisher: asyncio.Task[None] | None = None
        self.limits = AgentLimits()
        #: set when the connection is refused: what was queued behind is never acted on
        self.refused = False
        #: the previous heartbeat's counters (for "agent not decoding"); None: not read yet
        self.counters: dict[str, int] | None = None
        self.clock = AgentClock()
        await self.accept()
        # the token's revocation ends the connection too, not only the next handshake (auth.py)
        self.guard = auth.watch(lambda: auth.agent_verdict(self.scope), self.revoked)

    async def revoked(self, code: int) -> None:
        await self.refuse(code, "the agent token was revoked or has expired, or its host was deleted")

    async def disconnect(self, code: int) -> None:
        guard: asyncio.Task[None] | None = getattr(self, "guard", None)
        if guard is not None and guard is not asyncio.current_task():
            guard.cancel()
        publisher: asyncio.Task[None] | None = getattr(self, "publisher", None)  # None: before connect
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

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

    async def resume(self) -> dict[str, int]:
        """Take up what the previous connection of this host saw: a stall of its decoder, and
        the clock correction in force (a resent spool comes before the first heartbeat)."""
        status = (await self.store.ahost_status([self.host['id']])).get(self.host['id'], {})
        self.counters = status.get("counters", {})
        self.clock.shift = self.counters.get(SHIFT_MS, 0) / 1000
        return self.counters

    async def on_hello(self, message: dict[str, Any]) -> None:
        hello = protocol.validate_hello(message)
        self.instance = instance = hello["instance"]
        acked = await self.store.aacked(self.host['id'], instance)
        if self.counters is None:
            await self.resume()
        # The first agents come at the console's start: its log says then what Redis keeps.
        await durability.store_state(self.store)
        await queries.record_hello(self.host['id'], str(hello.get("agent", ""))[:100])
        await self.send(bytes_data=protocol.pack({
            "t": "welcome", "protocol": protocol.PROTOCOL, "host": self.host["name"],
            "max_message": settings.WSGI_FLEET["AGENT_MAX_MESSAGE"], "acked": acked,
            "compression": protocol.COMPRESSION,
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

    async def on_batch(self, message: dict[str, Any]) -> None:
        instance, batch_id, samples = protocol.validate_batch(message)
        if self.instance is None or instance != self.instance:
            raise ProtocolError("batch before hello, or from another agent instance")
        samples = self.clock.place(samples)
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

    async def on_heartbeat(self, message: dict[str, Any]) -> None:
        """Store the agent's counters. A heartbeat that cannot be taken is counted and
        skipped, never a 4400: the agent blames a 4400 on its oldest batch in flight, and
        would drop good data for counters the next heartbeat brings again."""
        try:
            await self.take_heartbeat(message)
        except (ProtocolError, InvalidSample) as exc:
            faults.refuse("heartbeat not taken", str(exc)[:200], host=self.host)

    async def take_heartbeat(self, message: dict[str, Any]) -> None:
        counters = protocol.validate_heartbeat(message)
        now = time.time()
        agent_time = protocol.heartbeat_time(message)
        previous = self.counters if self.counters is not None else await self.resume()
        if agent_time is not None:
            self.clock.observe(agent_time, now)
        self.counters = {**health.with_decoding(previous, counters, now), **self.clock.counters()}
        # The store adds each instance's loss to the host's totals (docs/store-exactly-once.md):
        # those, not this run's counters, are what the host's database row shows.
        totals = await self.store.aset_counters(self.host['id'], self.counters, now,
                                                instance=self.instance or "")
        await queries.record_heartbeat(self.host['id'], {
            **counters, **{k: min(max(int(v), 0), protocol.COUNTER_MAX) for k, v in (totals or {}).items()}})

    handlers = {"hello": on_hello, "batch": on_batch, "heartbeat": on_heartbeat}
