"""Frames: additive per-second aggregates of samples, the unit every view reads.

A frame sums what the samples of one host and one process group (``""``
for embedded mode, ``"*"`` for the whole host) said during one second.
Everything in it is chosen so that frames combine by plain addition, or
by min/max, and nothing else: the frames of many seconds, processes or
hosts merge into one exact aggregate, which is how the 10 s and 1 min
tiers, the downsampled charts and the fleet view are built. So a frame
holds sums that turn into averages only at display time (``derive``):
mean x count instead of means, busy and available thread-seconds instead
of a utilisation, byte-seconds of RSS instead of RSS.

A frame is a flat ``dict`` of short keys, cheap to merge in Python and in
Redis Lua alike. The first character of a key picks the merge rule:
``<`` min, ``>`` max, anything else is a sum. Phases are numbered as in
``fields.PHASES`` (0 server ... 7 output_write):

=========  =====================================================================
n          kind-2 ticks seen (process-ticks)
per        sample_period seconds summed (process-seconds observed)
req        requests finished; s1..s5 of them by status class
busy       busy thread-seconds (capacity_utilization x period x threads max)
avail      available thread-seconds (period x threads max)
cpu        CPU seconds (utilization x period); cpuu user, cpus system
rss        RSS byte-seconds (memory_rss x period)
inb, outb  request body bytes read, response bytes written
m{i}       phase i: mean x request_count (sum of durations)
u{i}       phase i: requests on ticks where the phase was not measured
<{i} >{i}  phase i: min of minimums, max of maximums (exact)
h{i}.{b}   phase i: histogram bucket b (sparse, 65-bucket layout)
sc sd >sd  slow requests completed: count, duration sum, duration max
sa         active slow records seen (one per process-tick per request)
up stg dn  STARTED, STOPPING, STOPPED; ng = STOPPED without a clean drain
g0 g1 g2   GC collections per generation (kind-9 events)
gp >gp     GC pause seconds: sum, max; gh.{b} pause histogram
gd         GC events dropped by mod_wsgi (per-tick counts, summed)
loss       datagrams lost by sequence, added by the store from heartbeats
=========  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

from . import metrics
from .fields import DAEMON_PHASES, HISTOGRAM_BUCKETS, PHASES
from .histogram import bucket_index
from .kinds import (
    GC_EVENT,
    GC_SNAPSHOT,
    HOST,
    SLOW,
    STARTED,
    STATUS_FIELDS,
    STOPPED,
    STOPPING,
    TICK,
)

Frame = dict[str, float]


_STATUS = tuple((f"s{c + 1}", name) for c, name in enumerate(STATUS_FIELDS))
_SUMS = (("cpu", "cpu_utilization"), ("cpuu", "cpu_user_utilization"),
         ("cpus", "cpu_system_utilization"), ("rss", "memory_rss"))
_PHASE_FIELDS = tuple(
    (f"{p}_time", f"{p}_time_min", f"{p}_time_max", f"{p}_time_buckets", p in DAEMON_PHASES,
     f"m{i}", f"u{i}", f"<{i}", f">{i}", i)
    for i, p in enumerate(PHASES)
)
#: Histogram keys precomputed: a busy tick touches eight histograms.
_HKEYS = tuple(tuple(f"h{i}.{b}" for b in range(HISTOGRAM_BUCKETS)) for i in range(len(PHASES)))
_GC_HKEYS = tuple(f"gh.{b}" for b in range(HISTOGRAM_BUCKETS))


def histogram(frame: Mapping[str, float], prefix: str) -> dict[int, float]:
    """The sparse histogram stored under ``prefix`` ("h4" request time, "gh" GC pauses)."""
    start = prefix + "."
    return {int(key[len(start):]): count for key, count in frame.items() if key.startswith(start)}


def _nonzero(values: Any) -> Iterable[tuple[int, Any]]:
    """(bucket, count) of a histogram sent dense (list, array) or sparse (dict)."""
    if isinstance(values, Mapping):  # sparse, as the agent sends it: key -1 is the length
        return [(int(b), c) for b, c in values.items() if c and b != -1]
    if not any(values):  # idle ticks: eight all-zero histograms, skipped in C
        return ()
    return [(b, c) for b, c in enumerate(values) if c]


# -- adding samples ------------------------------------------------------------------

def _add(frame: Frame, key: str, value: float) -> None:
    if value:
        frame[key] = frame.get(key, 0) + value


def _low(frame: Frame, key: str, value: float) -> None:
    old = frame.get(key)
    if old is None or value < old:
        frame[key] = value


def _high(frame: Frame, key: str, value: float) -> None:
    old = frame.get(key)
    if old is None or value > old:
        frame[key] = value


def _tick(frame: Frame, f: Mapping[str, Any]) -> None:
    get = f.get
    period = get("sample_period") or 0.0
    threads = get("request_threads_maximum") or 0
    requests = get("request_count") or 0
    frame["n"] = frame.get("n", 0) + 1
    _add(frame, "per", period)
    _add(frame, "req", requests)
    for key, name in _STATUS:
        _add(frame, key, get(name) or 0)
    _add(frame, "busy", (get("capacity_utilization") or 0.0) * period * threads)
    _add(frame, "avail", period * threads)
    for key, name in _SUMS:
        _add(frame, key, (get(name) or 0) * period)
    _add(frame, "inb", get("input_bytes_total") or 0)
    _add(frame, "outb", get("output_bytes_total") or 0)
    for mean_name, min_name, max_name, buckets_name, daemon_only, mk, uk, lk, hk, i in _PHASE_FIELDS:
        mean = get(mean_name)
        if requests:
            # queue/daemon are absent when not measured (embedded mode, idle
            # ticks): no sample, not a zero, so they must not pull means down.
            if mean is None and daemon_only:
                _add(frame, uk, requests)
            else:
                _add(frame, mk, (mean or 0.0) * requests)
        low = get(min_name)
        if low is not None:
            _low(frame, lk, low)
        high = get(max_name)
        if high is not None:
            _high(frame, hk, high)
        buckets = get(buckets_name)
        if buckets:
            keys = _HKEYS[i]
            for b, count in _nonzero(buckets):
                frame[keys[b]] = frame.get(keys[b], 0) + count


def _slow(frame: Frame, f: Mapping[str, Any]) -> None:
    if f.get("slow_record_state") == 1:
        duration = f.get("slow_duration") or 0.0
        _add(frame, "sc", 1)
        _add(frame, "sd", duration)
        _high(frame, ">sd", duration)
    else:
        _add(frame, "sa", 1)


def _stopped(frame: Frame, f: Mapping[str, Any]) -> None:
    _add(frame, "dn", 1)
    if f.get("graceful_drain", 1) == 0 or (f.get("active_requests_at_exit") or 0) > 0:
        _add(frame, "ng", 1)


def _gc_event(frame: Frame, f: Mapping[str, Any]) -> None:
    duration = f.get("gc_event_duration") or 0.0
    _add(frame, f"g{min(int(f.get('gc_event_generation') or 0), 2)}", 1)
    _add(frame, "gp", duration)
    _high(frame, ">gp", duration)
    key = _GC_HKEYS[bucket_index(duration)]
    frame[key] = frame.get(key, 0) + 1


_BY_KIND = {
    TICK: _tick,
    SLOW: _slow,
    STARTED: lambda frame, f: _add(frame, "up", 1),
    STOPPING: lambda frame, f: _add(frame, "stg", 1),
    STOPPED: _stopped,
    GC_SNAPSHOT: lambda frame, f: _add(frame, "gd", f.get("gc_dropped_events") or 0),
    GC_EVENT: _gc_event,
}


def frame_add(frame: Frame, sample: Mapping[str, Any]) -> Frame:
    """Add one sample to ``frame`` in place; unknown kinds add nothing."""
    adder = _BY_KIND.get(sample["k"])
    if adder is not None:
        adder(frame, sample["f"])
    return frame


def add_loss(frame: Frame, lost: int) -> Frame:
    """Add sequence loss: agents report it per host, not per sample."""
    _add(frame, "loss", lost)
    return frame


# -- merging and storage -------------------------------------------------------------

def merge_into(target: Frame, other: Mapping[str, float]) -> Frame:
    """Add ``other`` into ``target`` in place: sums add, ``<`` keys min, ``>`` keys max."""
    for key, value in other.items():
        old = target.get(key)
        if old is None:
            target[key] = value
        elif key[0] == "<":
            if value < old:
                target[key] = value
        elif key[0] == ">":
            if value > old:
                target[key] = value
        else:
            target[key] = old + value
    return target


def merge(frames: Iterable[Mapping[str, float]]) -> Frame:
    """One frame holding the aggregate of all of ``frames`` (seconds, groups or hosts)."""
    out: Frame = {}
    for frame in frames:
        merge_into(out, frame)
    return out


def compact(frame: Mapping[str, float]) -> Frame:
    """The frame without zero sums (min/max of 0 are real values and stay)."""
    return {k: v for k, v in frame.items() if v or k[0] in "<>"}


def dump(frame: Mapping[str, float]) -> bytes:
    """Compact msgpack: zero sums and empty buckets take no bytes."""
    packed: bytes = msgpack.packb(compact(frame))
    return packed


def load(data: bytes) -> Frame:
    frame: Frame = msgpack.unpackb(data)
    return frame


def point_step(tier: int, first: float, until: float, points: int) -> int:
    """A point width, a multiple of the tier, so that points aligned on multiples
    of it (stable from one refresh to the next) number at most ``points``.

    [first, until) of length L touches at most ceil(L / step) + 1 aligned
    cells, hence the ``points - 1``; one point takes the whole range.
    """
    cells = max(1, math.ceil((until - first) / tier))
    if points <= 1:
        return tier * cells
    return tier * max(1, math.ceil(cells / (points - 1)))


# -- display metrics -----------------------------------------------------------------

def derive(frame: Mapping[str, float], span: float,
           names: tuple[str, ...] | None = None) -> dict[str, float | None]:
    """Display metrics of a frame covering ``span`` seconds, named and computed by the
    metric table (``metrics.METRICS``, docs/metrics.md): one name from here to the page.

    Rates are per second of the span; gauges (RSS, CPU) are exact
    time-weighted averages. A 1-second frame can hold two ticks of one
    process when its tick drifts across a second boundary, so per-process
    values (``*_per_process``) are the steadier read at that resolution.
    Metrics without data (no requests, no threads) are None, never 0.
    ``names`` computes only those (a host frame needs a few of them).
    """
    return metrics.derive(frame, span, names)


def headline(seconds: Sequence[tuple[int, Mapping[str, float]]], until: int,
             names: tuple[str, ...] = metrics.HOST_FRAME,
             span: int = metrics.HEADLINE_SPAN) -> dict[str, float | None] | None:
    """The metrics over the complete seconds [until - span, until), from their 1 s frames
    merged (exact percentiles, not a fold of per-second values); None when none holds data.

    Rates are per second of the span, counted from the first second that holds data (an
    agent that just started has fewer): a host that went silent reads lower, as it served less.
    """
    frames = [(t, frame) for t, frame in seconds if until - span <= t < until]
    if not frames:
        return None
    first = min(t for t, _ in frames)
    merged: dict[str, float] = {}
    for _, frame in frames:
        merge_into(merged, frame)
    return derive(merged, float(until - first), names)


def recent_of(per_group: Mapping[str, Sequence[tuple[int, Mapping[str, float]]]], second: int,
              groups: Iterable[str] | None = None) -> dict[str, Any]:
    """``host.frame``'s ``recent``: each group's ``headline`` (and the host's, "*") over the
    HEADLINE_SPAN complete seconds up to ``second``, from each group's 1 s frames;
    ``groups`` limits which groups. A group without data in the span is left out."""
    until = second + 1
    wanted = None if groups is None else {HOST, *groups}
    out = {}
    for group, seconds in per_group.items():
        if wanted is None or group in wanted:
            values = headline(seconds, until)
            if values is not None:
                out[group] = values
    span = metrics.HEADLINE_SPAN
    return {"span": span, "since": until - span, "until": until, "groups": out}
