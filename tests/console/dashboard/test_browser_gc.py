"""The GC tab in a real browser, on web-3 (2 groups x 2 processes, 2 interpreters each, restarts).

The console, agents and browser come from conftest.py. Every test fails on a JavaScript error.
"""

from __future__ import annotations

import json
import re

import pytest
from browser_support import messages, number, query_of, wait_message

from ingest.model.histogram import bucket_bounds, bucket_index

pytestmark = pytest.mark.browser

PATH = "/hosts/web-3/?tab=gc"


def open_gc(tab, path: str = PATH):
    tab.login("ann", path)
    page = tab.page
    page.wait_for_selector("#gc-series tbody tr", timeout=20_000)
    return page


def series_rows(page) -> list[dict[str, str]]:
    return page.locator("#gc-series tbody tr").evaluate_all(
        "rows => rows.map(r => ({pid: r.dataset.pid, interp: r.dataset.interp}))")


def test_gc_tab_shows_the_hosts_collections_pauses_and_configuration(tab):
    page = open_gc(tab)
    (snapshot,) = messages(tab, "tab.snapshot")[-1:]
    assert snapshot["tab"] == "gc" and snapshot["span"] == 300
    # every process and interpreter of the host, named as people read them
    page.wait_for_function("() => document.querySelectorAll('#gc-series tbody tr').length >= 8")
    rows = series_rows(page)
    assert len(rows) >= 8 and {r["interp"] for r in rows} == {"(main)", "subapp"}
    live_pids = {r["p"] for m in messages(tab, "tab.frame") for r in m.get("records", [])}
    assert {int(r["pid"]) for r in rows} <= set(snapshot["pids"]) | live_pids
    config = page.locator("#gc-config").inner_text()
    assert "enabled" in config and "700 / 10 / 10" in config and "dropped events" in config
    # the simulator collects gen 0 far more often than gen 2
    page.wait_for_function("""() => parseFloat(document.querySelector(
        'figure[data-chart="collections"] .readout').textContent.split('gen 0 ')[1]) > 0""")
    readout = page.locator('figure[data-chart="collections"] .readout').text_content()
    gen0, gen2 = (number(readout.split(f"gen {g} ")[1]) for g in (0, 2))
    assert gen0 > gen2 >= 0
    # the histogram's percentiles stay inside the exact range
    page.wait_for_function("""() => parseInt(document.querySelector(
        'figure[data-chart="histogram"] .readout').textContent.slice(2)) > 0""")
    hist = page.locator('figure[data-chart="histogram"] .readout').text_content()

    def ms(label: str) -> float:
        value = hist.split(label + " ")[1]
        return number(value) * (1000 if value.split()[1].startswith("s") else 1)

    assert ms("min") <= ms("p50") <= ms("p95") <= ms("p99") <= ms("max")
    # hover: the uPlot chart's values, a pause dot, a histogram bucket
    plot = page.locator('figure[data-chart="collections"] .u-over')
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    tip = page.locator('figure[data-chart="collections"] .chart-tooltip')
    tip.wait_for(state="visible")
    assert "gen 0:" in tip.inner_text() and "gen 2:" in tip.inner_text()
    canvas = page.locator('figure[data-chart="histogram"] canvas')
    box = canvas.bounding_box()
    # around the first tick (bucket 0's lower edge, 1 ms): bucket 0, [0, 1.25 ms), and its strip
    hist_tip = page.locator('figure[data-chart="histogram"] .chart-tooltip')
    for dx in (2, -4, -10, 4, -16, 6):
        box = canvas.bounding_box()  # again: a notice in the top bar may have moved the page
        axis = json.loads(page.locator('figure[data-chart="histogram"]').get_attribute("data-axis"))
        first = axis["ticks"][0]
        page.mouse.move(box["x"] + first["x"] + dx, box["y"] + box["height"] - 40)
        page.wait_for_timeout(150)
        if hist_tip.is_visible() and "under 1.25 ms" in hist_tip.inner_text():
            break
    hist_tip.wait_for(state="visible")
    assert "under 1.25 ms" in hist_tip.inner_text() and "pauses" in hist_tip.inner_text()
    dot = page.wait_for_function("""() => {
        const c = document.querySelector('figure[data-chart="timeline"] canvas');
        const g = c.getContext('2d');
        const r = window.devicePixelRatio || 1;
        const d = g.getImageData(0, 0, c.width, c.height).data;
        for (let x = c.width - 12; x > 60 * r; x -= 1) for (let y = 8; y < c.height - 22 * r; y += 1) {
          const i = (y * c.width + x) * 4;
          if (d[i + 3] > 200 && d[i + 2] > 200 && d[i] < 120) return {x: x / r, y: y / r};  // blue: gen 0
        }
        return null;
    }""").json_value()
    box = page.locator('figure[data-chart="timeline"] canvas').bounding_box()
    page.mouse.move(box["x"] + dot["x"], box["y"] + dot["y"])
    dot_tip = page.locator('figure[data-chart="timeline"] .chart-tooltip')
    dot_tip.wait_for(state="visible")
    assert "pause" in dot_tip.inner_text() and "pid " in dot_tip.inner_text()
    page.mouse.move(0, 0)
    tab.shot("tab-gc.png", history=20)


