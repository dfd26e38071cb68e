"""The GC tab: per process and interpreter, the garbage collector's pressure, collections,
pauses and configuration (docs/live-protocol.md, "Tabs", "gc").

Two datagram kinds feed it. A ``gc_snapshot`` (kind 8) per interpreter per
tick holds cumulative counters (collections, objects collected and
uncollectable per generation), the current generation counts against their
thresholds, the configuration, and the events mod_wsgi dropped since the
previous tick. A ``gc_event`` (kind 9) is one collection with its start
stamp, pause and generation. A series is one interpreter of one process
incarnation: its counters restart with the process.

The snapshot reads raw samples for at most ``RAW_SPAN`` seconds and folds
them into what the page draws, all additive so the page can append live
seconds and trim old ones without the raw data: per-second buckets of the
selection (collections, objects, dropped events, pauses with a sparse
65-bucket histogram), each series' first and last record in the window
(its rates are the difference), and the newest pause events. A longer
page window also gets the whole window's totals from the stored frames,
which count every GC event of the group cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model import frames
from ingest.model.histogram import PERCENTILES, bucket_index
from ingest.model.kinds import GC_EVENT, GC_SNAPSHOT
from ingest.model.records import display
from ingest.model.sample import Sample

from .base import MAX_PROCESSES, TabRequest

#: Seconds of raw GC samples a snapshot reads; a longer page window is capped (and says so).
RAW_SPAN = 300
#: Raw samples read at most (a 50-process host writes about 100 a second, and reading
#: one costs about 20 µs); past it the snapshot covers less than RAW_SPAN and says so.
RAW_LIMIT = 12_000
#: Pause events sent at most (the newest); every event still counts in the buckets.
MAX_EVENTS = 2000
#: Pause events one second's frame carries at most (the newest); the rest are counted.
LIVE_EVENTS = 5000
#: The ``interp`` option's name for the main interpreter (empty on the wire).
MAIN = "(main)"
GENERATIONS = (0, 1, 2)
#: record key -> wire field name per generation, flattened for one pass over the fields
_PER_GEN = (("th", "threshold"), ("cnt", "count"), ("col", "collections"), ("cd", "collected"),
            ("un", "uncollectable"))
_PER_GEN_KEYS = tuple(key for key, _ in _PER_GEN)
_PER_GEN_NAMES = tuple(f"gc_{name}{g}" for _, name in _PER_GEN for g in GENERATIONS)
_INTS = {int}


def _num(value: Any) -> float | int:
    """A wire number made safe: anything else (missing, text, NaN, bool) is 0.

    Exact type tests, not isinstance: this runs ~20 times per sample in ``live``.
    """
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return value if value - value == 0.0 else 0  # inf - inf and nan - nan are nan
    return 0


def _text(value: Any) -> str:
    """A group or interpreter name as shown: display-safe text, "" when absent."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    text = display(value)
    return text if isinstance(text, str) else str(text)


def record(sample: Sample) -> dict[str, Any]:
    """One ``gc_snapshot`` as the page reads it (snapshot ``series`` and ``tab.frame``)."""
    f = sample["f"]
    out: dict[str, Any] = {
        "p": sample["p"], "i": sample["i"], "s": sample["s"], "t": _num(sample["t"]),
        "g": _text(sample.get("g")), "n": _text(sample.get("n")),
        "on": 1 if f.get("gc_is_enabled") is True or _num(f.get("gc_is_enabled")) else 0,
        "fz": _num(f.get("gc_freeze_count")), "dr": _num(f.get("gc_dropped_events")),
    }
    values = list(map(f.get, _PER_GEN_NAMES))  # the common case, all ints, stays in C
    if set(map(type, values)) != _INTS:
        values = [_num(v) for v in values]
    for index, key in enumerate(_PER_GEN_KEYS):
        out[key] = values[3 * index:3 * index + 3]
    return out


