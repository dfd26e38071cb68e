"""The Slow requests tab in a real browser: the live table against what the console sent,
sorting, state filter and URL search in the URL, export, the request drill-down, empty states.

web-3 simulates 2 groups x 2 processes x 4 threads with slow requests (20 % per tick).
"""

from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import quote

import pytest
from browser_support import messages, query_of, wait_message

pytestmark = pytest.mark.browser

ROWS = "#slow-table tbody tr"


def seconds(text: str) -> float | None:
    """"1.23 s" / "850 ms" / "≥ 2.10 s" as seconds."""
    match = re.search(r"([0-9.]+)\s*(ms|s)\b", text)
    if not match:
        return None
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def open_slow(tab, query: str = "", rows: int = 1):
    tab.login("ann", "/hosts/web-3/?tab=slow" + query)
    page = tab.page
    if rows:
        page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length >= {rows}", timeout=20_000)
    return page


def wait_url_without_req(page) -> None:
    """Closing the drill-down goes back in the history (asynchronously) to the URL without it."""
    page.wait_for_function("() => !new URLSearchParams(location.search).has('req')", timeout=5000)


def column(page, field: str) -> list[str]:
    cells = page.locator(f'{ROWS} td[data-field="{field}"]')
    return cells.evaluate_all("cells => cells.map(c => c.textContent)")


def running_requests_advance(page, attempts: int = 10) -> bool:
    """True once requests shown as active twice, 1.1 s apart (the table redraws once a
    second), showed a longer elapsed time."""
    read = f"""() => Object.fromEntries(Array.from(document.querySelectorAll('{ROWS}[data-state=active]'))
                 .map(r => [r.dataset.key, r.querySelector('[data-field=duration]').textContent]))"""
    for _ in range(attempts):
        page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=active]')", timeout=20_000)
        before = page.evaluate(read)
        page.wait_for_timeout(1100)
        after = page.evaluate(read)
        both = before.keys() & after.keys()  # some finish meanwhile (at most a tick after they showed)
        if both:
            assert all(seconds(before[k]) >= 1.0 for k in both)  # the simulator's threshold is 1 s
            return all(seconds(after[k]) > seconds(before[k]) for k in both)
    return False


