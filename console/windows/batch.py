"""What one agent batch changes in the window, computed once for every backend.

``prepare`` turns a batch of samples into plain deltas: frame deltas per
(tier, bucket, group), packed raw samples, process-record deltas, slow
request moves and lifecycle events. A backend only applies them (Python
dicts, or one Redis Lua script), so the in-process demo store and Redis
cannot disagree about what a sample means; the contract tests hold them
to it.

Every sample is checked first (``checks``: its envelope, then the field
table); one that fails is left out of the deltas and listed in
``Batch.dropped`` for the store to count, and the rest of the batch goes on.
So the deltas hold only finite numbers and bounded text, which is what lets
a backend apply them without a type error half-way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ingest.model.frames import Frame, frame_add, merge_into
from ingest.model.kinds import GC_EVENT, GC_SNAPSHOT, SLOW, STARTED, STOPPED, STOPPING, TICK
from ingest.model.sample import IDENTITY_FIELDS, sample_time, slow_request

from .checks import check_samples
from .samples import pack_sample

KNOWN_KINDS = frozenset({TICK, SLOW, STARTED, STOPPING, STOPPED, GC_SNAPSHOT, GC_EVENT})
#: A broken agent clock must not pin keys for decades: frames at most this
#: far in the future of the console's clock still get their normal life.
FUTURE_SKEW = 3600.0
#: What a process says about itself (its group is the sample's ``g``).
IDENTITY = tuple(name for name in IDENTITY_FIELDS if name != "process_group")
#: Process state ranks: a record only ever moves forward.
RANKS = ("running", "stopping", "stopped")
_RANK_OF_KIND = {STOPPING: 1, STOPPED: 2}


class InvalidSample(ValueError):
    """A batch the store refuses as a whole, naming the sample or the data at fault.

    Samples that break the checks are dropped, not refused; this is for what
    the checks did not foresee (a type error while computing or applying the
    deltas, a Redis script error): the batch's fault, never an outage, so the
    agent is told 4400 and nothing of the batch is written.
    """


class Tier(NamedTuple):
    """A frame resolution: bucket width, how long it is kept, the widest span it serves."""

    seconds: int
    retention: float
    max_span: float


DEFAULT_TIERS = (Tier(1, 3600.0, 900.0), Tier(10, 86400.0, 21600.0), Tier(60, 14 * 86400.0, math.inf))


@dataclass(slots=True)
class Batch:
    written: int = 0
    #: (index in the batch, reason) of the samples left out by the checks
    dropped: list[tuple[int, str]] = field(default_factory=list)
    seconds: set[int] = field(default_factory=set)
    #: (tier seconds, bucket start, group) -> (frame delta, expiry relative to now);
    #: per process group only: the host frame ("*") is their merge, made when read
    frames: dict[tuple[int, int, str], tuple[Frame, float]] = field(default_factory=dict)
    #: group -> time of its latest sample, so a read of "*" knows which groups to merge
    groups: dict[str, float] = field(default_factory=dict)
    raw: list[bytes] = field(default_factory=list)
    #: "pid:incarnation" -> record delta, merged with ``merge_record``
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: slow key -> (last seen stamp, packed latest active record)
    slow_active: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    #: (slow key, stamp, packed completed record)
    slow_done: list[tuple[str, float, bytes]] = field(default_factory=list)
    #: "pid:incarnation:" prefixes of processes that stopped: their active records expire
    stopped: list[str] = field(default_factory=list)
    lifecycle: list[tuple[float, bytes]] = field(default_factory=list)
    #: the newest stamp of the batch: how far the agent's stream has come. Spools are sent
    #: oldest first, so an active record this far behind was not repeated (``slow_stale``)
    latest: float | None = None


def process_key(sample: Mapping[str, Any]) -> str:
    return f"{sample['p']}:{sample['i']}"


def slow_key(sample: Mapping[str, Any]) -> str:
    """(pid, incarnation, log id) joins a request's active and completed records."""
    return f"{process_key(sample)}:{slow_request(sample['f'])}"


