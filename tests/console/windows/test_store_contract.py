"""The window store contract: every test runs against the in-process store and
against the real Redis at 127.0.0.1:6379 (random key prefix, cleaned up)."""

from __future__ import annotations

import asyncio
import math

import pytest
from window_helpers import (
    REDIS_URL,
    assert_same_frame,
    batches,
    frame_of,
    scenario,
    vector,
    write_all,
)

from console.windows import BAD_SAMPLES, HOST, get_store
from console.windows import store as store_module
from console.windows.backends import memory
from console.windows.backends import redis as redis_backend
from ingest.model import frames
from ingest.model.frames import derive, merge
from ingest.model.kinds import SLOW
from ingest.model.sample import sample_time

pytestmark = pytest.mark.asyncio
H = 42


def total(series) -> frames.Frame:
    return merge(frame for _, frame in series)


def span_of(samples) -> tuple[float, float]:
    stamps = [sample_time(s) for s in samples]
    return math.floor(min(stamps)), math.floor(max(stamps)) + 1


async def test_a_resent_batch_is_a_duplicate_and_is_not_written_again(store):
    samples = scenario("B")
    now = await write_all(store, H, samples)
    parts = batches(samples)
    assert await store.aacked(H, "agent-1") == len(parts)
    assert await store.aacked(H, "agent-2") == 0
    since, until = span_of(samples)
    before = total(await store.aframes(H, HOST, since, until, 1, now=now))
    for batch_id in (1, 3, len(parts)):
        result = await store.awrite_batch(H, "agent-1", batch_id, parts[batch_id - 1], now)
        assert result[:3] == (0, True, ()) and not result.increments
    assert_same_frame(total(await store.aframes(H, HOST, since, until, 1, now=now)), before)
    assert len(await store.araw(H, since, until, limit=10_000)) == len(samples)
    # a new agent instance has its own mark
    result = await store.awrite_batch(H, "agent-2", 1, parts[0], now)
    assert result.written == len(parts[0]) and not result.duplicate
    assert await store.aacked(H, "agent-2") == 1


@pytest.mark.parametrize("name", ["A", "B", "E"])
async def test_frames_match_derive_of_the_samples(store, name):
    samples = scenario(name)
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    series = await store.aframes(H, HOST, since, until, 1, now=now)
    assert len(series) == 1 and series.tier == 1
    expected = frame_of(samples)
    assert_same_frame(series[0][1], expected)
    got, want = derive(series[0][1], series.step), derive(expected, series.step)
    assert got == pytest.approx(want)
    for group in {s["g"] or "" for s in samples}:
        part = [s for s in samples if (s["g"] or "") == group]
        assert_same_frame(total(await store.aframes(H, group, since, until, 1, now=now)), frame_of(part))


async def test_each_second_holds_the_samples_of_that_second(store):
    samples = scenario("E")
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    series = await store.aframes(H, HOST, since, until, until - since + 1, now=now)
    assert series.step == 1
    expected: dict[int, list] = {}
    for sample in samples:
        expected.setdefault(math.floor(sample_time(sample)), []).append(sample)
    assert [t for t, _ in series] == sorted(expected)
    for start, frame in series:
        assert_same_frame(frame, frame_of(expected[int(start)]))


async def test_tiers_hold_the_same_totals_at_10_s_and_1_min(store):
    samples = scenario("C")
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    whole = frame_of(samples)
    for span, tier in ((600, 1), (2 * 3600, 10), (86400, 60)):
        series = await store.aframes(H, HOST, until - span, until, 10_000, now=now)
        assert series.tier == tier and series.step == tier
        assert all(start % tier == 0 for start, _ in series)
        if span > until - since:
            assert_same_frame(total(series), whole)
    end = math.ceil(until / 10) * 10
    tens = await store.aframes(H, HOST, end - 7200, end, 721, now=now)
    assert tens.step == 10 and len(tens) == math.ceil((until - since) / 10) + 1
    for start, frame in tens:
        seconds = await store.aframes(H, HOST, start, start + 10, 1, now=now)
        assert seconds.tier == 1
        assert_same_frame(frame, total(seconds))