def test_table_shows_the_hosts_slow_requests_live_and_opens_the_drill_down(tab):
    page = open_slow(tab, rows=3)
    (snapshot,) = messages(tab, "tab.snapshot")
    assert snapshot["tab"] == "slow" and snapshot["omitted"] == 0
    keys = page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.key)")
    # every row drawn was sent by the console (snapshot or a later frame), none twice
    sent = snapshot["records"] + [r for m in messages(tab, "tab.frame") if m["tab"] == "slow"
                                  for r in m["records"]]
    assert {r["group"] for r in sent} <= {"app0", "app1"}
    assert len(keys) == len(set(keys)) and set(keys) <= {r["key"] for r in sent}
    # the default order is slowest first
    durations = [seconds(t) for t in column(page, "duration")]
    assert durations == sorted(durations, reverse=True)
    # an active request's elapsed time advances between its records
    assert running_requests_advance(page)
    # completed 5xx statuses are red, the URL cell's tooltip has the whole URL
    # (each cell's text and kind read at once: the live table re-sorts between two reads)
    cells = page.locator(f'{ROWS} td[data-field="status"]').evaluate_all(
        "cells => cells.map(c => [c.textContent, c.dataset.kind || ''])")
    for text, kind in cells:
        if text.isdigit() and int(text) >= 500:
            assert kind == "bad", (text, kind)
    url = page.locator(f'{ROWS} td[data-field="url"]').first
    url.hover()
    assert url.get_attribute("title") == url.text_content() and url.text_content().startswith("http://")
    counts = page.locator('.slow-states button[data-state="all"] .n').text_content()
    assert int(counts) >= len(keys)
    tab.shot("tab-slow.png", history=20)

    # click a completed row: the drill-down shows its record, and its key goes in the URL
    page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=completed]')", timeout=20_000)
    done = page.locator(f"{ROWS}[data-state=completed]").first
    key = done.get_attribute("data-key")
    done_url = done.locator('td[data-field="url"]').text_content()
    done.click()
    dialog = page.locator("#request-drilldown")
    assert dialog.is_visible()
    assert query_of(page.url)["req"] == key
    text = dialog.text_content()
    assert done_url in text and "completed" in text
    for label in ("Client", "User-Agent", "Log id", "Apache child", "GIL wait", "Concurrency", "CPU",
                  "Body in", "Body out", "Input read", "Output write", "Started", "Ended"):
        assert label in text, label
    assert "(reported at completion)" not in text
    assert dialog.locator(".req-seg").count() >= 3  # server, queue, daemon, application with time
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    wait_url_without_req(page)

    # an active one: fields reported only at completion say so; close with the button
    # (read at once: the request may complete, and the open dialog follow it, a moment later)
    # (a row drawn as active may have completed in the model before the next redraw: the dialog
    # then shows the completed record, rightly; close it and take another active row)
    for _attempt in range(10):
        page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=active]')", timeout=20_000)
        shown = page.evaluate(f"""() => {{
            document.querySelector('{ROWS}[data-state=active]').click();
            const d = document.getElementById('request-drilldown');
            return {{state: d.querySelector('.req-state').textContent, text: d.textContent,
                     elapsed: d.querySelector('.req-elapsed').textContent,
                     running: d.querySelectorAll('.req-seg.running').length}};
        }}""")
        if shown["state"] == "active":
            break
        assert shown["state"] == "completed"
        page.keyboard.press("Escape")
    assert shown["state"] == "active" and "(reported at completion)" in shown["text"]
    assert shown["running"] == 1 and "(still running)" in shown["text"]
    # its elapsed time runs on between records (unless it completed meanwhile)
    page.wait_for_timeout(600)
    later = page.evaluate("""() => {
        const d = document.getElementById('request-drilldown');
        return {state: d.querySelector('.req-state').textContent,
                elapsed: d.querySelector('.req-elapsed').textContent};
    }""")
    if later["state"] == "active":
        assert seconds(later["elapsed"]) > seconds(shown["elapsed"])
    dialog.locator(".req-close").click()
    assert not dialog.is_visible()
    # a click on the backdrop closes it too
    page.locator(ROWS).first.click()
    assert dialog.is_visible()
    page.mouse.click(5, 5)
    assert not dialog.is_visible()
    wait_url_without_req(page)


def test_sort_state_filter_and_search_live_in_the_url(tab):
    page = open_slow(tab, rows=3)
    page.click('th[data-sort="pid"] button')
    assert query_of(page.url)["sort"] == "pid"
    assert page.locator('th[data-sort="pid"]').get_attribute("aria-sort") == "ascending"
    pids = [int(t) for t in column(page, "pid")]
    assert pids == sorted(pids)
    page.click('th[data-sort="pid"] button')
    assert query_of(page.url)["sort"] == "-pid"
    pids = [int(t) for t in column(page, "pid")]
    assert pids == sorted(pids, reverse=True)

    page.click('.slow-states button[data-state="completed"]')
    assert query_of(page.url)["state"] == "completed"
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length > 0", timeout=20_000)
    assert set(page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.state)")) == {"completed"}

    # search: a path the simulator uses, then every row drawn contains it
    path = column(page, "url")[0].split("/api", 1)[1] or "/api"
    page.fill("#slow-search", path.upper())  # case does not matter
    page.wait_for_function("p => new URLSearchParams(location.search).get('q') === p",
                           arg=path.upper(), timeout=5000)
    urls = column(page, "url")
    assert urls and all(path.lower() in u.lower() for u in urls)

    # a reload (or a copied link) shows the same view
    page.reload()
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length > 0", timeout=20_000)
    wanted = {"tab": "slow", "sort": "-pid", "state": "completed", "q": path.upper()}
    assert {k: v for k, v in query_of(page.url).items() if k in wanted} == wanted
    assert page.locator("#slow-search").input_value() == path.upper()
    assert page.locator('.slow-states button[data-state="completed"]').get_attribute("aria-checked") == "true"
    assert page.locator('th[data-sort="pid"]').get_attribute("aria-sort") == "descending"
    assert set(page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.state)")) == {"completed"}
    assert all(path.lower() in u.lower() for u in column(page, "url"))

    # a search that matches nothing says so and offers the way back
    page.fill("#slow-search", "no-such-url-zzz")
    empty = page.locator("#slow-empty")
    empty.wait_for(state="visible")
    assert "No request matches the filter" in empty.text_content()
    page.click("#slow-clear-filters")
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length > 0", timeout=5000)
    assert "q" not in query_of(page.url) and "state" not in query_of(page.url)


