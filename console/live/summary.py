"""A host summed up for pages: display metrics of its frames, its agent's state, its fleet row.

Shared by the host messages (``publish``) and the fleet view. A fleet row is
built per host and guarded per host: one host whose data breaks the
building shows as a row with an ``error``, and every other row of the fleet
subscribe still comes (a fleet page used to close 1011 for the whole team
and every staff user).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model import metrics as metric_table
from ingest.model.frames import derive, recent_of
from ingest.model.kinds import HOST
from ingest.model.records import LIVE_STATES

from .health import faults, not_decoding
from .store import StoreUnavailable
from .tabs import processes
from .tabs.base import PUBLISH_DELAY

#: A host is online while its agent was heard from within this many seconds.
ONLINE_WITHIN = 15.0
#: The Overview's chart columns. ``loss`` (datagrams lost by sequence gaps, at the second
#: the heartbeat reporting them arrived) and ``ticks`` (0: no process reported, a hole) let
#: the charts mark the seconds where data is missing instead of drawing a line across them.
SERIES_KEYS = metric_table.SERIES
#: ``kernel_qlen`` is no loss: the agent's socket's kernel queue length (net.unix.max_dgram_qlen
#: when it bound; 0 unknown), which the pages name as the likely cause of sequence loss.
AGENT_KEYS = ("received", "decoded", "lost", "malformed", "spooled", "dropped", "bad_samples", "queue_drops",
              "dropped_samples", "dropped_seconds", "refused_samples", "kernel_qlen")
FLEET_METRICS = metric_table.FLEET
#: Seconds a fleet row's and a host frame's headline is taken over (docs/metrics.md).
HEADLINE_SPAN = metric_table.HEADLINE_SPAN
#: A fleet row's ``restarts`` (over RESTARTS_SPAN) and ``processes_live`` come from the host's
#: lifecycle events and process registry, re-read when the host's lifecycle changes (a STARTED,
#: STOPPING or STOPPED written: ``lifecycle_changed``) and at least every LIFECYCLE_EVERY
#: seconds (a process that falls silent changes no event): a lifecycle read per host per second
#: would cost more than the row.
RESTARTS_SPAN, LIFECYCLE_EVERY = metric_table.RESTARTS_SPAN, 10
_lifecycle: dict[int, tuple[float, dict[str, int]]] = {}
#: The fleet row's metrics that are not the headline's.
FROM_LIFECYCLE = ("restarts", "processes_live")

# -- the agent's clock against the console's ---------------------------------------------
#: The console's entries in a host's stored agent counters (ints, like every counter there):
#: the measured skew (agent clock - console clock, ms), the shift its samples' stamps get
#: (ms; 0 when they are stored as sent) and how many heartbeats the skew is the median of.
SKEW_MS, SHIFT_MS, SKEW_BEATS = "console_clock_skew_ms", "console_clock_shift_ms", "console_clock_beats"
#: Seconds of skew past which a host says so: below, it is the network's and NTP's noise.
SHOW_SKEW = 2.0
#: Seconds of skew past which samples are placed by the console's clock. Not higher: a
#: process that ticks every second is "gone" after about 4 s of apparent silence, so an
#: agent 5 s behind would show every running process gone.
CORRECT_SKEW = 2.0


def metrics(frame: dict[str, float], span: float) -> dict[str, Any]:
    """The metrics a host frame carries per group, by the table's names (docs/metrics.md)."""
    return derive(frame, span, metric_table.HOST_FRAME)


def agent_counters(status: dict[str, Any]) -> dict[str, int]:
    counters = status.get("counters", {})
    return {k: counters.get(k, 0) for k in AGENT_KEYS}


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def agent_clock(counters: dict[str, Any]) -> dict[str, Any] | None:
    """The agent's clock as the host page and fleet row show it; None before any heartbeat
    with a ``time``. ``shown`` past SHOW_SKEW; ``text`` says it, ``correction`` what was done
    about it ("" when the samples are stored as sent)."""
    if not counters.get(SKEW_BEATS):
        return None
    skew, shift = counters.get(SKEW_MS, 0) / 1000, counters.get(SHIFT_MS, 0) / 1000
    text = (f"agent clock {_seconds(abs(skew))} {'ahead of' if skew > 0 else 'behind'} the console"
            if abs(skew) > SHOW_SKEW or shift else "agent clock in step with the console")
    correction = (f"its samples are placed by the console's clock (stamps moved by {-shift:+.1f} s)"
                  if shift else "")
    return {"skew": skew, "shift": shift, "shown": abs(skew) > SHOW_SKEW or shift != 0, "text": text,
            "correction": correction, "beats": int(counters[SKEW_BEATS])}


def agent_state(status: dict[str, Any], now: float) -> dict[str, Any]:
    """``online``, ``offline`` or ``not decoding`` (received climbs, decoded does not), with
    the numbers that say so, and the agent's clock: what the fleet row and the host page
    show in words."""
    last_seen = status.get("last_seen")
    online = last_seen is not None and now - last_seen < ONLINE_WITHIN
    counters = status.get("counters", {})
    stalled = not_decoding(counters) if online else None
    return {"state": "not decoding" if stalled else "online" if online else "offline", "online": online,
            "last_seen": last_seen, "age": None if last_seen is None else max(now - last_seen, 0.0),
            "not_decoding": stalled, "clock": agent_clock(counters)}


