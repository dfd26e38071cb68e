"""The Redis window store (redis.asyncio): shared by every console worker.

Key layout, all under one prefix (``wf:`` by default) and one hash tag per
host, so a host's keys live in one cluster slot and the write script may
touch them all:

=================================  ===========================================================
``wf:{H}:hwm:{instance}``          highest batch id written for an agent instance (string)
``wf:{H}:raw``                     stream by arrival, one entry per batch (zlib); MINID-trimmed
``wf:{H}:f{T}:{block}:{group}``    hash: frames (msgpack) of BLOCK buckets of tier T s, field =
                                   offset in the block; TTL per tier. No "*" frames but loss:
                                   the host frame is the merge of its groups', made on read
``wf:{H}:groups``                  zset: group -> time of its latest sample
``wf:{H}:procs`` / ``:procs:seen``  process records by "pid:incarnation"; zset by last seen
``wf:{H}:slow:active`` / ``:seen``  latest active record per request; zset by last seen
``wf:{H}:slow:done`` / ``:ended``  ended requests (completed or expired), one per request key:
                                   zset by stamp; hash of 'c' or 'x' + the packed record
``wf:{H}:slow:at``                 the newest stamp of the latest batch (``SlowRecords``)
``wf:{H}:life``                    STARTED / STOPPING / STOPPED samples, zset by stamp
``wf:{H}:agent``                   last_seen, last_batch, last_heartbeat, ``c:<counter>``: the
                                   agent's counters and the store's own ``c:bad_samples``;
                                   ``t:<kind>``: the host's loss totals (``LOSS_KINDS``)
``wf:{H}:loss`` / ``:loss:seen``    latest loss counters (msgpack) per agent instance; zset by
                                   time heard, the INSTANCES_KEPT latest kept
``wf:{H}:bad``                     list: the latest dropped samples (msgpack), newest first
=================================  ===========================================================

Every key has a TTL, so a host that stops reporting leaves nothing behind.
An outage of any kind (refused, timed out, loading, out of memory) leaves
every method as StoreUnavailable, within ``timeout`` seconds per call. An
error that is the data's (a script or type error: the batch, or what it
meets in the key space) is InvalidSample, and the scripts leave nothing
written when they raise one (``redis_lua``).
Needs Redis 7.0 or later (``XADD <ms>-*``, ``ZADD GT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import zlib
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import urlsplit

import msgpack
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

from ingest.model.frames import Frame, compact
from ingest.model.kinds import HOST

from ..batch import Batch, InvalidSample
from ..loss import INSTANCES_KEPT, LOSS_KINDS
from ..slow import SlowRecords
from ..store import BAD_KEPT, BaseWindowStore, StoreUnavailable
from .redis_lua import COUNTERS, WRITE

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: buckets per frame hash: one key a minute per group at 1 s, 10 min at 10 s, 1 h at 1 min
BLOCK = 60
#: Blocks read per round trip (see _aframes).
READ_ROUND = 1024
_RAW_PAGE = 32  # stream entries are whole batches, up to a few MB each
_COMPRESS_ABOVE = 200  # bytes; below, zlib's own header eats the gain
#: Error replies that say what state the server is in, not what is wrong with the data:
#: an outage (the agent keeps spooling) however they come, from a command or a script.
_SERVER_STATES = frozenset({"OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "MISCONF", "CLUSTERDOWN",
                            "TRYAGAIN", "NOREPLICAS", "NOSCRIPT", "NOAUTH", "NOPERM", "WRONGPASS",
                            "UNBLOCKED"})
_SERVER_ERRORS = (OutOfMemoryError, ReadOnlyError, NoScriptError, AuthenticationError, NoPermissionError)


#: What the client answers (it is made without ``decode_responses``: bytes, never str):
#: members of a sorted set, and the entries of a stream (id, fields).
_Blobs = list[bytes]
_StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def data_fault(exc: BaseException) -> bool:
    """True for an error reply that blames the data: a script error, WRONGTYPE, BADDATA.

    Everything else redis-py raises (connection, timeout, and replies such as
    OOM or READONLY that describe the server) is an outage.
    """
    if not isinstance(exc, ResponseError) or isinstance(exc, _SERVER_ERRORS):
        return False
    return str(exc).split(" ", 1)[0] not in _SERVER_STATES


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class WindowStore(BaseWindowStore):
    """Redis store; ``prefix`` isolates deployments (and tests), ``timeout`` bounds every
    call, ``compress_raw`` trades ~2 us of CPU per sample for about half the raw bytes."""

    def __init__(self, url: str | None = None, *, prefix: str = "wf:", timeout: float = 2.0,
                 compress_raw: bool = True, **options: Any):
        url = url or DEFAULT_URL
        super().__init__(url, **options)
        self.prefix = prefix
        self.timeout = timeout
        self.compress_raw = compress_raw
        parts = urlsplit(url)  # for messages: never the credentials
        self.where = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()
        # One quick retry lets a pooled connection that died with a Redis
        # restart reconnect; more would only delay the 4503 to the agent. A
        # retried write is safe: the batch mark turns it into a duplicate.
        self.redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    retry=Retry(NoBackoff(), 1))
        self._write = self.redis.register_script(WRITE)
        self._counters = self.redis.register_script(COUNTERS)

    def key(self, host_id: int, name: str = "") -> str:
        return f"{self.prefix}{{{host_id}}}:{name}"

    @staticmethod
    def _block(tier: int, bucket: int, group: str) -> tuple[str, str]:
        """(key suffix, field) of a frame: its block of BLOCK buckets, and its offset there."""
        block = bucket - bucket % (tier * BLOCK)
        return f"f{tier}:{block}:{group}", str((bucket - block) // tier)

    def _frame_slot(self, tier: int, bucket: int, group: str, expires: float) -> list[Any]:
        # The hash lives as long as its last bucket does.
        key, field = self._block(tier, bucket, group)
        last = bucket - bucket % (tier * BLOCK) + (BLOCK - 1) * tier
        return [key, field, _ms(expires + last - bucket)]

    @contextlib.asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout * 2 + 1):
                yield
        except RedisError as exc:
            if data_fault(exc):  # never "keep spooling": resending the same data fails the same way
                raise InvalidSample(f"window store refused the {action}: {str(exc)[:240]}") from exc
            raise StoreUnavailable(f"window store {self.where} unavailable ({action}): {exc!r}") from exc
        except (OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"window store {self.where} unavailable ({action}): {exc!r}") from exc

    # -- writing -------------------------------------------------------------

    def _raw_entry(self, batch: Batch) -> tuple[str, bytes]:
        # The samples of one batch share most of their structure (same fields,
        # same identity strings), so compressing them together halves them.
        joined = b"".join(batch.raw)
        if self.compress_raw and len(joined) > _COMPRESS_ABOVE:
            packed = zlib.compress(joined, 1)
            if len(packed) < len(joined):
                return "z", packed
        return "s", joined

    def _payload(self, batch_id: int, batch: Batch, now: float) -> bytes:
        raw_field, raw = self._raw_entry(batch)
        # Redis's cmsgpack predates msgpack's bin type: byte strings go as
        # the old raw type, which Lua reads as its (binary-safe) strings.
        payload: bytes = msgpack.packb(use_bin_type=False, o={
            "n": batch.written, "raw": raw, "raw_field": raw_field, "raw_ret": self.raw_retention,
            "frames": [[*self._frame_slot(tier, bucket, group, expires), compact(frame)]
                       for (tier, bucket, group), (frame, expires) in batch.frames.items()],
            "groups": [[group, when] for group, when in batch.groups.items()],
            "procs": list(batch.processes.items()), "proc_ret": self.process_retention,
            "proc_max": self.max_processes,
            "sact": [[key, seen, blob] for key, (seen, blob) in batch.slow_active.items()],
            "sdone": batch.slow_done, "stop": batch.stopped, "slow_stale": self.slow_stale,
            "latest": batch.latest,
            "slow_ret": self.slow_retention, "slow_kept": self.slow_kept,
            "life": batch.lifecycle, "life_ret": self.lifecycle_retention,
            "agent_ttl": _ms(self.longest), "mark_ttl": _ms(self.mark_retention),
            "bad_n": len(batch.dropped), "bad_kept": BAD_KEPT,
            "bad": [msgpack.packb(record) for record in self.bad_records(batch_id, batch, now)],
        })
        return payload

    async def _awrite(self, host_id: int, instance: str, batch_id: int, batch: Batch,
                      now: float) -> int | None:
        payload = self._payload(batch_id, batch, now)  # TypeError, OverflowError: InvalidSample (base)
        async with self._guard("write"):
            written = await self._write(keys=[self.key(host_id)],
                                        args=[instance, batch_id, repr(now), payload])
        return None if written < 0 else int(written)

    async def _aset_counters(self, host_id: int, counters: dict[str, int], now: float,
                             buckets: list[tuple[int, int, float]], instance: str) -> dict[str, int]:
        payload = msgpack.packb({
            "counters": counters, "instance": instance, "kinds": LOSS_KINDS, "kept": INSTANCES_KEPT,
            "agent_ttl": _ms(self.longest),
            "frames": [self._frame_slot(tier, bucket, HOST, expires) for tier, bucket, expires in buckets
                       if expires > 0],
        })
        async with self._guard("heartbeat"):
            reply = await self._counters(keys=[self.key(host_id)], args=[repr(now), payload])
        return {reply[i].decode(): int(float(reply[i + 1])) for i in range(0, len(reply), 2)}

    # -- reading -------------------------------------------------------------

    async def _aacked(self, host_id: int, instance: str) -> int:
        async with self._guard("acked"):
            mark = await self.redis.get(self.key(host_id, f"hwm:{instance}"))
        return int(mark) if mark else 0

    async def _aframes(self, host_id: int, groups: list[str], tier: int,
                       buckets: list[int]) -> list[list[tuple[int, Frame]]]:
        # One HMGET per block and group. A long window of a host with many
        # groups is thousands of them, so they go in rounds: each round has
        # the guard's time, and the event loop serves others between rounds.
        blocks: dict[str, tuple[list[int], list[str]]] = {}
        for i, bucket in enumerate(buckets):
            key, field = self._block(tier, bucket, "")
            wanted = blocks.setdefault(key, ([], []))
            wanted[0].append(i)
            wanted[1].append(field)
        reads = [(g, key) for g in range(len(groups)) for key in blocks]
        out: list[list[tuple[int, Frame]]] = [[] for _ in groups]
        for start in range(0, len(reads), READ_ROUND):
            chunk = reads[start:start + READ_ROUND]
            async with self._guard("frames"):
                pipe = self.redis.pipeline(transaction=False)
                for g, key in chunk:
                    pipe.hmget(self.key(host_id, key + groups[g]), blocks[key][1])
                replies = await pipe.execute()
            for (g, key), blobs in zip(chunk, replies, strict=True):
                row = out[g]
                for i, blob in zip(blocks[key][0], blobs, strict=True):
                    frame = msgpack.unpackb(blob) if blob else None
                    if frame:  # Lua's cmsgpack writes an empty frame as an empty array
                        row.append((i, frame))
        return out

    async def _agroups(self, host_id: int, since: float) -> list[str]:
        async with self._guard("groups"):
            groups = cast(_Blobs, await self.redis.zrangebyscore(self.key(host_id, "groups"), repr(since),
                                                                 "+inf"))
        return sorted(g.decode() for g in groups)

    async def _araw_newest_first(self, host_id: int, since: float, until: float) -> AsyncIterator[bytes]:
        key, low = self.key(host_id, "raw"), str(math.floor(since * 1000))
        high = str(math.floor(until * 1000))
        while True:
            async with self._guard("raw"):
                entries = cast(_StreamEntries,
                               await self.redis.xrevrange(key, max=high, min=low, count=_RAW_PAGE))
            for _, fields in entries:
                yield zlib.decompress(fields[b"z"]) if b"z" in fields else fields[b"s"]
            if len(entries) < _RAW_PAGE:
                return
            high = "(" + entries[-1][0].decode()

    async def _aprocess_records(self, host_id: int) -> list[dict[str, Any]]:
        async with self._guard("processes"):
            records = await self.redis.hvals(self.key(host_id, "procs"))
        return [msgpack.unpackb(blob) for blob in records]

    async def _aslow_records(self, host_id: int, limit: int) -> SlowRecords:
        async with self._guard("slow"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.key(host_id, "slow:active"))
            pipe.zrange(self.key(host_id, "slow:seen"), 0, -1, withscores=True)
            pipe.zrevrange(self.key(host_id, "slow:done"), 0, max(limit, 1) - 1)
            pipe.get(self.key(host_id, "slow:at"))
            pipe.hget(self.key(host_id, "agent"), "last_batch")
            active, seen, done, stream_at, last_batch = await pipe.execute()
            # a request trimmed in between is simply not there (None)
            ended = cast(list[bytes | None],
                         await self.redis.hmget(self.key(host_id, "slow:ended"), done)) if done else []
        last_seen = dict(seen)
        return SlowRecords([(last_seen.get(key, 0.0), blob) for key, blob in active.items()],
                           [blob[1:] for blob in ended if blob],
                           None if stream_at is None else float(stream_at),
                           None if last_batch is None else float(last_batch))

    async def _alifecycle(self, host_id: int, since: float, until: float) -> list[bytes]:
        high = "+inf" if math.isinf(until) else f"({until!r}"
        async with self._guard("lifecycle"):
            return cast(_Blobs, await self.redis.zrangebyscore(self.key(host_id, "life"), repr(since), high))

    async def _ahost_status(self, host_ids: list[int]) -> dict[int, dict[str, Any]]:
        async with self._guard("host status"):
            pipe = self.redis.pipeline(transaction=False)
            for host_id in host_ids:
                pipe.hgetall(self.key(host_id, "agent"))
            hashes = await pipe.execute() if host_ids else []
        return {host_id: _status(raw) for host_id, raw in zip(host_ids, hashes, strict=True)}

    async def _abad_samples(self, host_id: int) -> list[dict[str, Any]]:
        async with self._guard("bad samples"):
            blobs = await self.redis.lrange(self.key(host_id, "bad"), 0, BAD_KEPT - 1)
        return [msgpack.unpackb(blob) for blob in blobs]

    async def aping(self) -> bool:
        try:
            async with self._guard("ping"):
                return bool(await self.redis.ping())
        except StoreUnavailable:
            return False

    async def aclose(self) -> None:
        await self.redis.aclose()


def _status(raw: dict[bytes, bytes]) -> dict[str, Any]:
    if not raw:
        return {}
    status: dict[str, Any] = {"counters": {}}
    totals: dict[str, int] = {}
    for name, value in raw.items():
        key = name.decode()
        if key.startswith(("c:", "t:")):
            (status["counters"] if key[0] == "c" else totals)[key[2:]] = int(float(value))
        else:
            status[key] = float(value)
    status["counters"].update(totals)
    return status