def test_a_link_opens_its_request_and_a_stale_link_explains(tab):
    page = open_slow(tab)
    page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=completed]')", timeout=20_000)
    row = page.locator(f"{ROWS}[data-state=completed]").first
    key = row.get_attribute("data-key")
    log_id = row.locator('td[data-field="log_id"]').text_content()
    row.click()
    link = page.url
    assert query_of(link)["req"] == key
    tab.page.goto(link)  # the copied link, in a fresh page load
    dialog = page.locator("#request-drilldown")
    dialog.wait_for(state="visible")  # "Looking for this request...", until the tab's snapshot has it
    page.wait_for_function("id => document.getElementById('request-drilldown').textContent.includes(id)",
                           arg=log_id, timeout=20_000)
    assert "completed" in dialog.text_content()
    tab.goto("/hosts/web-3/?tab=slow&req=1:1:gone")
    dialog.wait_for(state="visible")  # looking for it, until the tab's snapshot says it is not there
    page.wait_for_function("() => document.getElementById('request-drilldown').textContent"
                           ".includes('No slow-request record with this key')", timeout=20_000)
    assert query_of(page.url)["req"] == "1:1:gone"  # the link stays what it was while it explains
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    wait_url_without_req(page)


def test_export_downloads_the_rows_shown(tab):
    page = open_slow(tab, "&state=completed", rows=2)
    shown = page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.key)")
    with page.expect_download() as info:
        page.click("#slow-export-json")
    with open(info.value.path()) as handle:
        records = json.load(handle)
    name = info.value.suggested_filename
    assert name.startswith("slow-web-3-") and name.endswith(".json")
    assert {r["state"] for r in records} == {"completed"}
    assert set(shown) <= {r["key"] for r in records}
    with page.expect_download() as info:
        page.click("#slow-export-csv")
    with open(info.value.path(), newline="") as handle:
        table = list(csv.DictReader(io.StringIO(handle.read())))
    assert table and {row["state"] for row in table} == {"completed"}
    assert {"duration_s", "url", "pid", "thread", "log_id", "user_agent"} <= set(table[0])
    assert all(float(row["duration_s"]) >= 1.0 for row in table)


def test_an_empty_group_tells_the_user_what_to_do(tab):
    page = open_slow(tab, "&group=nope", rows=0)
    empty = page.locator("#slow-empty")
    page.wait_for_function(
        "() => /No slow requests/.test(document.querySelector('#slow-empty').textContent)", timeout=20_000)
    text = empty.text_content()
    assert "WSGISlowRequests" in text and "nope" in text
    assert page.locator("#slow-table").is_hidden()