async def test_a_long_window_of_many_groups_is_read_in_rounds_that_let_others_in(store, monkeypatch):
    # A 14-day window of a host with many groups is thousands of blocks: read whole, it held
    # the event loop for seconds and outlived the store's guard ("store unavailable" on a
    # healthy Redis). In small rounds it gives the right totals and others run in between.
    monkeypatch.setattr(redis_backend, "READ_ROUND", 3)
    monkeypatch.setattr(store_module, "MERGE_ROUND", 50)
    base = scenario("C")
    samples = [{**s, "g": f"app{i % 12}"} for i, s in enumerate(base)]
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    ticks = 0

    async def other_client() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_client())
    try:
        series = await store.aframes(H, HOST, now - 14 * 86400, now, 600, now=now)
    finally:
        other.cancel()
    assert_same_frame(total(series), frame_of(samples))
    assert ticks > 1
    for group in ("app0", "app11"):
        part = [s for s in samples if s["g"] == group]
        assert_same_frame(total(await store.aframes(H, group, since, until, 1, now=now)), frame_of(part))


@pytest.mark.parametrize("points", [1, 2, 7, 50, 1000])
async def test_frames_are_downsampled_to_at_most_n_points(store, points):
    samples = scenario("A")
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    series = await store.aframes(H, HOST, since - 0.5, until + 0.5, points, now=now)
    assert 1 <= len(series) <= points
    starts = [start for start, _ in series]
    assert starts == sorted(set(starts))
    assert series.step % series.tier == 0
    if points > 1:
        assert all(start % series.step == 0 for start in starts)
    assert derive(total(series), 1.0)["requests"] == derive(frame_of(samples), 1.0)["requests"]


async def test_data_older_than_a_tier_keeps_is_trimmed_by_the_injected_now(stores):
    store = await stores.make(lifecycle_retention=600.0)
    samples = scenario("E")
    early, late = samples[:150], samples[150:]
    t1 = await write_all(store, H, early)
    t2 = max(s["t"] for s in late) + 3700.0  # written an hour after it happened
    await store.awrite_batch(H, "agent-1", 1000, late, t2)
    since, until = span_of(samples)
    raw = await store.araw(H, since, t2 + 1, limit=10_000)
    assert len(raw) == len(late)  # the early raw samples fell out of the hour
    # the late samples are too old for 1 s frames, not for 10 s frames
    assert_same_frame(total(await store.aframes(H, HOST, since, until, 1, now=t1)), frame_of(early))
    coarse = await store.aframes(H, HOST, since, until, 1, now=t2)
    assert coarse.tier == 10
    assert_same_frame(total(coarse), frame_of(samples))
    assert await store.aprocesses(H, now=t2) == []  # every process last seen > 1 h before t2
    assert await store.alifecycle(H, 0) == []  # lifecycle kept 600 s


async def test_processes_registry_follows_lifecycle_and_pid_reuse(store):
    pid, t = 4242, 1795378300.0
    first_life = [vector("28", pid, 1, t, 1), vector("26", pid, 1, t + 1, 2), vector("25", pid, 1, t + 2, 3),
                  vector("26", pid, 1, t + 2.05, 4), vector("27", pid, 1, t + 2.1, 5)]
    second_life = [vector("28", pid, 2, t + 3, 1), vector("26", pid, 2, t + 4, 2)]
    await store.awrite_batch(H, "a", 1, first_life, t + 2.2)
    await store.awrite_batch(H, "a", 2, second_life, t + 4.1)
    old, new = await store.aprocesses(H, now=t + 4.5)
    assert (old["pid"], old["incarnation"], old["state"]) == (pid, 1, "stopped")
    assert old["shutdown_reason"] == "maximum_requests" and old["group"] == "second"
    assert (old["first_seen"], old["last_seen"], old["started"], old["stopped"]) == (t, t + 2.1, t, t + 2.1)
    assert old["identity"]["hostname"] == "vm" and old["identity"]["mpm_name"] == "event"
    assert old["graceful_drain"] == 1 and old["threads"] == 2
    assert (new["pid"], new["incarnation"], new["state"], new["first_seen"]) == (pid, 2, "running", t + 3)
    assert "shutdown_reason" not in new
    states = {p["incarnation"]: p["state"] for p in await store.aprocesses(H, now=t + 20)}
    assert states == {1: "stopped", 2: "gone"}  # silent for more than 3 intervals
    await store.awrite_batch(H, "a", 3, [vector("25", pid, 2, t + 21, 3)], t + 21)
    assert {p["incarnation"]: p["state"] for p in await store.aprocesses(H, now=t + 21.5)}[2] == "stopping"


