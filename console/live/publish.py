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
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from channels.layers import get_channel_layer

from ingest.frames import derive, merge, merge_into

from .store import StoreUnavailable
from .tabs import TabRequest, live_messages

log = logging.getLogger("console.live")

#: Seconds a frame waits for late samples before it is published.
PUBLISH_DELAY = 2
#: A host is online while its agent was heard from within this many seconds.
ONLINE_WITHIN = 15.0
SERIES_KEYS = ("throughput", "rate_1xx", "rate_2xx", "rate_3xx", "rate_4xx", "rate_5xx",
               "capacity", "cpu", "rss", "p50", "p95", "p99")
AGENT_KEYS = ("received", "lost", "malformed", "spooled", "dropped")
#: Seconds between process lists in host frames (a page keeps its table current).
PROCESSES_EVERY = 5


def host_group(host_id: int) -> str:
    return f"host.{host_id}"


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


STAFF_GROUP = "fleet.all"


def fleet_groups(user: Any, hosts: list[dict[str, Any]]) -> list[str]:
    if user.is_staff:
        return [STAFF_GROUP]
    return sorted({team_group(h["team_id"]) for h in hosts})


def metrics(frame: dict[str, float], span: float) -> dict[str, Any]:
    """The live protocol's metrics of one frame (docs/live-protocol.md)."""
    d = derive(frame, span)
    out: dict[str, Any] = {
        "throughput": d["throughput"], "capacity": d["capacity"], "cpu": d["cpu"], "rss": d["rss"],
        "p50": d["request_p50"], "p95": d["request_p95"], "p99": d["request_p99"],
        "requests": d["requests"], "processes": d["processes"], "slow_active": d["slow_active"],
        "restarts": d["started"], "status": {}, "loss": d["loss"], "ticks": d["ticks"],
    }
    for name in ("1xx", "2xx", "3xx", "4xx", "5xx"):
        out[f"rate_{name}"] = d[f"status_{name}_rate"]
        out["status"][name] = d[f"status_{name}"]
    return out


async def host_snapshot(store: Any, host: dict[str, Any], request: TabRequest,
                        now: float) -> dict[str, Any]:
    """What every tab's top bar needs (groups, processes, window totals), and the
    Overview's chart series when that is the tab asked for."""
    since = now - request.window
    points = request.points if request.tab == "overview" else 1
    series = await store.aframes(host["id"], request.group, since, now, points, now=now)
    columns: dict[str, list[Any]] = {}
    if request.tab == "overview":
        columns["t"] = [t for t, _ in series]
        values = [metrics(frame, float(series.step)) for _, frame in series]
        for key in SERIES_KEYS:
            columns[key] = [p[key] for p in values]
    total = metrics(merge(frame for _, frame in series), float(request.window)) if series else None
    processes = await store.aprocesses(host["id"], now=now)
    groups = sorted({p.get("group") or "" for p in processes})
    return {
        "type": "host.snapshot", "host": host["id"], "group": request.group, "tab": request.tab, "now": now,
        "step": series.step, "groups": ["*", *groups], "series": columns,
        "totals": {"requests": total["requests"] if total else 0, "status": total["status"] if total else {}},
        "processes": processes,
    }


def fleet_entry(host: dict[str, Any], status: dict[str, Any], frame_metrics: dict[str, Any] | None,
                now: float) -> dict[str, Any]:
    last_seen = status.get("last_seen")
    counters = status.get("counters", {})
    return {
        "id": host["id"], "name": host["name"], "team": host["team"], "labels": host["labels"],
        "online": last_seen is not None and now - last_seen < ONLINE_WITHIN,
        "last_seen": last_seen, "age": None if last_seen is None else max(now - last_seen, 0.0),
        "agent": {"version": host.get("agent_version", ""), **{k: counters.get(k, 0) for k in AGENT_KEYS}},
        "metrics": {k: frame_metrics.get(k) for k in ("throughput", "capacity", "p95", "rate_4xx", "rate_5xx",
                                                      "slow_active", "restarts", "processes")}
        if frame_metrics else {},
    }


#: Seconds the fleet view's rates and percentiles are taken over: a wall
#: screen wants a steady reading, not one second's noise.
FLEET_SPAN = 10
#: Restarts are counted over this long, re-read at most every RESTARTS_EVERY seconds.
RESTARTS_SPAN, RESTARTS_EVERY = 3600, 30
_restarts: dict[int, tuple[float, int]] = {}