def test_drill_down_shows_hostile_and_broken_records_as_text(tab):
    page = open_slow(tab, rows=0)
    src = page.locator('script[src$="console/host.js"]').get_attribute("src")
    module = src.replace("host.js", "drilldown.js")
    shown = page.evaluate("""async (module) => {
        const dd = await import(module);
        const out = {};
        const xss = "<img src=x onerror=alert(1)>";
        dd.openRequest({key: "k1", state: "completed", pid: 1, incarnation: 1, group: xss, stamp: 1, start: 1,
                        duration: 2.5, thread: 3, method: "<b>GET</b>", url: "http://h/" + xss, status: 502,
                        log_id: xss, fields: {slow_user_agent: "<script>alert(2)</script>",
                        slow_application_time: 2.4, slow_cpu_user_time: 3.0, slow_output_bytes: 100,
                        slow_output_writes: 50}});
        const d = document.getElementById("request-drilldown");
        out.text = d.textContent;
        out.injected = d.querySelectorAll("img, script, b").length;
        // broken input never throws, and null shows the note
        dd.updateRequest({key: "k1", state: "active", duration: "soon", fields: null});
        out.broken = d.textContent;
        dd.openRequest(null, {note: "No slow-request record for this slot: aged out."});
        out.note = d.textContent;
        dd.openRequest(undefined);
        dd.openRequest({});
        out.open = d.open;
        dd.closeRequest();
        out.closed = !d.open;
        return out;
    }""", module)
    assert shown["injected"] == 0
    assert "http://h/<img src=x onerror=alert(1)>" in shown["text"]
    assert "<script>alert(2)</script>" in shown["text"] and "<b>GET</b>" in shown["text"]
    assert "more than one core" in shown["text"]  # 3 s of CPU in 2.5 s of wall
    assert "many small chunks" in shown["text"]  # 100 B in 50 writes
    assert "(reported at completion)" in shown["broken"]
    assert "No slow-request record for this slot: aged out." in shown["note"]
    assert shown["open"] and shown["closed"]


def test_per_url_limit_clear_and_pause(tab):
    page = open_slow(tab, rows=4)
    page.select_option("#slow-per", "1")
    assert query_of(page.url)["per"] == "1"
    pairs = list(zip(column(page, "method"), column(page, "url"), strict=True))
    assert len(pairs) == len(set(pairs))  # one row per method and URL
    ranks = page.locator(f'{ROWS} td[data-field="url"][data-rank]')
    for i in range(ranks.count()):
        assert re.fullmatch(r"1/([2-9]|[1-9][0-9]+)", ranks.nth(i).get_attribute("data-rank"))  # 1 of N
    page.select_option("#slow-per", "")
    assert "per" not in query_of(page.url)

    # Clear hides what has ended so far, in the link too; "Show them" brings it back
    page.click("#slow-clear")
    since = float(query_of(page.url)["since"])
    assert since > 0
    assert set(page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.state)")) <= {"active"}
    assert page.locator("#slow-cleared").is_visible()
    page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=completed]')", timeout=20_000)
    starts = page.locator(f"{ROWS}[data-state=completed]").evaluate_all(
        "rows => rows.map(r => r.querySelector('[data-field=start]').title)")
    assert starts  # requests that ended after the Clear show up
    page.click("#slow-unclear")
    assert "since" not in query_of(page.url)

    # Pause freezes the table (text and rows); Resume shows what arrived meanwhile
    page.click("#slow-pause")
    assert page.locator("#slow-pause").get_attribute("aria-pressed") == "true"
    frozen = page.locator("#slow-table tbody").inner_text()
    page.wait_for_timeout(2200)
    assert page.locator("#slow-table tbody").inner_text() == frozen
    assert "paused at" in page.locator("#slow-summary").text_content()
    page.click("#slow-pause")
    assert page.locator("#slow-pause").text_content() == "Pause"


CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")  # the one 24-hour format (static/console/ticks.js)
DATED = re.compile(r"[A-Z][a-z]{2} \d{1,2} " + CLOCK.pattern + r"\.\d{3}")


def record_subscribes(tab) -> list[dict]:
    """The subscribe messages the page sends from now on (register before the page loads)."""
    sent: list[dict] = []

    def on_frame(payload) -> None:
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        if text.startswith("{") and json.loads(text).get("type") == "subscribe":
            sent.append(json.loads(text))

    tab.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    return sent


