"""The agent's own view of its host (``top --local``): the console's ``top`` messages, built here.

Fed every sample the agent decodes (``samples.sample_from``'s, as forwarded),
it keeps, bounded, what the console's store holds for the ``top`` tab: 1 s
frames per group and for the host ("*") over KEEP seconds, the raw samples
of the last ``topview.SPAN`` seconds, the newest slow records, the last
hour's lifecycle events and the samples since the last live second. The
messages (docs/live-protocol.md) are built by ``ingest.model.topview`` and
``ingest.model.frames``, as the console builds them. The decode thread only
appends to the inbox under a short lock; the server thread does the rest.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import __version__
from ..model import frames, metrics, topview
from ..model.frames import Frame
from ..model.kinds import GC_EVENT, HOST, SLOW, STARTED, STATUS_CLASSES, STOPPED, STOPPING, TICK
from ..model.records import LIVE_STATES, display, first_processes, lifecycle_event, number, slow_record
from ..model.sample import SILENT_INTERVALS, Sample, sample_time, slow_request
from .process import Process
from .samples import sample_from
from .wire import Datagram

#: The console's timing and bounds (console/live/tabs/base.py, console/live/tabs/top.py).
PUBLISH_DELAY, ONLINE_WITHIN, MAX_GROUPS, PROCESSES_EVERY = 2, 15, 64, 5
SECONDS, TENS = topview.SECONDS, topview.TENS
SLOW_LIMIT = LIFE_LIMIT = 200
LIFE_SPAN: Final = metrics.RESTARTS_SPAN
WINDOWS, POINTS, MAX_GROUP = (60, 14 * 86400, 300), (10, 2000, 300), 256  # (least, most, default)
#: Seconds of 1 s frames kept (a longer window is cut to it), and how far ahead a stamp may be.
KEEP, FUTURE = 600, 60
#: Bounds of the groups with frames of their own, the lifecycle events and the samples (count
#: and datagram bytes) of the inbox, the process window and the live second: what does not
#: fit is dropped and counted (``view_*`` in the agent counters).
MAX_GROUPS_KEPT, LIFE_KEPT, MAX_SAMPLES, MAX_BYTES = 256, 10_000, 40_000, 24 << 20
#: Seconds of datagrams received and none decoded before the agent says "not decoding".
NOT_DECODING_AFTER, CATCH_UP = 10.0, 30
AGENT_KEYS: Final = ("received", "decoded", "lost", "malformed", "spooled", "dropped", "bad_samples",
                     "queue_drops", "dropped_samples", "dropped_seconds", "refused_samples", "kernel_qlen")
TOTALS: Final = ("requests", *(f"status_{c}" for c in STATUS_CLASSES))
_WINDOW_KINDS = frozenset({TICK, SLOW, GC_EVENT, STARTED, STOPPING, STOPPED})
_LIFECYCLE = frozenset({STARTED, STOPPING, STOPPED})


def _bounded(value: Any, bounds: tuple[int, int, int]) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(int(value), bounds[0]), bounds[1])
    return bounds[2]


@dataclass(frozen=True)
class HostRequest:
    """A host subscribe as understood, with the console's bounds."""

    group: str = HOST
    window: int = 300
    points: int = 300

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> HostRequest:
        """ValueError says what the agent does not serve."""
        if message.get("tab", "top") != "top":
            raise ValueError("the agent's local view serves the top tab only")
        group = message.get("group", HOST)
        return cls(group if isinstance(group, str) and len(group) <= MAX_GROUP else HOST,
                   _bounded(message.get("window"), WINDOWS), _bounded(message.get("points"), POINTS))

    def wants(self, group: Any) -> bool:
        return self.group == HOST or (group or "") == self.group


class Bounded:
    """Samples in arrival order, at most MAX_SAMPLES and MAX_BYTES of datagrams; counts the rest."""

    def __init__(self) -> None:
        self.items: deque[tuple[float, int, Sample]] = deque()
        self.bytes = self.dropped = 0

    def add(self, arrived: float, size: int, sample: Sample) -> None:
        self.items.append((arrived, size, sample))
        self.bytes += size
        while len(self.items) > MAX_SAMPLES or self.bytes > MAX_BYTES:
            self.bytes -= self.items.popleft()[1]
            self.dropped += 1

    def older(self, arrived: float) -> None:
        while self.items and self.items[0][0] < arrived:
            self.bytes -= self.items.popleft()[1]

    def take(self) -> list[Sample]:
        out = [s for _, _, s in self.items]
        self.items.clear()
        self.bytes = 0
        return out


