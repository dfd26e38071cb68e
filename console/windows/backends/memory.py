"""The in-process window store: the demo default when no REDIS_URL is set.

One console process only (nothing is shared between workers), and gone
on restart. It mirrors the Redis backend rule for rule, including its
clocks: trimming of raw samples, slow requests, lifecycle events and the
process registry follows the ``now`` each write passes in, while frames
and batch marks expire like Redis keys, after a time-to-live computed
from that ``now`` and counted on this process's monotonic clock. Raw
samples are also capped by count, so a flood cannot exhaust memory.

A write computes every merged frame and process record first and only then
changes the host's state, so an error (there should be none: the samples
were checked) leaves nothing half-written, like the Redis script.
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ingest.model.frames import Frame, add_loss, merge_into
from ingest.model.kinds import HOST

from ..batch import Batch, InvalidSample, merge_record
from ..loss import INSTANCES_KEPT, loss_growth
from ..slow import SlowRecords
from ..store import BAD_KEPT, BAD_SAMPLES, BaseWindowStore


@dataclass(slots=True)
class _Host:
    marks: dict[str, tuple[int, float]] = field(default_factory=dict)
    raw: deque[tuple[float, bytes]] = field(default_factory=deque)
    frames: dict[tuple[int, int, str], tuple[Frame, float]] = field(default_factory=dict)
    groups: dict[str, float] = field(default_factory=dict)
    deadlines: list[tuple[float, tuple[int, int, str]]] = field(default_factory=list)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    slow_active: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    #: ended requests: key -> (stamp, completed, packed record), and (stamp, key) sorted
    slow_ended: dict[str, tuple[float, bool, bytes]] = field(default_factory=dict)
    slow_order: list[tuple[float, str]] = field(default_factory=list)
    #: the newest stamp of the latest batch (``SlowRecords.stream_at``)
    slow_at: float | None = None
    lifecycle: list[tuple[float, bytes]] = field(default_factory=list)
    agent: dict[str, Any] = field(default_factory=dict)
    #: the store's count of dropped samples (kept apart from the agent's counters)
    bad_samples: int = 0
    bad: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=BAD_KEPT))
    #: agent instance -> (console time heard, its latest loss counters)
    instances: dict[str, tuple[float, dict[str, int]]] = field(default_factory=dict)
    #: the host's loss totals over its agent instances (``LOSS_KINDS``)
    loss: dict[str, int] = field(default_factory=dict)


class WindowStore(BaseWindowStore):
    """In-process store; ``max_raw_samples`` caps each host's raw samples."""

    def __init__(self, url: str | None = None, *, max_raw_samples: int = 200_000, **options: Any):
        super().__init__(url, **options)
        self.max_raw_samples = max_raw_samples
        self.clock = time.monotonic
        self._hosts: dict[int, _Host] = {}

    def _host(self, host_id: int) -> _Host:
        host = self._hosts.get(host_id)
        if host is None:
            host = self._hosts[host_id] = _Host()
        return host

    # -- writing -------------------------------------------------------------

    async def _awrite(self, host_id: int, instance: str, batch_id: int, batch: Batch,
                      now: float) -> int | None:
        # Nothing here awaits, so the whole write is atomic for asyncio; and the
        # merges, the only part that could raise, are made before anything changes.
        host = self._host(host_id)
        if batch_id <= self._mark(host, instance):
            return None
        try:
            frames = [(key, self._merged_frame(host, key, delta), expires)
                      for key, (delta, expires) in batch.frames.items()]
            records = [(key, delta if (record := host.processes.get(key)) is None
                        else merge_record(dict(record), delta)) for key, delta in batch.processes.items()]
        except (TypeError, ValueError, ArithmeticError) as exc:
            problem = f"batch {batch_id} does not merge with the stored data: {exc!r}"
            raise InvalidSample(problem[:300]) from exc
        self._add_raw(host, batch.raw, now)
        for key, frame, expires in frames:
            self._put_frame(host, key, frame, expires)
        self._see_groups(host, batch.groups, now)
        self._apply_processes(host, records, now)
        self._apply_slow(host, batch, now)
        for item in batch.lifecycle:
            bisect.insort(host.lifecycle, item)
        _trim_sorted(host.lifecycle, now - self.lifecycle_retention)
        if batch.dropped:
            host.bad_samples += len(batch.dropped)
            host.bad.extendleft(reversed(self.bad_records(batch_id, batch, now)))
        host.marks[instance] = (batch_id, self.clock() + self.mark_retention)
        host.agent["last_batch"] = now
        host.agent["last_seen"] = max(now, host.agent.get("last_seen", now))
        return batch.written

    def _mark(self, host: _Host, instance: str) -> int:
        mark, deadline = host.marks.get(instance, (0, 0.0))
        return mark if deadline > self.clock() else 0

    def _add_raw(self, host: _Host, blobs: list[bytes], now: float) -> None:
        raw = host.raw
        arrival = max(now, raw[-1][0]) if raw else now  # like Redis stream ids: never backwards
        raw.extend((arrival, blob) for blob in blobs)
        cutoff = now - self.raw_retention
        while raw and (raw[0][0] < cutoff or len(raw) > self.max_raw_samples):
            raw.popleft()

    def _merged_frame(self, host: _Host, key: tuple[int, int, str], delta: Frame) -> Frame:
        """The frame ``key`` holds once ``delta`` is merged in; the stored one is not changed.

        Like the Redis script, it refuses to make a frame that holds anything but finite
        numbers (one C-level sum: a string or list raises, NaN or inf stays in the sum).
        """
        entry = host.frames.get(key)
        fresh = entry is None or entry[1] <= self.clock()
        frame = dict(delta) if fresh or entry is None else merge_into(dict(entry[0]), delta)
        if not math.isfinite(sum(frame.values())):
            raise ValueError(f"frame {key} would hold a value that is not a finite number")
        return frame

    def _put_frame(self, host: _Host, key: tuple[int, int, str], frame: Frame, expires: float) -> None:
        clock = self.clock()
        while host.deadlines and host.deadlines[0][0] <= clock:
            _, old = heapq.heappop(host.deadlines)
            entry = host.frames.get(old)
            if entry is not None and entry[1] <= clock:
                del host.frames[old]
        host.frames[key] = (frame, clock + expires)
        heapq.heappush(host.deadlines, (clock + expires, key))

    def _see_groups(self, host: _Host, groups: dict[str, float], now: float) -> None:
        for group, when in groups.items():
            host.groups[group] = max(when, host.groups.get(group, when))
        cutoff = now - self.longest
        for group in [g for g, when in host.groups.items() if when < cutoff]:
            del host.groups[group]

    def _apply_processes(self, host: _Host, records: list[tuple[str, dict[str, Any]]], now: float) -> None:
        for key, record in records:
            host.processes[key] = dict(record)
        cutoff = now - self.process_retention
        for key in [k for k, r in host.processes.items() if r["last_seen"] < cutoff]:
            del host.processes[key]
        over = len(host.processes) - self.max_processes
        if over > 0:  # same order as Redis's zset: by last seen, then by key
            for key, _ in sorted(host.processes.items(), key=lambda kr: (kr[1]["last_seen"], kr[0]))[:over]:
                del host.processes[key]

    def _apply_slow(self, host: _Host, batch: Batch, now: float) -> None:
        active, ended = host.slow_active, host.slow_ended
        for key, seen in batch.slow_active.items():
            if key in ended:
                if ended[key][1]:
                    continue  # completed: a late active record is not news
                _unend(host, key)  # repeated again: it had not expired after all
            active[key] = seen
        for key, stamp, blob in batch.slow_done:
            active.pop(key, None)
            _end(host, key, stamp, True, blob)
        stale = -math.inf if batch.latest is None else batch.latest - self.slow_stale
        for key in [k for k, (seen, _) in active.items()
                    if seen < stale or any(k.startswith(p) for p in batch.stopped)]:
            last_seen, blob = active.pop(key)
            _end(host, key, last_seen, False, blob)  # expired: never completed
        if batch.latest is not None:
            host.slow_at = batch.latest
        order = host.slow_order  # trimmed like ZREMRANGEBYSCORE, then ZREMRANGEBYRANK
        gone = max(bisect.bisect_left(order, (now - self.slow_retention, "")), len(order) - self.slow_kept)
        for _, key in order[:gone]:
            del ended[key]
        del order[:gone]

    async def _aset_counters(self, host_id: int, counters: dict[str, int], now: float,
                             buckets: list[tuple[int, int, float]], instance: str) -> dict[str, int]:
        host = self._host(host_id)
        grown = loss_growth(host.instances.get(instance, (0.0, {}))[1], counters)
        lost = grown.get("lost", 0)
        frames = [((tier, bucket, HOST), expires) for tier, bucket, expires in buckets if expires > 0]
        merged = [self._merged_frame(host, key, add_loss({}, lost)) for key, _ in frames] if lost > 0 else []
        for (key, expires), frame in zip(frames, merged, strict=False):  # merged first: nothing half-done
            self._put_frame(host, key, frame, expires)
        if lost > 0:
            self._see_groups(host, {HOST: now}, now)
        for kind, more in grown.items():
            host.loss[kind] = host.loss.get(kind, 0) + more
        host.instances[instance] = (now, {kind: counters[kind] for kind in grown})
        over = len(host.instances) - INSTANCES_KEPT
        if over > 0:  # same order as Redis's zset: by time heard, then by name
            for old, _ in sorted(host.instances.items(), key=lambda kv: (kv[1][0], kv[0]))[:over]:
                del host.instances[old]
        host.agent["counters"] = dict(counters)
        host.agent["last_heartbeat"] = now
        host.agent["last_seen"] = max(now, host.agent.get("last_seen", now))
        return dict(host.loss)

    # -- reading -------------------------------------------------------------

    async def _aacked(self, host_id: int, instance: str) -> int:
        return self._mark(self._host(host_id), instance)

    async def _aframes(self, host_id: int, groups: list[str], tier: int,
                       buckets: list[int]) -> list[list[tuple[int, Frame]]]:
        frames, clock = self._host(host_id).frames, self.clock()
        out = []
        for group in groups:
            entries = ((i, frames.get((tier, bucket, group))) for i, bucket in enumerate(buckets))
            out.append([(i, dict(e[0])) for i, e in entries if e is not None and e[1] > clock])
        return out

    async def _agroups(self, host_id: int, since: float) -> list[str]:
        return sorted(g for g, when in self._host(host_id).groups.items() if when >= since)

    async def _araw_newest_first(self, host_id: int, since: float, until: float) -> AsyncIterator[bytes]:
        for arrival, blob in reversed(self._host(host_id).raw):
            if arrival < since:
                break
            if arrival <= until:
                yield blob

    async def _aprocess_records(self, host_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._host(host_id).processes.values()]

    async def _aslow_records(self, host_id: int, limit: int) -> SlowRecords:
        host = self._host(host_id)
        ended = [host.slow_ended[key][2] for _, key in reversed(host.slow_order[-limit:])]
        return SlowRecords(list(host.slow_active.values()), ended, host.slow_at, host.agent.get("last_batch"))

    async def _alifecycle(self, host_id: int, since: float, until: float) -> list[bytes]:
        events = self._host(host_id).lifecycle
        start = bisect.bisect_left(events, (since, b""))
        return [blob for stamp, blob in events[start:] if stamp < until]

    async def _ahost_status(self, host_ids: list[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for host_id in host_ids:
            host = self._hosts.get(host_id)
            if host is None:
                out[host_id] = {}
                continue
            agent = host.agent
            out[host_id] = {**agent, "counters": {**agent.get("counters", {}), **host.loss}} if agent else {}
            if host.bad_samples:
                out[host_id].setdefault("counters", {})[BAD_SAMPLES] = host.bad_samples
        return out

    async def _abad_samples(self, host_id: int) -> list[dict[str, Any]]:
        host = self._hosts.get(host_id)
        return [dict(record) for record in host.bad] if host is not None else []

    async def aping(self) -> bool:
        return True


def _end(host: _Host, key: str, stamp: float, completed: bool, blob: bytes) -> None:
    """Keep one ended copy per request: the latest replaces the one before."""
    _unend(host, key)
    host.slow_ended[key] = (stamp, completed, blob)
    bisect.insort(host.slow_order, (stamp, key))


def _unend(host: _Host, key: str) -> None:
    entry = host.slow_ended.pop(key, None)
    if entry is not None:
        del host.slow_order[bisect.bisect_left(host.slow_order, (entry[0], key))]


def _trim_sorted(items: list[tuple[float, bytes]], cutoff: float) -> None:
    """Drop the entries of a stamp-sorted list older than ``cutoff``."""
    del items[:bisect.bisect_left(items, (cutoff, b""))]