def drill_down_is_open(page) -> bool:
    return page.evaluate("() => Boolean(document.getElementById('request-drilldown')?.open)")


def test_the_drill_down_is_a_history_entry_back_closes_it_and_a_reload_reopens_it(tab):
    subscribes = record_subscribes(tab)
    page = open_slow(tab)
    page.wait_for_function(f"() => document.querySelector('{ROWS}[data-state=completed]')", timeout=20_000)
    page.evaluate("() => { window.wfSamePage = true; }")  # gone if Back left or reloaded the page
    before = page.evaluate("history.length")
    row = page.locator(f"{ROWS}[data-state=completed]").first
    key = row.get_attribute("data-key")
    log_id = row.locator('td[data-field="log_id"]').text_content()
    row.click()
    assert drill_down_is_open(page)
    assert query_of(page.url)["req"] == key and query_of(page.url)["tab"] == "slow"
    assert page.evaluate("history.length") == before + 1
    # times in the one format: the row's start and the drill-down's, with the date and milliseconds
    assert CLOCK.fullmatch(row.locator('td[data-field="start"]').text_content())
    assert DATED.fullmatch(row.locator('td[data-field="start"]').get_attribute("title"))
    dialog = page.locator("#request-drilldown")
    started, ended = (dialog.locator("dt", has_text=label).locator("xpath=following-sibling::dd[1]")
                      .text_content() for label in ("Started", "Ended"))
    assert DATED.fullmatch(started) and DATED.fullmatch(ended), (started, ended)
    assert started == row.locator('td[data-field="start"]').get_attribute("title")

    # Back closes the dialog and stays on the page, which keeps its data (no new subscribe)
    subscribed = len(subscribes)
    page.go_back()
    page.wait_for_function("() => !document.getElementById('request-drilldown').open")
    wait_url_without_req(page)
    assert query_of(page.url)["tab"] == "slow"
    assert page.evaluate("window.wfSamePage") is True
    wait_frame_after(tab, len(tab.frames))  # a later frame: a subscribe sent by Back would be seen by now
    assert len(subscribes) == subscribed, subscribes[subscribed:]
    assert page.locator(ROWS).count() > 0

    # Forward opens it again
    page.go_forward()
    page.wait_for_function("() => document.getElementById('request-drilldown').open")
    assert query_of(page.url)["req"] == key and log_id in dialog.text_content()
    # the close button goes back to the URL without it, in the same page
    dialog.locator(".req-close").click()
    assert not drill_down_is_open(page)
    wait_url_without_req(page)
    assert page.evaluate("window.wfSamePage") is True

    # a reload of the drill-down's URL opens it again, and Back from there closes it
    row = page.locator(f'{ROWS}[data-key="{key}"]')
    row.click()
    link = page.url
    page.reload()
    assert page.evaluate("window.wfSamePage") is None
    page.wait_for_function("() => document.getElementById('request-drilldown')?.open")
    page.wait_for_function("id => document.getElementById('request-drilldown').textContent.includes(id)",
                           arg=log_id, timeout=20_000)
    assert page.url == link
    page.evaluate("() => { window.wfSamePage = true; }")
    page.go_back()
    page.wait_for_function("() => !document.getElementById('request-drilldown').open")
    wait_url_without_req(page)
    assert page.evaluate("window.wfSamePage") is True


def wait_frame_after(tab, count: int) -> None:
    wait_message(tab, lambda m: m.get("type") == "host.frame", count, 10, "a host.frame after Back")


