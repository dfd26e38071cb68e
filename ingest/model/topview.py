"""The terminal monitor's share of a host (``top``): frames per process and per group, by second.

``top`` shows the figures of the pages (the metric table, over stated
windows) without a store of its own: what it is sent are frames, the
additive unit every view reads (``frames``), and it merges and derives
them with ``frames.headline`` exactly as the fleet row and the Overview's
readouts are derived. The console (``console/live/tabs/top.py``) and the
agent's local view (``ingest/pipeline/localview.py``) both build these
messages from the same samples with this module:

- ``second(samples)``: one batch of live samples as ``{groups, procs,
  slow, life}``; frames are keyed by the second of the samples' own
  stamps (a tick stamped 12:00:04.9 that arrives at 12:00:05.1 counts in
  12:00:04), so what ``top`` sums is the seconds the store sums.
- ``process_window(samples, until)``: the snapshot's per-process frames,
  each process's samples of the last ``SPAN`` seconds merged, with the
  first second that held data (rates count from there, as ``headline``).

A process's frame keeps only what the process table and the GC line read
(``PROCESS_KEYS`` and the request phase's histogram): a busy host's
thousand processes fit one message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from . import frames, metrics
from .fields import PHASES
from .frames import Frame
from .kinds import GC_EVENT, SLOW, STARTED, STOPPED, STOPPING, TICK
from .records import MAX_PROCESSES, display, lifecycle_event, slot_array, slots_of, slow_record, threshold_of
from .sample import Sample

#: Seconds the process table and the header average over (the fleet row's span).
SPAN: Final = metrics.HEADLINE_SPAN
#: Seconds of 1 s frames a snapshot carries (the 10 s and 1 min windows), of 10 s frames (the
#: 10 min window), and the points that cut the latter into TEN-second frames exactly (a store
#: point step fits ``points - 1`` aligned cells in the range).
SECONDS: Final = 60
TENS: Final = 600
TEN: Final = 10
TENS_POINTS: Final = TENS // TEN + 1
#: Slow records one live message carries at most (completed ones first).
MAX_SLOW: Final = 256
REQUEST: Final = PHASES.index("request")
#: The frame keys a process row needs: counts, thread-seconds, CPU, RSS, slow, GC, lifecycle
#: and the request phase (its mean, exact min/max and histogram, for the row's p95).
PROCESS_KEYS: Final = frozenset({
    "n", "per", "req", "s1", "s2", "s3", "s4", "s5", "busy", "avail", "cpu", "cpuu", "cpus", "rss",
    "inb", "outb", "sc", "sd", ">sd", "sa", "up", "stg", "dn", "ng", "g0", "g1", "g2", "gp", ">gp", "gd",
    f"m{REQUEST}", f"u{REQUEST}", f"<{REQUEST}", f">{REQUEST}",
})
_HISTOGRAM = f"h{REQUEST}."
#: The metrics of a process row, from its frame over the span (docs/metrics.md).
PROCESS_METRICS: Final = ("throughput", "capacity", "cpu", "memory_rss", "request_p50", "request_p95",
                          "request_p99", "request_mean", "requests", "slow_completed", "slow_active",
                          "status_4xx_rate", "status_5xx_rate", "gc_collections_rate", "gc_gen0_rate",
                          "gc_gen1_rate", "gc_gen2_rate", "gc_pause_total", "gc_pause_max",
                          "gc_pause_fraction", "ticks")
_LIFECYCLE = frozenset({STARTED, STOPPING, STOPPED})
_FRAMED = frozenset({TICK, SLOW, GC_EVENT, STARTED, STOPPING, STOPPED})


def process_frame(frame: Mapping[str, float]) -> Frame:
    """The keys of ``frame`` a process row reads, zero sums left out."""
    return {k: v for k, v in frames.compact(frame).items() if k in PROCESS_KEYS or k.startswith(_HISTOGRAM)}


def _key(sample: Sample) -> tuple[int, int]:
    return sample["p"], sample["i"]


def _tick_info(sample: Sample) -> dict[str, Any]:
    """What a process's newest tick says about its worker slots, for the slot grid."""
    f = sample["f"]
    return {"t": sample["t"], "threads": slots_of(f), "threshold": threshold_of(f),
            "elapsed": slot_array(f.get("request_threads_current_elapsed"))}