def test_gc_selectors_live_in_the_url(tab):
    page = open_gc(tab)
    pid = page.locator("#gc-pid option").nth(1).get_attribute("value")
    since = len(tab.frames)
    page.select_option("#gc-pid", pid)
    wait_message(tab, lambda m: m.get("type") == "tab.snapshot" and m.get("pid") == int(pid), since, 10,
                 "the snapshot of one process")
    page.wait_for_function("pid => Array.from(document.querySelectorAll('#gc-series tbody tr'))"
                           ".every(r => r.dataset.pid === pid)", arg=pid)
    assert query_of(page.url)["pid"] == pid
    page.select_option("#gc-interp", "(main)")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#gc-series tbody tr'))"
                           ".every(r => r.dataset.interp === '(main)')")
    assert query_of(page.url)["interp"] == "(main)"
    # a copied link shows the same view
    page.reload()
    page.wait_for_selector("#gc-series tbody tr")
    assert page.locator("#gc-pid").input_value() == pid
    assert page.locator("#gc-interp").input_value() == "(main)"
    assert {(r["pid"], r["interp"]) for r in series_rows(page)} == {(pid, "(main)")}
    # a click on a row of the whole host narrows to it
    page.select_option("#gc-pid", "")
    page.select_option("#gc-interp", "")
    page.wait_for_function("() => new Set(Array.from(document.querySelectorAll('#gc-series tbody tr'))"
                           ".map(r => r.dataset.interp)).size === 2")
    row = page.locator('#gc-series tbody tr[data-interp="subapp"]').first
    target = row.get_attribute("data-pid")
    row.click()
    page.wait_for_function("() => document.querySelectorAll('#gc-series tbody tr').length === 1")
    assert query_of(page.url)["pid"] == target and query_of(page.url)["interp"] == "subapp"


def test_gc_pause_freezes_the_picture_while_data_arrives(tab):
    page = open_gc(tab)
    readout = page.locator('figure[data-chart="timeline"] .readout')
    page.click("#gc-pause")
    assert page.locator("#gc-pause").text_content() == "Resume"
    frozen = readout.text_content()
    frozen_table = page.locator("#gc-series tbody").inner_text()
    page.wait_for_function("() => parseInt(document.querySelector('#gc-paused').textContent"
                           ".split('·')[1].replace(/,/g, '')) > 0", timeout=15_000)
    assert "new event" in page.locator("#gc-paused").text_content()
    assert readout.text_content() == frozen and page.locator("#gc-series tbody").inner_text() == frozen_table
    page.click("#gc-pause")
    assert page.locator("#gc-paused").is_hidden()
    page.wait_for_function("frozen => document.querySelector('figure[data-chart=\"timeline\"] .readout')"
                           ".textContent !== frozen", arg=frozen)


def test_gc_empty_state_says_what_to_do(tab):
    tab.login("ann", PATH + "&pid=1")
    page = tab.page
    page.wait_for_function("() => document.querySelector('#gc-empty-text').textContent.includes('pid 1')")
    assert page.locator("#gc-body").is_hidden()
    assert "pick another one" in page.locator("#gc-empty-hint").text_content()
    page.click("#gc-show-all")
    page.wait_for_selector("#gc-series tbody tr")
    assert "pid" not in query_of(page.url)


CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")  # the one 24-hour format (static/console/ticks.js)
TIME_STEPS = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}


def axis(page, chart: str) -> dict:
    """What the hand-drawn chart drew (its figure's data-axis), once it has drawn with data."""
    page.wait_for_function("""name => {
        const fig = document.querySelector(`figure[data-chart="${name}"]`);
        const a = fig && fig.dataset.axis && JSON.parse(fig.dataset.axis);
        return a && (name !== "histogram" || a.marks.length === 3);
    }""", arg=chart, timeout=20_000)
    return json.loads(page.locator(f'figure[data-chart="{chart}"]').get_attribute("data-axis"))


def edge_label(index: int) -> str:
    """A bucket's lower edge as the axis labels it: bucket 0 starts its octave at 1 ms."""
    edge = 0.001 if index == 0 else bucket_bounds(index)[0]
    return f"{edge * 1000:.4g} ms" if edge < 1 else f"{edge:.4g} s"


def sent_pauses(tab) -> list[tuple[float, float]]:
    """(start, pause) of every GC event the page was sent, snapshot and frames."""
    out = []
    for m in messages(tab, "tab.snapshot", "tab.frame"):
        if m.get("tab") == "gc":
            out += [(e[0], e[1]) for e in m.get("events", [])]
    return out


