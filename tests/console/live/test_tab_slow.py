"""The Slow requests tab, server side: snapshot from a real store (in-process and
Redis), live frames from the second's samples, hostile input."""

from __future__ import annotations

import json
import math

import pytest

from console.live.tabs import TABS, slow
from console.live.tabs.base import TabRequest
from ingest.model.kinds import SLOW, TICK

pytestmark = pytest.mark.asyncio
H = 7
NOW = 1_795_000_000.0


def slow_sample(pid: int = 100, *, done: bool = False, start: float = NOW - 10, duration: float = 2.0,
                stamp: float | None = None, log_id: str | bytes | None = "req-1", group: str | None = "app",
                thread: int = 1, seq: int = 1, **fields) -> dict:
    """A kind-4 sample as the agent forwards it; completed ones carry status, I/O and CPU."""
    f = {"slow_record_state": int(done), "slow_start_stamp": start, "slow_duration": duration,
         "slow_thread_id": thread, "slow_server_pid": 30001, "slow_method": "GET", "slow_scheme": "https",
         "slow_hostname": "shop.example", "slow_script_name": "/api", "slow_path_info": "/orders",
         "slow_server_time": 0.001, "slow_queue_time": 0.002, "slow_daemon_time": 0.0005,
         "slow_application_time": duration - 0.0035, "slow_gil_wait_time": 0.01, "slow_gil_wait_count": 4,
         "slow_active_at_start": 2, "slow_active_at_completion": 3 if done else 0,
         "slow_status": 503 if done else 0, "slow_cpu_user_time": 0.5 if done else 0.0,
         "slow_cpu_system_time": 0.1 if done else 0.0, "slow_peer_ip": "10.0.0.9",
         "slow_protocol": "HTTP/1.1", "slow_user_agent": "curl/8.5"}
    if log_id is not None:
        f["slow_log_id"] = log_id
    f.update(fields)
    return {"k": SLOW, "p": pid, "i": 1, "s": seq, "t": start + duration if stamp is None else stamp,
            "g": group, "n": None, "f": f}


def tick(pid: int = 100, stamp: float = NOW - 1, group: str | None = "app", seq: int = 0) -> dict:
    return {"k": TICK, "p": pid, "i": 1, "s": seq, "t": stamp, "g": group, "n": "",
            "f": {"sample_period": 1.0, "telemetry_interval": 1.0, "request_threads_maximum": 4}}


async def write(store, samples, now=NOW, batch_id=1):
    result = await store.awrite_batch(H, "agent-1", batch_id, samples, now)
    assert result.written == len(samples)


async def snap(store, now=NOW, **request):
    return await slow.snapshot(store, {"id": H, "name": "web-3"}, TabRequest(tab="slow", **request), now)


async def test_tab_is_registered():
    assert TABS["slow"] is slow


async def test_snapshot_lists_active_then_completed_newest_first_with_counts(store):
    await write(store, [
        tick(seq=1),
        slow_sample(log_id="old", start=NOW - 100, duration=3.0, done=True, seq=2),
        slow_sample(log_id="new", start=NOW - 20, duration=1.5, done=True, seq=3, thread=2),
        slow_sample(log_id="run", start=NOW - 4, duration=3.5, stamp=NOW - 0.5, seq=4, thread=3),
    ])
    body = await snap(store)
    assert [r["log_id"] for r in body["records"]] == ["run", "new", "old"]
    assert [r["state"] for r in body["records"]] == ["active", "completed", "completed"]
    assert body["counts"] == {"active": 1, "expired": 0, "completed": 2}
    assert body["omitted"] == 0
    new = body["records"][1]
    assert new["url"] == "https://shop.example/api/orders"
    assert (new["method"], new["status"], new["thread"], new["pid"]) == ("GET", 503, 2, 100)
    assert new["duration"] == pytest.approx(1.5)
    assert new["start"] == pytest.approx(NOW - 20)
    assert new["fields"]["slow_user_agent"] == "curl/8.5"
    assert new["fields"]["slow_cpu_user_time"] == 0.5
    # what the top level already says is not repeated in fields
    assert "slow_path_info" not in new["fields"] and "slow_status" not in new["fields"]
    json.dumps(body, allow_nan=False)


