"""Whether the Redis under the window store keeps what it acknowledged, and whether it kept it.

An agent forgets a batch once the console acks it, and the console acks
once Redis has the write: what Redis loses on a restart is lost for good,
silently. Whether it would is a matter of its configuration (README,
"Redis configuration"): an append-only file (``appendonly yes``) fsynced
``everysec`` (a crash of the machine loses at most about a second) or
``always``. Anything else - no AOF, ``appendfsync no``, or a
``maxmemory-policy`` that evicts keys when Redis is full - is *at risk*.
CONFIG may be renamed or refused (managed Redis): then ``INFO persistence``
still tells whether the AOF is on, and failing that the verdict is
``unknown``, never an error.

Whether it *did* keep its data is told by a marker key (``<prefix>since``,
the console time the store began to hold data) that lives as long as the
rest does (its TTL is the store's longest, renewed at each check, so an
idle store leaves nothing behind either): a Redis that comes back without
it has lost its history, and ``data_since`` says from when the store has
data again. A change of Redis's
``run_id`` says that Redis restarted at all.

Plain Python like the rest of ``console.windows``: the live consumers ask
``store_state`` (cheap: one answer a store per ``CHECK_EVERY`` seconds is
shared by every caller) and show what it says.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from .store import BaseWindowStore

log = logging.getLogger("console.windows.durability")

#: Seconds one store state is shared by every caller before it is read again.
CHECK_EVERY = 2.0
#: Seconds between reads of the configuration (also read again after a Redis restart).
CONFIG_EVERY = 60.0
#: Seconds a read of the state may take: a slow Redis is the pings' news, not this one's.
READ_TIMEOUT = 3.0
_SETTINGS = ("appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy")
FIX = ("in redis.conf: appendonly yes, appendfsync everysec (or always), maxmemory-policy noeviction; "
       "on a running Redis: CONFIG SET appendonly yes, then CONFIG REWRITE")

DURABLE, AT_RISK, UNKNOWN = "durable", "at risk", "unknown"


class DurabilityMessage(TypedDict):
    """``durability`` in the live protocol's ``hello`` and ``status`` (docs/live-protocol.md)."""

    state: str
    text: str
    fix: str


class StoreStateMessage(TypedDict):
    """What ``hello`` and ``status`` carry of a store's state (``StoreState.message``)."""

    durability: DurabilityMessage
    data_since: float | None
    history_lost_at: float | None


@dataclass(frozen=True)
class Durability:
    """A verdict on Redis's configuration: ``state`` one of DURABLE, AT_RISK, UNKNOWN;
    ``text`` one line for the status bar, ``fix`` what to change ("" when nothing)."""

    state: str
    text: str
    fix: str = ""

    def message(self) -> DurabilityMessage:
        return {"state": self.state, "text": self.text, "fix": self.fix}


def _log(durability: Durability) -> None:
    level = logging.INFO if durability.state == DURABLE else logging.WARNING
    fix = f"; fix: {durability.fix}" if durability.fix else ""
    log.log(level, "window store: %s%s", durability.text, fix)


def judge(config: Mapping[str, str] | None, aof_enabled: bool | None = None) -> Durability:
    """The verdict on CONFIG GET's answer; on ``INFO persistence``'s ``aof_enabled`` when
    CONFIG could not be read (``config`` None); UNKNOWN when neither could."""
    if config is None:
        if aof_enabled is False:
            return Durability(AT_RISK, "Redis would lose acknowledged data on a restart: "
                              "its append-only file is off", FIX)
        why = "CONFIG is renamed or not allowed"
        if aof_enabled:
            return Durability(UNKNOWN, f"Redis keeps an append-only file, but its fsync policy is unknown "
                              f"({why})", FIX)
        return Durability(UNKNOWN, f"whether Redis keeps acknowledged data is unknown ({why})", FIX)
    problems = []
    if config.get("appendonly", "").lower() != "yes":
        snapshots = "only what its last RDB snapshot holds survives" if config.get("save") else \
            "nothing survives"
        problems.append(f"appendonly is no: on a restart {snapshots}")
    elif config.get("appendfsync", "").lower() not in ("everysec", "always"):
        problems.append("appendfsync is no: a crash of the machine loses what the OS had not written "
                        "(up to about 30 s)")
    policy = config.get("maxmemory-policy", "noeviction").lower()
    if config.get("maxmemory", "0") not in ("", "0") and policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy}: a full Redis drops stored keys")
    if problems:
        return Durability(AT_RISK, "Redis would lose acknowledged data: " + "; ".join(problems), FIX)
    fsync = config.get("appendfsync", "").lower()
    loses = "nothing acknowledged" if fsync == "always" else "at most about 1 s on a crash of the machine"
    return Durability(DURABLE, f"Redis keeps acknowledged data (appendonly yes, appendfsync {fsync}: "
                      f"loses {loses})")