def test_gc_histogram_axis_starts_at_the_first_bucket_and_draws_a_p50_below_the_next_tick(tab):
    page = open_gc(tab)
    drawn = axis(page, "histogram")
    (snapshot,) = messages(tab, "tab.snapshot")[-1:]
    occupied = {int(k) for h in snapshot["buckets"]["h"] for k, v in h.items() if v > 0}
    occupied |= {bucket_index(d) for _, d in sent_pauses(tab)}
    first = min(occupied)
    ticks = drawn["ticks"]
    assert ticks[0]["label"] == edge_label(first) and ticks[0]["label"] != "0"
    assert len(ticks) >= 2 and [t["v"] for t in ticks] == sorted(t["v"] for t in ticks)
    for tick in ticks[1:]:  # round durations after the first edge
        mantissa = f"{tick['v']:.1e}".split("e")[0]
        assert mantissa in {"1.0", "2.0", "5.0"}, tick
    marks = {m["name"]: m for m in drawn["marks"]}
    assert marks["p50"]["value"] <= marks["p95"]["value"] <= marks["p99"]["value"]
    # the simulator's gen-0 pauses (0.1-0.6 ms) are most of them: p50 lies below the second tick
    p50 = marks["p50"]
    assert p50["value"] < ticks[1]["v"]
    assert drawn["left"] <= p50["x"] < ticks[1]["x"]
    # ... and it is on the canvas in its colour, not only in the readout (read in one go: it redraws)
    found = page.evaluate("""() => {
        const fig = document.querySelector('figure[data-chart="histogram"]');
        const a = JSON.parse(fig.dataset.axis);
        const x = a.marks.find((m) => m.name === "p50").x;
        const c = fig.querySelector('canvas');
        const r = window.devicePixelRatio || 1;
        const want = a.colors.p50.match(/[0-9a-f]{2}/gi).map((h) => parseInt(h, 16));
        const d = c.getContext('2d').getImageData(Math.floor((x - 2) * r), 0, 4 * r, c.height).data;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i + 3] > 200 && want.every((v, k) => Math.abs(d[i + k] - v) < 24)) return true;
        }
        return false;
    }""")
    assert found, "no p50 marker drawn at its x"
    readout = page.locator('figure[data-chart="histogram"] .readout').text_content()
    assert "p50 " in readout and "p95 " in readout and "p99 " in readout


def test_gc_timeline_has_round_time_ticks_from_where_the_data_starts(tab):
    page = open_gc(tab)
    drawn = axis(page, "timeline")
    (snapshot,) = messages(tab, "tab.snapshot")[-1:]
    labels = [t["label"] for t in drawn["ticks"]]
    assert len(labels) >= 2 and all(CLOCK.fullmatch(label) for label in labels), labels
    times = [t["t"] for t in drawn["ticks"]]
    step = times[1] - times[0]
    assert step in TIME_STEPS and all(t % step == 0 for t in times), times
    # no empty stretch before any GC data: the axis starts at the window or at the first data, later
    first = min([snapshot["now"], *snapshot["buckets"]["t"][:1],
                 *(s["first"]["t"] for s in snapshot["series"]), *(t for t, _ in sent_pauses(tab))])
    window_start = drawn["to"] - snapshot["span"]
    assert drawn["from"] >= first - 10  # a console or agent younger than the window: no empty stretch first
    assert drawn["from"] <= max(first, window_start) + 1  # and no data left out
    # the other times of the tab are in the same format: Pause's badge and the rows' titles
    page.click("#gc-pause")
    badge = page.locator("#gc-paused").text_content()
    assert CLOCK.search(badge) and badge.startswith("Paused at ")
    page.click("#gc-pause")


def test_gc_rows_of_a_stopped_process_stay_marked_ended(tab):
    page = open_gc(tab)
    # web-3 restarts a process every few seconds (--restart-probability 0.03)
    page.wait_for_selector('#gc-series tbody tr[data-ended="stopped"]', timeout=60_000)
    row = page.locator('#gc-series tbody tr[data-ended="stopped"]').first
    pid, interp = row.get_attribute("data-pid"), row.get_attribute("data-interp")
    assert "ended" in row.locator(".gc-end").text_content()
    title = row.get_attribute("title")
    assert title.startswith("process stopped at ") and CLOCK.search(title), title
    # the registry says so too: the host messages list it stopped
    states = {(p["pid"], p["state"]) for m in messages(tab, "host.snapshot", "host.frame")
              for p in m.get("processes") or []}
    assert (int(pid), "stopped") in states
    # live rows first, ended ones after them
    ended = page.locator("#gc-series tbody tr").evaluate_all(
        "rows => rows.map(r => Boolean(r.dataset.ended))")
    assert ended == sorted(ended)
    # it stays while its last record is in the window: still there frames later
    count = len(tab.frames)
    wait_message(tab, lambda m: m.get("type") == "tab.frame" and m.get("tab") == "gc", count + 1, 10,
                 "two more GC frames")
    wait_message(tab, lambda m: m.get("type") == "tab.frame" and m.get("tab") == "gc", len(tab.frames), 10,
                 "another GC frame")
    again = page.locator(f'#gc-series tbody tr[data-pid="{pid}"][data-interp="{interp}"]')
    assert again.count() == 1 and again.get_attribute("data-ended") == "stopped"