def fleet_entry(host: dict[str, Any], status: dict[str, Any], frame_metrics: dict[str, Any] | None,
                now: float) -> dict[str, Any]:
    state = agent_state(status, now)
    return {
        "id": host["id"], "name": host["name"], "team": host["team"], "labels": host["labels"], **state,
        "agent": {"version": host.get("agent_version", ""), **agent_counters(status)},
        "console": {"internal_errors": faults.of_host(host["id"])},
        "metrics": {k: frame_metrics.get(k) for k in FLEET_METRICS} if frame_metrics else {},
    }


def broken_entry(host: dict[str, Any], status: dict[str, Any], now: float) -> dict[str, Any]:
    """The row of a host whose row could not be built: named, with what is known, and why."""
    try:
        entry = fleet_entry(host, status, None, now)
    except Exception:  # the status itself was what broke it
        entry = fleet_entry(host, {}, None, now)
    entry["error"] = "the console could not read this host's data (internal error, logged)"
    return entry


async def headline_seconds(store: BaseWindowStore, host_id: int, second: int) -> dict[str, list[Any]]:
    """Every group's 1 s frames (and the host's) of the HEADLINE_SPAN seconds up to ``second``:
    one read for the headline and, its newest entries, the host frame of ``second``."""
    return await store.aseconds(host_id, second + 1 - HEADLINE_SPAN, second + 1)


async def recent(store: BaseWindowStore, host_id: int, second: int,
                 groups: Iterable[str] | None = None) -> dict[str, Any]:
    """``host.frame``'s ``recent``: each group's headline (and the host's, "*") over the
    HEADLINE_SPAN complete seconds up to ``second``; ``groups`` limits which groups."""
    return recent_of(await headline_seconds(store, host_id, second), second, groups)


def lifecycle_changed(host_id: int) -> None:
    """A lifecycle event of the host was written: its next fleet row reads the counts again."""
    _lifecycle.pop(host_id, None)


async def lifecycle_counts(store: BaseWindowStore, host_id: int, now: float) -> dict[str, int]:
    """``restarts``, the processes that stopped in the last RESTARTS_SPAN (the Processes tab's
    rows and rule over a one-hour window), and ``processes_live``, those alive now."""
    cached = _lifecycle.get(host_id)
    if cached is None or now - cached[0] >= LIFECYCLE_EVERY or cached[0] > now:
        since = now - RESTARTS_SPAN
        registry = await store.aprocesses(host_id, now=now)
        events = [e for e in map(processes.lifecycle_event, await store.alifecycle(host_id, since))
                  if e is not None]
        rows = processes.build_rows(registry, events, since)
        cached = _lifecycle[host_id] = (now, {
            "restarts": int(processes.restarts(rows, since, RESTARTS_SPAN)["count"]),
            "processes_live": sum(1 for r in registry if r.get("state") in LIVE_STATES)})
    return cached[1]


async def fleet_metrics(store: BaseWindowStore, host_id: int, second: int, now: float,
                        headlines: dict[str, Any] | None = None) -> dict[str, Any]:
    """A host's fleet-row metrics: its headline (``recent``'s "*", read here unless given;
    null without data in its span), its restarts over RESTARTS_SPAN and its processes alive."""
    if headlines is None:
        headlines = await recent(store, host_id, second, ())
    host_recent = headlines["groups"].get(HOST) or {}
    out = {name: host_recent.get(name) for name in FLEET_METRICS if name not in FROM_LIFECYCLE}
    out.update(await lifecycle_counts(store, host_id, now))
    return out


async def fleet_row(store: BaseWindowStore, host: dict[str, Any], status: dict[str, Any], second: int,
                    now: float) -> dict[str, Any]:
    """One host's row; an unexpected error is this row's, never the fleet's."""
    try:
        return fleet_entry(host, status, await fleet_metrics(store, host["id"], second, now), now)
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("fleet row", host, exc)
        return broken_entry(host, status, now)


async def host_status(store: BaseWindowStore, host: dict[str, Any]) -> dict[str, Any]:
    """One host's agent status; {} (counted) when reading it fails for another reason than
    the store being down: the host's messages then say "offline" rather than nothing."""
    try:
        return (await store.ahost_status([host["id"]])).get(host["id"], {})
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("agent status", host, exc)
        return {}


async def fleet_entries(store: BaseWindowStore, hosts: list[dict[str, Any]],
                        now: float) -> list[dict[str, Any]]:
    """Every host's row; a host whose data breaks its row is a row with an ``error``."""
    try:
        statuses = await store.ahost_status([h["id"] for h in hosts])
    except StoreUnavailable:
        raise
    except Exception:  # one host's stored status breaks the batch read: read them one by one
        statuses = {h["id"]: await host_status(store, h) for h in hosts}
    second = math.floor(now) - PUBLISH_DELAY
    return list(await asyncio.gather(*(fleet_row(store, h, statuses.get(h["id"], {}), second, now)
                                       for h in hosts)))