def test_a_capacity_drill_down_is_a_history_entry_too(tab):
    subscribes = record_subscribes(tab)
    # a 5 min span: the record must still be in the tab's data when the link is opened again below,
    # however slow a busy machine makes the steps in between
    tab.login("ann", "/hosts/web-3/?tab=capacity&span=300")
    page = tab.page
    snapshot = wait_message(tab, lambda m: m.get("type") == "tab.snapshot" and m.get("tab") == "capacity"
                            and any(r.get("state") == "completed" for r in m.get("slow", [])), 0, 30,
                            "a capacity snapshot with a completed slow record")
    record = next(r for r in reversed(snapshot["slow"]) if r["state"] == "completed")
    page.evaluate("() => { window.wfSamePage = true; }")
    src = page.locator('script[src$="console/host.js"]').get_attribute("src")
    # as a click on a slow run does (tabs/capacity.js): the shared drill-down, opened with the record
    page.evaluate("async ([module, record]) => (await import(module)).openRequest(record, {threads: 4})",
                  [src.replace("host.js", "drilldown.js"), record])
    assert drill_down_is_open(page)
    assert query_of(page.url)["req"] == record["key"] and query_of(page.url)["tab"] == "capacity"
    subscribed = len(subscribes)
    page.go_back()
    page.wait_for_function("() => !document.getElementById('request-drilldown').open")
    wait_url_without_req(page)
    wait_frame_after(tab, len(tab.frames))
    assert len(subscribes) == subscribed and page.evaluate("window.wfSamePage") is True
    assert query_of(page.url)["tab"] == "capacity"
    # a link opens it: the page subscribes with the link's key (option req), and the console's
    # snapshot carries that record however many newer ones fill its newest 100
    # (capacity.RECORD_LIMIT; tests/console/live/test_tab_capacity.py). Before that, this failed
    # in CI once the session's web-3 had more than 100 records in the span: `reversed` over a
    # snapshot (newest first) picked its oldest record when no frame had brought a completed
    # one, and by the reload newer records had pushed it out of the 100. The link is to the
    # newest completed record the page has, by stamp: well inside the 5 min span at the reload.
    capacity = [m for m in messages(tab, "tab.snapshot", "tab.frame") if m.get("tab") == "capacity"]
    record = max((r for m in capacity for r in m.get("slow", []) if r.get("state") == "completed"),
                 key=lambda r: r["stamp"])
    subscribed = len(subscribes)
    page.goto(tab.base + "/hosts/web-3/?tab=capacity&span=300&req=" + quote(record["key"]))
    try:
        page.wait_for_function("url => document.getElementById('request-drilldown')?.open"
                               " && document.getElementById('request-drilldown').textContent.includes(url)",
                               arg=record["url"], timeout=30_000)
    except Exception:  # say whether the page asked for the record, the console sent it, the page showed it
        sent = [m for m in messages(tab, "tab.snapshot")[-1:] if any(r.get("key") == record["key"]
                                                                     for r in m.get("slow", []))]
        text = page.locator("#request-drilldown").text_content()
        last = messages(tab, "tab.snapshot")[-1:]
        bands = [(p["pid"], p["incarnation"], p["state"], len(p["columns"].get("t", []))) for m in last
                 for p in m.get("processes", [])]
        asked = [m.get("options") for m in subscribes[subscribed:]]
        raise AssertionError(f"record {record['key']} ({record['url']}, stamp {record['stamp']}) asked for "
                             f"in {asked}; in the reload's snapshot: {bool(sent)}; its bands {bands}, "
                             f"{[len(m.get('slow', [])) for m in last]} records, newest stamp "
                             f"{max((r['stamp'] for m in last for r in m.get('slow', [])), default=None)}; "
                             f"the dialog says {text[:200]!r}") from None
    assert subscribes[subscribed:] and subscribes[subscribed]["options"].get("req") == record["key"]
    # with its process's request threads, as a click on its run shows it (web-3: 4 threads)
    assert " / 4 at start" in page.locator("#request-drilldown").text_content()
    page.keyboard.press("Escape")
    assert not drill_down_is_open(page)
    wait_url_without_req(page)
    assert query_of(page.url)["tab"] == "capacity"
