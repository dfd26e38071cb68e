"""The Processes tab's server side: rows, events and restarts from a real store, and the live part."""

from __future__ import annotations

import json
import math

import pytest
from tab_helpers import sample, write

from console.live.tabs import processes
from console.live.tabs.base import TabRequest
from console.windows import get_store
from ingest.model.kinds import STARTED, STOPPED, STOPPING, TICK

HOST = {"id": 7, "name": "web-3"}
T0 = 1_795_000_000.0


def ticks(pid: int, start: float, end: float, group: str | None = "app0", inc: int = 1, **fields) -> list:
    base = {"sample_period": 1.0, "telemetry_interval": 1.0, "request_threads_maximum": 4,
            "request_count": 5, "request_throughput": 5.0, "capacity_utilization": 0.25,
            "cpu_utilization": 0.5, "memory_rss": 50 << 20, "process_parent_pid": 99}
    return [sample(TICK, pid, t, group, inc, **{**base, **fields})
            for t in [start + n for n in range(int(end - start) + 1)]]


def scenario() -> list[dict]:
    """app0: pid 100 restarts on restart_interval, 101 replaces it; app1: 200 runs (started before
    anything was seen), 300 is killed with HTML in its reason and in the group."""
    out = [sample(STARTED, 100, T0, process_parent_pid=99), *ticks(100, T0 + 1, T0 + 49),
           sample(STOPPING, 100, T0 + 49.5, shutdown_reason="restart_interval",
                  active_requests_at_decision=2),
           sample(STOPPED, 100, T0 + 50.2, shutdown_reason="restart_interval", process_uptime=50.2,
                  lifetime_request_count=1234, active_requests_at_exit=0, graceful_drain=1),
           sample(STARTED, 101, T0 + 50.3, process_parent_pid=99), *ticks(101, T0 + 51, T0 + 100),
           *ticks(200, T0, T0 + 100, group="app1", capacity_utilization=0.75),
           sample(STARTED, 300, T0 + 10, group="<b>x</b>", process_parent_pid=99),
           sample(STOPPING, 300, T0 + 80, group="<b>x</b>", shutdown_reason="\ufffd<img src=x>",
                  active_requests_at_decision=1),
           sample(STOPPED, 300, T0 + 81, group="<b>x</b>", process_uptime=71.0, lifetime_request_count=7,
                  active_requests_at_exit=1, graceful_drain=0)]
    return sorted(out, key=lambda s: s["t"])


async def snap(store, now: float, **request) -> dict:
    body = await processes.snapshot(store, HOST, TabRequest(tab="processes", **request), now)
    json.dumps(body, allow_nan=False)  # strict JSON, as the page parses it
    return body


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["key"]: row for row in rows}


@pytest.mark.asyncio
async def test_snapshot_rows_events_and_restarts(store):
    now = await write(store, HOST["id"], scenario())
    body = await snap(store, now, window=300)
    rows = by_key(body["rows"])
    assert list(rows) == ["300:1", "100:1", "101:1", "200:1"]  # by group ("<b>x</b>" < "app0"), then start
    old = rows["100:1"]
    assert old["state"] == "stopped" and old["parent"] == 99
    assert (old["started"], old["stopping"], old["stopped"]) == (T0, T0 + 49.5, T0 + 50.2)
    assert old["reason"] == "restart_interval" and old["category"] == "planned"
    assert (old["at_decision"], old["at_exit"], old["drain"], old["uptime"], old["requests"]) == \
        (2, 0, True, 50.2, 1234)
    killed = rows["300:1"]
    assert killed["group"] == "<b>x</b>"  # as text: the page never parses it
    assert killed["reason"] == "\ufffd<img src=x>" and killed["category"] == "unplanned"
    assert killed["drain"] is False and killed["at_exit"] == 1
    # the table's columns come from each live process's newest tick
    assert rows["200:1"]["state"] == "running" and rows["200:1"]["capacity"] == 0.75
    assert rows["200:1"]["throughput"] == 5.0 and rows["200:1"]["memory_rss"] == 50 << 20
    assert "started" not in rows["200:1"]
    assert rows["101:1"]["cpu"] == 0.5 and "capacity" not in old
    # events: oldest first, STOPPING / STOPPED carry reason, category and in-flight counts
    assert [(e["kind"], e["pid"]) for e in body["events"]] == [
        ("started", 100), ("started", 300), ("stopping", 100), ("stopped", 100), ("started", 101),
        ("stopping", 300), ("stopped", 300)]
    stopping = body["events"][2]
    assert stopping == {"t": T0 + 49.5, "kind": "stopping", "pid": 100, "inc": 1, "group": "app0",
                        "reason": "restart_interval", "category": "planned", "in_flight": 2}
    assert body["events"][0]["parent"] == 99
    assert body["events_total"] == 7
    # restarts: two processes stopped in 5 minutes = 24 an hour
    r = body["restarts"]
    assert r["count"] == 2 and r["per_hour"] == pytest.approx(24.0)
    assert r["categories"] == {"planned": 1, "tuning": 0, "unplanned": 1}
    assert r["bucket"] == 10
    assert r["buckets"] == [[int(T0 + 40), 1, 0, 0], [int(T0 + 80), 0, 0, 1]]
    assert body["history_from"] is None