async def test_slow_request_goes_from_active_to_completed(store):
    first, repeat, done = vector("16"), vector("17"), vector("18")
    await store.awrite_batch(H, "a", 1, [first], first["t"] + 0.1)
    (active,) = await store.aslow(H, now=first["t"] + 0.5)
    assert (active["state"], active["log_id"], active["duration"]) == ("active", "NSAkEbugP5Q", 1.793297)
    await store.awrite_batch(H, "a", 2, [repeat], repeat["t"] + 0.1)
    (active,) = await store.aslow(H, now=repeat["t"] + 0.5)
    assert (active["state"], active["duration"]) == ("active", 2.793909)
    await store.awrite_batch(H, "a", 3, [done], done["t"] + 0.1)
    (completed,) = await store.aslow(H, now=done["t"] + 0.5)
    assert (completed["state"], completed["log_id"], completed["duration"]) == ("completed", "NSAkEbugP5Q",
                                                                                 3.500402)
    assert completed["fields"]["slow_status"] == done["f"]["slow_status"]
    assert await store.aslow(H, state="active", now=done["t"] + 0.5) == []


async def test_an_active_slow_request_expires_when_its_process_stops(store):
    orphan = vector("32")
    stopped = vector("27", orphan["p"], 1, orphan["t"] + 0.5, orphan["s"] + 1)
    await store.awrite_batch(H, "a", 1, [orphan], orphan["t"] + 0.1)
    assert [r["state"] for r in await store.aslow(H, now=orphan["t"] + 0.2)] == ["active"]
    await store.awrite_batch(H, "a", 2, [stopped], stopped["t"] + 0.1)
    (expired,) = await store.aslow(H, now=stopped["t"] + 0.2)
    assert (expired["state"], expired["log_id"]) == ("expired", "aH9pFDtXPpQ")


async def test_an_active_slow_request_expires_after_three_silent_intervals(stores):
    store = await stores.make(slow_stale=30.0)
    first = vector("16")
    await store.awrite_batch(H, "a", 1, [first], first["t"] + 0.1)
    assert [r["state"] for r in await store.aslow(H, now=first["t"] + 2)] == ["active"]
    assert [r["state"] for r in await store.aslow(H, now=first["t"] + 10)] == ["expired"]
    tick = vector("03", stamp=first["t"] + 31)  # a later write sweeps it out of the active set
    await store.awrite_batch(H, "a", 2, [tick], first["t"] + 31)
    assert await store.aslow(H, state="active", now=first["t"]) == []
    assert [r["log_id"] for r in await store.aslow(H, state="expired", now=first["t"])] == ["NSAkEbugP5Q"]


async def test_slow_requests_of_a_real_capture(store):
    samples = scenario("A")
    now = await write_all(store, H, samples)
    slow = await store.aslow(H, now=now + 60)
    completed = [s for s in samples if s["k"] == SLOW and s["f"]["slow_record_state"] == 1]
    assert sorted(r["duration"] for r in slow if r["state"] == "completed") == sorted(
        s["f"]["slow_duration"] for s in completed)
    # pid 26826 was killed by a graceful restart with a request in flight
    assert [(r["pid"], r["state"]) for r in slow if r["state"] != "completed"] == [(26826, "expired")]


