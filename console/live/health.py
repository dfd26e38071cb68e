"""The console's own faults and refusals: counted, logged with a rate limit.

A unit of work (one host's snapshot, one fleet row, one second's frame of
one tab) that raises is caught where it runs, so one host's data can break
only what shows that host. Each catch is counted here by kind and by host,
and logged: the first time a kind of fault happens with its traceback, then
at most once per ``LOG_EVERY`` seconds with the count of those not logged,
so a fault that repeats every second does not fill the log.

The counts are this console process's (each worker has its own). The fleet
rows and host frames carry the host's count as ``console.internal_errors``
next to the agent's counters, so an operator sees that the console, not the
agent, had trouble with that host's data.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

log = logging.getLogger("console.live")

#: Seconds between two log lines of one kind of fault (after its first).
LOG_EVERY = 60.0


class Faults:
    """Counts of caught faults and refusals, by kind and by host."""

    def __init__(self, log_every: float = LOG_EVERY) -> None:
        self.log_every = log_every
        self.kinds: Counter[str] = Counter()
        self.hosts: Counter[int] = Counter()
        self.refused: Counter[str] = Counter()
        self.shed: Counter[str] = Counter()
        self._logged: dict[str, tuple[float, int]] = {}

    def caught(self, kind: str, host: dict[str, Any] | int | None = None,
               exc: BaseException | None = None, detail: str = "") -> None:
        """Count an unexpected exception (or an impossible result) of ``kind``, while working
        for ``host``, and maybe log it."""
        self.kinds[kind] += 1
        host_id = host["id"] if isinstance(host, dict) else host
        if host_id is not None:
            self.hosts[host_id] += 1
        skipped = self._due(kind, self.kinds[kind])
        if skipped is not None:
            log.error("internal error: %s%s failed%s%s; the rest goes on", kind, _about(host),
                      f": {detail}" if detail else "", _more(skipped),
                      exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)

    def refuse(self, kind: str, detail: str, *, host: dict[str, Any] | None = None) -> None:
        """Count a client refused by a limit (agents and pages); logged like faults."""
        self.refused[kind] += 1
        skipped = self._due(f"refused:{kind}", self.refused[kind])
        if skipped is not None:
            log.warning("refused: %s%s: %s%s", kind, _about(host), detail, _more(skipped))

    def overloaded(self, kind: str, count: int, detail: str, *, host: dict[str, Any] | None = None) -> None:
        """Count ``count`` units of work given up because this worker fell behind."""
        self.shed[kind] += count
        skipped = self._due(f"shed:{kind}", self.shed[kind])
        if skipped is not None:
            log.warning("overloaded: %s%s: %s%s", kind, _about(host), detail, _more(skipped))

    def _due(self, key: str, count: int) -> int | None:
        """None when ``key`` was logged less than ``log_every`` ago; else how many were not logged."""
        now = time.monotonic()
        last, count_then = self._logged.get(key, (None, 0))
        if last is not None and now - last < self.log_every:
            return None
        self._logged[key] = (now, count)
        return count - count_then - 1

    def of_host(self, host_id: int) -> int:
        return self.hosts.get(host_id, 0)


def _about(host: dict[str, Any] | int | None) -> str:
    if isinstance(host, dict):
        return f" of host {host['name']}"
    return "" if host is None else f" of host #{host}"


def _more(skipped: int) -> str:
    return f" ({skipped} more since the last report)" if skipped > 0 else ""


#: The console process's one record of faults.
faults = Faults()


def error_message(reason: str, **about: Any) -> dict[str, Any]:
    """The live protocol's ``error``, saying which host (and tab) it is about."""
    return {"type": "error", "reason": reason, **{k: v for k, v in about.items() if v is not None}}


# -- "agent not decoding" ----------------------------------------------------------------

#: Heartbeats in a row whose interval received datagrams and decoded none before the host
#: shows "agent not decoding": two intervals (about 10 s), so one slow decode does not flicker.
STALL_BEATS = 2
#: The console's own entries in a host's stored agent counters; an agent cannot set them.
CONSOLE_PREFIX = "console_"
_BEATS, _FROM_RECEIVED, _FROM_DECODED, _SINCE, _AT = (
    "console_stall_beats", "console_stall_received", "console_stall_decoded", "console_stall_since",
    "console_heartbeat_at")


def with_decoding(previous: dict[str, int], counters: dict[str, int], now: float) -> dict[str, int]:
    """This heartbeat's counters plus the console's stall counters, from the previous heartbeat's.

    An agent whose decode thread died keeps receiving: its ``received``
    climbs while ``decoded`` stays put. Only the console sees consecutive
    heartbeats, so it keeps the count of such intervals, and where the stall
    began, with the counters (all of them every time: the Redis store keeps
    entries a heartbeat leaves out).
    """
    out = {k: v for k, v in counters.items() if not k.startswith(CONSOLE_PREFIX)}
    received, decoded = out.get("received"), out.get("decoded")
    before_r, before_d = previous.get("received"), previous.get("decoded")
    beats, start = 0, (0, 0, 0)
    if (received is not None and decoded is not None and before_r is not None and before_d is not None
            and received > before_r and decoded == before_d):  # stalled
        if previous.get(_BEATS, 0) > 0:
            beats = previous[_BEATS] + 1
            start = (previous.get(_FROM_RECEIVED, before_r), previous.get(_FROM_DECODED, before_d),
                     previous.get(_SINCE, int(now)))
        else:
            beats, start = 1, (before_r, before_d, previous.get(_AT, int(now)))
    out.update({_BEATS: beats, _FROM_RECEIVED: start[0], _FROM_DECODED: start[1], _SINCE: start[2],
                _AT: int(now)})
    return out


def not_decoding(counters: dict[str, Any]) -> dict[str, Any] | None:
    """``{"received", "decoded", "since"}`` of a stalled agent (since the stall began), else None."""
    if counters.get(_BEATS, 0) < STALL_BEATS:
        return None
    return {"received": max(counters.get("received", 0) - counters.get(_FROM_RECEIVED, 0), 0),
            "decoded": max(counters.get("decoded", 0) - counters.get(_FROM_DECODED, 0), 0),
            "since": counters.get(_SINCE) or None}
