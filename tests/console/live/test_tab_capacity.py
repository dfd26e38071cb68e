"""The capacity tab's server side: snapshot from a real store (in-process and Redis), live columns."""

from __future__ import annotations

import json
import math

import pytest
from tab_helpers import sample, write

from console.live.tabs import capacity, live_messages
from console.live.tabs.base import MAX_PROCESSES, TabRequest
from console.windows import get_store
from ingest.commands.simulate import Fleet
from ingest.model import records
from ingest.model.kinds import SLOW, STARTED, STOPPED, TICK
from ingest.pipeline.samples import replay

HOST = {"id": 9, "name": "web-3"}
T0 = 1_795_000_000.0
SLOW_START = T0 + 90.2  # pid 100's slow request on slot 2 (thread 2): 3.5 s


def tick(pid: int, t: float, group: str | None = "app0", inc: int = 1, **fields) -> dict:
    base = {"sample_period": 1.0, "telemetry_interval": 1.0, "slow_requests_threshold": 1.0,
            "request_threads_maximum": 4, "request_count": 4, "capacity_utilization": 0.375,
            "cpu_utilization": 0.35, "queue_time": 0.002, "daemon_time": 0.001, "application_time": 0.2,
            "gil_wait_time": 0.01, "request_threads_busy_time": [0.5, 1.0, 0.0, 0.0],
            "request_threads_cpu_time": [0.1, 0.25, 0.0, 0.0], "request_threads_completed": [3, 1, 0, 0],
            "request_threads_current_elapsed": [0.0] * 4,
            "request_threads_max_duration": [0.2, 0.9, 0.0, 0.0]}
    return sample(TICK, pid, t, group, inc, **{**base, **fields})


def slow(pid: int, t: float, state: int, duration: float, start: float = SLOW_START, log_id: str = "abc",
         **fields) -> dict:
    return sample(SLOW, pid, t, slow_record_state=state, slow_start_stamp=start, slow_duration=duration,
                  slow_thread_id=2, slow_log_id=log_id, slow_method="POST", slow_scheme="http",
                  slow_hostname="<b>shop</b>", slow_script_name="/api", slow_path_info=b"/caf\xc3\xa9/\xff",
                  slow_status=200 if state else 0, **fields)


def scenario() -> list[dict]:
    """pid 100 (app0) runs 100 s with a 3.5 s request on slot 2 from T0+90.2; pid 200 (app1) has
    slow-request logging off and no queue measurement; pid 300 (app0) stopped at T0+80."""
    out = [tick(100, T0 + n) for n in range(1, 101) if T0 + n not in (T0 + 91, T0 + 92, T0 + 93, T0 + 94)]
    for n, elapsed in ((91, 0.8), (92, 1.8), (93, 2.8)):
        out.append(tick(100, T0 + n, request_threads_current_elapsed=[0.0, elapsed, 0.0, 0.0]))
    out.append(tick(100, T0 + 94, request_threads_max_duration=[0.2, 3.5, 0.0, 0.0]))
    out += [slow(100, T0 + 92.01, 0, 1.8), slow(100, T0 + 93.01, 0, 2.8), slow(100, T0 + 94.01, 1, 3.5)]
    out += [slow(100, T0 + 12.01, 1, 1.5, start=T0 + 10.5, log_id="old")]  # ended long before the span
    out += [tick(200, T0 + n + 0.5, group="app1", slow_requests_threshold=0.0, capacity_utilization=0.75,
                 queue_time=None) for n in range(0, 100)]
    out += [sample(STARTED, 300, T0), *[tick(300, T0 + n) for n in range(1, 80)],
            sample(STOPPED, 300, T0 + 80.2, graceful_drain=1)]
    for s in out:  # the store keeps what the agent sent: no None values on the wire
        s["f"] = {k: v for k, v in s["f"].items() if v is not None}
    return sorted(out, key=lambda s: s["t"])


async def snap(store, now: float, **request) -> dict:
    body = await capacity.snapshot(store, HOST, TabRequest(tab="capacity", **request), now)
    json.dumps(body, allow_nan=False)  # strict JSON, as the page parses it
    return body