def _process_delta(sample: Mapping[str, Any], stamp: float) -> dict[str, Any]:
    kind, f = sample["k"], sample["f"]
    delta: dict[str, Any] = {"pid": sample["p"], "i": sample["i"], "first_seen": stamp,
                             "last_seen": stamp, "rank": _RANK_OF_KIND.get(kind, 0)}
    if sample.get("g") is not None:
        delta["group"] = sample["g"]
    if kind in (TICK, STARTED):
        delta.update({name: f[name] for name in IDENTITY if name in f})  # bounded text: checked
        if kind == STARTED:
            delta["started"] = stamp
        else:
            delta["interval"] = f.get("telemetry_interval") or 1.0
            delta["threads"] = f.get("request_threads_maximum", 0)
    elif kind in (STOPPING, STOPPED):
        delta["stopping" if kind == STOPPING else "stopped"] = stamp
        if "shutdown_reason" in f:
            delta["shutdown_reason"] = f["shutdown_reason"]
        for name in ("process_uptime", "lifetime_request_count", "active_requests_at_exit",
                     "graceful_drain"):
            if name in f:
                delta[name] = f[name]
    return delta


def merge_record(current: dict[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """Fold a record delta in: seen-times widen, rank only rises, newer values win.

    The Redis backend runs the same rule in Lua (``merge_record`` there).
    """
    newer = delta.get("last_seen", 0) >= current.get("last_seen", 0)
    for key, value in delta.items():
        old = current.get(key)
        if key == "first_seen":
            current[key] = value if old is None else min(old, value)
        elif key in ("last_seen", "rank"):
            current[key] = value if old is None else max(old, value)
        elif newer or old is None:
            current[key] = value
    return current


def prepare(samples: Iterable[Mapping[str, Any]], now: float, tiers: Sequence[Tier] = DEFAULT_TIERS) -> Batch:
    """The deltas of the samples that pass the checks; the others are in ``dropped``.

    Raises InvalidSample (before anything is written) when a sample that
    passed still cannot be turned into deltas: a gap in the checks, which is
    the batch's fault and must not be taken for an outage.
    """
    checked = check_samples(samples)
    batch = Batch(dropped=checked.dropped)
    per_second: dict[tuple[int, str], Frame] = {}
    for index, sample in enumerate(checked):
        try:
            _add_sample(batch, per_second, sample)
        except (TypeError, ValueError, ArithmeticError, AttributeError, IndexError, KeyError) as exc:
            where = f"sample {checked.position(index)} (kind {sample['k']}, pid {sample['p']})"
            raise InvalidSample(f"{where}: {type(exc).__name__}: {exc}"[:300]) from exc
    for (second, group), frame in per_second.items():
        for tier in tiers:
            bucket = second - second % tier.seconds
            expires = frame_expiry(tier, bucket, now)
            if expires > 0:  # else already older than this tier keeps
                delta, _ = batch.frames.setdefault((tier.seconds, bucket, group), ({}, expires))
                merge_into(delta, frame)
    return batch


def frame_expiry(tier: Tier, bucket: int, now: float) -> float:
    """Seconds from ``now`` until the frame of ``bucket`` leaves ``tier``."""
    return min(bucket + tier.seconds + tier.retention - now, tier.retention + FUTURE_SKEW)


def _add_sample(batch: Batch, per_second: dict[tuple[int, str], Frame], sample: Mapping[str, Any]) -> None:
    kind, stamp = sample["k"], float(sample["t"])
    batch.written += 1
    batch.raw.append(pack_sample(sample))
    batch.latest = stamp if batch.latest is None else max(batch.latest, stamp)
    if kind not in KNOWN_KINDS:
        return
    when = sample_time(sample)
    second = math.floor(when)
    batch.seconds.add(second)
    group = sample.get("g") or ""  # text other than HOST ("*"): checked
    batch.groups[group] = max(when, batch.groups.get(group, when))
    frame_add(per_second.setdefault((second, group), {}), sample)
    key = process_key(sample)
    delta = _process_delta(sample, stamp)
    if key in batch.processes:
        merge_record(batch.processes[key], delta)
    else:
        batch.processes[key] = delta
    if kind == SLOW:
        request = slow_key(sample)
        if sample["f"].get("slow_record_state") == 1:
            batch.slow_active.pop(request, None)
            batch.slow_done.append((request, stamp, pack_sample(sample)))
        else:
            batch.slow_active[request] = (stamp, pack_sample(sample))
    elif kind in (STARTED, STOPPING, STOPPED):
        batch.lifecycle.append((stamp, batch.raw[-1]))
        if kind == STOPPED:
            batch.stopped.append(key + ":")