@pytest.mark.asyncio
async def test_snapshot_follows_group_and_window(store):
    now = await write(store, HOST["id"], scenario())
    app0 = await snap(store, now, window=300, group="app0")
    assert [r["key"] for r in app0["rows"]] == ["100:1", "101:1"]
    assert {e["group"] for e in app0["events"]} == {"app0"}
    assert app0["restarts"]["count"] == 1
    # a 60 s window starting after pid 100 stopped: its bar and events are gone, 300's stop is in
    late = await snap(store, T0 + 111, window=60)
    assert [r["key"] for r in late["rows"]] == ["300:1", "101:1", "200:1"]
    assert [(e["kind"], e["pid"]) for e in late["events"]] == [("stopping", 300), ("stopped", 300)]
    assert late["restarts"]["count"] == 1 and late["restarts"]["per_hour"] == pytest.approx(60.0)


@pytest.mark.asyncio
async def test_silent_process_is_gone_and_leaves_the_window(store):
    now = await write(store, HOST["id"], [sample(STARTED, 400, T0), *ticks(400, T0 + 1, T0 + 20)])
    assert by_key((await snap(store, now))["rows"])["400:1"]["state"] == "running"
    later = await snap(store, T0 + 40, window=60)
    gone = by_key(later["rows"])["400:1"]
    assert gone["state"] == "gone" and gone["last_seen"] == T0 + 20  # the bar ends at its last sample
    assert later["restarts"]["count"] == 0  # silence is not a restart (the agent may be the one gone)
    assert (await snap(store, T0 + 200, window=60))["rows"] == []


@pytest.mark.asyncio
async def test_snapshot_caps_events_and_rows_but_counts_every_restart(store, monkeypatch):
    monkeypatch.setattr(processes, "MAX_EVENTS", 10)
    monkeypatch.setattr(processes, "MAX_ROWS", 4)
    samples = []
    for n in range(20):
        t = T0 + n * 10
        samples += [sample(STARTED, 1000 + n, t),
                    sample(STOPPING, 1000 + n, t + 5, shutdown_reason="maximum_requests"),
                    sample(STOPPED, 1000 + n, t + 6, shutdown_reason="maximum_requests")]
    samples.append(sample(STARTED, 2000, T0 + 250))
    now = await write(store, HOST["id"], samples)
    body = await snap(store, now, window=3600)
    assert body["events_total"] == 61 and len(body["events"]) == 10
    assert body["events"][-1]["pid"] == 2000 and body["events"][0]["t"] == T0 + 170  # the newest 10
    assert body["rows_total"] == 21
    assert [r["pid"] for r in body["rows"]] == [1017, 1018, 1019, 2000]  # live first, then last ended
    assert body["restarts"]["count"] == 20 and body["restarts"]["categories"]["planned"] == 20
    assert body["restarts"]["bucket"] == 300


@pytest.mark.asyncio
async def test_history_from_when_the_window_outlives_lifecycle_retention(store):
    now = await write(store, HOST["id"], scenario())
    body = await snap(store, now, window=7 * 86400)
    assert body["history_from"] == pytest.approx(now - store.lifecycle_retention)


@pytest.mark.asyncio
async def test_fifty_process_day_stays_small():
    """50 processes restarting every 30 min for 24 h: the snapshot stays well under 1 MB."""
    store = get_store(None)
    samples = []
    for slot in range(50):
        for n in range(48):
            t, pid = T0 + n * 1800 + slot, 10_000 + slot * 100 + n
            samples += [sample(STARTED, pid, t, group=f"app{slot % 3}", process_parent_pid=99),
                        sample(STOPPING, pid, t + 1799, group=f"app{slot % 3}",
                               shutdown_reason="restart_interval", active_requests_at_decision=1),
                        sample(STOPPED, pid, t + 1799.5, group=f"app{slot % 3}",
                               shutdown_reason="restart_interval", process_uptime=1799.5,
                               lifetime_request_count=123456, active_requests_at_exit=0, graceful_drain=1)]
    samples.sort(key=lambda s: s["t"])
    now = await write(store, HOST["id"], samples, seconds=600)
    body = await snap(store, now, window=86400)
    size = len(json.dumps(body))
    assert size < 600_000, size
    print(f"50 processes x 48 restarts, 24 h: {size} bytes")
    assert body["restarts"]["count"] == 50 * 47 + 50 * 1 - 0  # every stop in the day
    assert len(body["events"]) == processes.MAX_EVENTS and len(body["rows"]) <= processes.MAX_ROWS


