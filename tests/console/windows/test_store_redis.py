"""Redis-only behaviour: outages surface as StoreUnavailable without hanging,
a write is one round trip, every key expires. Outage tests kill and pause
their own redis-server, never the shared one."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.redis_server import OwnRedis
from window_helpers import Stores, batches, scenario, vector, write_all

from console.windows import HOST, InvalidSample, StoreUnavailable, get_store

pytestmark = pytest.mark.asyncio
H = 7


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.signal(signal.SIGCONT)
    server.stop()


@pytest_asyncio.fixture
async def shared():
    made = Stores("redis")
    yield made
    await made.close()


async def test_every_method_raises_store_unavailable_while_redis_is_down(private_redis):
    store = get_store(private_redis.url, timeout=0.5)
    tick = vector("03")
    now = tick["t"] + 0.1
    assert (await store.awrite_batch(H, "a", 1, [tick], now)).written == 1
    private_redis.stop()
    calls = {
        "awrite_batch": lambda: store.awrite_batch(H, "a", 2, [tick], now),
        "aacked": lambda: store.aacked(H, "a"),
        "aframes": lambda: store.aframes(H, HOST, now - 60, now, 60, now=now),
        "araw": lambda: store.araw(H, now - 60, now),
        "aprocesses": lambda: store.aprocesses(H, now),
        "aslow": lambda: store.aslow(H, now=now),
        "alifecycle": lambda: store.alifecycle(H, now - 60),
        "aset_counters": lambda: store.aset_counters(H, {"lost": 1}, now),
        "ahost_status": lambda: store.ahost_status([H]),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="unavailable"):
            await call()
        assert time.monotonic() - started < 2.0, name
    assert await store.aping() is False
    private_redis.start()  # same port, empty: the mark is gone with the data
    assert await store.aping() is True
    assert (await store.awrite_batch(H, "a", 2, [tick], now)).written == 1
    assert await store.aacked(H, "a") == 2
    await store.aclose()


async def test_a_hung_redis_times_out_instead_of_hanging(private_redis):
    store = get_store(private_redis.url, timeout=0.5)
    tick = vector("03")
    assert await store.aping()
    private_redis.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.awrite_batch(H, "a", 1, [tick], tick["t"])
        assert time.monotonic() - started < 3.0
        assert await store.aping() is False
    finally:
        private_redis.signal(signal.SIGCONT)
    # The write may have run once Redis woke up; the mark makes the retry safe.
    result = await store.awrite_batch(H, "a", 1, [tick], tick["t"])
    assert result.duplicate or result.written == 1
    assert await store.aacked(H, "a") == 1
    await store.aclose()


async def test_a_batch_is_one_round_trip(shared):
    store = await shared.make()
    samples = scenario("A")[:400]
    await store.awrite_batch(H, "a", 1, samples[:10], samples[9]["t"])  # loads the script
    commands: list[str] = []
    execute = store.redis.execute_command

    async def counting(*args, **options):
        commands.append(str(args[0]))
        return await execute(*args, **options)

    store.redis.execute_command = counting
    await write_all(store, H, samples[10:], first_id=2)
    assert commands and set(commands) == {"EVALSHA"}
    assert len(commands) == len(batches(samples[10:]))


async def test_every_key_expires_and_stays_under_the_prefix(shared):
    store = await shared.make()
    now = await write_all(store, H, scenario("A"))
    await store.aset_counters(H, {"lost": 1}, now)
    assert (await store.awrite_batch(H, "a", 1, [{"k": 2}], now)).dropped == 1
    base = store.key(H)
    keys = [k.decode() async for k in store.redis.scan_iter(match=store.prefix + "*")]
    assert keys and all(k.startswith(base) for k in keys)
    ttls = [await store.redis.pttl(k) for k in keys]
    assert all(ttl > 0 for ttl in ttls)
    kinds = {k[len(base):].split(":")[0] for k in keys}
    assert {"raw", "f1", "f10", "f60", "procs", "slow", "life", "agent", "hwm", "bad"} <= kinds


async def key_space(store) -> dict[bytes, Any]:
    """Every key of the store and its value (a hash's DUMP may change with a mere read, while
    Redis rehashes it): equal means nothing was written."""
    redis, out = store.redis, {}
    async for key in redis.scan_iter(match=store.prefix + "*"):
        kind = (await redis.type(key)).decode()
        read = {"string": redis.get, "hash": redis.hgetall, "list": lambda k: redis.lrange(k, 0, -1),
                "zset": lambda k: redis.zrange(k, 0, -1, withscores=True), "stream": redis.xrange}[kind]
        out[key] = (kind, await read(key))
    return out


async def ttls(store) -> dict[bytes, int]:
    return {k: await store.redis.pttl(k) async for k in store.redis.scan_iter(match=store.prefix + "*")}


def not_refreshed(before: dict[bytes, int], after: dict[bytes, int]) -> bool:
    """No key's time to live was set again (a write would have made it longer)."""
    return before.keys() == after.keys() and all(after[k] <= before[k] for k in before)