async def test_snapshot_completed_replaces_its_active_record(store):
    await write(store, [tick(seq=1), slow_sample(log_id="x", duration=1.2, stamp=NOW - 9, seq=2)],
                now=NOW - 8.9)
    await write(store, [slow_sample(log_id="x", duration=2.0, done=True, seq=3)], batch_id=2)
    (record,) = (await snap(store))["records"]
    assert record["state"] == "completed" and record["duration"] == pytest.approx(2.0)


async def test_snapshot_cuts_to_window_and_group(store):
    await write(store, [
        tick(seq=1), tick(pid=200, group=None, seq=1),
        slow_sample(log_id="ancient", start=NOW - 400, duration=2.0, done=True, seq=2),
        slow_sample(log_id="recent", start=NOW - 30, duration=2.0, done=True, seq=3),
        slow_sample(pid=200, group=None, log_id="embedded", start=NOW - 30, duration=2.0, done=True, seq=2),
    ])
    async def ids(**request):
        return [r["log_id"] for r in (await snap(store, **request))["records"]]

    assert await ids(window=300) == ["embedded", "recent"]
    assert await ids(window=600) == ["embedded", "recent", "ancient"]
    assert await ids(group="app") == ["recent"]
    embedded = (await snap(store, group=""))["records"]
    assert [(r["log_id"], r["group"]) for r in embedded] == [("embedded", None)]
    assert (await snap(store, group="nope"))["records"] == []


async def test_snapshot_shows_an_orphaned_active_request_as_expired(store):
    await write(store, [tick(seq=1, stamp=NOW - 60),
                        slow_sample(log_id="lost", start=NOW - 65, duration=5.0, stamp=NOW - 60, seq=2)],
                now=NOW - 60)
    body = await snap(store)
    assert [(r["log_id"], r["state"]) for r in body["records"]] == [("lost", "expired")]
    assert body["counts"]["expired"] == 1


async def test_snapshot_is_bounded_and_says_how_many_were_left_out(store, monkeypatch):
    monkeypatch.setattr(slow, "SNAPSHOT_LIMIT", 5)
    await write(store, [tick(seq=1)] + [
        slow_sample(log_id=f"r{n}", start=NOW - 100 + n, duration=2.0, done=True, seq=n + 2)
        for n in range(12)])
    body = await snap(store)
    assert len(body["records"]) == 5 and body["omitted"] == 7
    assert body["counts"]["completed"] == 12
    assert body["records"][0]["log_id"] == "r11"


async def test_snapshot_of_a_busy_host_stays_small(store):
    samples = [tick(pid=p, seq=1) for p in range(100, 150)]
    samples += [slow_sample(pid=100 + n % 50, log_id=f"log-{n:06d}", start=NOW - 250 + n * 0.1, duration=3.0,
                            done=True, seq=n + 2, slow_path_info="/catalogue/item/" + "x" * 60)
                for n in range(2000)]
    await write(store, samples)
    body = await snap(store)
    size = len(json.dumps(body))
    assert len(body["records"]) == slow.SNAPSHOT_LIMIT
    assert size < 600_000, size  # about 0.9 KB a record


async def test_live_sends_the_seconds_slow_records_only():
    samples = [tick(), slow_sample(log_id="a", duration=1.0, stamp=NOW), slow_sample(log_id="b", done=True)]
    body = slow.live(samples, int(NOW))
    assert [(r["log_id"], r["state"]) for r in body["records"]] == [("a", "active"), ("b", "completed")]
    assert body["omitted"] == 0
    (completed,) = slow.live([slow_sample(log_id="a", done=True)], 0)["records"]
    assert body["records"][0]["key"] == completed["key"]
    assert slow.live([tick()], int(NOW)) is None
    assert slow.live([], int(NOW)) is None