# -- live ------------------------------------------------------------------------------------------


def test_live_sends_lifecycle_events_and_newest_ticks():
    samples = [*ticks(100, T0 + 1, T0 + 1, capacity_utilization=0.125), *ticks(100, T0, T0),  # late arrival
               sample(STOPPING, 100, T0 + 1.5, shutdown_reason="cpu_time_limit",
                                               active_requests_at_decision=3),
               sample(STARTED, 101, T0 + 1.6, process_parent_pid=99),
               {"k": 8, "p": 100, "i": 1, "s": 9, "t": T0, "g": "app0", "n": "x", "f": {}}]
    body = processes.live(samples, int(T0 + 1))
    assert [(e["kind"], e["pid"]) for e in body["events"]] == [("stopping", 100), ("started", 101)]
    assert body["events"][0]["category"] == "tuning" and body["events"][0]["in_flight"] == 3
    assert body["events"][1]["parent"] == 99
    assert body["ticks"] == [[100, 1, 0.125, 0.5, 50 << 20, 5.0]]  # the newest of the two
    assert processes.live([], 0) is None
    gc_event = {"k": 9, "p": 1, "i": 1, "s": 1, "t": T0, "g": None, "n": None, "f": {}}
    assert processes.live([gc_event], 0) is None


@pytest.mark.parametrize("hostile", [
    {"k": STOPPED, "p": 1, "i": 1, "s": 1, "t": T0, "g": b"\xfe\xff<script>", "n": None,
     "f": {"shutdown_reason": b"\xc3\x28", "process_uptime": math.nan, "lifetime_request_count": 2 ** 64 - 1,
           "graceful_drain": "yes", "active_requests_at_exit": math.inf}},
    {"k": STOPPING, "p": 1, "i": 1, "s": 1, "t": T0, "g": None, "n": None, "f": {}},
    {"k": STARTED, "p": "1", "i": 1, "s": 1, "t": T0, "g": None, "n": None, "f": {}},
    {"k": STARTED, "p": 1, "i": 1, "s": 1, "t": math.nan, "g": None, "n": None, "f": None},
    {"k": TICK, "p": 1, "i": 1, "s": 1, "t": T0, "g": "a" * 10_000, "n": None,
     "f": {"capacity_utilization": "lots", "memory_rss": 1e308, "cpu_utilization": -math.inf}},
    {"k": TICK, "p": 1, "i": None, "s": 1, "t": T0, "g": None, "n": None, "f": {}},
    {"k": STOPPED},
])
def test_live_survives_hostile_samples(hostile):
    body = processes.live([hostile], int(T0))
    text = json.dumps(body, allow_nan=False)
    if body is not None and "events" in body:
        e = body["events"][0]
        assert e["category"] == "unplanned"
        assert "nan" not in text.lower() and "Infinity" not in text
    if hostile.get("g") == b"\xfe\xff<script>":
        assert body["events"][0]["group"] == "\\xfe\\xff<script>"
        assert body["events"][0]["requests"] == 2 ** 64 - 1 and "drain" not in body["events"][0]


def test_live_of_a_thousand_processes_sends_every_tick_and_event():
    # What it costs is measured in bench/tabs.py, not asserted here.
    samples = [s for pid in range(1000) for s in ticks(pid, T0, T0)]
    samples += [sample(STOPPING, pid, T0 + 0.5, shutdown_reason="maximum_requests") for pid in range(20)]
    body = processes.live(samples, int(T0))
    assert len(body["ticks"]) == 1000 and len(body["events"]) == 20


def test_categories_follow_the_reason():
    assert [processes.category(r) for r in ("maximum_requests", "graceful_signal", "deadlock_timeout",
                                            "", None, "made_up")] == \
        ["planned", "tuning", "unplanned", "unplanned", "unplanned", "unplanned"]
    assert [processes.bucket_width(w) for w in (60, 300, 3600, 86400, 14 * 86400)] == \
        [10, 10, 300, 3600, 86400]
