"""``top``'s model and views, fed by hand: the figures it derives over stated spans, the states
it ages on the console's clock, and messages that break the protocol counted, never raised."""

from __future__ import annotations

import math
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.model import frames, metrics, topview
from ingest.model.histogram import bucket_index
from ingest.model.kinds import TICK
from ingest.top import views
from ingest.top.model import Model


def tick(pid: int, t: float, requests: int, group: str = "app0") -> dict:
    return {"k": TICK, "p": pid, "i": 1, "s": 1, "t": t, "g": group, "n": None,
            "f": {"sample_period": 1.0, "request_count": requests, "request_threads_maximum": 4,
                  "capacity_utilization": 0.25, "cpu_utilization": 0.5, "memory_rss": 1 << 20,
                  "request_time": 0.01 * requests, "request_time_min": 0.01, "request_time_max": 0.01,
                  "request_time_buckets": [requests if b == bucket_index(0.01) else 0 for b in range(65)],
                  "request_throughput": float(requests), "status_2xx_total": requests}}


def fed(now: float, seconds: int = 30) -> Model:
    """A host of two processes, each serving ``pid - 39990`` requests a second, as the console
    would have sent it: a snapshot at ``now - seconds`` then one tab frame a second."""
    model = Model()
    start = math.floor(now) - seconds
    model.apply({"type": "host.snapshot", "host": 7, "group": "*", "now": start, "groups": ["*", "app0"],
                 "series": {"t": []}, "processes": [{"pid": p, "incarnation": 1, "group": "app0",
                                                     "state": "running"} for p in (40000, 40001)]})
    model.apply({"type": "tab.snapshot", "tab": "top", "host": 7, "now": start, "until": start - 1,
                 "seconds": [], "tens": [], "processes": {"until": start - 1, "procs": [], "ticks": []}})
    for t in range(start, math.floor(now)):
        message = topview.second([tick(40000, t + 0.5, 10), tick(40001, t + 0.5, 11)])
        model.apply({"type": "tab.frame", "tab": "top", "host": 7, "t": t, "now": t + 1.0, **message})
    model.offset = 0.0
    return model


def test_process_rows_are_the_metric_tables_figures_over_the_last_ten_seconds():
    model = fed(time.time())
    rows = {r["pid"]: r for r in model.process_rows()}
    assert rows[40000]["span"] == topview.SPAN and rows[40000]["requests"] == 100
    assert rows[40001]["throughput"] == 11.0 and rows[40001]["memory_rss"] == 1 << 20
    assert rows[40000]["capacity"] == 0.25 and rows[40000]["cpu"] == 0.5
    # the 29 complete seconds (the newest is not yet published complete), from the first one
    figures = model.window_metrics(60, ("requests", "throughput"))
    assert figures["requests"] == 21 * 29 and figures["throughput"] == 21.0
    counts, lat = model.phase_histogram("request", 60)
    assert sum(counts.values()) == 21 * 29 and lat["request_max"] == 0.01


def test_a_new_process_counts_from_its_first_second_and_an_old_one_over_the_whole_span():
    now = time.time()
    model = fed(now, seconds=4)
    rows = {r["pid"]: r for r in model.process_rows()}
    assert rows[40000]["span"] == 3 and rows[40000]["throughput"] == 10.0


def test_the_header_is_the_host_frames_recent_as_sent():
    model = fed(time.time())
    recent = {"span": 10.0, "since": 1, "until": 11, "groups": {"*": {"throughput": 4.2, "requests": 42}}}
    model.apply({"type": "host.frame", "host": 7, "t": 10, "recent": recent, "groups": {}})
    figures, span = model.headline()
    assert figures == recent["groups"]["*"] and span == {"span": 10, "since": 1, "until": 11}
    text = "\n".join(t for t, _ in views.header(model, "test", "live"))
    assert "req/s 4.2" in text and "(last 10 s," in text
    model.apply({"type": "host.frame", "host": 7, "t": 11, "partial": True,
                 "recent": {"groups": {"*": {"throughput": 99}}}})
    assert model.headline()[0] == recent["groups"]["*"]  # a partial second never replaces it


