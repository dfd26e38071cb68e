"""The Overview tab: its charts come with ``host.snapshot``; this adds what the
window's requests spent their time on: the per-phase means (weighted by
request counts, idle ticks not counted), and the latency histogram of one
phase with exact min/max (docs/live-protocol.md, "Tabs").

Sums travel, not averages: each point carries the phase's duration sum and
request weight (``m`` and ``u`` of ``ingest.model.frames``), so the page can fold
points and live seconds into any span and still compute exact weighted
means, and percentiles clamped to the observed min/max.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from console.windows.store import BaseWindowStore
from ingest.model.fields import PHASES
from ingest.model.frames import Frame, frame_add, histogram
from ingest.model.kinds import TICK
from ingest.model.sample import Sample

from .base import MAX_GROUPS, TabRequest

DEFAULT_PHASE = "request"
#: at most this many points of phase data (the table and histogram need sums, the chart ~1 per 4 px)
MAX_POINTS = 400


def phase_of(request: TabRequest) -> str:
    phase = request.option("phase", DEFAULT_PHASE)
    return phase if phase in PHASES else DEFAULT_PHASE


def phase_sums(frame: Mapping[str, float]) -> list[list[float | None]]:
    """Per phase ``[duration sum, requests measured, min, max]`` of one frame."""
    requests = frame.get("req", 0)
    return [[round(frame.get(f"m{i}", 0.0), 6), requests - frame.get(f"u{i}", 0),
             frame.get(f"<{i}"), frame.get(f">{i}")] for i in range(len(PHASES))]


def sparse_histogram(frame: Mapping[str, float], phase: str) -> dict[str, float]:
    """``{bucket: count}`` of one phase (JSON keys are strings)."""
    return {str(b): c for b, c in sorted(histogram(frame, f"h{PHASES.index(phase)}").items()) if c}


async def snapshot(store: BaseWindowStore, host: dict[str, Any], request: TabRequest,
                   now: float) -> dict[str, Any]:
    phase = phase_of(request)
    series = await store.aframes(host["id"], request.group, now - request.window, now,
                                 min(request.points, MAX_POINTS), now=now)
    return {
        "phases": list(PHASES), "phase": phase, "step": series.step,
        "t": [t for t, _ in series],
        "sums": [phase_sums(frame) for _, frame in series],
        "hist": [sparse_histogram(frame, phase) for _, frame in series],
    }


def live(samples: Sequence[Sample], second: int) -> dict[str, Any] | None:
    """Per process group (at most MAX_GROUPS, the first by name): the phase sums and every
    phase's histogram of the second's ticks."""
    frames: dict[str, Frame] = {}
    for sample in samples:
        if sample["k"] == TICK:
            frame_add(frames.setdefault(sample.get("g") or "", {}), sample)
    if not frames:
        return None
    shown = sorted(frames)[:MAX_GROUPS] if len(frames) > MAX_GROUPS else frames
    return {"groups": {group: {"sums": phase_sums(frames[group]),
                               "hist": {phase: sparse_histogram(frames[group], phase) for phase in PHASES}}
                       for group in shown}}