async def test_host_status_and_loss_from_heartbeats(store):
    t = 1795378300.0
    await store.aset_counters(H, {"lost": 3, "received": 100}, t)
    status = await store.ahost_status([H, H + 1])
    assert status[H + 1] == {}
    assert status[H]["counters"] == {"lost": 3, "received": 100}
    assert status[H]["last_seen"] == status[H]["last_heartbeat"] == t
    await store.aset_counters(H, {"lost": 5, "received": 200}, t + 5)
    await store.aset_counters(H, {"lost": 2, "received": 10}, t + 6)  # the agent restarted
    series = await store.aframes(H, HOST, t - 10, t + 10, 1, now=t + 7)
    assert derive(total(series), 20)["loss"] == 3 + 2 + 2
    await store.awrite_batch(H, "a", 1, [vector("03", stamp=t + 7)], t + 8)
    status = (await store.ahost_status([H]))[H]
    assert (status["last_batch"], status["last_seen"], status["last_heartbeat"]) == (t + 8, t + 8, t + 6)
    assert status["counters"]["received"] == 10


async def test_raw_samples_come_back_as_sent(store):
    samples = scenario("D")
    now = await write_all(store, H, samples)
    since, until = span_of(samples)
    assert await store.araw(H, since, until + 1, limit=10_000) == samples
    slow = await store.araw(H, since, until + 1, kinds=[SLOW], limit=5)
    assert slow == [s for s in samples if s["k"] == SLOW][-5:]
    lifecycle = await store.alifecycle(H, since - 5)
    assert [s["k"] for s in lifecycle] == [5, 6, 7] and now > 0


async def test_an_invalid_sample_is_dropped_and_counted_and_the_rest_written(store):
    good = vector("03")
    batch = [good, {"k": 2, "p": 1}, {**good, "f": {"request_count": "many"}}]
    result = await store.awrite_batch(H, "a", 1, batch, good["t"])
    assert (result.written, result.duplicate, result.dropped) == (1, False, 2)
    assert await store.aacked(H, "a") == 1
    assert await store.araw(H, good["t"] - 1, good["t"] + 1) == [good]
    assert (await store.ahost_status([H]))[H]["counters"] == {BAD_SAMPLES: 2}
    newest, oldest = await store.abad_samples(H)
    assert oldest["reason"].startswith("sample 1 (kind 2, pid 1): 'i' must be an integer")
    assert newest["reason"].startswith(f"sample 2 (kind 2, pid {good['p']}): field request_count: ")
    # more in test_store_hostile


async def test_an_empty_batch_moves_the_mark(store):
    assert (await store.awrite_batch(H, "a", 1, [], 1795378300.0))[:3] == (0, False, ())
    assert await store.aacked(H, "a") == 1
    assert await store.aping() is True


async def test_get_store_picks_the_backend_by_url_or_dotted_path():
    assert isinstance(get_store(None), memory.WindowStore)
    assert type(get_store(backend="console.windows.backends.memory.WindowStore")) is memory.WindowStore
    remote = get_store(REDIS_URL, prefix="wftest:unused:")
    assert isinstance(remote, redis_backend.WindowStore) and remote.prefix == "wftest:unused:"
    await remote.aclose()
    with pytest.raises(ImportError, match="nowhere"):
        get_store(backend="nowhere.WindowStore")


async def test_a_flood_of_invented_pids_keeps_only_the_most_recently_seen_processes(stores):
    store = await stores.make(max_processes=50)
    t = 1795378300.0
    for batch in range(4):  # 400 STARTED from pids nobody runs, 100 per batch
        started = [vector("28", 10_000 + batch * 100 + n, 1, t + batch + n / 1000, 1) for n in range(100)]
        await store.awrite_batch(H, "a", batch + 1, started, t + batch + 0.5)
    kept = await store.aprocesses(H, now=t + 4)
    assert sorted(p["pid"] for p in kept) == list(range(10_350, 10_400))