@dataclass(frozen=True)
class StoreState:
    """What the pages' status bar says about the store's Redis.

    ``data_since``: console time from which the store holds data (None when
    unknown); ``lost_at``: when this console process saw Redis come back
    without its data (None when it has not); ``run_id``: Redis's, to tell a restart.
    """

    durability: Durability
    run_id: str | None = None
    data_since: float | None = None
    lost_at: float | None = None

    def message(self) -> StoreStateMessage:
        return {"durability": self.durability.message(), "data_since": self.data_since,
                "history_lost_at": self.lost_at}


async def read_config(redis: Any) -> tuple[dict[str, str] | None, bool | None]:
    """CONFIG GET of the persistence settings, or (None, aof_enabled from INFO) when CONFIG is
    refused or renamed; (None, None) when that fails too. An outage raises (RedisError, OSError)."""
    try:
        answer = await redis.execute_command("CONFIG GET", *_SETTINGS)
        return {str(k): str(v) for k, v in dict(answer).items()}, None
    except ResponseError:  # unknown command (renamed), NOPERM (ACL): not an outage
        pass
    try:
        aof = (await redis.info("persistence")).get("aof_enabled")
    except ResponseError:
        return None, None
    return None, None if aof is None else bool(int(aof))


class Watch:
    """One store's state, read at most every CHECK_EVERY seconds whoever asks."""

    def __init__(self, store: BaseWindowStore, redis: Redis) -> None:
        self.redis = redis
        self.marker = f"{getattr(store, 'prefix', 'wf:')}since"
        self.marker_ttl = max(1, math.ceil(getattr(store, "longest", 86400.0) * 1000))
        self.state: StoreState | None = None
        self.checked_at = -float("inf")
        self.config_at = -float("inf")

    async def check(self, now: float) -> StoreState | None:
        """The state, read again when it is older than CHECK_EVERY; None while Redis is down."""
        if now - self.checked_at < CHECK_EVERY:
            return self.state
        self.checked_at = now  # callers meanwhile share the previous answer
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                self.state = await self._read(now)
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("the store's state cannot be read: %r", exc)
            self.checked_at = -float("inf")  # next caller tries again
            return None
        return self.state

    async def _read(self, now: float) -> StoreState:
        previous = self.state
        run_id = (await self.redis.info("server")).get("run_id")
        restarted = previous is not None and run_id != previous.run_id
        durability = previous.durability if previous is not None else None
        if durability is None or restarted or now - self.config_at >= CONFIG_EVERY:
            durability = judge(*await read_config(self.redis))
            self.config_at = now
            if previous is None or durability != previous.durability:
                _log(durability)
        await self.redis.set(self.marker, repr(now), nx=True, px=self.marker_ttl)
        since = float(await self.redis.getex(self.marker, px=self.marker_ttl) or now)
        lost_at = previous.lost_at if previous is not None else None
        if previous is not None and previous.data_since is not None and since > previous.data_since:
            lost_at = since
            log.warning("window store: Redis came back without its data (restarted: %s); the store has "
                        "data again from console time %.0f", restarted, since)
        return StoreState(durability, run_id, since, lost_at)


_watches: weakref.WeakKeyDictionary[BaseWindowStore, Watch] = weakref.WeakKeyDictionary()


def known_state(store: BaseWindowStore) -> StoreState | None:
    """The store's last state read by anybody, without asking Redis (None: never read)."""
    watch = _watches.get(store) if getattr(store, "redis", None) is not None else None
    return watch.state if watch is not None else None


async def store_state(store: BaseWindowStore, now: float | None = None) -> StoreState | None:
    """The store's state for the pages; None for a store without Redis, or while it is down."""
    redis: Redis | None = getattr(store, "redis", None)
    if redis is None:
        return None
    watch = _watches.get(store)
    if watch is None:
        watch = _watches[store] = Watch(store, redis)
    return await watch.check(time.time() if now is None else now)


def check_at_start(url: str) -> Durability:
    """Read, judge and log what the Redis at ``url`` keeps, from a synchronous caller (the
    console's start, before its event loop runs): in a thread of its own, so that no event
    loop of the caller's is made, closed or replaced."""
    verdict: list[Durability] = []

    async def read() -> Durability:
        client = Redis.from_url(url, socket_timeout=READ_TIMEOUT, socket_connect_timeout=READ_TIMEOUT)
        try:
            async with asyncio.timeout(READ_TIMEOUT * 2):
                return judge(*await read_config(client))
        finally:
            await client.aclose()

    def run() -> None:
        try:
            verdict.append(asyncio.run(read()))
        except (RedisError, OSError, TimeoutError) as exc:
            verdict.append(Durability(UNKNOWN, f"Redis did not answer at the console's start ({exc!r})", FIX))

    thread = threading.Thread(target=run, name="redis durability check", daemon=True)
    thread.start()
    thread.join(READ_TIMEOUT * 3)
    silent = Durability(UNKNOWN, "Redis did not answer at the console's start", FIX)
    result = verdict[0] if verdict else silent
    _log(result)
    return result
