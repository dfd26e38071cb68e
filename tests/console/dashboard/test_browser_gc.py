"""The GC tab in a real browser, on web-3 (2 groups x 2 processes, 2 interpreters each, restarts).

The console, agents and browser come from conftest.py. Every test fails on a JavaScript error.
"""

from __future__ import annotations

import pytest
from browser_support import messages, number, query_of, wait_message

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
    page.mouse.move(box["x"] + 62, box["y"] + box["height"] - 40)  # bucket 0: [0, 1.25 ms)
    hist_tip = page.locator('figure[data-chart="histogram"] .chart-tooltip')
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
