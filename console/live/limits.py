"""Per-connection limits, so one agent or one page cannot slow the others.

Both consumers of a worker share its one event loop: an agent sending
21,000 batches a second, or a page sending 10,000 subscribes, takes that
loop from every other connection on the worker. Each connection gets its
own token buckets, sized from ``settings.WSGI_FLEET`` far above what a
healthy client sends (an agent sends about 10 batches and a heartbeat
every 5 s; a page subscribes once per tab change):

- agents: ``AGENT_MAX_MESSAGES_PER_SECOND`` messages and
  ``AGENT_MAX_BYTES_PER_SECOND`` bytes, each with one second of burst;
  over either, the connection is closed with ``SLOW_DOWN`` (the agent backs
  off and resends what was not acked);
- pages and token clients: ``LIVE_MAX_SUBSCRIBES_PER_SECOND`` messages with a
  burst of ``LIVE_SUBSCRIBE_BURST``; one over it is answered with an error
  and not acted on, and a client that goes on (``LIVE_FLOOD_CLOSE`` refused
  messages, refilled at the same rate) is closed with ``SLOW_DOWN``.

A rate of 0 turns a limit off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

#: Close code for a client over its limits (docs/agent-protocol.md, docs/live-protocol.md).
SLOW_DOWN = 4429


class RateLimit:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self.tokens = self.burst
        self.stamp = clock()

    def take(self, amount: float = 1.0) -> bool:
        """Take ``amount`` tokens if there are that many; False (and nothing taken) if not."""
        if self.rate <= 0:
            return True
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


def _conf(name: str, default: float) -> float:
    value: Any = settings.WSGI_FLEET.get(name, default)
    return float(value)


class AgentLimits:
    """Messages and bytes per second of one agent connection."""

    def __init__(self) -> None:
        messages = _conf("AGENT_MAX_MESSAGES_PER_SECOND", 200)
        size = _conf("AGENT_MAX_BYTES_PER_SECOND", 32 << 20)
        self.messages, self.bytes = RateLimit(messages, messages), RateLimit(size, size)

    def over(self, size: int) -> str | None:
        """Why a message of ``size`` bytes is one too many, or None when it is within the limits."""
        if not self.messages.take():
            return f"over {self.messages.rate:g} messages a second; slow down"
        if not self.bytes.take(size):
            return f"over {self.bytes.rate:g} bytes a second; slow down"
        return None


class SubscribeLimit:
    """Messages per second of one page or token client connection."""

    OK, REFUSE, CLOSE = "ok", "refuse", "close"

    def __init__(self) -> None:
        rate = _conf("LIVE_MAX_SUBSCRIBES_PER_SECOND", 20)
        self.rate = rate
        self.messages = RateLimit(rate, max(_conf("LIVE_SUBSCRIBE_BURST", 20), 1.0))
        self.strikes = RateLimit(rate, max(_conf("LIVE_FLOOD_CLOSE", 100), 1.0))

    def check(self) -> str:
        """OK to act on the message, REFUSE it (answer with an error), or CLOSE the connection."""
        if self.messages.take():
            return self.OK
        return self.REFUSE if self.strikes.take() else self.CLOSE
