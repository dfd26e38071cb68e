"""The capacity tab: a worker-slot heatmap per process, live or ended (docs/live-protocol.md, "Capacity").

Everything the page draws comes from kind-2 ticks (request_metrics): each
tick becomes one *column* of its process, holding the tick's scalars
(period, capacity, CPU, queue and daemon means, requests) and its slot
arrays (busy and CPU seconds, requests completed, age of the running
request, longest finished request; the page divides by the period). Slow-request
records travel beside them, so the page can put a URL on a busy slot and
open the drill-down on a slow run.

A link to one request (the drill-down's ``req=<key>``, on a reload or a
shared URL) subscribes with that key as option ``req``: its record comes in
the snapshot even when newer ones fill the newest RECORD_LIMIT, as long as
it is of a process shown and overlaps the span like the others.

The window is short on purpose (``span``: 30 s to 5 min, 1 min by
default): a heatmap of worker slots is about *now*, and its size grows
with processes x slots x ticks. A snapshot that would hold more than
``CELL_BUDGET`` slot cells merges consecutive ticks into wider columns, so
a 50-process, 16-thread host still gets a few hundred kilobytes.

Slow runs are *detected* in the page, not here: the threshold is a view
option that changes nothing the console sends, and the live columns go
through the same code as the snapshot's.

A process that ended (stopped, or gone silent) keeps its band until its end
leaves the span: the process that just died is the one people want to look
at. The live ones come first when a host has more than one message can list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from console.windows.store import BaseWindowStore
from ingest.model.kinds import SLOW, STOPPED, TICK
from ingest.model.records import (
    LIVE_STATES,
    MAX_PROCESSES,
    display,
    number,
    scalar,
    slot_array,
    slots_of,
    slow_record,
    threshold_of,
)
from ingest.model.sample import Sample, slow_request

from .base import TabRequest

SPANS: Final = (30, 60, 120, 300)
DEFAULT_SPAN: Final = 60
#: slot cells (ticks x slots) a snapshot sends at most before merging ticks (~25 bytes each)
CELL_BUDGET: Final = 12_000
#: raw ticks a snapshot reads at most: 100 processes x 1 min, 20 x 5 min. Reading
#: unpacks every sample kind in between, ~0.1 ms each: this keeps a snapshot
#: under a second of the console's event loop on the largest hosts.
TICK_LIMIT: Final = 6_000
#: slow records in a snapshot (the newest; ~1.2 kB each), and in one second of live data
RECORD_LIMIT: Final = 100
LIVE_RECORD_LIMIT: Final = 256
#: newest slow records searched for a link's request (option ``req``) past the newest RECORD_LIMIT:
#: as deep as the Slow tab reads (slow.STORE_LIMIT), so a request the console holds opens from a link
LINK_LIMIT: Final = 2000
ENDED_STATES: Final = frozenset({"stopped", "gone"})
#: slack around a record's lifetime when deciding it overlaps the window (s)
SLACK: Final = 2.0

#: Column keys: scalars, then slot arrays (docs/live-protocol.md, "Capacity"). The scalars
#: past ``period`` are metrics of the table (docs/metrics.md), of the one tick the column is.
SCALARS: Final = ("t", "period", "capacity", "cpu", "queue_mean", "daemon_mean", "requests", "gil_wait_mean",
                  "application_mean")
ARRAYS: Final = ("busy", "slot_cpu", "completed", "elapsed", "longest")
COLUMN_KEYS: Final = SCALARS + ARRAYS
#: live ticks also say whose they are and what the process is configured with
TICK_KEYS: Final = ("pid", "incarnation", "group", "slots", "threshold", *COLUMN_KEYS)
_FIELDS: Final = (
    "sample_period", "capacity_utilization", "cpu_utilization", "queue_time", "daemon_time",
    "request_count", "gil_wait_time", "application_time", "request_threads_busy_time",
    "request_threads_cpu_time", "request_threads_completed", "request_threads_current_elapsed",
    "request_threads_max_duration",
)
_SCALAR_FIELDS: Final = _FIELDS[:8]
_ARRAY_FIELDS: Final = _FIELDS[8:]


# -- numbers from the wire ----------------------------------------------------------------

def column(f: Mapping[str, Any], stamp: Any) -> tuple[Any, ...]:
    """One tick as a heatmap column: values in COLUMN_KEYS order.

    Slot arrays stay in seconds as mod_wsgi sent them (busy and CPU time per
    slot); the page divides by ``period`` for fractions.
    """
    get = f.get
    scalars = [v if type(v) is float and v - v == 0 else number(v) for v in map(get, _SCALAR_FIELDS)]
    if scalars[0] is not None and scalars[0] <= 0:
        scalars[0] = None  # no period: no fractions
    requests = scalars[5]
    scalars[5] = int(min(max(requests, 0.0), 1e12)) if requests is not None else 0
    return (scalar(stamp), *scalars, *map(slot_array, map(get, _ARRAY_FIELDS)))


def _text(value: Any) -> Any:
    return value if type(value) is str else display(value)


# -- merging ticks into wider columns -----------------------------------------------------------

def _weighted(cols: Sequence[dict[str, Any]], key: str, weight: str) -> float | None:
    pairs = [(c[key], c[weight] or 0) for c in cols if c[key] is not None]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _fold_slots(cols: Sequence[dict[str, Any]], key: str, fold: Any) -> list[Any]:
    """Slot ``j`` of the merged column: ``fold`` of slot ``j`` of every column."""
    width = max((len(c[key]) for c in cols), default=0)
    return [fold(c[key][j] for c in cols if j < len(c[key])) for j in range(width)]


def merge_columns(cols: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Consecutive columns of one process as one: exact sums and weighted means.

    Busy and CPU seconds, periods and completions add up; capacity and CPU
    utilisation weigh by period, queue/daemon/GIL/application means by
    requests (an idle tick holds no measurement, not a zero). ``elapsed``
    is the last tick's (the age at the column's end), ``longest`` the largest.
    """
    if len(cols) == 1:
        return cols[0]
    return {
        "t": cols[-1]["t"], "period": sum(c["period"] or 0 for c in cols) or None,
        "capacity": _weighted(cols, "capacity", "period"), "cpu": _weighted(cols, "cpu", "period"),
        "queue_mean": _weighted(cols, "queue_mean", "requests"),
        "daemon_mean": _weighted(cols, "daemon_mean", "requests"),
        "requests": sum(c["requests"] for c in cols),
        "gil_wait_mean": _weighted(cols, "gil_wait_mean", "requests"),
        "application_mean": _weighted(cols, "application_mean", "requests"),
        "busy": _fold_slots(cols, "busy", sum), "slot_cpu": _fold_slots(cols, "slot_cpu", sum),
        "completed": _fold_slots(cols, "completed", sum),
        "elapsed": cols[-1]["elapsed"], "longest": _fold_slots(cols, "longest", max),
    }


