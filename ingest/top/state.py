"""One host as ``top`` holds it: its processes' frames by second, and what its snapshot said."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import frames, topview
from ..model.frames import Frame
from ..model.records import number


@dataclass
class Process:
    """One process incarnation: its registry record, its frames by second, its newest tick."""

    pid: int
    inc: int
    group: str = ""
    state: str = "running"
    seconds: dict[int, Frame] = field(default_factory=dict)
    #: the snapshot's merged frame of [first, until), until live seconds cover a whole span
    base: tuple[int, int, Frame] | None = None
    tick: dict[str, Any] = field(default_factory=dict)

    def window(self, until: int, span: int = topview.SPAN) -> tuple[float, dict[str, float | None]] | None:
        """(seconds covered, the row's metrics) over the span up to ``until``; None without data."""
        merged: Frame = {}
        start = window_start = until - span
        first: int | None = None
        if self.base is not None and self.base[0] > start:  # live seconds do not cover the span yet
            base_until, first, frame = self.base
            frames.merge_into(merged, frame)
            start, window_start = base_until, base_until - topview.SPAN
        for sec, frame in self.seconds.items():
            if start <= sec < until:
                frames.merge_into(merged, frame)
                first = sec if first is None else min(first, sec)
        if not merged or first is None:
            return None
        # A process seen before the window counts its whole span (a tick drifting across a second
        # leaves one second empty, not the process younger); a new one, from its first second.
        known = min([*self.seconds, *([self.base[1]] if self.base else [])])
        covered = float(until - max(min(first, known), window_start))
        return covered, topview.row_metrics(merged, covered)


@dataclass
class Host:
    """One host's view: what its snapshot and frames said."""

    id: Any = None
    name: str = ""
    group: str = "*"
    groups: list[str] = field(default_factory=lambda: ["*"])
    series: dict[str, list[Any]] = field(default_factory=dict)
    recent: dict[str, Any] | None = None
    agent: dict[str, Any] = field(default_factory=dict)
    agent_state: dict[str, Any] = field(default_factory=dict)
    seconds: dict[int, Frame] = field(default_factory=dict)
    tens: dict[int, Frame] = field(default_factory=dict)
    tens_step: int = 10
    #: the end of the snapshot's frames: live seconds before it are already in them
    until: int = 0
    processes: dict[tuple[int, int], Process] = field(default_factory=dict)
    processes_total: int = 0
    slow: dict[str, dict[str, Any]] = field(default_factory=dict)
    life: list[dict[str, Any]] = field(default_factory=list)
    omitted: int = 0
    trimmed: int = 0
    snapshot_at: float | None = None
    live_frames: int = 0


def busy_slots(tick: Mapping[str, Any]) -> int:
    """Slots with a request running at the process's newest tick."""
    return sum(1 for v in tick.get("elapsed") or [] if (number(v) or 0) > 0)


# -- what comes in: kept only in the shapes the views read ------------------------------------

def clean_frame(frame: Any) -> Frame:
    """A frame's finite numbers by key (a frame that is not one is empty): the views merge and
    derive what is kept, and one string among the sums must not stop them."""
    if not isinstance(frame, Mapping):
        return {}
    out: Frame = {}
    for key, value in frame.items():
        n = number(value)
        if isinstance(key, str) and key and n is not None:
            out[key] = n
    return out


def second_of(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and abs(n) < 1e11 else None


def clean_tick(info: Any) -> dict[str, Any] | None:
    """A process's newest tick: its stamp, slots, slow threshold and per-slot ages as numbers."""
    if not isinstance(info, Mapping) or number(info.get("t")) is None:
        return None
    elapsed = info.get("elapsed")
    return {"t": number(info.get("t")), "threads": int(min(max(number(info.get("threads")) or 0, 0), 1024)),
            "threshold": number(info.get("threshold")) or 0.0,
            "elapsed": [number(v) or 0.0 for v in elapsed[:1024]] if isinstance(elapsed, list) else []}


def clean_recent(recent: Any) -> dict[str, Any] | None:
    """``recent``: its span and each group's metrics (a map of names to values), or None."""
    if not isinstance(recent, Mapping) or not isinstance(recent.get("groups"), Mapping):
        return None
    groups = {str(g): dict(v) for g, v in recent["groups"].items() if isinstance(v, Mapping)}
    return {"span": second_of(recent.get("span")), "since": second_of(recent.get("since")),
            "until": second_of(recent.get("until")), "groups": groups}


def mappings(values: Any) -> list[dict[str, Any]]:
    """The entries of a list that are maps (records, events, fleet rows)."""
    return [dict(v) for v in values if isinstance(v, Mapping)] if isinstance(values, list) else []