# -- snapshot --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_snapshot_has_a_row_per_live_process_with_its_columns(store):
    now = await write(store, HOST["id"], scenario())
    body = await snap(store, now)
    assert body["span"] == 60 and body["step"] == 1 and body["loaded_since"] is None
    rows = body["processes"]
    assert [(p["pid"], p["group"], p["state"], p["ended"]) for p in rows] == [
        (100, "app0", "running", None), (300, "app0", "stopped", T0 + 80.2), (200, "app1", "running", None)]
    first, _, second = rows
    assert first["slots"] == 4 and first["threshold"] == 1.0
    assert second["threshold"] == 0.0  # slow-request logging off: the page says so on every run
    cols = first["columns"]
    # ticks T0+40 .. T0+100: the one just before the window covers its left edge
    assert cols["t"] == [T0 + n for n in range(40, 101)]
    assert set(cols) == set(capacity.COLUMN_KEYS)
    assert all(len(v) == 61 for v in cols.values())
    i = cols["t"].index(T0 + 93)
    assert cols["busy"][i] == [0.5, 1.0, 0.0, 0.0]  # seconds per slot; the page divides by period 1.0
    assert cols["slot_cpu"][i] == [0.1, 0.25, 0.0, 0.0]
    assert cols["completed"][i] == [3, 1, 0, 0]
    assert cols["elapsed"][i] == [0.0, 2.8, 0.0, 0.0]
    assert cols["longest"][cols["t"].index(T0 + 94)] == [0.2, 3.5, 0.0, 0.0]
    assert cols["elapsed"][cols["t"].index(T0 + 50)] == []  # an idle array costs nothing
    scalars = {key: cols[key][i] for key in capacity.SCALARS}
    assert scalars == {"t": T0 + 93, "period": 1.0, "capacity": 0.375, "cpu": 0.35, "queue_mean": 0.002,
                       "daemon_mean": 0.001, "requests": 4, "gil_wait_mean": 0.01, "application_mean": 0.2}
    assert set(second["columns"]["queue_mean"]) == {None}  # not measured, not zero
    assert second["columns"]["capacity"][-1] == 0.75


@pytest.mark.asyncio
async def test_snapshot_records_are_the_shown_processes_slow_requests_in_the_span(store):
    now = await write(store, HOST["id"], scenario())
    body = await snap(store, now)
    (record,) = body["slow"]
    assert record["state"] == "completed" and record["pid"] == 100 and record["thread"] == 2
    assert record["start"] == SLOW_START and record["duration"] == 3.5 and record["status"] == 200
    assert record["method"] == "POST" and record["log_id"] == "abc"
    # text as text: undecodable bytes escaped, HTML left for the page's textContent
    assert record["url"] == "http://<b>shop</b>/api/café/\\xff"
    assert record["key"] == "100:1:abc"  # the store's own key of the request (model.sample)
    # a 5-minute span reaches back to the request of T0+10.5
    longer = await snap(store, now, window=300, options={"span": 300})
    assert longer["span"] == 300 and [r["log_id"] for r in longer["slow"]] == ["abc", "old"]


@pytest.mark.asyncio
async def test_a_links_request_comes_in_the_snapshot_past_the_newest_records(store, monkeypatch):
    """A drill-down link (``req=<key>``, a reload or a shared URL) opened on a busy host: newer
    records fill the newest RECORD_LIMIT, and the snapshot still carries the one it names."""
    busy = [slow(100, T0 + 40 + n * 0.4, 1, 1.5, start=T0 + 38.5 + n * 0.4, log_id=f"r{n}")
            for n in range(capacity.RECORD_LIMIT + 20)]
    now = await write(store, HOST["id"], sorted(scenario() + busy, key=lambda s: s["t"]))
    plain = await snap(store, now)
    keys = [r["key"] for r in plain["slow"]]
    assert len(keys) == capacity.RECORD_LIMIT and "100:1:r0" not in keys
    linked = await snap(store, now, options={"span": 60, "req": "100:1:r0"})
    assert [r["key"] for r in linked["slow"]] == [*keys, "100:1:r0"]  # the newest first, then it
    with monkeypatch.context() as m:  # the record as a snapshot with room for it has it
        m.setattr(capacity, "RECORD_LIMIT", 1000)
        whole = await snap(store, now)
    assert linked["slow"][-1] == next(r for r in whole["slow"] if r["key"] == "100:1:r0")
    # one among the newest already: not twice
    assert (await snap(store, now, options={"req": keys[-1]}))["slow"] == plain["slow"]
    # nothing more for a request not held, of a process not shown, ended before the span
    # ("old"), or for what is no key
    for odd in ("100:1:nosuch", "200:1:r0", "100:2:r0", "999:1:r0", "100:1:old", "100:1", "100:1:",
                "x:1:r0", "-100:1:r0", "", 7, None, True):
        assert (await snap(store, now, options={"req": odd}))["slow"] == plain["slow"], odd
    # nor of another group than the page's
    assert (await snap(store, now, group="app1", options={"req": "100:1:r0"}))["slow"] == []


