"""Per-second frames for subscribers, built once per host.

The consumer holding a host's agent connection publishes twice per second
of data. At once, after each batch it writes (``publish_increments``): the
seconds the batch touched, from what this connection has written into
them, marked ``partial`` - so a datagram is on screen one agent batch
after it was sent. Then, when the second is two seconds old (``run``), the
stored second read back from the window store: complete whatever wrote
it (another agent instance, a resend after a reconnect, loss from
heartbeats). Both are turned into display metrics once and sent as the
same JSON text to every subscriber of the host (and, for the final one,
of its team) through the channel layer. Snapshots for a new subscriber are
read from the window store, downsampled to the points the chart can show.

Every part is guarded on its own (``health``): a host frame, fleet row,
partial frame or tab's data that fails to build is counted and logged, the
host's pages get an ``error`` about it, and the next second is published
as usual; nothing but the agent's disconnect ends ``run``. Every text goes
through ``jsontext.dumps`` (strict JSON, bounded), and a message lists at
most ``tabs.base.MAX_PROCESSES`` processes and ``MAX_GROUPS`` groups.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from console.windows.store import BaseWindowStore
from ingest.model.frames import merge, merge_into
from ingest.model.kinds import STARTED, STATUS_CLASSES, STOPPED, STOPPING
from ingest.model.records import first_processes
from ingest.model.sample import Sample

from .groups import STAFF_GROUP, host_group, team_group
from .health import error_message, faults
from .jsontext import dumps
from .store import StoreUnavailable
from .summary import (
    AGENT_KEYS,
    ONLINE_WITHIN,
    PUBLISH_DELAY,
    SERIES_KEYS,
    agent_counters,
    agent_state,
    broken_entry,
    fleet_entries,
    fleet_entry,
    fleet_metrics,
    headline_seconds,
    host_status,
    lifecycle_changed,
    metrics,
    recent_of,
)
from .tabs import TabRequest, live_messages
from .tabs.base import MAX_GROUPS

#: Tabs whose host snapshot carries the chart series: the Overview's charts, top's sparklines.
SERIES_TABS = frozenset({"overview", "top"})

__all__ = ["AGENT_KEYS", "ONLINE_WITHIN", "PUBLISH_DELAY", "OpenSeconds", "fleet_entries", "host_snapshot",
           "metrics", "publish_increments", "run"]

#: Samples that change a host's restarts or live processes (its fleet row re-reads them).
LIFECYCLE_KINDS = frozenset({STARTED, STOPPING, STOPPED})
#: Seconds between process lists in host frames (a page keeps its table current).
PROCESSES_EVERY = 5
#: The window's totals in a host snapshot: requests, and requests by status class.
TOTALS = ("requests", *(f"status_{name}" for name in STATUS_CLASSES))


def process_list(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """The registry as host messages carry it: at most MAX_PROCESSES records, and the total."""
    return {"processes": first_processes(processes), "processes_total": len(processes)}


async def host_snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                        now: float) -> dict[str, Any]:
    """What every tab's top bar needs (groups, processes, window totals, the agent's state),
    and the Overview's chart series when that is the tab asked for; or an ``error`` about
    this host when building it failed (the page's connection, and its tab, go on)."""
    try:
        return await _host_snapshot(store, host, request, now)
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("host snapshot", host, exc)
        return error_message("the console could not read this host's summary (internal error, logged)",
                             host=host["id"], about="host.snapshot")


async def _host_snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                         now: float) -> dict[str, Any]:
    since = now - request.window
    charts = request.tab in SERIES_TABS
    points = request.points if charts else 1
    series = await store.aframes(host["id"], request.group, since, now, points, now=now)
    columns: dict[str, list[Any]] = {}
    if charts:
        columns["t"] = [t for t, _ in series]
        values = [metrics(frame, float(series.step)) for _, frame in series]
        for key in SERIES_KEYS:
            columns[key] = [p[key] for p in values]
        if request.group != "*":
            # Loss is the host's, kept in its "*" frames only: a group's chart marks it too.
            # Same window and points, so the same tier and step: the stamps line up.
            host_loss = await store.aframes(host["id"], "*", since, now, points, now=now)
            lost_at = {t: metrics(frame, float(host_loss.step))["loss"] for t, frame in host_loss}
            columns["loss"] = [lost_at.get(t, 0) for t in columns["t"]]
    total = metrics(merge(frame for _, frame in series), float(request.window)) if series else None
    processes = await store.aprocesses(host["id"], now=now)
    groups = sorted({p.get("group") or "" for p in processes})
    status = await host_status(store, host)
    counters = agent_counters(status)
    return {
        "type": "host.snapshot", "host": host["id"], "group": request.group, "tab": request.tab, "now": now,
        "step": series.step, "groups": ["*", *groups[:MAX_GROUPS]], "groups_total": len(groups),
        "series": columns,
        "totals": {name: total[name] if total else 0 for name in TOTALS},
        "agent": counters, "agent_state": agent_state(status, now),
        "bad_reasons": await bad_reasons(store, host) if counters["bad_samples"] else [],
        **process_list(processes),
    }


