"""The Processes tab: each process's life as a bar (STARTED -> STOPPING -> STOPPED), the
lifecycle event log and restarts per hour (docs/live-protocol.md, "processes").

A row is one process incarnation ("pid:incarnation": pids are reused). Rows
are built from two sources that disagree in useful ways: the lifecycle
events of the window (kept for a day, so a 24 h window still has its bars
after the registry forgot the process) and the process registry (which
knows who is running now, who went silent without a STOPPED, and each
process's parent). The page merges the live events and the registry of
``host.frame`` into the same rows with the same rules.

Restarts are counted here, over every event of the window, so the rate is
right even when the event list sent to the page is cut to the newest
``MAX_EVENTS``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model.kinds import TICK
from ingest.model.metrics import TICK_FIELDS
from ingest.model.records import KIND_NAMES, category, compact, finite, lifecycle_event, text_or_none
from ingest.model.sample import Sample

from .base import MAX_PROCESSES, TabRequest

#: Newest events sent with a snapshot; a busy host over 24 h has far more.
MAX_EVENTS = 2000
#: Rows sent with a snapshot: every live process, then the most recently ended.
MAX_ROWS = 500
CATEGORY_NAMES = ("planned", "tuning", "unplanned")
#: Widths of the restart-rate buckets; the first that cuts the window into at most MAX_BUCKETS.
BUCKET_WIDTHS = (10, 30, 60, 300, 900, 3600, 10800, 21600, 86400)
MAX_BUCKETS = 48
#: The table's columns from each live process's newest tick: metrics of the table
#: (docs/metrics.md), each read from the tick field that holds one process's value.
METRICS = tuple(name for name, _ in TICK_FIELDS)
#: Latest tick of each live process, for the table: look back this many of its intervals.
TICK_INTERVALS = 3


def bucket_width(window: float) -> int:
    return next((w for w in BUCKET_WIDTHS if window / w <= MAX_BUCKETS), BUCKET_WIDTHS[-1])


def apply_event(row: dict[str, Any], e: Mapping[str, Any]) -> None:
    """Fold one event into its row (the page runs the same rule on live events)."""
    kind = e["kind"]
    row[kind] = e["t"]
    if kind == "started":
        if row.get("parent") is None:
            row["parent"] = e.get("parent")
        return
    if e.get("reason") or not row.get("reason"):  # STOPPED may omit the reason STOPPING gave
        row["reason"], row["category"] = e.get("reason"), e["category"]
    if kind == "stopping":
        row["at_decision"] = e.get("in_flight")
        row["state"] = "stopping" if row.get("state") in (None, "running") else row["state"]
    else:
        row.update(at_exit=e.get("in_flight"), uptime=e.get("uptime"), requests=e.get("requests"),
                   drain=e.get("drain"), state="stopped")


def _row_of_record(record: Mapping[str, Any]) -> dict[str, Any]:
    reason = text_or_none(record.get("shutdown_reason"))
    drain = finite(record.get("graceful_drain"))
    identity = record.get("identity") or {}
    return {
        "key": f"{record['pid']}:{record['incarnation']}", "pid": record["pid"], "inc": record["incarnation"],
        "group": text_or_none(record.get("group")) or "", "state": record.get("state"),
        "parent": finite(identity.get("process_parent_pid")),
        "first_seen": finite(record.get("first_seen")), "last_seen": finite(record.get("last_seen")),
        "interval": finite(record.get("interval")),
        "started": finite(record.get("started")), "stopping": finite(record.get("stopping")),
        "stopped": finite(record.get("stopped")),
        "reason": reason, "category": category(reason) if record.get("stopping") or record.get("stopped")
        else None,
        "uptime": finite(record.get("process_uptime")),
        "requests": finite(record.get("lifetime_request_count")),
        "at_exit": finite(record.get("active_requests_at_exit")),
        "drain": None if drain is None else bool(drain),
    }


def _row_end(row: Mapping[str, Any]) -> float | None:
    """When the bar ends: STOPPED, or the last sample of a process that went silent; None if alive."""
    if row.get("stopped") is not None:
        return row["stopped"]
    return row.get("last_seen") if row.get("state") == "gone" else None


def build_rows(records: Iterable[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
               since: float) -> list[dict[str, Any]]:
    """One row per process incarnation alive at some point of the window.

    ``records`` come from the registry (already cut to the group), ``events`` are
    the window's events, oldest first. A process only the events remember
    (the registry forgets after an hour) and that never said STOPPED is gone.
    """
    rows = {}
    for record in records:
        made = _row_of_record(record)
        rows[made["key"]] = made
    for e in events:
        key = f"{e['pid']}:{e['inc']}"
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"key": key, "pid": e["pid"], "inc": e["inc"], "group": e["group"],
                               "state": "gone", "first_seen": e["t"], "last_seen": e["t"]}
        row["first_seen"] = min(row.get("first_seen") or e["t"], e["t"])
        row["last_seen"] = max(row.get("last_seen") or e["t"], e["t"])
        apply_event(row, e)
    visible = [row for row in rows.values() if (_row_end(row) or math.inf) >= since]
    visible.sort(key=lambda r: (r["group"], r.get("started") or r.get("first_seen") or 0, r["pid"], r["inc"]))
    return [compact(row) for row in visible]


def restarts(rows: Sequence[Mapping[str, Any]], since: float, window: float) -> dict[str, Any]:
    """The ``restarts`` metric (docs/metrics.md): processes that stopped in the window (STOPPING,
    else STOPPED), by category and by bucket. Not ``started``, which the fleet row counts."""
    width = bucket_width(window)
    per_category = dict.fromkeys(CATEGORY_NAMES, 0)
    buckets: dict[int, list[int]] = {}
    for row in rows:
        when = row.get("stopping", row.get("stopped"))
        if when is None or when < since:
            continue
        index = CATEGORY_NAMES.index(row.get("category") or "unplanned")
        per_category[CATEGORY_NAMES[index]] += 1
        start = int(when // width * width)
        buckets.setdefault(start, [start, 0, 0, 0])[1 + index] += 1
    count = sum(per_category.values())
    return {"count": count, "per_hour": count * 3600.0 / window, "categories": per_category,
            "bucket": width, "buckets": [buckets[k] for k in sorted(buckets)]}


def _latest_metrics(ticks: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest tick of each process, as the table's columns."""
    latest: dict[str, dict[str, Any]] = {}
    for sample in ticks:
        entry = tick(sample)
        if entry is not None:
            key = f"{entry['pid']}:{entry['inc']}"
            if key not in latest or latest[key]["t"] <= entry["t"]:
                latest[key] = entry
    return latest


