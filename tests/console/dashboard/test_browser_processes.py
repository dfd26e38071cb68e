"""The Processes tab in a real browser, on web-3 (2 groups x 2 processes, restarts about every
30 s): lifetime bars, restarts per hour, the event log, the process table and their links."""

from __future__ import annotations

import re

import pytest
from browser_support import messages, number, query_of, wait_message
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PATH = "/hosts/web-3/?tab=processes&window=900"


def open_tab(tab, path: str = PATH) -> None:
    tab.login("ann", path)
    tab.page.wait_for_function("() => Number(document.querySelector('#proc-gantt').dataset.rows) > 0")
    tab.page.locator("#processes tbody tr").first.wait_for()


def url_query(page) -> dict[str, str]:
    """The query string now: ``page.url`` learns of history.replaceState a moment later."""
    return query_of(page.evaluate("location.href"))


def snapshot_of(tab) -> dict:
    return wait_message(tab, lambda m: m.get("type") == "tab.snapshot" and m.get("tab") == "processes",
                        0, 10, "the processes snapshot")


def bar_point(page, key: str) -> dict:
    """Where the middle of the bar row of process ``key`` is, in page coordinates."""
    return page.evaluate(
        """key => {
             const gantt = document.querySelector('#proc-gantt');
             const rows = document.querySelectorAll('#processes tbody tr');
             const keys = Array.from(rows).map(r => r.dataset.key);
             const live = keys.filter(k => k === key);
             const rowH = Number(gantt.dataset.rowHeight), axisH = Number(gantt.dataset.axisHeight);
             const i = keys.indexOf(key);
             // as a user would: scroll the chart into the window, and the bar into the chart
             // (a busy machine's longer run has more processes than the chart shows at once)
             const top = i * rowH, shown = gantt.clientHeight - axisH;
             if (top < gantt.scrollTop || top + rowH > gantt.scrollTop + shown) {
               gantt.scrollTop = Math.max(0, top - Math.floor(shown / 2));
             }
             gantt.scrollIntoView({block: "center"});
             const box = gantt.querySelector('canvas').getBoundingClientRect();
             return {x: box.left + box.width - 40, y: box.top + axisH + top + rowH / 2 - gantt.scrollTop,
                     found: live.length};
           }""", key)