#: Reasons of the latest samples the console dropped that a snapshot carries: the page's
#: loss breakdown says why ("field request_time_min: expected a finite number ...").
BAD_REASONS_SHOWN = 3


async def bad_reasons(store: BaseWindowStore, host: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest reasons, newest first, as ``{"t", "reason"}``; [] when they cannot be read
    (counted): the snapshot is worth more than its explanation of bad samples."""
    try:
        records = await store.abad_samples(host["id"])
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("bad sample reasons", host, exc)
        return []
    return [{"t": r.get("t"), "reason": str(r.get("reason", ""))[:300]}
            for r in records[:BAD_REASONS_SHOWN] if isinstance(r, dict)]


async def _send(group: str, message: dict[str, Any]) -> None:
    await get_channel_layer().group_send(group, {"type": "live.text", "text": dumps(message)})


async def publish_second(store: BaseWindowStore, host: dict[str, Any], groups: set[str], second: int) -> None:
    """The stored second, complete, to the host's pages; its fleet row to its team and staff.

    The two are built and sent apart: a fleet row that fails does not cost
    the host's pages their frame, nor the reverse.
    """
    now = time.time()
    status = await host_status(store, host)
    shown = sorted(groups)[:MAX_GROUPS]
    try:
        seconds = await headline_seconds(store, host["id"], second)  # the frame's and the headline's
        headlines = recent_of(seconds, second, shown)
    except StoreUnavailable:
        raise
    except Exception as exc:  # the frame and the row go out without their headline
        faults.caught("headline", host, exc)
        seconds, headlines = {}, None
    try:
        frame = await host_frame(store, host, groups, seconds, second, status, now, headlines)
        await _send(host_group(host["id"]), frame)
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("host frame", host, exc)
        await _send(host_group(host["id"]), error_message(
            f"the console could not build the second {second} of this host (internal error, logged)",
            host=host["id"], t=second))
    try:
        entry = fleet_entry(host, status, await fleet_metrics(store, host["id"], second, now, headlines), now)
    except StoreUnavailable:
        raise
    except Exception as exc:
        faults.caught("fleet row", host, exc)
        entry = broken_entry(host, status, now)
    text = dumps({"type": "fleet.update", "now": now, "hosts": [entry]})
    for group in (team_group(host["team_id"]), STAFF_GROUP):
        await get_channel_layer().group_send(group, {"type": "live.text", "text": text})


async def host_frame(store: BaseWindowStore, host: dict[str, Any], groups: set[str],
                     seconds: dict[str, list[Any]], second: int, status: dict[str, Any], now: float,
                     headlines: dict[str, Any] | None) -> dict[str, Any]:
    """The stored second of the host and of its first MAX_GROUPS groups (the newest of the
    ``seconds`` the headline was read from), with their headlines."""
    per_group: dict[str, Any] = {}
    for group in ["*", *sorted(groups)[:MAX_GROUPS]]:
        frames = seconds.get(group)
        if frames and frames[-1][0] == second:
            per_group[group] = metrics(frames[-1][1], 1.0)
    frame = {"type": "host.frame", "host": host["id"], "t": second, "now": now, "groups": per_group,
             "groups_total": len(groups), "recent": headlines, "agent": agent_counters(status),
             "agent_state": agent_state(status, now),
             "console": {"internal_errors": faults.of_host(host["id"])}}
    if second % PROCESSES_EVERY == 0:
        frame.update(process_list(await store.aprocesses(host["id"], now=now)))
    return frame


class OpenSeconds:
    """What this connection wrote into each recent second, per process group.

    Kept for ``PUBLISH_DELAY`` + 2 seconds: after that the stored second is
    published and the increments are no longer needed.
    """

    def __init__(self) -> None:
        self.seconds: dict[int, dict[str, dict[str, float]]] = {}

    def add(self, increments: Any) -> list[int]:
        """Fold a write's increments in; returns the seconds it brought ticks to.

        Only those are worth a message at once: a second touched by nothing
        but a late GC event or a slow-request record changes no chart line
        that its complete frame, two seconds later, would not bring anyway.
        """
        touched = set()
        for (second, group), frame in increments.items():
            merge_into(self.seconds.setdefault(second, {}).setdefault(group, {}), frame)
            if frame.get("n"):
                touched.add(second)
        horizon = math.floor(time.time()) - PUBLISH_DELAY - 2
        for second in [s for s in self.seconds if s < horizon]:
            del self.seconds[second]
        return sorted(touched)

    def metrics(self, second: int) -> dict[str, Any]:
        groups = self.seconds.get(second, {})
        out = {group: metrics(groups[group], 1.0) for group in sorted(groups)[:MAX_GROUPS]}
        if groups:
            out["*"] = metrics(merge(groups.values()), 1.0)
        return out


async def publish_increments(host: dict[str, Any], open_seconds: OpenSeconds, increments: Any) -> None:
    """Send the seconds a batch touched, as this connection has them so far (``partial``).

    The data is written and acked before this runs: a failure here costs
    the pages one early update (the complete second follows), so it is
    counted and logged, never raised.
    """
    if not increments:
        return
    try:
        now = time.time()
        for second in open_seconds.add(increments):
            if second <= math.floor(now) - PUBLISH_DELAY:
                continue  # a late or resent sample: its stored second was published, or is about to be
            await _send(host_group(host["id"]), {
                "type": "host.frame", "host": host["id"], "t": second, "now": now, "partial": True,
                "groups": open_seconds.metrics(second)})
    except Exception as exc:
        faults.caught("partial host frame", host, exc)


async def publish_tabs(host: dict[str, Any], recent: list[Sample]) -> None:
    """The tabs' live data from the samples written since the last second; a tab whose
    message cannot be sent is that tab's loss for that second (``live_messages`` guards
    the building)."""
    if not recent:
        return
    samples = recent[:]
    del recent[:len(samples)]
    if any(sample.get("k") in LIFECYCLE_KINDS for sample in samples):
        lifecycle_changed(host["id"])
    now = time.time()
    for group, message in live_messages(host, samples, math.floor(now), now):
        try:
            await _send(group, message)
        except Exception as exc:
            faults.caught(f"sending the {message.get('tab')} tab's frame", host, exc)


#: Seconds a late wake still publishes one by one; a loop that was stalled
#: longer starts again from the newest (pages read older seconds from the
#: store when they subscribe), and says how many it passed over.
CATCH_UP = 30


def due_seconds(last: int | None, now: float) -> list[int]:
    """The stored seconds to publish now, given the last one published."""
    newest = math.floor(now) - PUBLISH_DELAY
    if last is None or newest - last > CATCH_UP:
        return [newest]
    return list(range(last + 1, newest + 1))


async def publish_once(host: dict[str, Any], store: BaseWindowStore, groups: set[str],
                       recent: list[Sample], seconds: list[int]) -> None:
    """One wake: the tabs' live data, then each stored second due; each part guarded on its own."""
    try:
        await publish_tabs(host, recent)
    except Exception as exc:
        faults.caught("tab frames", host, exc)
    for second in seconds:
        try:
            await publish_second(store, host, groups, second)
        except StoreUnavailable:
            faults.refuse("store unavailable", "frames are not published", host=host)
            return
        except (OSError, RedisError) as exc:  # the channel layer's Redis (restarting): no bug of ours
            faults.refuse("channel layer unavailable", f"frames are not published: {exc!r}", host=host)
            return


async def run(host: dict[str, Any], store: BaseWindowStore, groups: set[str],
              recent: list[Sample]) -> None:
    """Publish every second until cancelled (when the agent disconnects).

    Nothing but cancellation ends this loop: a second whose frames fail is
    counted and logged, and the next second is published as usual. A wake
    that comes late (a busy worker) publishes every second it passed, so no
    page misses one.
    """
    last: int | None = None
    while True:
        now = time.time()
        await asyncio.sleep(math.ceil(now) - now + 0.05)
        seconds = due_seconds(last, time.time())
        if last is not None and seconds[0] > last + 1:
            passed = seconds[0] - last - 1
            faults.overloaded("live seconds", passed, f"the publisher woke {passed} s late; those seconds "
                              "were not sent live (pages have them from the store)", host=host)
        if not seconds or (last is not None and seconds[-1] <= last):
            continue
        last = seconds[-1]
        try:
            await publish_once(host, store, groups, recent, seconds)
        except Exception as exc:  # a bug here must not take the agent's connection, or its pages, down
            faults.caught("publishing a second", host, exc)
