"""The window store contract, continued: what a hostile sender can and cannot do to a
host's window. Every test runs against the in-process store and the real Redis at
127.0.0.1:6379 (random key prefix, cleaned up), like test_store_contract.

One hostile sample in a batch is dropped and counted; the rest of the batch is
written exactly as if the hostile one had never been sent, every tab of the host
reads back as strict JSON, and a retry of the batch writes nothing more.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from window_helpers import assert_same_frame, frame_of, scenario

from console.live import protocol, publish, tabs
from console.live.protocol import ProtocolError
from console.live.tabs.base import TabRequest
from console.windows import BAD_SAMPLES, HOST, CheckedSamples, InvalidSample, StoreUnavailable, check_samples
from console.windows.store import BAD_KEPT
from ingest.model.fields import SLOT_FIELDS
from ingest.model.kinds import SLOW, STOPPED, TICK
from ingest.model.sample import sample_time

pytestmark = pytest.mark.asyncio
H = 43
AT = 12  # where the hostile sample goes in the batch
HOST_ENTRY = {"id": H, "name": "web-43", "team": "payments", "team_id": 1, "labels": {}, "agent_version": ""}


def good_batch() -> list[dict[str, Any]]:
    """A real capture's 150 samples (every kind), as one batch."""
    return scenario("D")


def first(samples: list[dict[str, Any]], kind: int) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in samples if s["k"] == kind))


