"""The top tab against the tabs the pages read, on both stores: the same frames as the
Overview's points (phase sums and histograms), the host frame's own ``recent``, the processes'
last ten seconds merged, and a Model fed with it deriving the Overview's figures."""

from __future__ import annotations

import json
import math
import time

import pytest
from tab_helpers import sample, write

from console.live import summary
from console.live.tabs import TABS, overview, top
from console.live.tabs.base import TabRequest
from ingest.model import frames, topview
from ingest.model.fields import PHASES
from ingest.model.histogram import bucket_index
from ingest.model.kinds import TICK
from ingest.top.model import Model

HOST = {"id": 11, "name": "web-9"}


def tick(pid: int, t: float, n: int, group: str = "app0") -> dict:
    d = 0.004 * (1 + pid % 3) * (1 + n % 5)  # a different duration per process and second
    return sample(TICK, pid, t, group, sample_period=1.0, request_count=n, request_threads_maximum=4,
                  capacity_utilization=0.3, cpu_utilization=0.4, memory_rss=50 << 20, status_2xx_total=n,
                  request_time=d * n, request_time_min=d, request_time_max=d,
                  request_time_buckets=[n if b == bucket_index(d) else 0 for b in range(65)],
                  application_time=0.9 * d * n, application_time_min=0.9 * d, application_time_max=0.9 * d,
                  application_time_buckets=[n if b == bucket_index(0.9 * d) else 0 for b in range(65)])


def traffic(now: float) -> list[dict]:
    """Three processes over two groups, ticking at .3 of every second of the last 90 s."""
    start = math.floor(now) - 90
    return sorted((tick(pid, start + s + 0.3, 2 + (pid + s) % 7, "app1" if pid == 3 else "app0")
                   for s in range(90) for pid in (1, 2, 3)), key=lambda x: x["t"])


@pytest.mark.asyncio
async def test_the_top_tab_holds_the_overviews_frames_and_the_host_frames_recent(store):
    now = time.time()
    await write(store, HOST["id"], traffic(now), seconds=1.0)
    got = await top.snapshot(store, HOST, TabRequest(tab="top", window=600), now)
    json.dumps(got, allow_nan=False)
    until = got["until"]
    assert until == math.floor(now) - 1
    # the Overview's points of the same seconds (one a second): the very sums and histograms
    view = await overview.snapshot(store, HOST, TabRequest(tab="overview", window=60, points=120), now)
    assert view["step"] == 1
    points = dict(zip(view["t"], zip(view["sums"], view["hist"], strict=True), strict=True))
    seconds = dict(got["seconds"])
    common = [t for t in seconds if t in points]
    assert len(common) >= 55
    for t in common:
        assert overview.phase_sums(seconds[t]) == points[t][0]
        assert overview.sparse_histogram(seconds[t], "request") == points[t][1]
    # the header: the host frame's recent of the snapshot's last second, as the fleet row has it
    assert got["recent"] == await summary.recent(store, HOST["id"], until - 1)
    # every process's last ten seconds, merged, from its first second in them
    procs = {(p, i): (group, first, frame) for p, i, group, first, frame in got["processes"]["procs"]}
    assert set(procs) == {(1, 1), (2, 1), (3, 1)}
    direct = [s for s in traffic(now) if s["p"] == 2 and until - 10 <= s["t"] < until]
    assert procs[(2, 1)][1] == until - 10
    assert procs[(2, 1)][2] == topview.process_frame(frames.merge(frames.frame_add({}, s) for s in direct))
    assert got["tens_step"] == topview.TEN and all(t % 10 == 0 for t, _ in got["tens"])


@pytest.mark.asyncio
async def test_top_derives_the_overviews_figures_from_them(store):
    """The phase means and the request latency top shows for a minute are those of the
    Overview's points of that minute, added up (the page's own arithmetic)."""
    now = time.time()
    await write(store, HOST["id"], traffic(now), seconds=1.0)
    request = TabRequest(tab="top", window=600)
    model = Model()
    model.apply({"type": "host.snapshot", "host": HOST["id"], "group": "*", "now": now, "series": {"t": []}})
    body = await top.snapshot(store, HOST, request, now)
    model.apply({"type": "tab.snapshot", "tab": "top", "host": HOST["id"], "now": now, **body})
    until = body["until"]
    model.until = lambda: until  # type: ignore[method-assign] # the model reads at the snapshot's second
    # a page's window ends at its "now", top's at the newest complete second: 62 s cover top's 60
    view = await overview.snapshot(store, HOST, TabRequest(tab="overview", window=62, points=120), now)
    rows = [sums for t, sums in zip(view["t"], view["sums"], strict=True) if until - 60 <= t < until]
    figures = model.window_metrics(60, (*(f"{p}_mean" for p in PHASES), "requests"))
    assert len(rows) == 60 and figures["requests"] == sum(r[PHASES.index("request")][1] for r in rows)
    for i, phase in enumerate(PHASES):
        duration, requests = sum(r[i][0] for r in rows), sum(r[i][1] for r in rows)
        want = duration / requests if requests else None
        assert figures[f"{phase}_mean"] == (pytest.approx(want, rel=1e-12) if want is not None else None), \
            (phase, figures[f"{phase}_mean"], want, duration, requests)
    counts, latency = model.phase_histogram("request", 60)
    hist = [h for t, h in zip(view["t"], view["hist"], strict=True) if until - 60 <= t < until]
    added: dict[int, float] = {}
    for h in hist:
        for bucket, count in h.items():
            added[int(bucket)] = added.get(int(bucket), 0) + count
    assert counts == added
    assert latency["request_max"] == max(r[PHASES.index("request")][3] for r in rows if r[4][1])


def test_top_is_a_tab_a_token_client_may_ask_for():
    assert TABS["top"] is top
    assert TabRequest.from_message({"tab": "top"}, TABS).tab == "top"