@pytest.mark.asyncio
async def test_snapshot_options_group_span_and_window(store):
    now = await write(store, HOST["id"], scenario())
    only = await snap(store, now, group="app1")
    assert [p["pid"] for p in only["processes"]] == [200] and only["slow"] == []
    assert (await snap(store, now, group="nosuch"))["processes"] == []
    short = await snap(store, now, options={"span": 30})
    assert short["span"] == 30 and short["processes"][0]["columns"]["t"][0] == T0 + 70
    for odd in (999, "60", True, None, -1, math.inf):
        assert (await snap(store, now, options={"span": odd}))["span"] == 60
    # the page's window is the outer limit
    assert (await snap(store, now, window=60, options={"span": 300}))["span"] == 60


@pytest.mark.asyncio
async def test_snapshot_of_an_empty_host(store):
    body = await snap(store, T0)
    assert body == {"span": 60, "step": 1, "loaded_since": None, "processes": [], "processes_total": 0,
                    "ended_total": 0, "slow": []}


@pytest.mark.asyncio
async def test_a_large_host_snapshot_stays_small():
    """50 processes x 16 threads, all busy, 1 minute: ticks merge into wider columns to stay small."""
    store = get_store(None)
    fleet = Fleet(5, 10, 16, seed=3, slow_probability=0.05, load=4.0)
    start = T0
    samples = list(replay(fleet.datagrams(start, 70)))
    now = await write(store, HOST["id"], samples, seconds=2.0)
    body = await snap(store, now)
    size = len(json.dumps(body))
    assert len(body["processes"]) == 50
    assert body["step"] >= 2  # more than CELL_BUDGET slot cells at full resolution
    assert size < 600_000, size
    cols = body["processes"][0]["columns"]
    assert sum(cols["period"]) == pytest.approx(60, abs=2 * body["step"])  # merged, not dropped


# -- merging -------------------------------------------------------------------------------------


def as_column(t: float, **fields) -> dict:
    return dict(zip(capacity.COLUMN_KEYS, capacity.column(tick(1, t, **fields)["f"], t), strict=True))


def test_merged_columns_add_seconds_and_weigh_means():
    a = as_column(T0)
    b = as_column(T0 + 1, request_count=0, queue_time=None, capacity_utilization=0.125, sample_period=3.0,
                  request_threads_busy_time=[1.5], request_threads_completed=[3, 1])
    merged = capacity.merge_columns([a, b])
    assert merged["t"] == T0 + 1 and merged["period"] == 4.0
    assert merged["busy"] == [2.0, 1.0, 0.0, 0.0]
    assert merged["capacity"] == pytest.approx((0.375 * 1 + 0.125 * 3) / 4)
    assert merged["queue_mean"] == 0.002  # the idle tick has no queue time: it does not pull the mean down
    assert merged["requests"] == 4 and merged["completed"] == [6, 2, 0, 0]
    assert merged["longest"] == [0.2, 0.9, 0.0, 0.0]


# -- live -------------------------------------------------------------------------------------------


def test_live_sends_the_seconds_ticks_as_columns_and_its_slow_records():
    samples = [tick(100, T0 + 93, request_threads_current_elapsed=[0.0, 2.8, 0.0, 0.0]),
               tick(200, T0 + 93.5, group=None, slow_requests_threshold=0.0), slow(100, T0 + 93.01, 0, 2.8),
               slow(100, T0 + 93.02, 1, 3.0), sample(9, 100, T0 + 93.1, gc_event_duration=0.01)]
    body = capacity.live(samples, int(T0 + 93))
    ticks = body["ticks"]
    assert set(ticks) == set(capacity.TICK_KEYS)
    assert ticks["pid"] == [100, 200] and ticks["group"] == ["app0", None]
    assert ticks["slots"] == [4, 4] and ticks["threshold"] == [1.0, 0.0]
    assert ticks["elapsed"][0] == [0.0, 2.8, 0.0, 0.0] and ticks["busy"][1] == [0.5, 1.0, 0.0, 0.0]
    assert [r["state"] for r in body["slow"]] == ["completed", "active"]  # completed first
    assert body["stopped"] == []
    gone = capacity.live([sample(STOPPED, 300, T0 + 93.2, graceful_drain=1)], int(T0 + 93))
    assert gone["stopped"] == [[300, 1, T0 + 93.2, None]]  # when, and why (none given)
    assert gone["ticks"]["pid"] == [] and gone["slow"] == []
    assert capacity.live([sample(9, 100, T0, gc_event_duration=0.01)], int(T0)) is None
    assert capacity.live([], int(T0)) is None
    messages = live_messages(HOST["id"], samples, int(T0 + 93), T0 + 94)
    (message,) = [m for _, m in messages if m["tab"] == "capacity"]
    assert message["type"] == "tab.frame" and message["ticks"]["pid"] == [100, 200]
    json.dumps(message, allow_nan=False)