def _rounded(value: Any, digits: int) -> Any:
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return round(value, digits) if isinstance(value, float) else value


#: snapshot precision per key: 1 µs for times, 0.1 ‰ for utilisations, 1 ms for slot seconds
_DIGITS: Final = {"period": 6, "capacity": 4, "cpu": 4, "queue_mean": 6, "daemon_mean": 6, "gil_wait_mean": 6,
                  "application_mean": 6, "busy": 3, "slot_cpu": 3, "elapsed": 3, "longest": 3}


def _columnar(cols: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """Columns as parallel arrays, one list per key (keys are not repeated per tick),
    rounded: a snapshot is sent once, so its size matters more than its CPU."""
    out: dict[str, list[Any]] = {key: [] for key in COLUMN_KEYS}
    for c in cols:
        for key in COLUMN_KEYS:
            digits = _DIGITS.get(key)
            out[key].append(c[key] if digits is None else _rounded(c[key], digits))
    return out


# -- the tab -------------------------------------------------------------------------------------

def span_of(request: TabRequest) -> int:
    """The heatmap's width in seconds: the ``span`` option if it is one of SPANS."""
    span = request.option("span", DEFAULT_SPAN)
    return span if span in SPANS and not isinstance(span, bool) else DEFAULT_SPAN


def _overlaps(record: dict[str, Any], since: float) -> bool:
    if record["state"] == "active":
        return True
    start, duration = number(record["start"]), number(record["duration"])
    if start is None:
        return number(record["stamp"]) is not None and record["stamp"] >= since
    return start + (duration or 0.0) >= since - SLACK


def ended_at(record: Mapping[str, Any]) -> float | None:
    """When a registry record's process ended: its STOPPED's stamp, or the last sample of
    one gone silent (also a stopped one whose STOPPED stamp is unreadable); None while alive."""
    if record["state"] not in ENDED_STATES:
        return None
    stamp = number(record.get("stopped")) if record["state"] == "stopped" else None
    return stamp if stamp is not None else number(record.get("last_seen"))


Key = tuple[int, int]  # pid, incarnation


def _first(records: Mapping[Key, Mapping[str, Any]], ticks: Mapping[Key, list[Sample]],
           limit: int) -> list[Key]:
    """The ``limit`` processes to list: live ones first (those that ticked most: a fake pid's
    STARTED draws nothing), then the ended ones that ended last (the older leave the span first)."""
    def rank(key: Key) -> tuple[int, int, float, Key]:
        end = ended_at(records[key])
        if end is None:
            return 0, not ticks[key], -len(ticks[key]), key
        return 1, 0, -end, key

    return sorted(records, key=rank)[:limit]


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    span = min(span_of(request), request.window)
    since = now - span
    shown = {(p["pid"], p["incarnation"]): p for p in await store.aprocesses(host["id"], now=now)
             if request.wants(p.get("group"))
             and (p["state"] in LIVE_STATES or (ended_at(p) or -math.inf) >= since)}
    ticks: dict[tuple[int, int], list[Sample]] = {key: [] for key in shown}
    # A column covers the period before its stamp: read a little further back
    # so the window's left edge is covered too.
    raw = await store.araw(host["id"], since - 1.0, now + 1.0, kinds=[TICK], limit=TICK_LIMIT)
    for sample in raw:
        if (sample["p"], sample["i"]) in ticks:
            ticks[(sample["p"], sample["i"])].append(sample)
    # An ended process without a tick in the span has no lanes to keep (a fake pid's STARTED
    # and STOPPED, or one that died before its first tick): the Processes tab shows it.
    shown = {k: p for k, p in shown.items() if p["state"] in LIVE_STATES or ticks[k]}
    total = len(shown)
    ended_total = sum(p["state"] not in LIVE_STATES for p in shown.values())
    omitted_ended: dict[str, Any] | None = None
    if total > MAX_PROCESSES:
        keep = set(_first(shown, ticks, MAX_PROCESSES))
        left = [end for k, p in shown.items() if k not in keep and (end := ended_at(p)) is not None]
        if left:  # the page says so until the last of them would have left the span
            omitted_ended = {"count": len(left), "until": max(left)}
        shown = {k: shown[k] for k in keep}
    # Cut by TICK_LIMIT: the page says the columns before this were not loaded.
    loaded = raw[0]["t"] if len(raw) >= TICK_LIMIT else None
    cells = sum(slots_of(s["f"]) for key in shown for s in ticks[key])
    step = max(1, math.ceil(cells / CELL_BUDGET))
    processes = []
    for key in sorted(shown, key=lambda k: (display(shown[k].get("group")) or "", k)):
        record, samples = shown[key], sorted(ticks[key], key=lambda s: s["t"])
        latest = samples[-1]["f"] if samples else {"request_threads_maximum": record.get("threads")}
        cols = [dict(zip(COLUMN_KEYS, column(s["f"], s["t"]), strict=True)) for s in samples]
        reason = record.get("shutdown_reason") if record["state"] == "stopped" else None
        processes.append({
            "pid": record["pid"], "incarnation": record["incarnation"], "group": display(record.get("group")),
            "state": record["state"], "ended": ended_at(record), "reason": _text(reason) or None,
            "slots": slots_of(latest), "threshold": threshold_of(latest),
            "columns": _columnar(merge_columns(cols[i:i + step]) for i in range(0, len(cols), step)),
        })
    records = [slow_record(r) for r in await store.aslow(host["id"], limit=RECORD_LIMIT, now=now)
               if (r["pid"], r["incarnation"]) in shown]
    linked = await _linked(store, host, request.option("req"), shown, {r["key"] for r in records}, now)
    if linked is not None:  # older than those: last, as the list is newest first
        records.append(linked)
    records = [r for r in records if _overlaps(r, since)]
    out: dict[str, Any] = {"span": span, "step": step, "loaded_since": loaded, "processes": processes,
                           "processes_total": total, "ended_total": ended_total, "slow": records}
    if omitted_ended:
        out["omitted_ended"] = omitted_ended
    return out


async def _linked(store: BaseWindowStore, host: dict[str, Any], key: Any, shown: Mapping[Key, Any],
                  sent: set[str], now: float) -> dict[str, Any] | None:
    """The record of the request a link asks for (option ``req``), when the newest RECORD_LIMIT
    left it out: of a process shown, among the newest LINK_LIMIT the store holds; else None.

    A link is opened on a busy host minutes after it was made: the newest records have
    moved past it, yet the drill-down must show the request the console still holds."""
    if not isinstance(key, str) or key in sent:
        return None
    pid, _, rest = key.partition(":")
    incarnation, _, request = rest.partition(":")
    if not (request and pid.isdigit() and incarnation.isdigit()) or (int(pid), int(incarnation)) not in shown:
        return None  # no request of a process this snapshot shows: nothing worth a deeper read
    process = (int(pid), int(incarnation))
    for view in await store.aslow(host["id"], limit=LINK_LIMIT, now=now):
        if (view["pid"], view["incarnation"]) == process and slow_request(view["fields"]) == request:
            return slow_record(view)
    return None


def _ticking(samples: Sequence[Sample]) -> tuple[set[tuple[int, int]] | None, int]:
    """The processes whose ticks a frame carries (None: all of them), and how many are left out:
    at most MAX_PROCESSES, the same ones every second (the lowest pids) so their rows stay whole."""
    keys = {(s["p"], s["i"]) for s in samples if s["k"] == TICK}
    if len(keys) <= MAX_PROCESSES:
        return None, 0
    return set(sorted(keys)[:MAX_PROCESSES]), len(keys) - MAX_PROCESSES


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    """The second's ticks as parallel arrays (all groups: the page filters), its slow
    records, and the processes that stopped, with when and why (their bands are marked
    ended at once, not at the next process list); ticks and stops of at most MAX_PROCESSES
    processes, the rest counted."""
    ticks: dict[str, list[Any]] = {key: [] for key in TICK_KEYS}
    lists = tuple(ticks.values())
    slow, stopped = [], []
    shown, omitted = _ticking(samples)
    for sample in samples:
        kind = sample["k"]
        if kind == TICK:
            if shown is not None and (sample["p"], sample["i"]) not in shown:
                continue
            f = sample["f"]
            values = (sample["p"], sample["i"], _text(sample["g"]), slots_of(f), threshold_of(f),
                      *column(f, sample["t"]))
            for target, value in zip(lists, values, strict=True):
                target.append(value)
        elif kind == SLOW:
            slow.append(sample)
        elif kind == STOPPED:
            reason = sample["f"].get("shutdown_reason")
            stopped.append([sample["p"], sample["i"], scalar(sample["t"]), _text(reason) or None])
    if not ticks["t"] and not slow and not stopped:
        return None
    # Completed records first: they end a run, and only they carry status and CPU.
    slow.sort(key=lambda s: s["f"].get("slow_record_state") != 1)
    out = {"ticks": ticks, "slow": [slow_record(s) for s in slow[:LIVE_RECORD_LIMIT]],
           "stopped": stopped[:MAX_PROCESSES]}
    if omitted or len(stopped) > MAX_PROCESSES:
        out["omitted"] = {"ticking": omitted, "stopped": max(len(stopped) - MAX_PROCESSES, 0)}
    return out
