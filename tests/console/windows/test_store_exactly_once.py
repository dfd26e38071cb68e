"""Slow requests replayed from a spool land as they happened, on both backends.

A console outage leaves the agent spooling; when the console is back, the
spool is sent oldest first, minutes after the samples were stamped. What a
user sees on the Slow tab must then be what they would have seen live:
every completed request, and no request expired that completed later.
"""

from __future__ import annotations

from typing import Any

import pytest
from window_helpers import batches, vector

from ingest.model.sample import Sample

pytestmark = pytest.mark.asyncio
H = 44
T0 = 1795378300.0
PIDS = (31001, 31002, 31003, 31004)


def tick(pid: int, stamp: float) -> Sample:
    return vector("03", pid, stamp=stamp)


def slow(pid: int, request: str, start: float, stamp: float, completed: bool = False) -> Sample:
    """A record of one slow request: active (vector 16) or completed (vector 18)."""
    sample = vector("18" if completed else "16", pid, stamp=stamp)
    sample["f"].update(slow_log_id=request, slow_start_stamp=start, slow_duration=stamp - start)
    return sample


def request_life(pid: int, request: str, start: float, seconds: int,
                 completed: bool = True) -> list[Sample]:
    """An active record every second of the request, then (if it completes) its completion."""
    out = [slow(pid, request, start, start + n + 0.5) for n in range(seconds)]
    if completed:
        out.append(slow(pid, request, start, start + seconds + 0.5, completed=True))
    return out


def five_minutes() -> tuple[list[Sample], set[str]]:
    """Four processes ticking every second for 5 minutes, each with a slow request always
    in flight (2 to 90 s long, some longer than the staleness bound): (samples, requests)."""
    samples: list[Sample] = []
    requests: set[str] = set()
    for n, pid in enumerate(PIDS):
        samples += [tick(pid, T0 + s + 0.1 * n) for s in range(300)]
        start, length = T0 + 0.2 * n, 2 + 11 * n
        while start + length + 1 < T0 + 300:
            request = f"r{pid}-{len(requests)}"
            requests.add(request)
            samples += request_life(pid, request, start, length)
            start, length = start + length + 1, 2 + (length * 7 + 5) % 89
    return sorted(samples, key=lambda s: s["t"]), requests


async def replay(store: Any, samples: list[Sample], now: float, first_id: int = 1) -> float:
    """Send ``samples`` as an agent empties its spool: in order, quickly, from console time ``now``."""
    for batch_id, batch in enumerate(batches(samples), first_id):
        now += 0.002
        await store.awrite_batch(H, "agent-1", batch_id, batch, now)
    return now


def states(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record in records:
        out.setdefault(record["state"], set()).add(record["log_id"])
    return out


async def test_a_five_minute_backlog_replayed_late_shows_every_completed_request_and_none_expired(stores):
    samples, requests = five_minutes()
    # the cap holds exactly the requests: one false expired copy would push a completed one out
    store = await stores.make(slow_kept=len(requests))
    now = await replay(store, samples, T0 + 300 + 600)  # the console was back 10 minutes later
    slow = await store.aslow(H, limit=10_000, now=now + 0.5)
    assert states(slow) == {"completed": requests}
    assert len(slow) == len(requests)


async def test_a_backlog_cut_by_an_outage_mid_request_still_completes_without_an_expired_copy(store):
    samples, requests = five_minutes()
    half = len(samples) // 2
    now = await replay(store, samples[:half], T0 + 0.05)  # live, then the console goes down
    now = await replay(store, samples[half:], now + 600, first_id=10_000)
    assert states(await store.aslow(H, limit=10_000, now=now + 0.5)) == {"completed": requests}


async def test_the_requests_of_an_agent_that_went_silent_expire_and_a_late_completion_replaces_them(store):
    pid = PIDS[0]
    life = request_life(pid, "cut-off", T0, 10, completed=False)
    ticks = [tick(pid, T0 + s) for s in range(10)]
    for batch_id, sample in enumerate(sorted(life + ticks, key=lambda s: s["t"]), 1):
        await store.awrite_batch(H, "agent-1", batch_id, [sample], sample["t"] + 0.05)
    last = life[-1]["t"] + 0.05
    assert states(await store.aslow(H, now=last + 1)) == {"active": {"cut-off"}}
    # the agent is not heard from again: its request is shown expired, on the console's clock
    assert states(await store.aslow(H, now=last + 30)) == {"expired": {"cut-off"}}
    assert [r["log_id"] for r in await store.aslow(H, state="expired", now=last + 30)] == ["cut-off"]
    # it comes back an hour later with its spool: the completion is the only copy
    done = slow(pid, "cut-off", T0, T0 + 10.5, completed=True)
    await store.awrite_batch(H, "agent-1", 100, [done], last + 3600)
    (record,) = await store.aslow(H, now=last + 3600.5)
    assert (record["state"], record["log_id"]) == ("completed", "cut-off")


async def test_a_request_its_process_went_on_without_is_stored_expired_and_a_repeat_revives_it(store):
    pid = PIDS[1]
    await store.awrite_batch(H, "agent-1", 1, [slow(pid, "lost-end", T0, T0 + 0.5)], T0 + 0.55)
    # the completion was lost; the process ticks on for two minutes, live
    for n in range(1, 121):
        await store.awrite_batch(H, "agent-1", 1 + n, [tick(pid, T0 + n)], T0 + n + 0.05)
    now = T0 + 120.1
    assert states(await store.aslow(H, now=now)) == {"expired": {"lost-end"}}
    assert states(await store.aslow(H, now=T0)) == {"expired": {"lost-end"}}  # stored so, not only shown
    # a record of it after all (reordered on the way): active again, and no expired copy left
    await store.awrite_batch(H, "agent-1", 200, [slow(pid, "lost-end", T0, T0 + 120.5)], now + 0.5)
    assert states(await store.aslow(H, now=now + 1)) == {"active": {"lost-end"}}
    done = slow(pid, "lost-end", T0, T0 + 121.5, completed=True)
    late = slow(pid, "lost-end", T0, T0 + 121.0)
    await store.awrite_batch(H, "agent-1", 201, [done], now + 1.5)
    await store.awrite_batch(H, "agent-1", 202, [late], now + 2)  # an active record after its end
    slow_now = await store.aslow(H, now=now + 2.5)
    assert [(r["state"], r["log_id"]) for r in slow_now] == [("completed", "lost-end")]


async def test_a_resent_completion_keeps_one_record(store):
    life = request_life(PIDS[2], "once", T0, 3)
    now = await replay(store, life, T0 + 10)
    await replay(store, life[-1:], now, first_id=50)  # the same completion, in a new batch
    assert [r["state"] for r in await store.aslow(H, now=now + 1)] == ["completed"]


async def test_a_batch_without_a_sample_to_write_ends_no_request(store):
    await store.awrite_batch(H, "agent-1", 1, [slow(PIDS[3], "going-on", T0, T0 + 0.5)], T0 + 0.55)
    await store.awrite_batch(H, "agent-1", 2, [], T0 + 0.6)
    await store.awrite_batch(H, "agent-1", 3, [{"k": 2, "p": PIDS[3]}], T0 + 0.7)  # dropped by the checks
    assert states(await store.aslow(H, now=T0 + 1)) == {"active": {"going-on"}}