def test_bars_table_and_restarts_match_the_snapshot(tab):
    open_tab(tab)
    page = tab.page
    snap = snapshot_of(tab)
    size = max(len(frame) for frame in tab.frames if '"tab.snapshot"' in frame)
    print(f"web-3 processes snapshot, 15 min: {size} bytes")
    assert size < 100_000
    keys = [row["key"] for row in snap["rows"]]
    assert snap["rows"] and snap["rows_total"] == len(keys)
    live = [row for row in snap["rows"] if row["state"] == "running"]
    assert len(live) >= 4  # 2 groups x 2 processes running now
    # one table row per process, in the bars' order (group, then start)
    table_keys = page.locator("#processes tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert set(keys) <= set(table_keys)
    assert number(page.locator("#proc-gantt").get_attribute("data-rows")) >= len(live)
    groups = page.locator("#processes tbody tr td:nth-child(2)").all_text_contents()
    assert groups == sorted(groups)
    # the table's live columns come from the newest tick: capacity, CPU, RSS, req/s filled in
    cells = page.wait_for_function(
        """() => Array.from(document.querySelectorAll('#processes tbody tr'))
                   .map(r => Array.from(r.cells).map(c => c.textContent))
                   .find(c => c[2] === 'running' && c[5].endsWith('%'))""").json_value()
    assert number(cells[5]) <= 100 and "MiB" in cells[7] and cells[8].endswith("/s")
    # restarts: the readout counts what the console counted, at the rate for the window
    restarts = snap["restarts"]
    readout = page.locator("#proc-restarts").text_content()
    assert readout.startswith(f"{restarts['count']} in 15 min")
    assert number(readout.split("·")[1]) == pytest.approx(restarts["count"] * 4, abs=0.05)
    split = page.locator("#proc-restart-split").text_content()
    assert split == " · ".join(f"{c} {restarts['categories'][c]}" for c in ("planned", "tuning", "unplanned"))
    tab.shot("tab-processes.png", history=40)


def test_event_log_lists_lifecycle_events_oldest_first(tab):
    open_tab(tab)
    page = tab.page
    snap = snapshot_of(tab)
    page.wait_for_function("() => document.querySelectorAll('#proc-log tbody tr').length > 0", timeout=30_000)
    kinds = page.locator("#proc-log tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert set(kinds) <= {"started", "stopping", "stopped"}
    pinned = "w => w.scrollTop + w.clientHeight >= w.scrollHeight - 4"
    assert page.locator("#proc-log-wrap").evaluate(pinned)  # the newest events in sight
    times = page.locator("#proc-log tbody tr td:first-child").all_text_contents()
    assert times == sorted(times) or len({t[:2] for t in times}) > 1  # oldest first (unless past midnight)
    for row in page.locator('#proc-log tbody tr[data-kind="stopped"]').all()[:3]:
        cells = row.locator("td").all_text_contents()
        assert cells[5] and cells[9] in ("yes", "no")  # a reason, and whether it drained
        assert row.locator("td.reason").get_attribute("data-category") in ("planned", "tuning", "unplanned")
    if snap["events"]:
        first = snap["events"][0]
        assert page.locator(f'#proc-log tbody tr[data-key="{first["pid"]}:{first["inc"]}"]').count() >= 1


def test_hover_shows_the_process_and_clicks_link_bars_log_and_table(tab):
    open_tab(tab)
    page = tab.page
    page.wait_for_function("() => document.querySelectorAll('#proc-log tbody tr').length > 0", timeout=30_000)
    key = page.locator("#proc-log tbody tr").last.get_attribute("data-key")
    tip = page.locator("#proc-tooltip")
    # the bars move with the live time axis: on a busy machine a redraw can come between reading
    # a bar's place and the mouse reaching it, so read it again and move there again
    for _attempt in range(10):
        point = bar_point(page, key)
        assert point["found"] == 1
        page.mouse.move(point["x"], point["y"])
        try:
            tip.wait_for(state="visible", timeout=3_000)
            break
        except PlaywrightTimeout:
            page.mouse.move(1, 1)
    tip.wait_for(state="visible", timeout=1_000)
    text = tip.text_content()
    pid = key.split(":")[0]
    assert text.startswith(f"pid {pid} · parent ") and "group app" in text and "started" in text
    # click the bar: its log rows and its table row are selected, and the URL says which
    page.mouse.click(point["x"], point["y"])
    assert url_query(page)["pid"] == key
    selected_log = page.locator("#proc-log tbody tr.selected").evaluate_all(
        "rows => rows.map(r => r.dataset.key)")
    assert selected_log and set(selected_log) == {key}
    assert page.locator("#processes tbody tr.selected").get_attribute("data-key") == key
    # click another process's log row: the selection follows, both ways
    other = page.locator(f'#proc-log tbody tr:not([data-key="{key}"])').first
    if other.count():
        other_key = other.get_attribute("data-key")
        other.click()
        assert url_query(page)["pid"] == other_key
        assert page.locator("#processes tbody tr.selected").get_attribute("data-key") == other_key
    # a click on the selected table row clears it
    page.locator("#processes tbody tr.selected").click()
    assert "pid" not in url_query(page)
    assert page.locator("#proc-log tbody tr.selected").count() == 0


def test_options_round_trip_through_the_url(tab):
    open_tab(tab, PATH + "&hide=planned,tuning")
    page = tab.page
    assert not page.locator('input[name="proc-cat"][value="planned"]').is_checked()
    assert page.locator('input[name="proc-cat"][value="unplanned"]').is_checked()
    reasons = page.locator("#proc-log tbody td.reason[data-category]").evaluate_all(
        "cells => cells.map(c => c.dataset.category)")
    assert set(reasons) <= {"unplanned"}
    page.locator('input[name="proc-cat"][value="tuning"]').check()
    assert url_query(page)["hide"] == "planned"
    page.locator('input[name="proc-cat"][value="planned"]').check()
    assert "hide" not in url_query(page)
    key = page.locator("#processes tbody tr").first.get_attribute("data-key")
    page.locator("#processes tbody tr").first.click()
    url = page.url
    page.goto(url)  # a copied link opens the same view
    page.locator("#processes tbody tr.selected").wait_for()
    assert page.locator("#processes tbody tr.selected").get_attribute("data-key") == key
    # pause freezes the timeline; resume follows live again
    page.click("#proc-pause")
    assert page.locator("#proc-pause").get_attribute("aria-pressed") == "true"
    expect(page.locator("#proc-gantt-note")).to_contain_text("paused at")
    page.click("#proc-pause")
    assert page.locator("#proc-pause").get_attribute("aria-pressed") == "false"


def test_live_frames_carry_events_and_ticks(tab):
    open_tab(tab)
    page = tab.page
    mark = len(tab.frames)
    frame = wait_message(tab, lambda m: m.get("type") == "tab.frame" and m.get("tab") == "processes"
                         and m.get("ticks"), mark, 10, "a processes frame with ticks")
    assert all(len(t) == 6 for t in frame["ticks"])
    assert not [m for m in messages(tab, "tab.frame", since=mark) if m.get("tab") not in ("processes",)]
    page.wait_for_timeout(300)


def test_empty_group_says_what_to_do(tab):
    tab.login("ann", "/hosts/web-3/?tab=processes&window=60&group=nosuchgroup")
    page = tab.page
    expect(page.locator("#proc-gantt-empty")).to_contain_text("pick a longer window")
    assert "No process was alive in nosuchgroup in the last 1 min" in \
        page.locator("#proc-gantt-empty").text_content()
    expect(page.locator("#processes-empty")).to_contain_text("Check that this host's agent is running")
    expect(page.locator("#proc-log-empty")).to_contain_text("No STARTED, STOPPING or STOPPED events")
    assert page.locator("#proc-restarts").text_content().startswith("0 in 1 min")
    assert page.locator("#processes tbody tr").count() == 0


def test_a_skewed_browser_clock_draws_the_same_bars(tab):
    """Times come from the console's clock: a laptop an hour ahead still sees running processes
    up for seconds or minutes, not an hour, and every bar in the window."""
    tab.page.add_init_script("const real = Date.now; Date.now = () => real() + 3600 * 1000;")
    open_tab(tab, "/hosts/web-3/?tab=processes&window=60")
    page = tab.page
    keys = page.wait_for_function(
        """() => { const keys = Array.from(document.querySelectorAll('#processes tbody tr'))
                   .filter(r => r.cells[2].textContent === 'running').map(r => r.dataset.key);
                   return keys.length ? keys : null; }""").json_value()
    # A running process whose STARTED was seen (the simulator's datagrams can be lost at the
    # kernel's 10-datagram queue, and a process can stop meanwhile: try each).
    text = ""
    for key in keys:
        point = bar_point(page, key)
        page.mouse.move(point["x"], point["y"])
        page.wait_for_timeout(200)
        text = page.locator("#proc-tooltip").text_content()
        if "state running · up " in text:
            break
    assert "state running · up " in text, text
    up = re.search(r"up ([0-9.]+) (s|min)$", text)  # a browser-clock "now" would read "up 60 min"
    # a running process's tooltip (the bars may move between reading a bar's place and hovering
    # it, when a restart re-sorts them: whichever process is there, the clock is what is tested)
    assert re.match(r"pid [0-9]+ ", text) and up, text
    assert up.group(2) == "s" or float(up.group(1)) < 10, text
