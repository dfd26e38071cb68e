"""The GC tab's server side: snapshot from a real window store, live frames from samples."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from tab_helpers import temp_store

from console.live.tabs import TabRequest, gc, live_messages
from console.windows.checks import CheckedSamples
from console.windows.store import get_store
from ingest.commands.simulate import Fleet
from ingest.model.histogram import OVERFLOW_BUCKET, bucket_index
from ingest.model.sample import Sample
from ingest.pipeline.samples import replay

HOST = {"id": 7, "name": "web-3"}
T0 = 1_800_000_000.0  # a fixed clock: stores are told "now"


def gc_snapshot(pid: int, t: float, seq: int, *, group: str | None = "app0", interp: str = "", inc: int = 1,
                collections: tuple[int, int, int] = (0, 0, 0), counts: tuple[int, int, int] = (0, 0, 0),
                collected: tuple[int, int, int] = (0, 0, 0), uncollectable: tuple[int, int, int] = (0, 0, 0),
                thresholds: tuple[int, int, int] = (700, 10, 10), enabled: int = 1, frozen: int = 0,
                dropped: int = 0) -> Sample:
    f: dict[str, Any] = {"gc_is_enabled": enabled, "gc_freeze_count": frozen, "gc_dropped_events": dropped}
    for g in range(3):
        f.update({f"gc_collections{g}": collections[g], f"gc_count{g}": counts[g],
                  f"gc_collected{g}": collected[g], f"gc_uncollectable{g}": uncollectable[g],
                  f"gc_threshold{g}": thresholds[g]})
    if interp:
        f["interpreter_name"] = interp
    return {"k": 8, "p": pid, "i": inc, "s": seq, "t": t, "g": group, "n": interp, "f": f}


def gc_event(pid: int, start: float, pause: float, generation: int, seq: int, *, group: str | None = "app0",
             interp: str = "", collected: int = 10, stamp: float | None = None) -> Sample:
    f: dict[str, Any] = {"gc_event_start_stamp": start, "gc_event_duration": pause,
                         "gc_event_generation": generation, "gc_event_collected": collected,
                         "gc_event_uncollectable": 0}
    if interp:
        f["interpreter_name"] = interp
    return {"k": 9, "p": pid, "i": 1, "s": seq, "t": stamp if stamp is not None else start + pause + 0.01,
            "g": group, "n": interp, "f": f}


def two_processes(ticks: int = 10) -> list[Sample]:
    """pid 101 (app0): main interpreter and "subapp"; pid 202 (app1): main only.

    Every tick: 101/main +3 gen-0 collections and +1 gen-1 every other tick, 101/subapp +1
    gen 0, 202 +2 gen 0; objects collected +100 per tick each; one 2 ms gen-0 pause per tick
    for 101/main, a 40 ms gen-2 pause for 202 at tick 5, and 4 dropped events on 202's last.
    """
    out: list[Sample] = []
    seqs = {101: 0, 202: 0}

    def seq(pid: int) -> int:
        seqs[pid] += 1
        return seqs[pid]

    for k in range(ticks):
        t = T0 + k
        out.append(gc_snapshot(101, t + 0.1, seq(101), collections=(3 * k, k // 2, 0),
                               collected=(100 * k, 0, 0), counts=(350, 5, 1)))
        if k:
            out.append(gc_event(101, t - 0.5, 0.002, 0, seq(101)))
        out.append(gc_snapshot(101, t + 0.1, seq(101), interp="subapp", collections=(k, 0, 0),
                               collected=(100 * k, 0, 0), counts=(70, 0, 0)))
        out.append(gc_snapshot(202, t + 0.3, seq(202), group="app1", collections=(2 * k, 0, 0),
                               collected=(100 * k, 0, 0), counts=(700, 9, 9), uncollectable=(0, 0, k // 5),
                               dropped=4 if k == ticks - 1 else 0, thresholds=(1000, 10, 10)))
        if k == 5:
            out.append(gc_event(202, t - 0.2, 0.040, 2, seq(202), group="app1", collected=5000))
    return out


@pytest.fixture(params=["memory", "redis"])
def backend(request) -> str:
    return request.param


async def write(store: Any, samples: list[Sample], *, unchecked: bool = False) -> float:
    """Write in agent-sized batches, as they arrive; the "now" after the last.

    ``unchecked`` skips the field-table checks (what an older console may have stored).
    """
    now = 0.0
    for batch_id, start in enumerate(range(0, len(samples), 50), 1):
        batch = samples[start:start + 50]
        now = max(s["t"] for s in batch) + 0.05
        result = await store.awrite_batch(HOST["id"], "agent-1", batch_id,
                                          CheckedSamples(batch) if unchecked else batch, now)
        assert result.written == len(batch)
    return now


def request(window: int = 300, group: str = "*", **options: Any) -> TabRequest:
    return TabRequest(tab="gc", group=group, window=window, options=options)


def strict_json(value: Any) -> dict[str, Any]:
    """What the page receives: the console sends JSON, and NaN is not JSON."""
    return json.loads(json.dumps(value, allow_nan=False))


# -- snapshot -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_snapshot_holds_what_the_tab_shows(backend):
    async with temp_store(backend) as store:
        now = await write(store, two_processes())
        snap = strict_json(await gc.snapshot(store, HOST, request(), now))
        assert snap["span"] == 300 and not snap["capped"] and not snap["limited"]
        assert snap["pids"] == [101, 202] and snap["interps"] == ["", "subapp"]
        assert snap["seqs"] == {"101:1": 29, "202:1": 11}  # per process, every GC kind
        series = {s["key"]: s for s in snap["series"]}
        assert sorted(series) == ["101:1:", "101:1:subapp", "202:1:"]
        main = series["101:1:"]
        assert main["first"]["col"] == [0, 0, 0] and main["last"]["col"] == [27, 4, 0]
        assert main["last"]["cnt"] == [350, 5, 1] and main["last"]["th"] == [700, 10, 10]
        assert main["last"]["on"] == 1 and main["last"]["g"] == "app0"
        assert main["events"] == 9 and main["pause"] == pytest.approx(0.018)
        other = series["202:1:"]
        assert other["dropped"] == 4 and other["last"]["un"] == [0, 0, 1]
        assert other["last"]["th"] == [1000, 10, 10]
        assert other["events"] == 1 and other["pause"] == pytest.approx(0.040)
        # the buckets: collections between ticks, by the second they were counted in
        b = snap["buckets"]
        assert sum(b["c0"]) == 27 + 9 + 18 and sum(b["c1"]) == 4 and sum(b["c2"]) == 0
        assert sum(b["cd"]) == 3 * 900 and sum(b["un"]) == 1 and sum(b["dr"]) == 4
        assert sum(b["n"]) == 10 and sum(b["pause"]) == pytest.approx(0.018 + 0.040)
        assert max(p for p in b["pmax"] if p is not None) == pytest.approx(0.040)
        assert min(p for p in b["pmin"] if p is not None) == pytest.approx(0.002)
        hist: dict[int, int] = {}
        for h in b["h"]:
            for key, count in h.items():
                hist[int(key)] = hist.get(int(key), 0) + count
        assert hist == {bucket_index(0.002): 9, bucket_index(0.040): 1}
        assert b["t"] == sorted(b["t"]) and all(t == math.floor(t) for t in b["t"])
        # events: oldest first, with what the tooltip says
        assert snap["events_total"] == 10 and len(snap["events"]) == 10
        assert [e[0] for e in snap["events"]] == sorted(e[0] for e in snap["events"])
        big = next(e for e in snap["events"] if e[2] == 2)
        assert big[:9] == [T0 + 4.8, 0.040, 2, 5000, 0, 202, 1, "", "app1"]
        assert snap["window_totals"] is None


@pytest.mark.asyncio
async def test_snapshot_follows_group_pid_and_interpreter(backend):
    async with temp_store(backend) as store:
        now = await write(store, two_processes())
        app1 = await gc.snapshot(store, HOST, request(group="app1"), now)
        assert app1["pids"] == [202] and [s["key"] for s in app1["series"]] == ["202:1:"]
        assert sum(app1["buckets"]["c0"]) == 18
        one = await gc.snapshot(store, HOST, request(pid=101), now)
        assert one["pid"] == 101 and one["pids"] == [101, 202]  # the selector still offers every process
        assert [s["key"] for s in one["series"]] == ["101:1:", "101:1:subapp"]
        assert {e[5] for e in one["events"]} == {101}
        main = await gc.snapshot(store, HOST, request(pid="101", interp=gc.MAIN), now)
        assert main["interp"] == "" and [s["key"] for s in main["series"]] == ["101:1:"]
        sub = await gc.snapshot(store, HOST, request(interp="subapp"), now)
        assert [s["key"] for s in sub["series"]] == ["101:1:subapp"] and sub["events"] == []
        assert sum(sub["buckets"]["c0"]) == 9
        nobody = await gc.snapshot(store, HOST, request(pid=999), now)
        assert nobody["series"] == [] and nobody["events"] == [] and nobody["pids"] == [101, 202]
        # options a page may not send are ignored
        for bad in ({"pid": -1}, {"pid": True}, {"pid": "1e3"}, {"interp": 5}):
            odd = await gc.snapshot(store, HOST, TabRequest(tab="gc", options=bad), now)
            assert odd["pid"] is None and len(odd["series"]) == 3


@pytest.mark.asyncio
async def test_window_is_cut_by_time_and_long_windows_are_capped(backend):
    async with temp_store(backend) as store:
        old = [gc_snapshot(303, T0 - 1000 + k, k + 1, collections=(k, 0, 0)) for k in range(3)]
        old.append(gc_event(303, T0 - 999.5, 0.5, 2, 10))
        now = await write(store, old + two_processes())
        snap = await gc.snapshot(store, HOST, request(window=300), now)
        assert 303 not in snap["pids"] and all(e[5] != 303 for e in snap["events"])  # start-up long gone
        assert min(snap["buckets"]["t"]) >= math.floor(now - 300)
        hour = strict_json(await gc.snapshot(store, HOST, request(window=3600), now))
        assert hour["capped"] and hour["span"] == gc.RAW_SPAN and 303 not in hour["pids"]
        totals = hour["window_totals"]
        assert totals["span"] == 3600 and totals["gc_collections"] == 11
        assert totals["collections"] == [9, 0, 2]
        assert totals["gc_pause_total"] == pytest.approx(0.018 + 0.040 + 0.5)
        assert totals["gc_pause_max"] == pytest.approx(0.5)
        assert totals["gc_dropped"] == 4
        for name in ("gc_pause_p50", "gc_pause_p95", "gc_pause_p99"):
            assert 0 <= totals[name] <= totals["gc_pause_max"]  # never outside the exact range
        # a process filter cannot be answered from the group's frames: no whole-window totals
        assert (await gc.snapshot(store, HOST, request(window=3600, pid=101), now))["window_totals"] is None


@pytest.mark.asyncio
async def test_busy_hosts_are_read_up_to_a_limit_and_say_so(backend, monkeypatch):
    async with temp_store(backend) as store:
        monkeypatch.setattr(gc, "RAW_LIMIT", 20)
        monkeypatch.setattr(gc, "MAX_EVENTS", 3)
        now = await write(store, two_processes())
        snap = await gc.snapshot(store, HOST, request(), now)
        assert snap["limited"] and snap["since"] > now - 300
        assert len(snap["events"]) <= 3 and snap["events"] == sorted(snap["events"], key=lambda e: e[0])
        assert min(snap["buckets"]["t"]) >= math.floor(snap["since"])


@pytest.mark.asyncio
async def test_empty_host_snapshot(backend):
    async with temp_store(backend) as store:
        snap = strict_json(await gc.snapshot(store, HOST, request(window=900), T0))
        assert snap["series"] == [] and snap["events"] == [] and snap["pids"] == []
        assert snap["buckets"]["t"] == [] and snap["capped"]
        assert snap["window_totals"]["gc_collections"] == 0 and snap["window_totals"]["gc_pause_p99"] is None


@pytest.mark.asyncio
async def test_simulated_busy_host_snapshot_stays_small():
    """50 processes, more GC samples than a snapshot reads: well under 1 MB, whatever the window."""
    store = get_store(None)
    fleet = Fleet(2, 25, 4, seed=4, interpreters=1)
    samples = list(replay(fleet.datagrams(time.time() - 200, 200)))
    assert sum(1 for s in samples if s["k"] in (8, 9)) > gc.RAW_LIMIT
    now = await write(store, samples)
    for window in (300, 3600):
        text = json.dumps(await gc.snapshot(store, HOST, request(window=window), now), allow_nan=False)
        assert len(text) < 400_000, len(text)  # its time: bench/tabs.py


# -- live -------------------------------------------------------------------------------------------


def test_live_sends_the_seconds_records_and_events():
    samples = [
        gc_snapshot(101, T0, 5, collections=(3, 1, 0), counts=(10, 2, 3), dropped=2),
        gc_event(101, T0 - 0.5, 0.002, 1, 6, interp="subapp", collected=77),
        {"k": 2, "p": 101, "i": 1, "s": 7, "t": T0, "g": "app0", "n": None, "f": {"request_count": 3}},
    ]
    out = strict_json(gc.live(samples, int(T0)))
    (rec,) = out["records"]
    assert rec == {"p": 101, "i": 1, "s": 5, "t": T0, "g": "app0", "n": "", "on": 1, "fz": 0, "dr": 2,
                   "th": [700, 10, 10], "cnt": [10, 2, 3], "col": [3, 1, 0], "cd": [0, 0, 0], "un": [0, 0, 0]}
    assert out["events"] == [[T0 - 0.5, 0.002, 1, 77, 0, 101, 1, "subapp", "app0", 6]]
    assert gc.live(samples[2:], int(T0)) is None
    assert gc.live([], int(T0)) is None
    # through the registry, as the publisher sends it
    (message,) = [m for group, m in live_messages(7, samples, int(T0), T0) if group == "host.7.gc"]
    assert message["type"] == "tab.frame" and message["tab"] == "gc" and len(message["records"]) == 1


def test_hostile_samples_do_not_crash_and_stay_text():
    html = "<img src=x onerror=alert(1)>"
    samples = [
        {"k": 8, "p": 1, "i": 1, "s": 1, "t": T0, "g": b"\xff\xfe" + html.encode(), "n": b"\xc3(",
         "f": {"gc_collections0": 2**64 - 1, "gc_count0": "lots", "gc_threshold0": float("nan"),
               "gc_is_enabled": True, "gc_dropped_events": -3}},
        {"k": 8, "p": 2, "i": 1, "s": 1, "t": T0, "g": None, "n": None, "f": {}},
        {"k": 9, "p": 1, "i": 1, "s": 2, "t": T0, "g": html, "n": html,
         "f": {"gc_event_start_stamp": float("inf"), "gc_event_duration": float("nan"),
               "gc_event_generation": 99, "gc_event_collected": None}},
        {"k": 9, "p": 1, "i": 1, "s": 3, "t": T0, "g": "app0", "n": "",
         "f": {"gc_event_generation": -4, "gc_event_duration": -1.0, "gc_event_start_stamp": "soon"}},
    ]
    out = strict_json(gc.live(samples, int(T0)))
    first, second = out["records"]
    assert first["g"] == "\\xff\\xfe" + html and first["n"] == "\\xc3("
    assert first["col"][0] == 2**64 - 1 and first["cnt"][0] == 0 and first["th"][0] == 0 and first["on"] == 1
    assert second["g"] == "" and second["n"] == "" and second["col"] == [0, 0, 0]
    (a, b) = out["events"]
    assert a[:3] == [T0, 0, 2] and a[7] == html and a[8] == html  # text, escaped by the page
    assert b[:3] == [T0, 0, 0]


@pytest.mark.asyncio
async def test_hostile_samples_in_the_store_do_not_break_the_snapshot(backend):
    async with temp_store(backend) as store:
        samples = [
            gc_snapshot(1, T0, 1, group=None, interp="<b>x</b>", collections=(1, 0, 0)),
            gc_snapshot(1, T0 + 1, 2, group=None, interp="<b>x</b>", collections=(0, 0, 0)),  # a reset
            gc_snapshot(1, T0 + 2, 3, group=None, interp="<b>x</b>", collections=(2**60, 0, 0)),
            gc_event(1, T0 + 1.5, 1e9, 2, 4, group=None, interp="<b>x</b>", stamp=T0 + 2),
        ]
        now = await write(store, samples, unchecked=True)
        snap = strict_json(await gc.snapshot(store, HOST, request(group=""), now))
        assert snap["interps"] == ["<b>x</b>"] and [s["last"]["g"] for s in snap["series"]] == [""]
        assert sum(snap["buckets"]["c0"]) == 2**60  # the reset added nothing, the jump is what was sent
        assert max(int(k) for h in snap["buckets"]["h"] for k in h) == OVERFLOW_BUCKET


def test_live_of_a_thousand_processes_sends_each_ones_snapshot():
    # What it costs is measured in bench/tabs.py, not asserted here.
    fleet = Fleet(4, 250, 4, seed=9, interpreters=1)
    samples = list(replay(fleet.datagrams(T0, 3)))
    last = [s for s in samples if s["t"] >= T0 + 2]
    assert sum(1 for s in last if s["k"] == 8) >= 1000
    body = gc.live(last, int(T0) + 2)
    assert body is not None and json.dumps(body, allow_nan=False)