def test_slow_requests_age_on_the_console_clock_and_a_completion_stays():
    model = fed(time.time())
    now = time.time()
    active = {"key": "a", "state": "active", "pid": 40000, "incarnation": 1, "group": "app0",
              "stamp": now - 0.5, "start": now - 3.0, "duration": 2.5, "url": "http://x/slow"}
    model.apply({"type": "tab.frame", "tab": "top", "host": 7, "t": 1, "slow": [active]})
    row = model.slow_rows()[0]
    assert row["state"] == "active" and row["duration"] >= 3.0
    model.apply({"type": "tab.frame", "tab": "top", "host": 7, "t": 1, "slow": [
        {**active, "state": "completed", "duration": 3.2, "status": 200}]})
    model.apply({"type": "tab.frame", "tab": "top", "host": 7, "t": 1, "slow": [active]})  # late copy
    assert model.slow_rows()[0]["state"] == "completed"
    model.apply({"type": "tab.frame", "tab": "top", "host": 7, "t": 1, "slow": [
        {**active, "key": "b", "stamp": now - 30}]})
    assert {r["key"]: r["state"] for r in model.slow_rows()}["b"] == "expired"


def test_a_fleet_row_goes_offline_on_its_own_when_its_agent_stops():
    model = Model()
    model.apply({"type": "hello", "online_within": 15, "now": time.time()})
    entry = {"id": 1, "name": "web-1", "state": "online", "last_seen": time.time() - 120,
             "metrics": {"throughput": 5.0, "restarts": 1}, "agent": {"lost": 3, "bad_samples": 2}}
    model.apply({"type": "fleet.snapshot", "hosts": [entry]})
    row = views.fleet_row(model, model.fleet[1])
    assert row["state"] == "offline" and "throughput" not in row and row["restarts"] == 1
    assert row["loss"] == 5


def test_a_store_outage_is_said_in_the_header():
    model = fed(time.time())
    model.apply({"type": "status", "store_ok": False,
                 "reason": "window store unavailable; agents are spooling"})
    text = "\n".join(t for t, _ in views.header(model, "test", "live"))
    assert "window store unavailable" in text


MESSAGE_TYPES = ("hello", "status", "error", "fleet.snapshot", "fleet.update", "host.snapshot", "host.frame",
                 "tab.snapshot", "tab.frame")
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = ("host", "now", "t", "groups", "procs", "ticks", "slow", "life", "seconds", "tens", "processes",
        "recent", "hosts", "until", "series", "tab", "partial", "agent", "agent_state", "omitted", "store_ok")
message_lists = st.lists(st.tuples(st.sampled_from(MESSAGE_TYPES),
                                   st.dictionaries(st.sampled_from(KEYS), json_values)), max_size=6)


@settings(max_examples=600, deadline=None)
@given(message_lists)
def test_messages_that_break_the_protocol_are_counted_and_the_views_still_draw(messages):
    model = fed(time.time(), seconds=12)
    for kind, body in messages:
        if body.get("tab") is None:
            body["tab"] = "top"
        model.apply({**body, "type": kind})
    state = views.ViewState()
    for view in (views.overview(model, state, 100), views.processes(model, state),
                 views.workers(model, state), views.latency(model, state, 100), views.slow(model, state),
                 views.gc(model, state), views.events(model, state), views.fleet(model, state),
                 views.header(model, "x", "live")):
        assert all(isinstance(text, str) for text, _ in view)


def test_frames_top_merges_are_the_stores_merges():
    """The model merges what topview sends with ingest.model.frames: the same sums as the store."""
    samples = [tick(40000, 100.5, 3), tick(40000, 101.5, 4)]
    sent = topview.second(samples)
    merged = frames.merge(frame for _, _, _, _, frame in sent["procs"])
    direct = frames.merge(frames.frame_add({}, s) for s in samples)
    assert metrics.derive(merged, 2.0, ("requests", "throughput")) == \
        metrics.derive(direct, 2.0, ("requests", "throughput"))