async def corrupt(store, name: str) -> None:
    """A wrong type, or a value no write could have stored, where the write script will look."""
    key = store.key(H, name.split("#")[0])
    if name == "life":  # the last thing the script writes, once everything else was
        await store.redis.delete(key)
        await store.redis.set(key, "not a sorted set")
    elif name in ("slow:done", "slow:ended"):
        await store.redis.delete(key)
        await store.redis.rpush(key, "not", "a", "sorted", "set")
    elif name == "agent":
        await store.redis.hset(key, "last_seen", "soon")
    elif name == "procs":
        field = (await store.redis.hkeys(key))[0]
        await store.redis.hset(key, field, b"\xc1")
    elif name == "hwm#text":
        await store.redis.set(store.key(H, "hwm:a"), "many")


@pytest.mark.parametrize(("name", "error"), [("life", "WRONGTYPE"), ("slow:done", "WRONGTYPE"),
                                             ("slow:ended", "WRONGTYPE"),
                                             ("agent", "BADDATA"), ("procs", "BADDATA"),
                                             ("hwm#text", "BADDATA")])
async def test_a_script_error_is_a_refused_batch_with_nothing_written(shared, name, error):
    store = await shared.make()
    samples = scenario("D")
    now = max(s["t"] for s in samples) + 0.05
    await store.awrite_batch(H, "a", 1, samples[:75], now)
    await corrupt(store, name)
    before, lives = await key_space(store), await ttls(store)
    with pytest.raises(InvalidSample, match=error):
        await store.awrite_batch(H, "a", 2, samples[75:], now + 1)
    assert await key_space(store) == before  # not one key, not the mark
    assert not_refreshed(lives, await ttls(store))
    if name != "hwm#text":
        assert await store.aacked(H, "a") == 1
    with pytest.raises(InvalidSample, match=error):  # the same batch again: refused again, not doubled
        await store.awrite_batch(H, "a", 2, samples[75:], now + 1)
    assert await key_space(store) == before


@pytest.mark.parametrize(("name", "error"), [("groups", "WRONGTYPE"), ("loss:seen", "WRONGTYPE"),
                                             ("loss#field", "BADDATA"), ("agent#total", "BADDATA")])
async def test_a_heartbeat_that_meets_a_wrong_type_writes_nothing(shared, name, error):
    store = await shared.make()
    now = 1795378300.0
    await store.aset_counters(H, {"lost": 1}, now, instance="a")
    key = store.key(H, name.split("#")[0])
    if name == "loss#field":
        await store.redis.hset(key, "a", b"\xc1")
    elif name == "agent#total":
        await store.redis.hset(key, "t:lost", "many")
    else:
        await store.redis.delete(key)
        await store.redis.set(key, "not a sorted set")
    before, lives = await key_space(store), await ttls(store)
    with pytest.raises(InvalidSample, match=error):
        await store.aset_counters(H, {"lost": 5}, now + 5, instance="a")
    assert await key_space(store) == before
    assert not_refreshed(lives, await ttls(store))


async def test_out_of_memory_is_an_outage_with_nothing_written(private_redis):
    store = get_store(private_redis.url, timeout=2.0)
    samples = scenario("D")
    now = max(s["t"] for s in samples) + 0.05
    assert (await store.awrite_batch(H, "a", 1, samples[:75], now)).written == 75
    await store.redis.config_set("maxmemory", "1")  # noeviction, the default: every write is refused
    try:
        before, lives = await key_space(store), await ttls(store)
        with pytest.raises(StoreUnavailable, match="OutOfMemoryError"):
            await store.awrite_batch(H, "a", 2, samples[75:], now + 1)
        assert await key_space(store) == before
        assert not_refreshed(lives, await ttls(store))
    finally:
        await store.redis.config_set("maxmemory", "0")
    assert (await store.awrite_batch(H, "a", 2, samples[75:], now + 1)).written == len(samples) - 75
    assert await store.aacked(H, "a") == 2
    await store.aclose()