async def fleet_metrics(store: Any, host_id: int, second: int, now: float) -> dict[str, Any] | None:
    """A host's fleet-row metrics: the last FLEET_SPAN closed seconds, restarts in the last hour."""
    series = await store.aframes(host_id, "*", second - FLEET_SPAN + 1, second + 1, FLEET_SPAN, now=now)
    if not series:
        return None
    # Rates over the seconds that hold data (an agent that just started has fewer than
    # FLEET_SPAN); how many processes report: the newest second's count, not an average.
    out = metrics(merge(frame for _, frame in series), float(len(series)))
    out["processes"] = metrics(series[-1][1], 1.0)["processes"]
    cached = _restarts.get(host_id)
    if cached is None or now - cached[0] >= RESTARTS_EVERY:
        hour = await store.aframes(host_id, "*", now - RESTARTS_SPAN, now, 1, now=now)
        cached = (now, int(hour[0][1].get("up", 0)) if hour else 0)
        _restarts[host_id] = cached
    out["restarts"] = cached[1]
    return out


async def fleet_entries(store: Any, hosts: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    statuses = await store.ahost_status([h["id"] for h in hosts])
    second = math.floor(now) - PUBLISH_DELAY
    values = await asyncio.gather(*(fleet_metrics(store, h["id"], second, now) for h in hosts))
    return [fleet_entry(host, statuses.get(host["id"], {}), value, now)
            for host, value in zip(hosts, values, strict=True)]


async def publish_second(store: Any, host: dict[str, Any], groups: set[str], second: int) -> None:
    layer = get_channel_layer()
    per_group: dict[str, Any] = {}
    for group in ["*", *sorted(groups)]:
        series = await store.aframes(host["id"], group, second, second + 1, 1)
        if series:
            per_group[group] = metrics(series[0][1], 1.0)
    now = time.time()
    status = (await store.ahost_status([host["id"]])).get(host["id"], {})
    frame = {"type": "host.frame", "host": host["id"], "t": second, "now": now, "groups": per_group,
             "agent": {k: status.get("counters", {}).get(k, 0) for k in AGENT_KEYS}}
    if second % PROCESSES_EVERY == 0:
        frame["processes"] = await store.aprocesses(host["id"], now=now)
    await layer.group_send(host_group(host["id"]), {"type": "live.text", "text": json.dumps(frame)})
    update = {"type": "fleet.update", "now": now,
              "hosts": [fleet_entry(host, status, await fleet_metrics(store, host["id"], second, now), now)]}
    text = json.dumps(update)
    for group in (team_group(host["team_id"]), STAFF_GROUP):
        await layer.group_send(group, {"type": "live.text", "text": text})


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
        out = {group: metrics(frame, 1.0) for group, frame in groups.items()}
        if groups:
            out["*"] = metrics(merge(groups.values()), 1.0)
        return out


async def publish_increments(host: dict[str, Any], open_seconds: OpenSeconds, increments: Any) -> None:
    """Send the seconds a batch touched, as this connection has them so far (``partial``)."""
    if not increments:
        return
    layer = get_channel_layer()
    now = time.time()
    for second in open_seconds.add(increments):
        if second <= math.floor(now) - PUBLISH_DELAY:
            continue  # a late or resent sample: its stored second was published, or is about to be
        frame = {"type": "host.frame", "host": host["id"], "t": second, "now": now, "partial": True,
                 "groups": open_seconds.metrics(second)}
        await layer.group_send(host_group(host["id"]), {"type": "live.text", "text": json.dumps(frame)})


async def publish_tabs(host: dict[str, Any], recent: list[dict[str, Any]]) -> None:
    """The tabs' live data from the samples written since the last second."""
    if not recent:
        return
    samples = recent[:]
    del recent[:len(samples)]
    now = time.time()
    layer = get_channel_layer()
    for group, message in live_messages(host["id"], samples, math.floor(now), now):
        await layer.group_send(group, {"type": "live.text", "text": json.dumps(message)})


async def run(host: dict[str, Any], store: Any, groups: set[str], recent: list[dict[str, Any]]) -> None:
    """Publish every second until cancelled (when the agent disconnects)."""
    while True:
        now = time.time()
        await asyncio.sleep(math.ceil(now) - now + 0.05)
        try:
            await publish_tabs(host, recent)
            await publish_second(store, host, groups, math.floor(time.time()) - PUBLISH_DELAY)
        except StoreUnavailable:
            log.warning("window store unavailable; frames for %s are not published", host["name"])
        except Exception:  # a bug here must not take the agent's connection down with it
            log.exception("publishing frames of %s failed", host["name"])