HOSTILE = [math.nan, math.inf, -math.inf, -1.0, 1e308 * 10, 10**400, "1.0", b"\xff", None, True, [1],
           {"a": 1}, [], ()]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_do_not_crash_and_stay_strict_json(value):
    names = ["sample_period", "capacity_utilization", "cpu_utilization", "queue_time", "request_count",
             "slow_requests_threshold", "request_threads_maximum", "request_threads_busy_time",
             "request_threads_elapsed", "request_threads_completed", "request_threads_current_elapsed"]
    fields = {name: value for name in names}
    arrays = {"request_threads_busy_time": [0.5, value, 0.25], "request_threads_cpu_time": [value] * 200,
              "request_threads_max_duration": value}
    empty = {"request_threads_busy_time": value if isinstance(value, list | tuple) else [],
             "request_threads_cpu_time": []}  # an empty array is idle, not a crash (the fuzz found it)
    for f in (fields, {**tick(1, T0)["f"], **arrays}, {**tick(1, T0)["f"], **empty}):
        body = capacity.live([sample(TICK, 1, T0, group=b"\xff<b>", **f)], int(T0))
        json.dumps(body, allow_nan=False)
        ticks = body["ticks"]
        assert ticks["group"] == ["\\xff<b>"]
        assert 0 <= ticks["slots"][0] <= 128 and 0 <= ticks["threshold"][0] <= records.LONGEST
        for key in capacity.ARRAYS:
            values = ticks[key][0]
            assert len(values) <= 128
            assert all(isinstance(v, int | float) and 0 <= v <= records.LONGEST for v in values if v)


@pytest.mark.asyncio
async def test_hostile_samples_in_the_store_do_not_crash_the_snapshot(store):
    bad = {"sample_period": 0.0, "capacity_utilization": 1e300, "request_threads_busy_time": ["x", 1e300, -5],
           "request_threads_maximum": 10**6, "request_count": -3, "slow_requests_threshold": -1.0}
    samples = [tick(100, T0 + n, group="<script>", **bad) for n in range(1, 10)]
    samples.append(sample(SLOW, 100, T0 + 9.5, group="<script>", slow_record_state=0,
                          slow_path_info=b"\xff\xfe"))
    now = await write(store, HOST["id"], samples, unchecked=True)  # as an older console stored it
    body = await snap(store, now)
    (row,) = body["processes"]
    assert row["group"] == "<script>" and row["threshold"] == 0.0
    assert row["columns"]["period"][0] is None  # a zero period: no fractions
    assert row["columns"]["busy"][0] == [0.0, records.LONGEST, 0.0]
    assert row["columns"]["requests"][0] == 0
    assert body["slow"][0]["url"] == "\\xff\\xfe"


def test_live_of_a_thousand_processes_has_a_row_for_each():
    # What it costs is measured in bench/tabs.py, not asserted here.
    fleet = Fleet(10, 100, 8, seed=1, slow_probability=0.0)
    samples = list(replay(fleet.datagrams(T0, 3)))
    ticks = [s for s in samples if s["k"] == TICK][-1000:]
    body = capacity.live(ticks, int(T0))
    assert len(body["ticks"]["t"]) == 1000 and "omitted" not in body


@pytest.mark.asyncio
async def test_a_flood_of_fake_pids_is_cut_to_the_processes_that_tick(store):
    """A STARTED from each of 1,200 fake pids: the snapshot lists MAX_PROCESSES, the one that
    ticks among them (its pid above every fake one), and says how many there were."""
    fakes = [sample(STARTED, 10 + n, T0) for n in range(MAX_PROCESSES + 200)]
    await write(store, HOST["id"], [*fakes, tick(50_000, T0 + 0.2)])
    body = await snap(store, T0 + 0.5)
    assert len(body["processes"]) == MAX_PROCESSES and body["processes_total"] == MAX_PROCESSES + 201
    assert body["processes"][-1]["pid"] == 50_000 and body["processes"][-1]["columns"]["t"]
    assert len(json.dumps(body, allow_nan=False)) < 1 << 20


