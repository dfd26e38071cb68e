"""The rolling-window store: the one model the pages, the fleet rows and the benchmarks read.

Two backends share this contract (and one suite of contract tests):
``backends.redis`` for production and several console workers, and
``backends.memory`` for the single-process demo. As with Django's session
engines, a backend is a module exposing a class named ``WindowStore``,
chosen by dotted path; ``get_store`` picks Redis when given a ``redis://``
URL. Methods are async and carry the ``a`` prefix.

This base class holds everything that is not storage: turning a batch
into deltas (``batch.prepare``), choosing a tier and downsampling for a
chart, classifying processes and slow requests by silence. Backends
implement the ``_a*`` primitives.

Two kinds of failure, never confused: StoreUnavailable is an outage (the
agent keeps its batch and resends it), InvalidSample is the batch's fault
(refused, and never retried as it is). Samples that break the checks are
neither: they are dropped, counted in the host's ``bad_samples`` counter
with the reasons of the latest ``BAD_KEPT``, and the rest is written.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ingest.model.frames import Frame, merge_into, point_step
from ingest.model.kinds import HOST
from ingest.model.sample import SILENT_INTERVALS, Sample

from .batch import DEFAULT_TIERS, IDENTITY, RANKS, Batch, InvalidSample, Tier, frame_expiry, prepare
from .samples import unpack_sample, unpack_samples
from .slow import SlowRecords, views

BACKENDS = {
    "memory": "console.windows.backends.memory.WindowStore",
    "redis": "console.windows.backends.redis.WindowStore",
}
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: Raw samples are ordered by arrival; a sample's stamp may lead its
#: arrival by this much (agent clock ahead) or trail it by RAW_LATE (resent
#: after a reconnect) and still be found by ``araw``.
RAW_SKEW = 60.0
RAW_LATE = 300.0
#: The store's own entry in a host's agent counters: samples dropped by the checks.
#: An agent cannot set it (``aset_counters`` leaves it out); reconnects keep it.
BAD_SAMPLES = "bad_samples"
#: Reasons of dropped samples kept per host, newest first (``abad_samples``).
BAD_KEPT = 10


#: Process records a store keeps per host at most (see ``max_processes``).
MAX_PROCESSES_PER_HOST = 20_000
#: Frames merged between two yields to the event loop in a long read.
MERGE_ROUND = 20_000


class StoreUnavailable(Exception):
    """The window store cannot be reached (Redis down, timing out, refusing writes).

    Every store method raises this and nothing else for an outage, so the
    agent consumer can close with 4503 and the pages can say "no data"
    without knowing which backend is configured.
    """


class WriteResult(NamedTuple):
    written: int
    duplicate: bool
    #: the 1 s buckets the batch touched, for the live frame publisher
    seconds: tuple[int, ...] = ()
    #: what the batch added to each (second, process group): the publisher
    #: shows it at once instead of waiting for the second to close
    increments: Mapping[tuple[int, str], Frame] | None = None
    #: samples this write dropped (and counted): the ack's ``dropped``; 0 for a duplicate
    dropped: int = 0


class Series(list[tuple[float, Frame]]):
    """Chart points ``(start, frame)``, oldest first; only points that hold data.

    ``step`` is each point's width in seconds (the span for ``derive``),
    ``tier`` the stored resolution the points were merged from.
    """

    def __init__(self, points: Iterable[tuple[float, Frame]] = (), step: int = 1, tier: int = 1):
        super().__init__(points)
        self.step = step
        self.tier = tier


def choose_tier(tiers: Sequence[Tier], since: float, until: float, now: float) -> Tier:
    """The finest tier whose span limit fits and whose retention still covers ``since``."""
    span = until - since
    for tier in tiers:
        if span <= tier.max_span and now - since <= tier.retention + tier.seconds:
            return tier
    return tiers[-1]


class BaseWindowStore(abc.ABC):
    """Async window store; see the module docstring. Options are keyword-only."""

    def __init__(self, url: str | None = None, *, tiers: Sequence[Tier] = DEFAULT_TIERS,
                 raw_retention: float = 3600.0, lifecycle_retention: float = 86400.0,
                 slow_retention: float = 3600.0, slow_kept: int = 2000, slow_stale: float = 60.0,
                 mark_retention: float = 86400.0, process_retention: float = 3600.0,
                 max_processes: int = MAX_PROCESSES_PER_HOST):
        self.url = url
        self.tiers = tuple(sorted((Tier(*t) for t in tiers), key=lambda t: t.seconds))
        self.raw_retention = raw_retention
        self.lifecycle_retention = lifecycle_retention
        self.slow_retention = slow_retention
        self.slow_kept = slow_kept
        #: An active request the agent's stream went this far past (in its own stamps)
        #: without repeating it is stored as expired; a backlog replayed in order never is.
        self.slow_stale = slow_stale
        self.mark_retention = mark_retention
        self.process_retention = process_retention
        #: Records kept per host at most, the least recently seen going first: a
        #: sender inventing pids must not grow the registry every read walks.
        self.max_processes = max_processes
        #: nothing a store keeps outlives this (the coarsest tier's retention)
        self.longest = max(t.seconds + t.retention for t in self.tiers)

    # -- writing -------------------------------------------------------------

    async def awrite_batch(self, host_id: int, instance: str, batch_id: int,
                           samples: Sequence[Mapping[str, Any]], now: float) -> WriteResult:
        """Write a batch once: ids at or below the (host, instance) mark are duplicates.

        Samples that break the checks (``checks``) are dropped; the others'
        raw samples, frames of every touched second and tier, the process
        registry, slow requests and lifecycle events, the count and reasons
        of the dropped ones and the mark change together, or not at all.
        Raises InvalidSample, with nothing written, when the batch still
        cannot be applied (a type or script error), StoreUnavailable for an
        outage.
        """
        batch = prepare(samples, now, self.tiers)
        try:
            written = await self._awrite(host_id, instance, batch_id, batch, now)
        except InvalidSample:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # computing the write: the batch's fault
            problem = f"batch {batch_id} cannot be applied: {type(exc).__name__}: {exc}"
            raise InvalidSample(problem[:300]) from exc
        if written is None:
            return WriteResult(0, True)
        increments = {(bucket, group): frame for (tier, bucket, group), (frame, _) in batch.frames.items()
                      if tier == 1}
        return WriteResult(written, False, tuple(sorted(batch.seconds)), increments, len(batch.dropped))

    async def aset_counters(self, host_id: int, counters: Mapping[str, int], now: float,
                            instance: str = "") -> dict[str, int]:
        """Store a heartbeat of agent ``instance``; what its loss counters grew by since that
        instance's previous heartbeat goes into the host's totals (``loss.LOSS_KINDS``), and the
        growth of ``lost`` into the host frames.

        The totals are what ``ahost_status`` shows under those names: a restarted agent
        (a new instance, or the same one counting from 0) erases nothing, and a heartbeat
        sent twice counts once; returned, for the host's database row. ``bad_samples`` is
        the store's own counter: a heartbeat cannot set it. Raises InvalidSample (nothing
        written) when the stored data does not take it.
        """
        buckets = []
        for tier in self.tiers:
            bucket = math.floor(now) - math.floor(now) % tier.seconds
            buckets.append((tier.seconds, bucket, frame_expiry(tier, bucket, now)))
        agent = {str(k): int(v) for k, v in counters.items() if k != BAD_SAMPLES}
        try:
            return await self._aset_counters(host_id, agent, now, buckets, str(instance))
        except InvalidSample:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # the stored data's fault, not an outage
            raise InvalidSample(f"heartbeat cannot be applied: {type(exc).__name__}: {exc}"[:300]) from exc

    @staticmethod
    def bad_records(batch_id: int, batch: Batch, now: float) -> list[dict[str, Any]]:
        """What is kept of a batch's dropped samples: the newest BAD_KEPT reasons, newest first."""
        return [{"t": now, "batch": batch_id, "reason": reason}
                for _, reason in reversed(batch.dropped[-BAD_KEPT:])]

    # -- reading -------------------------------------------------------------

    async def aframes(self, host_id: int, group: str, since: float, until: float, points: int,
                      now: float | None = None) -> Series:
        """Frames of ``group`` ("*" whole host, "" embedded) merged to at most ``points`` points."""
        now = time.time() if now is None else now
        tier = choose_tier(self.tiers, since, until, now)
        first = math.floor(since) - math.floor(since) % tier.seconds
        step = point_step(tier.seconds, first, until, points)
        buckets = list(range(first, math.ceil(until), tier.seconds))
        # The host frame is not stored: it is the merge of its groups' frames
        # (and of "*" itself, which holds what only the host knows: loss).
        groups = await self._agroups(host_id, first) if group == HOST else [group]
        merged: dict[int, Frame] = {}
        done = 0
        for frames in await self._aframes(host_id, groups, tier.seconds, buckets) if groups else []:
            for i, frame in frames:
                bucket = buckets[i]
                start = first if points <= 1 else bucket - bucket % step
                merge_into(merged.setdefault(start, {}), frame)
            done += len(frames)
            if done > MERGE_ROUND:  # a long window of many groups: let other clients in between
                done = 0
                await asyncio.sleep(0)
        return Series(((float(t), merged[t]) for t in sorted(merged)), step=step, tier=tier.seconds)

    async def aseconds(self, host_id: int, since: int, until: int) -> dict[str, list[tuple[int, Frame]]]:
        """Every group's 1 s frames of the whole seconds [since, until) that hold one, and
        the host's ("*", its groups merged): one read for a host's headline of every group."""
        tier = self.tiers[0].seconds
        buckets = list(range(since - since % tier, until, tier))
        groups = await self._agroups(host_id, since)
        out: dict[str, list[tuple[int, Frame]]] = {}
        host: dict[int, Frame] = {}
        read = await self._aframes(host_id, groups, tier, buckets) if groups else []
        for group, frames in zip(groups, read, strict=True):
            out[group] = [(buckets[i], frame) for i, frame in frames]
            for i, frame in frames:
                merge_into(host.setdefault(buckets[i], {}), frame)
        out[HOST] = sorted(host.items())
        return out

    async def araw(self, host_id: int, since: float, until: float, kinds: Iterable[int] | None = None,
                   limit: int = 1000) -> list[Sample]:
        """The newest ``limit`` raw samples stamped in [since, until), oldest first."""
        wanted = frozenset(kinds) if kinds is not None else None
        out: list[Sample] = []
        async for chunk in self._araw_newest_first(host_id, since - RAW_SKEW, until + RAW_LATE):
            for sample in reversed(unpack_samples(chunk)):
                if since <= sample["t"] < until and (wanted is None or sample["k"] in wanted):
                    out.append(sample)
                    if len(out) >= limit:
                        out.reverse()
                        return out
        out.reverse()
        return out

    async def aacked(self, host_id: int, instance: str) -> int:
        """The highest batch id written for this agent instance (0 if none): ``welcome.acked``."""
        return await self._aacked(host_id, instance)

    async def aprocesses(self, host_id: int, now: float | None = None) -> list[dict[str, Any]]:
        """The process registry, by pid and incarnation.

        Each record: pid, incarnation, group, state (running, stopping,
        stopped, or gone: silent for more than 3 intervals without a
        STOPPED), first_seen / last_seen (sample stamps), identity
        (hostname, versions, MPM, parent pid), interval, threads, and as
        they happen started / stopping / stopped stamps, shutdown_reason,
        process_uptime, lifetime_request_count, active_requests_at_exit,
        graceful_drain.
        """
        now = time.time() if now is None else now
        out = []
        for record in await self._aprocess_records(host_id):
            state = RANKS[int(record.pop("rank", 0))]
            interval = record.get("interval") or 1.0
            if state != "stopped" and now - record["last_seen"] > SILENT_INTERVALS * interval + 1.0:
                state = "gone"
            record["incarnation"] = record.pop("i")
            record["state"] = state
            record.setdefault("group", None)
            record["identity"] = {name: record.pop(name) for name in IDENTITY if name in record}
            out.append(record)
        return sorted(out, key=lambda r: (r["pid"], r["incarnation"]))

    async def aslow(self, host_id: int, state: str | None = None, limit: int = 200,
                    now: float | None = None) -> list[dict[str, Any]]:
        """Slow requests: active (still repeated), expired (no longer repeated, never
        completed: killed, or its process stopped) and completed, newest first.

        An active request is shown expired after three intervals of silence (``slow.views``).
        """
        now = time.time() if now is None else now
        intervals = {f"{r['pid']}:{r['incarnation']}": r.get("interval") or 1.0
                     for r in await self.aprocesses(host_id, now)}
        out = [r for r in views(await self._aslow_records(host_id, limit), intervals, now)
               if state is None or r["state"] == state]
        out.sort(key=lambda r: (r["state"] != "active", -r["stamp"]))
        return out[:limit]

    async def alifecycle(self, host_id: int, since: float, until: float = math.inf) -> list[Sample]:
        """STARTED, STOPPING and STOPPED samples stamped in [since, until), oldest first."""
        return [unpack_sample(blob) for blob in await self._alifecycle(host_id, since, until)]

    async def ahost_status(self, host_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Per host: last_seen (console clock), last_batch, last_heartbeat and agent counters.

        ``counters`` holds the agent's heartbeat counters, except that each of
        ``loss.LOSS_KINDS`` an agent reported is the host's total over its agent instances;
        and, once a sample of the host was dropped, the store's ``bad_samples`` (absent
        means 0).
        """
        return await self._ahost_status(list(host_ids))

    async def abad_samples(self, host_id: int) -> list[dict[str, Any]]:
        """The latest dropped samples of a host, newest first (at most BAD_KEPT):
        ``{"t": console time, "batch": batch id, "reason": "sample 12 (kind 2, pid 4242): ..."}``."""
        return await self._abad_samples(host_id)

    @abc.abstractmethod
    async def aping(self) -> bool:
        """True when the store answers; False (never an exception) when it does not."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the store is not used afterwards."""

    # -- backend primitives ----------------------------------------------------------

    @abc.abstractmethod
    async def _awrite(self, host_id: int, instance: str, batch_id: int, batch: Batch,
                      now: float) -> int | None:
        """Apply the batch atomically with the mark, counting ``batch.dropped`` in the host's
        ``bad_samples`` and keeping ``bad_records``; None when it was a duplicate. Anything
        that fails leaves nothing written; a failure that is not an outage raises InvalidSample."""

    @abc.abstractmethod
    async def _aset_counters(self, host_id: int, counters: dict[str, int], now: float,
                             buckets: list[tuple[int, int, float]], instance: str) -> dict[str, int]:
        """Store counters and the instance's loss counters; add ``loss.loss_growth`` to the host's
        totals, and the growth of ``lost`` to the frames of group "*" in ``buckets`` (tier,
        bucket start, expiry relative to now), marking "*" seen. Returns the host's totals."""

    @abc.abstractmethod
    async def _aacked(self, host_id: int, instance: str) -> int: ...

    @abc.abstractmethod
    async def _aframes(self, host_id: int, groups: list[str], tier: int,
                       buckets: list[int]) -> list[list[tuple[int, Frame]]]:
        """For each group, (index in ``buckets``, frame) of each bucket of ``tier`` that has one."""

    @abc.abstractmethod
    async def _agroups(self, host_id: int, since: float) -> list[str]:
        """The groups with frames at or after ``since`` ("*" too when it holds loss)."""

    @abc.abstractmethod
    def _araw_newest_first(self, host_id: int, since: float, until: float) -> AsyncIterator[bytes]:
        """Async iterator of chunks of packed samples (one or more ``pack_sample`` blobs,
        concatenated) that arrived in [since, until], newest chunk first."""

    @abc.abstractmethod
    async def _aprocess_records(self, host_id: int) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def _aslow_records(self, host_id: int, limit: int) -> SlowRecords:
        """The active requests and the newest ``limit`` ended ones, with the clocks that
        judge the active ones' silence."""

    @abc.abstractmethod
    async def _alifecycle(self, host_id: int, since: float, until: float) -> list[bytes]: ...

    @abc.abstractmethod
    async def _ahost_status(self, host_ids: list[int]) -> dict[int, dict[str, Any]]: ...

    @abc.abstractmethod
    async def _abad_samples(self, host_id: int) -> list[dict[str, Any]]: ...


def import_backend(path: str) -> type[BaseWindowStore]:
    """The class a dotted path names (``package.module.Class``)."""
    module_name, _, attr = path.rpartition(".")
    try:
        cls: type[BaseWindowStore] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(f"window store backend {path!r} cannot be imported: {exc}") from exc
    return cls


def get_store(url: str | None = None, *, backend: str | None = None, **options: Any) -> BaseWindowStore:
    """The store for ``url``: Redis for a ``redis://`` (``rediss://``, ``unix://``) URL,
    the in-process store otherwise. ``backend`` forces a name from BACKENDS or a dotted path."""
    if backend is None:
        backend = "redis" if url and urlsplit(url).scheme in REDIS_SCHEMES else "memory"
    return import_backend(BACKENDS.get(backend, backend))(url, **options)