def fields(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda sample: sample["f"].update(changes)


def empty_slots(sample: dict[str, Any]) -> None:
    for name in SLOT_FIELDS & sample["f"].keys():
        sample["f"][name] = []


#: name -> (kind of the real sample it is made from, the change, what its reason names)
HOSTILE: dict[str, tuple[int, Callable[[dict[str, Any]], None], str]] = {
    "min time as text": (TICK, fields(request_time_min="0.25"), "field request_time_min"),
    "max time as a list": (TICK, fields(application_time_max=[0.5]), "field application_time_max"),
    "NaN": (TICK, fields(cpu_utilization=math.nan), "field cpu_utilization"),
    "inf": (TICK, fields(request_time=math.inf), "field request_time"),
    "uptime as bytes": (STOPPED, fields(process_uptime=b"\xff\xfe"), "field process_uptime"),
    "slot field as a number": (TICK, fields(request_threads_completed=7), "request_threads_"),
    "empty slot arrays": (TICK, empty_slots, "request_threads_"),
    "2**64-1 counter": (TICK, fields(request_count=2**64 - 1), "field request_count"),
    "group *": (TICK, lambda s: s.update(g="*"), "'g' must be text"),
    "100 kB string": (TICK, fields(hostname="x" * 100_000), "field hostname"),
    "a known id under an unknown name": (TICK, fields(id70="0.25"), "'id70'"),
    "stamp NaN": (SLOW, lambda s: s.update(t=math.nan), "'t' must be a stamp"),
}


def with_hostile(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(the batch, its good samples, the hostile one) for the case ``name``."""
    good = good_batch()
    kind, change, _ = HOSTILE[name]
    bad = first(good, kind)
    change(bad)
    return [*good[:AT], bad, *good[AT:]], good, bad


def strict(value: Any) -> Any:
    """What a page receives: JSON without NaN or Infinity."""
    return json.loads(json.dumps(value, allow_nan=False))


async def state(store: Any, samples: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """Everything a reader can get of host H, for comparing two stores."""
    since = math.floor(min(sample_time(s) for s in samples))
    until = math.floor(max(sample_time(s) for s in samples)) + 1
    groups = sorted({s["g"] or "" for s in samples})
    status = (await store.ahost_status([H]))[H]
    counters = {k: v for k, v in status.get("counters", {}).items() if k != BAD_SAMPLES}
    return {
        "raw": await store.araw(H, since - 60, until + 60, limit=10_000),
        "frames": {g: list(await store.aframes(H, g, since, until, until - since + 1, now=now))
                   for g in [HOST, *groups]},
        "processes": await store.aprocesses(H, now=now),
        "slow": await store.aslow(H, now=now),
        "lifecycle": await store.alifecycle(H, 0),
        "counters": counters,
    }


async def read_every_tab(store: Any, groups: list[str], now: float) -> None:
    """Every tab's snapshot, the host summary and the fleet row, as the pages ask for them
    (each group over 5 minutes, the whole host over 14 days)."""
    asks = [*((group, 300) for group in [HOST, *groups]), (HOST, 14 * 86400)]
    for tab, module in tabs.TABS.items():
        for group, window in asks:
            request = TabRequest(tab=tab, group=group, window=window)
            strict(await module.snapshot(store, HOST_ENTRY, request, now))
            summary = strict(await publish.host_snapshot(store, HOST_ENTRY, request, now))
            assert summary["type"] == "host.snapshot", summary
    (row,) = strict(await publish.fleet_entries(store, [HOST_ENTRY], now))
    assert "error" not in row, row


@pytest.mark.parametrize("name", HOSTILE)
async def test_one_hostile_sample_is_dropped_counted_and_the_rest_written_exactly(stores, name):
    store, control = await stores.make(), await stores.make()
    batch, good, bad = with_hostile(name)
    now = max(s["t"] for s in good) + 0.05
    result = await store.awrite_batch(H, "a", 7, batch, now)
    assert (result.written, result.duplicate, result.dropped) == (len(good), False, 1)
    await control.awrite_batch(H, "a", 7, good, now)
    expected = await state(control, good, now)
    assert await state(store, good, now) == expected
    assert_same_frame(frame_of(expected["raw"]), frame_of(good))

    status = (await store.ahost_status([H]))[H]
    assert status["counters"][BAD_SAMPLES] == 1
    (record,) = await store.abad_samples(H)
    assert (record["t"], record["batch"]) == (now, 7)
    assert record["reason"].startswith(f"sample {AT} (kind {bad['k']}, pid {bad['p']}): ")
    assert HOSTILE[name][2] in record["reason"] and len(record["reason"]) <= 300

    await read_every_tab(store, sorted({s["g"] or "" for s in good}), now)

    again = await store.awrite_batch(H, "a", 7, batch, now + 1)
    assert (again.written, again.duplicate, again.dropped) == (0, True, 0)
    assert await state(store, good, now) == expected
    assert (await store.ahost_status([H]))[H]["counters"][BAD_SAMPLES] == 1
    assert len(await store.abad_samples(H)) == 1


async def test_the_agent_path_drops_the_same_samples_and_pages_see_only_the_good_ones(store):
    batch, good, _ = with_hostile("NaN")
    message = {"t": "batch", "instance": "a", "id": 1, "samples": batch}
    _, _, samples = protocol.validate_batch(message)
    assert isinstance(samples, CheckedSamples) and samples == good
    ((index, reason),) = samples.dropped
    assert index == AT and "cpu_utilization" in reason
    with pytest.raises(ProtocolError, match="cpu_utilization"):
        protocol.validate_sample(batch[AT])
    now = max(s["t"] for s in good) + 0.05
    result = await store.awrite_batch(H, "a", 1, samples, now)  # checked once, not twice
    assert (result.written, result.dropped) == (len(good), 1)
    for second in sorted({math.floor(sample_time(s)) for s in samples}):
        strict(tabs.live_messages(HOST_ENTRY, samples, second, now))


async def test_bad_samples_is_the_stores_counter_and_outlives_heartbeats_and_reconnects(store):
    good = good_batch()
    now = max(s["t"] for s in good) + 0.05
    await store.aset_counters(H, {"received": 10, BAD_SAMPLES: 999}, now)
    assert BAD_SAMPLES not in (await store.ahost_status([H]))[H]["counters"]  # an agent cannot set it
    hostile = [copy.deepcopy(s) for s in good[:BAD_KEPT + 3]]
    for n, sample in enumerate(hostile):
        sample["f"] = {"id70": n}
    await store.awrite_batch(H, "first-instance", 1, [*hostile[:2], *good[:20]], now)
    await store.aset_counters(H, {"received": 20, BAD_SAMPLES: 0}, now + 5)
    # a reconnect is a new instance of the agent, or the same one after a restart: the count stays
    result = await store.awrite_batch(H, "second-instance", 1, [*hostile[2:], *good[20:]], now + 6)
    assert result.dropped == len(hostile) - 2
    status = (await store.ahost_status([H]))[H]
    assert status["counters"] == {"received": 20, BAD_SAMPLES: len(hostile)}
    kept = await store.abad_samples(H)
    assert len(kept) == BAD_KEPT
    assert [r["batch"] for r in kept] == [1] * BAD_KEPT and kept[0]["t"] == now + 6
    # newest first: the last sample of the second batch (its index in that batch) leads
    assert kept[0]["reason"].startswith(f"sample {len(hostile) - 3} ")
    assert all("id70" in r["reason"] for r in kept)


async def test_a_batch_of_only_bad_samples_moves_the_mark_and_counts_them(store):
    tick = {"k": 2, "p": 1, "i": 1, "s": 1, "t": 1795378300.0, "g": None, "n": None,
            "f": {"request_count": -1}}
    bad = [tick, "not a map", {"k": True, "p": 1}]
    result = await store.awrite_batch(H, "a", 1, bad, 1795378300.5)
    assert (result.written, result.duplicate, result.dropped, result.seconds) == (0, False, 3, ())
    assert await store.aacked(H, "a") == 1
    reasons = [r["reason"] for r in await store.abad_samples(H)]
    assert reasons[0].startswith("sample 2: 'k' must be an integer")
    assert reasons[1] == "sample 1: a str, not a map"
    assert reasons[2].startswith("sample 0 (kind 2, pid 1): field request_count: expected an integer")


async def test_check_samples_names_every_envelope_problem():
    good = good_batch()[1]
    cases = {
        "'p' must be an integer": {"p": -1}, "'k' must be": {"k": 256}, "'s' must be": {"s": 2**32},
        "'i' must be": {"i": 1.0}, "'t' must be a stamp": {"t": math.inf}, "'n' must be text": {"n": "*"},
        "'g' must be text": {"g": "x" * 257}, "'f' must be a map": {"f": [1]},
        "unknown field name": {"f": {**good["f"], "extra": 1}},
        "sparse indexes": {"f": {**good["f"], "id999": {-1: 4, "3": 1}}},
    }
    checked = check_samples([{**good, **change} for change in cases.values()] + [good])
    assert checked == [good]
    for (index, reason), expected in zip(checked.dropped, cases, strict=True):
        assert expected in reason and reason.startswith(f"sample {index}")
    assert check_samples(checked) is checked


async def corrupt_frame(store: Any, tier: int, bucket: int, group: str, value: dict[str, Any]) -> Any:
    """Put ``value`` where the stored frame is, as a bug or a person with the key space
    could; returns what restores the frame."""
    redis = getattr(store, "redis", None)
    if redis is None:
        host = store._hosts[H]
        saved = host.frames[(tier, bucket, group)]
        host.frames[(tier, bucket, group)] = (value, saved[1])
        return lambda: host.frames.__setitem__((tier, bucket, group), saved)
    suffix, field = store._block(tier, bucket, group)
    key = store.key(H, suffix)
    saved = await redis.hget(key, field)
    await redis.hset(key, field, msgpack.packb(value))
    return lambda: redis.hset(key, field, saved)


@pytest.mark.parametrize("value", [{"n": "many"}, {"n": math.nan}, {"n": [1]}])
async def test_a_write_that_meets_a_corrupt_frame_is_refused_with_nothing_written(store, value):
    good = good_batch()
    now = max(s["t"] for s in good) + 0.05
    await store.awrite_batch(H, "a", 1, good, now)
    before = await state(store, good, now)
    second, group = math.floor(sample_time(good[1])), good[1]["g"] or ""
    restore = await corrupt_frame(store, 1, second, group, value)
    with pytest.raises(InvalidSample, match=r"frame|TypeError") as refused:
        await store.awrite_batch(H, "a", 2, good, now + 1)
    assert not isinstance(refused.value, StoreUnavailable)
    assert await store.aacked(H, "a") == 1  # the mark did not move
    result = restore()
    if result is not None:
        await result
    assert await state(store, good, now) == before  # and nothing else did
    assert (await store.awrite_batch(H, "a", 2, good[:5], now + 1)).written == 5