# -- ended processes ----------------------------------------------------------------------------


def life(pid: int, start: float, end: float, stop: bool = True, group: str = "app0") -> list[dict]:
    """STARTED at ``start``, a tick every second up to ``end``, then STOPPED 0.2 s later, or
    silence (``stop`` false: the registry calls it gone after 3 intervals)."""
    out = [sample(STARTED, pid, start, group)]
    out += [tick(pid, start + n, group) for n in range(1, int(end - start) + 1)]
    if stop:
        out.append(sample(STOPPED, pid, end + 0.2, group, shutdown_reason="maximum_requests",
                          graceful_drain=1))
    return out


@pytest.mark.asyncio
async def test_an_ended_process_keeps_its_band_and_columns_until_its_end_leaves_the_span(store):
    samples = [*[tick(100, T0 + n) for n in range(1, 101)], *life(300, T0, T0 + 80),
               *life(400, T0 + 10, T0 + 70, stop=False)]
    now = await write(store, HOST["id"], sorted(samples, key=lambda s: s["t"]))
    body = await snap(store, now)
    assert [(p["pid"], p["state"], p["ended"], p["reason"]) for p in body["processes"]] == [
        (100, "running", None, None), (300, "stopped", T0 + 80.2, "maximum_requests"),
        (400, "gone", T0 + 70, None)]
    assert body["processes_total"] == 3 and body["ended_total"] == 2 and "omitted_ended" not in body
    _, stopped, gone = body["processes"]
    assert stopped["slots"] == 4 and stopped["threshold"] == 1.0
    # every column it had in the span, as a live process's: nothing is cut at its end
    assert stopped["columns"]["t"] == [T0 + n for n in range(40, 81)]
    assert all(len(v) == 41 for v in stopped["columns"].values())
    assert set(map(tuple, stopped["columns"]["busy"])) == {(0.5, 1.0, 0.0, 0.0)}
    assert gone["columns"]["t"] == [T0 + n for n in range(40, 71)]
    # each leaves once its end is older than the span (60 s)
    shown = [[p["pid"] for p in (await snap(store, T0 + later))["processes"]]
             for later in (129, 131, 140, 141)]
    assert shown == [[100, 300, 400], [100, 300], [100, 300], [100]]
    # a live frame says when and why a process stopped, so the page marks its band at once
    frame = capacity.live([sample(STOPPED, 300, T0 + 80.2, shutdown_reason=b"maximum\xff"),
                           sample(STOPPED, 301, T0 + 80.4)], int(T0 + 80))
    assert frame["stopped"] == [[300, 1, T0 + 80.2, "maximum\\xff"], [301, 1, T0 + 80.4, None]]


@pytest.mark.asyncio
async def test_over_the_limit_live_processes_come_first_then_the_last_ended(store, monkeypatch):
    monkeypatch.setattr(capacity, "MAX_PROCESSES", 3)
    ended = [*life(500, T0, T0 + 60), *life(600, T0, T0 + 70), *life(700, T0, T0 + 80)]
    samples = [*ended, *[tick(pid, T0 + n) for pid in (100, 200) for n in range(1, 101)]]
    now = await write(store, HOST["id"], sorted(samples, key=lambda s: s["t"]))
    body = await snap(store, now)
    assert [(p["pid"], p["state"]) for p in body["processes"]] == [(100, "running"), (200, "running"),
                                                                   (700, "stopped")]
    assert body["processes_total"] == 5 and body["ended_total"] == 3
    # the page says "2 ended processes not shown" until the later of them leaves the span
    assert body["omitted_ended"] == {"count": 2, "until": T0 + 70.2}
    # more live processes than the limit: no ended one is listed
    crowded = {"id": HOST["id"] + 1, "name": "web-4"}
    more = [*ended, *[tick(pid, T0 + n) for pid in (100, 200, 800, 900) for n in range(1, 101)]]
    now = await write(store, crowded["id"], sorted(more, key=lambda s: s["t"]))
    body = await capacity.snapshot(store, crowded, TabRequest(tab="capacity"), now)
    assert [p["pid"] for p in body["processes"]] == [100, 200, 800]
    assert body["processes_total"] == 7 and body["omitted_ended"] == {"count": 3, "until": T0 + 80.2}