def downsample(seconds: Mapping[int, Frame], since: float, until: float,
               points: int) -> tuple[int, list[tuple[int, Frame]]]:
    """(step, [(start, frame)]): the 1 s frames of [since, until) merged into points aligned on
    the step, as the console's store does (``frames.point_step``)."""
    first = math.floor(since)
    step = frames.point_step(1, first, until, points)
    merged: dict[int, Frame] = {}
    end = math.ceil(until)
    for sec in sorted(s for s in seconds if first <= s < end):
        frames.merge_into(merged.setdefault(first if points <= 1 else sec - sec % step, {}), seconds[sec])
    return step, sorted(merged.items())


class LocalView:
    """One host's ``top`` state; ``__call__`` is the agent listener (decode thread)."""

    def __init__(self, hostname: str, counters: Callable[[], Mapping[str, int]] = dict,
                 processes: Callable[[float], list[dict[str, Any]]] | None = None) -> None:
        self.hostname = hostname
        self._counters = counters
        self._processes = processes or (lambda now: [])
        self._inbox_lock = threading.Lock()
        self._inbox: list[tuple[int, float, Sample]] = []
        self._inbox_bytes = self.inbox_dropped = 0
        self._lock = threading.RLock()
        self._frames: dict[str, dict[int, Frame]] = {HOST: {}}
        self._window, self._live = Bounded(), Bounded()
        self._slow: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._life: deque[dict[str, Any]] = deque(maxlen=LIFE_KEPT)
        self.out_of_range = self.faults = 0
        self._last: int | None = None  # the last second published
        self._lost: int | None = None
        self._seen: tuple[int, int] | None = None  # (received, decoded) at the last tick
        self._stall: tuple[float, int, int] | None = None

    # -- the decode thread ---------------------------------------------------------------------

    def __call__(self, datagram: Datagram, proc: Process) -> None:
        self.add(sample_from(datagram, proc), datagram.size, proc.interval)

    def add(self, sample: Sample, size: int = 0, interval: float = 1.0) -> None:
        with self._inbox_lock:
            if len(self._inbox) >= MAX_SAMPLES or self._inbox_bytes + size > MAX_BYTES:
                self.inbox_dropped += 1
                return
            self._inbox.append((size, interval, sample))
            self._inbox_bytes += size

    # -- the state (server thread) -------------------------------------------------------------

    def _drain(self, now: float) -> None:
        with self._inbox_lock:
            inbox, self._inbox, self._inbox_bytes = self._inbox, [], 0
        increments: dict[tuple[int, str], Frame] = {}
        for size, interval, sample in inbox:
            kind = sample["k"]
            if kind in _WINDOW_KINDS:
                self._window.add(now, size, sample)
            self._live.add(now, size, sample)
            when = sample_time(sample)
            if math.isfinite(when) and now - KEEP <= when <= now + FUTURE:
                frames.frame_add(increments.setdefault((math.floor(when), display(sample["g"]) or ""), {}),
                                 sample)
            else:
                self.out_of_range += 1
            if kind == SLOW:
                self._slow_add(sample, interval)
            elif kind in _LIFECYCLE:
                self._life_add(sample)
        for (sec, group), frame in increments.items():
            frames.merge_into(self._frames[HOST].setdefault(sec, {}), frame)
            if group != HOST and (group in self._frames or len(self._frames) <= MAX_GROUPS_KEPT):
                frames.merge_into(self._frames.setdefault(group, {}).setdefault(sec, {}), frame)

    def _slow_add(self, sample: Sample, interval: float) -> None:
        """Completed replaces active by key; a late active record never undoes a completion."""
        key = f"{sample['p']}:{sample['i']}:{slow_request(sample['f'])}"
        completed = sample["f"].get("slow_record_state") == 1
        old = self._slow.get(key)
        if old is not None and old["state"] == "completed" and not completed:
            return
        self._slow[key] = {"state": "completed" if completed else "active", "pid": sample["p"],
                           "incarnation": sample["i"], "group": sample["g"], "stamp": sample["t"],
                           "fields": sample["f"], "interval": interval}
        self._slow.move_to_end(key)
        while len(self._slow) > SLOW_LIMIT:
            self._slow.popitem(last=False)

    def _life_add(self, sample: Sample) -> None:
        event = lifecycle_event(sample)
        if event is None:
            return
        self._life.append(event)  # the oldest goes when LIFE_KEPT are kept
        if sample["k"] == STOPPED:  # its requests in flight will never complete
            for record in self._slow.values():
                if (record["pid"], record["incarnation"]) == (sample["p"], sample["i"]) \
                        and record["state"] == "active":
                    record["state"] = "expired"

    def tick(self, now: float) -> list[int]:
        """Take what arrived, forget what is too old; the complete seconds due now."""
        with self._lock:
            self._drain(now)
            horizon = math.floor(now) - KEEP
            for group, seconds in list(self._frames.items()):
                for sec in [s for s in seconds if s < horizon]:
                    del seconds[sec]
                if not seconds and group != HOST:
                    del self._frames[group]
            self._window.older(now - topview.SPAN - PUBLISH_DELAY - 1)
            while self._life and not self._life[0]["t"] >= now - LIFE_SPAN:
                self._life.popleft()
            counters = self._agent_counters()
            lost, seen = counters["lost"], (counters["received"], counters["decoded"])
            if self._lost is not None and lost > self._lost:  # the host's loss, when it was heard of
                frames.add_loss(self._frames[HOST].setdefault(math.floor(now), {}), lost - self._lost)
            self._lost = lost
            if self._seen is not None and seen[0] > self._seen[0] and seen[1] == self._seen[1]:
                self._stall = self._stall or (now, *self._seen)
            elif self._seen is None or seen[1] != self._seen[1]:
                self._stall = None
            self._seen = seen
            newest = math.floor(now) - PUBLISH_DELAY
            last, self._last = self._last, newest
            if last is None or newest - last > CATCH_UP:
                return [newest]
            return list(range(last + 1, newest + 1))

    # -- pieces of messages ----------------------------------------------------------------------

    def _agent_counters(self) -> dict[str, int]:
        try:
            counters = dict(self._counters())
        except Exception:  # the agent's counters must not cost the view its messages
            self.faults += 1
            counters = {}
        out = {k: int(number(counters.get(k)) or 0) for k in AGENT_KEYS}
        out.update(view_dropped=self.inbox_dropped, view_window_dropped=self._window.dropped,
                   view_live_dropped=self._live.dropped, view_out_of_range=self.out_of_range)
        return out

    def agent_state(self, now: float) -> dict[str, Any]:
        stall, seen = self._stall, self._seen or (0, 0)
        not_decoding = ({"received": seen[0] - stall[1], "decoded": seen[1] - stall[2], "since": stall[0]}
                        if stall and now - stall[0] >= NOT_DECODING_AFTER else None)
        return {"state": "not decoding" if not_decoding else "online", "online": True, "last_seen": now,
                "age": 0.0, "not_decoding": not_decoding, "clock": None}

    def records(self, now: float) -> list[dict[str, Any]]:
        try:
            return sorted(self._processes(now), key=lambda r: (r["pid"], r["incarnation"]))
        except Exception:
            self.faults += 1
            return []

    def groups(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        with self._lock:
            return sorted({display(r.get("group")) or "" for r in records} | (set(self._frames) - {HOST}))

    def recent(self, second: int, groups: Iterable[str]) -> dict[str, Any]:
        """``host.frame``'s ``recent``: the headline of the host and of each of ``groups``."""
        span = range(second + 1 - metrics.HEADLINE_SPAN, second + 1)
        with self._lock:
            per_group = {group: [(t, per[t]) for t in span if t in per]
                         for group in (HOST, *groups) for per in [self._frames.get(group, {})]}
        return frames.recent_of(per_group, second)

    def restarts(self, now: float) -> int:
        """Processes that stopped in the last hour: by their first STOPPING, else their STOPPED."""
        when: dict[tuple[int, int], tuple[bool, float]] = {}
        for e in self._life:  # oldest first
            key, mark = (e["pid"], e["inc"]), (e["kind"] == "stopping", e["t"])
            if e["kind"] in ("stopping", "stopped") and (key not in when or mark[0] > when[key][0]):
                when[key] = mark
        return sum(1 for _, t in when.values() if t >= now - LIFE_SPAN)

    # -- messages ------------------------------------------------------------------------------

    def hello(self, now: float) -> dict[str, Any]:
        return {"type": "hello", "user": None, "store": "agent", "single_process": True, "local": True,
                "host": self.hostname, "now": now, "online_within": ONLINE_WITHIN}

    def host_snapshot(self, request: HostRequest, now: float) -> dict[str, Any]:
        records = self.records(now)
        with self._lock:
            self._drain(now)
            since = max(now - request.window, now - KEEP)
            step, points = downsample(self._frames.get(request.group, {}), since, now, request.points)
            values = [frames.derive(f, float(step), metrics.HOST_FRAME) for _, f in points]
            columns: dict[str, list[Any]] = {"t": [float(t) for t, _ in points]}
            for key in metrics.SERIES:
                columns[key] = [v[key] for v in values]
            if request.group != HOST:  # loss is the host's: a group's chart marks it too
                lost = dict(downsample(self._frames[HOST], since, now, request.points)[1])
                columns["loss"] = [lost.get(t, {}).get("loss", 0) for t, _ in points]
            total = (frames.derive(frames.merge(f for _, f in points), float(request.window),
                                   metrics.HOST_FRAME) if points else None)
            groups = self.groups(records)
            return {"type": "host.snapshot", "host": self.hostname, "group": request.group, "tab": "top",
                    "now": now, "step": step, "groups": [HOST, *groups[:MAX_GROUPS]],
                    "groups_total": len(groups), "series": columns,
                    "totals": {name: total[name] if total else 0 for name in TOTALS},
                    "agent": self._agent_counters(), "agent_state": self.agent_state(now), "bad_reasons": [],
                    "processes": first_processes(records), "processes_total": len(records)}

    def tab_snapshot(self, request: HostRequest, now: float) -> dict[str, Any]:
        until = math.floor(now) - PUBLISH_DELAY + 1
        with self._lock:
            self._drain(now)
            per = self._frames.get(request.group, {})
            seconds = [[t, frames.compact(per[t])] for t in sorted(per) if until - SECONDS <= t < until]
            step, tens = downsample(per, until - TENS, until, topview.TENS_POINTS)
            window = topview.process_window(
                (s for _, _, s in self._window.items if request.wants(s["g"])), until)
            slow = [slow_record({**r, "state": self._slow_state(r, now)})
                    for r in sorted(self._slow.values(), key=lambda r: -(number(r["stamp"]) or 0.0))
                    if request.wants(r["group"])]
            life = [e for e in sorted(self._life, key=lambda e: e["t"])
                    if e["t"] >= now - LIFE_SPAN and request.wants(e["group"])]
        # the header of the very seconds the process window covers, as the console sends it
        recent = self.recent(until - 1, [] if request.group == HOST else [request.group])
        return {"type": "tab.snapshot", "tab": "top", "host": self.hostname, "group": request.group,
                "window": request.window, "now": now, "until": until, "recent": recent, "seconds": seconds,
                "tens": [[t, frames.compact(f)] for t, f in tens], "tens_step": step,
                "processes": window, "slow": slow, "life": life[-LIFE_LIMIT:], "life_total": len(life)}

    @staticmethod
    def _slow_state(record: Mapping[str, Any], now: float) -> str:
        if record["state"] != "active":
            return str(record["state"])
        stamp = number(record["stamp"])
        silent = stamp is None or now - stamp > SILENT_INTERVALS * record["interval"] + 1.0
        return "expired" if silent else "active"

    def host_frame(self, second: int, now: float, records: list[dict[str, Any]],
                   recent: dict[str, Any] | None = None) -> dict[str, Any]:
        """The complete ``second`` of the host and of its first MAX_GROUPS groups."""
        groups = self.groups(records)
        shown = groups[:MAX_GROUPS]
        if recent is None:
            recent = self.recent(second, shown)
        per_group = {}
        with self._lock:
            for group in (HOST, *shown):
                frame = self._frames.get(group, {}).get(second)
                if frame:
                    per_group[group] = frames.derive(frame, 1.0, metrics.HOST_FRAME)
        message = {"type": "host.frame", "host": self.hostname, "t": second, "now": now, "groups": per_group,
                   "groups_total": len(groups), "recent": recent, "agent": self._agent_counters(),
                   "agent_state": self.agent_state(now), "console": {"internal_errors": self.faults}}
        if second % PROCESSES_EVERY == 0:
            message.update(processes=first_processes(records), processes_total=len(records))
        return message

    def tab_frame(self, now: float) -> dict[str, Any] | None:
        """The samples taken since the last call, as ``top``'s live message (None: nothing)."""
        with self._lock:
            samples = self._live.take()
        body = topview.second(samples)
        if body is None:
            return None
        return {"type": "tab.frame", "tab": "top", "host": self.hostname, "t": math.floor(now), "now": now,
                **body}

    def fleet(self, kind: str, second: int, now: float, records: list[dict[str, Any]],
              recent: dict[str, Any] | None = None) -> dict[str, Any]:
        """``fleet.snapshot`` or ``fleet.update`` of this one host: its "*" headline, restarts in
        the last hour and processes alive, as a fleet row."""
        host = (recent or self.recent(second, ()))["groups"].get(HOST) or {}
        values: dict[str, Any] = {k: host.get(k) for k in metrics.FLEET}
        with self._lock:
            values["restarts"] = self.restarts(now)
        values["processes_live"] = sum(1 for r in records if r.get("state") in LIVE_STATES)
        entry = {"id": self.hostname, "name": self.hostname, "team": None, "labels": {},
                 **self.agent_state(now),
                 "agent": {"version": f"wsgi-fleet-agent {__version__}", **self._agent_counters()},
                 "console": {"internal_errors": self.faults}, "metrics": values}
        return {"type": kind, "now": now, "hosts": [entry]}