def event(sample: Sample) -> list[Any]:
    """One ``gc_event`` as ``[start, pause, generation, collected, uncollectable, pid,
    incarnation, interpreter, group, seq]``; the start stamp falls back to the header's."""
    f = sample["f"]
    start = f.get("gc_event_start_stamp")
    start = _num(start) if _num(start) > 0 else _num(sample["t"])
    generation = min(max(int(_num(f.get("gc_event_generation"))), 0), 2)
    return [start, max(_num(f.get("gc_event_duration")), 0), generation, _num(f.get("gc_event_collected")),
            _num(f.get("gc_event_uncollectable")), sample["p"], sample["i"], _text(sample.get("n")),
            _text(sample.get("g")), sample["s"]]


class Buckets:
    """Per-second sums of the selection, sent as columns; all of it adds up across seconds."""

    COLUMNS = ("t", "c0", "c1", "c2", "cd", "un", "dr", "n", "pause", "pmin", "pmax", "h")

    def __init__(self, since: float):
        self.since = math.floor(since)
        self.seconds: dict[int, dict[str, Any]] = {}

    def at(self, stamp: float) -> dict[str, Any] | None:
        second = math.floor(stamp)
        if second < self.since:
            return None
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = {"t": second, "c0": 0, "c1": 0, "c2": 0, "cd": 0, "un": 0,
                                             "dr": 0, "n": 0, "pause": 0.0, "pmin": None, "pmax": None,
                                             "h": {}}
        return bucket

    def add_tick(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """The counters' growth between two records of one series (a reset adds nothing)."""
        bucket = self.at(after["t"])
        if bucket is None:
            return
        for g in GENERATIONS:
            bucket[f"c{g}"] += max(after["col"][g] - before["col"][g], 0)
        bucket["cd"] += max(sum(after["cd"]) - sum(before["cd"]), 0)
        bucket["un"] += max(sum(after["un"]) - sum(before["un"]), 0)

    def add_dropped(self, rec: Mapping[str, Any]) -> None:
        bucket = self.at(rec["t"])
        if bucket is not None:
            bucket["dr"] += rec["dr"]

    def add_event(self, ev: Sequence[Any]) -> None:
        bucket = self.at(ev[0])
        if bucket is None:
            return
        pause = ev[1]
        bucket["n"] += 1
        bucket["pause"] += pause
        bucket["pmin"] = pause if bucket["pmin"] is None else min(bucket["pmin"], pause)
        bucket["pmax"] = pause if bucket["pmax"] is None else max(bucket["pmax"], pause)
        key = str(bucket_index(pause))
        bucket["h"][key] = bucket["h"].get(key, 0) + 1

    def columns(self) -> dict[str, list[Any]]:
        ordered = [self.seconds[t] for t in sorted(self.seconds)]
        return {name: [b[name] for b in ordered] for name in self.COLUMNS}


def _pid_option(request: TabRequest) -> int | None:
    value = request.option("pid")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _interp_option(request: TabRequest) -> str | None:
    value = request.option("interp")
    if not isinstance(value, str) or value == "":
        return None
    return "" if value == MAIN else value


class Selection:
    """The snapshot's fold: choices for the selectors, then the selected series' data."""

    def __init__(self, request: TabRequest, since: float):
        self.request = request
        self.pid, self.interp = _pid_option(request), _interp_option(request)
        self.buckets = Buckets(since)
        self.series: dict[str, dict[str, Any]] = {}
        self.events: list[list[Any]] = []
        self.pids: set[int] = set()
        self.interps: set[str] = set()
        self.seqs: dict[str, int] = {}

    def add(self, sample: Sample) -> None:
        if not self.request.wants(_text(sample.get("g"))):
            return
        interp = _text(sample.get("n"))
        self.pids.add(sample["p"])
        self.interps.add(interp)
        process = f"{sample['p']}:{sample['i']}"
        self.seqs[process] = max(self.seqs.get(process, 0), sample["s"])
        if self.pid not in (None, sample["p"]) or self.interp not in (None, interp):
            return
        key = f"{process}:{interp}"
        if sample["k"] == GC_SNAPSHOT:
            self._snapshot(key, record(sample))
        else:
            ev = event(sample)
            self.buckets.add_event(ev)
            self.events.append(ev)
            series = self.series.get(key)
            if series is not None:
                series["pause"] += ev[1]
                series["events"] += 1

    def _snapshot(self, key: str, rec: dict[str, Any]) -> None:
        series = self.series.get(key)
        if series is None:
            self.series[key] = {"key": key, "first": rec, "last": rec, "pause": 0.0, "events": 0,
                                "dropped": 0}
            return
        if rec["t"] <= series["last"]["t"]:
            return  # resent or out of order: already counted
        self.buckets.add_tick(series["last"], rec)
        self.buckets.add_dropped(rec)
        series["dropped"] += rec["dr"]
        series["last"] = rec


#: The whole-window totals, by the metric table's names (docs/metrics.md).
WINDOW_TOTALS = ("gc_collections", "gc_pause_total", "gc_pause_max", "gc_dropped",
                 *(f"gc_pause_{name}" for name, _ in PERCENTILES))


async def _window_totals(store: BaseWindowStore, host_id: int, request: TabRequest,
                         now: float) -> dict[str, Any] | None:
    """The whole (long) page window from the stored frames: every GC event of the group."""
    series = await store.aframes(host_id, request.group, now - request.window, now, 1, now=now)
    frame = frames.merge(frame for _, frame in series)
    return {"span": request.window, "collections": [frame.get(f"g{g}", 0) for g in GENERATIONS],
            **frames.derive(frame, float(request.window), WINDOW_TOTALS)}


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    span = min(request.window, RAW_SPAN)
    since = now - span
    samples = await store.araw(host["id"], since, now + 5.0, kinds=[GC_SNAPSHOT, GC_EVENT], limit=RAW_LIMIT)
    covered = samples[0]["t"] if len(samples) >= RAW_LIMIT else since
    selection = Selection(request, covered)
    for sample in samples:
        selection.add(sample)
    events = sorted(selection.events, key=lambda ev: ev[0])[-MAX_EVENTS:]
    # At most MAX_PROCESSES of each per-process part: fake pids must not make megabytes.
    series = sorted(selection.series.values(), key=lambda s: s["key"])
    seqs = selection.seqs
    if len(seqs) > MAX_PROCESSES:
        shown = {":".join(s["key"].split(":", 2)[:2]) for s in series[:MAX_PROCESSES]}  # pid:inc
        seqs = {k: v for k, v in seqs.items() if k in shown}
    out: dict[str, Any] = {
        "span": span, "since": covered, "capped": request.window > span, "limited": covered > since,
        "pid": selection.pid, "interp": selection.interp,
        "pids": sorted(selection.pids)[:MAX_PROCESSES], "interps": sorted(selection.interps)[:MAX_PROCESSES],
        "seqs": seqs, "buckets": selection.buckets.columns(),
        "series": series[:MAX_PROCESSES], "series_total": len(series),
        "events": events, "events_total": len(selection.events),
        "window_totals": None,
    }
    if request.window > span and selection.pid is None and selection.interp is None:
        out["window_totals"] = await _window_totals(store, host["id"], request, now)
    return out


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    """The second's GC records and events, for every group (the page filters): the records
    of at most MAX_PROCESSES processes (the lowest pids) and the newest LIVE_EVENTS events,
    what is left out counted in ``omitted``."""
    records, events = [], []
    for sample in samples:
        kind = sample["k"]
        if kind == GC_SNAPSHOT:
            records.append(record(sample))
        elif kind == GC_EVENT:
            events.append(event(sample))
    if not records and not events:
        return None
    out: dict[str, Any] = {"records": records, "events": events[-LIVE_EVENTS:]}
    if len(records) > MAX_PROCESSES:  # records outnumber processes: only then count these
        processes = {(r["p"], r["i"]) for r in records}
        if len(processes) > MAX_PROCESSES:
            shown = set(sorted(processes)[:MAX_PROCESSES])
            out["records"] = [r for r in records if (r["p"], r["i"]) in shown]
    if len(out["records"]) < len(records) or len(events) > LIVE_EVENTS:
        out["omitted"] = {"records": len(records) - len(out["records"]),
                          "events": max(len(events) - LIVE_EVENTS, 0)}
    return out