def tick(sample: Mapping[str, Any]) -> dict[str, Any] | None:
    """A kind-2 tick as the process table's live columns (None when malformed)."""
    pid, inc, stamp, f = sample.get("p"), sample.get("i"), finite(sample.get("t")), sample.get("f")
    if type(pid) is not int or type(inc) is not int or stamp is None or not isinstance(f, Mapping):
        return None
    out: dict[str, Any] = {"pid": pid, "inc": inc, "t": stamp}
    for name, field in TICK_FIELDS:
        out[name] = _round(f.get(field))
    return out


def _round(value: Any) -> float | int | None:
    # Three decimals are all a table cell shows; they halve what 1,000 processes send a second.
    value = finite(value)
    return None if value is None else round(value, 3)


def _cut_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_ROWS: the live processes first, then those that ended last; order kept."""
    if len(rows) <= MAX_ROWS:
        return rows
    ranked = sorted(rows, key=lambda r: (_row_end(r) is not None, -(_row_end(r) or 0)))
    keep = {id(r) for r in ranked[:MAX_ROWS]}
    return [r for r in rows if id(r) in keep]


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    since = now - request.window
    records = [r for r in await store.aprocesses(host["id"], now=now) if request.wants(r.get("group"))]
    events = [e for e in map(lifecycle_event, await store.alifecycle(host["id"], since))
              if e is not None and request.wants(e["group"])]
    rows = build_rows(records, events, since)
    live_rows = [r for r in rows if r.get("state") in ("running", "stopping")]
    if live_rows:
        interval = max(r.get("interval") or 1.0 for r in live_rows)
        ticks = await store.araw(host["id"], now - TICK_INTERVALS * interval - 1.0, now + 60.0,
                                 kinds=(TICK,), limit=min(5000, TICK_INTERVALS * len(live_rows) + 10))
        latest = _latest_metrics(ticks)
        for row in live_rows:
            metrics = latest.get(row["key"])
            if metrics:
                row.update({k: metrics[k] for k in METRICS if metrics[k] is not None})
    kept = getattr(store, "lifecycle_retention", None)
    return {
        "rows": _cut_rows(rows), "rows_total": len(rows),
        "events": events[-MAX_EVENTS:], "events_total": len(events),
        "restarts": restarts(rows, since, request.window),
        "history_from": now - kept if isinstance(kept, int | float) and kept < request.window else None,
    }


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    """The second's lifecycle events, and each process's newest tick for the table as
    ``[pid, incarnation, *METRICS]`` (the page knows the rest of the row).

    At most MAX_EVENTS events (the newest) and the ticks of MAX_PROCESSES processes (the
    lowest pids, the same every second); what is left out is counted in ``omitted``: a
    flood of STARTED from fake pids made this frame megabytes long."""
    events = []
    ticks: dict[tuple[int, int], dict[str, Any]] = {}
    for sample in samples:
        kind = sample.get("k")
        if kind == TICK:
            entry = tick(sample)
            if entry is not None:
                key = (entry["pid"], entry["inc"])
                if key not in ticks or ticks[key]["t"] <= entry["t"]:
                    ticks[key] = entry
        elif kind in KIND_NAMES:
            e = lifecycle_event(sample)
            if e is not None:
                events.append(e)
    if not events and not ticks:
        return None
    out: dict[str, Any] = {}
    if events:
        out["events"] = sorted(events, key=lambda e: e["t"])[-MAX_EVENTS:]
    if ticks:
        keys = sorted(ticks)[:MAX_PROCESSES] if len(ticks) > MAX_PROCESSES else ticks
        out["ticks"] = [[t["pid"], t["inc"], *(t[k] for k in METRICS)] for t in map(ticks.__getitem__, keys)]
    if len(events) > MAX_EVENTS or len(ticks) > MAX_PROCESSES:
        out["omitted"] = {"events": max(len(events) - MAX_EVENTS, 0),
                          "ticks": max(len(ticks) - MAX_PROCESSES, 0)}
    return out