def _kept(keys: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    return set(sorted(keys)[:MAX_PROCESSES])


def second(samples: Sequence[Sample]) -> dict[str, Any] | None:
    """One batch of a host's samples for ``top``; None when it holds nothing ``top`` shows.

    ``groups``: ``[group, second, frame]`` (full frames: the latency and
    phase views read every phase); ``procs``: ``[pid, incarnation, group,
    second, frame]`` (``process_frame``); ``ticks``: the newest tick of each
    process (``[pid, incarnation, info]``); ``slow``: slow records;
    ``life``: lifecycle events (``records.lifecycle_event``); ``omitted``:
    the processes left out, when there were more than MAX_PROCESSES.
    """
    groups: dict[tuple[str, int], Frame] = {}
    procs: dict[tuple[int, int, int], tuple[str, Frame]] = {}
    ticks: dict[tuple[int, int], Sample] = {}
    slow: list[dict[str, Any]] = []
    life: list[dict[str, Any]] = []
    for sample in samples:
        kind = sample["k"]
        if kind not in _FRAMED or not math.isfinite(sample["t"]):
            continue
        sec, group = math.floor(sample["t"]), display(sample.get("g")) or ""
        frames.frame_add(groups.setdefault((group, sec), {}), sample)
        entry = procs.setdefault((*_key(sample), sec), (group, {}))
        frames.frame_add(entry[1], sample)
        if kind == TICK:
            newest = ticks.get(_key(sample))
            if newest is None or newest["t"] <= sample["t"]:
                ticks[_key(sample)] = sample
        elif kind == SLOW:
            slow.append(slow_record(sample))
        elif kind in _LIFECYCLE:
            event = lifecycle_event(sample)
            if event is not None:
                life.append(event)
    if not groups:
        return None
    kept = _kept({(p, i) for p, i, _ in procs})
    slow.sort(key=lambda r: r["state"] != "completed")
    out: dict[str, Any] = {
        "groups": [[g, sec, frames.compact(frame)] for (g, sec), frame in sorted(groups.items())],
        "procs": [[p, i, group, sec, process_frame(frame)]
                  for (p, i, sec), (group, frame) in sorted(procs.items()) if (p, i) in kept],
        "ticks": [[p, i, _tick_info(s)] for (p, i), s in sorted(ticks.items()) if (p, i) in kept],
        "slow": slow[:MAX_SLOW], "life": life,
    }
    left = len({(p, i) for p, i, _ in procs}) - len(kept)
    if left or len(slow) > MAX_SLOW:
        out["omitted"] = {"processes": left, "slow": max(0, len(slow) - MAX_SLOW)}
    return out


def process_window(samples: Iterable[Sample], until: int, span: int = SPAN) -> dict[str, Any]:
    """Each process's samples stamped in ``[until - span, until)``, merged: ``procs`` as
    ``[pid, incarnation, group, first, frame]`` (``first``: its first second with data) and
    ``ticks``, the newest tick of each, as ``second`` sends them."""
    merged: dict[tuple[int, int], tuple[str, int, Frame]] = {}
    ticks: dict[tuple[int, int], Sample] = {}
    for sample in samples:
        if sample["k"] not in _FRAMED or not until - span <= sample["t"] < until:
            continue
        sec = math.floor(sample["t"])
        group, first, frame = merged.get(_key(sample), (display(sample.get("g")) or "", sec, {}))
        merged[_key(sample)] = (group, min(first, sec), frames.frame_add(frame, sample))
        if sample["k"] == TICK and (_key(sample) not in ticks or ticks[_key(sample)]["t"] <= sample["t"]):
            ticks[_key(sample)] = sample
    kept = _kept(merged)
    return {
        "until": until, "span": span,
        "procs": [[p, i, group, first, process_frame(frame)]
                  for (p, i), (group, first, frame) in sorted(merged.items()) if (p, i) in kept],
        "ticks": [[p, i, _tick_info(s)] for (p, i), s in sorted(ticks.items()) if (p, i) in kept],
        "omitted": {"processes": len(merged) - len(kept)},
    }


def row_metrics(frame: Mapping[str, float], span: float) -> dict[str, float | None]:
    """A process row's figures over ``span`` seconds (the metric table's rules)."""
    return metrics.derive(frame, span, PROCESS_METRICS)