async def test_live_without_log_id_keys_by_thread_and_start():
    active = slow.live([slow_sample(log_id=None, thread=3, duration=1.0)], 0)["records"][0]
    done = slow.live([slow_sample(log_id=None, thread=3, duration=2.0, done=True)], 0)["records"][0]
    other = slow.live([slow_sample(log_id=None, thread=4, duration=2.0, done=True)], 0)["records"][0]
    assert active["key"] == done["key"] != other["key"]


async def test_live_keeps_completed_records_when_it_must_cut(monkeypatch):
    monkeypatch.setattr(slow, "FRAME_LIMIT", 3)
    samples = [slow_sample(log_id=f"a{n}", stamp=NOW) for n in range(5)]
    samples += [slow_sample(log_id=f"d{n}", done=True) for n in range(2)]
    body = slow.live(samples, int(NOW))
    assert [r["log_id"] for r in body["records"]][:2] == ["d0", "d1"]
    assert len(body["records"]) == 3 and body["omitted"] == 4


async def test_live_of_a_thousand_processes_sends_their_slow_records():
    # What it costs is measured in bench/tabs.py, not asserted here.
    samples = [tick(pid=p) for p in range(1000)]
    samples += [slow_sample(pid=p, log_id=f"l{p}", stamp=NOW) for p in range(0, 1000, 10)]
    body = slow.live(samples, int(NOW))
    assert len(body["records"]) == 100
    # a second where every process reports a slow request: only the records sent are built
    crowded = samples + [slow_sample(pid=p, log_id=f"c{p}", done=True) for p in range(1000)]
    body = slow.live(crowded, int(NOW))
    assert len(body["records"]) == slow.FRAME_LIMIT and body["omitted"] == 1100 - slow.FRAME_LIMIT
    assert {r["state"] for r in body["records"]} == {"completed"}


async def test_hostile_input_does_not_crash_and_stays_text(store):
    nasty = slow_sample(
        log_id=b"\xff\xfe<id>", seq=2, done=True,
        slow_path_info=b"/<script>alert(1)</script>\xc3\x28", slow_user_agent=b"\x80<b>UA</b>",
        slow_hostname="<img src=x onerror=alert(1)>", slow_duration=math.inf, slow_cpu_user_time=math.nan,
        slow_output_bytes=2**64 - 1, slow_method="G" * 100_000)
    broken = {"k": SLOW, "p": 1, "i": 1, "s": 1, "t": NOW, "g": None, "n": None, "f": {}}
    missing_fields = {"k": SLOW, "p": 2, "i": 1, "s": 1, "t": NOW}
    body = slow.live([nasty, broken, missing_fields], int(NOW))
    text = json.dumps(body, allow_nan=False)
    record = body["records"][0]
    assert record["url"].startswith("https://<img src=x onerror=alert(1)>/api/<script>")
    assert "\\xc3(" in record["url"] and record["log_id"] == "\\xff\\xfe<id>"
    assert record["fields"]["slow_user_agent"] == "\\x80<b>UA</b>"
    assert record["duration"] is None and record["fields"]["slow_cpu_user_time"] is None
    assert len(record["method"]) <= slow.MAX_TEXT + 1
    assert len(text) < 20_000
    # a record with no fields at all still shows as a row, without crashing anything
    assert body["records"][1]["url"] == "" and body["records"][1]["state"] == "active"
    # Through the store, the field table refuses it first: counted, nothing of it kept.
    result = await store.awrite_batch(H, "agent-1", 1, [tick(seq=1), nasty], NOW)
    assert (result.written, result.dropped) == (1, 1)
    assert (await snap(store))["records"] == []
