"""The console in a real browser: login, fleet, host page shell, Overview, theme, reconnect.

The console, agents and browser come from conftest.py (browser_support.py
says how they run). Every test fails on a JavaScript error.
"""

from __future__ import annotations

import time
from urllib.parse import unquote, urlsplit

import pytest
from browser_support import (
    ANN_HOSTS,
    OTHER_HOSTS,
    OUTAGE_NOISE,
    XSS,
    charts_drawn,
    messages,
    number,
    query_of,
    row,
    wait_live,
    wait_message,
    wait_readout,
)

pytestmark = pytest.mark.browser


# -- the tests -----------------------------------------------------------------------------------


def test_anonymous_visitors_get_the_login_page(tab):
    for path in ("/", "/hosts/web-1/?tab=processes"):
        tab.goto(path)
        assert urlsplit(tab.page.url).path == "/accounts/login/"
        assert query_of(tab.page.url)["next"] == path
        assert tab.page.locator("h1").text_content() == "Log in"
        assert tab.page.locator("#fleet, #main[data-host-id], #conn").count() == 0  # nothing live
    # a wrong password stays on the login page
    tab.page.fill("#id_username", "ann")
    tab.page.fill("#id_password", "wrong")
    tab.page.click("button[type=submit]")
    assert tab.page.locator("p.error").first.is_visible()
    assert urlsplit(tab.page.url).path == "/accounts/login/"


def test_fleet_lists_exactly_the_users_hosts_and_they_go_live(tab):
    tab.login("ann")
    page = tab.page
    assert sorted(page.locator("#fleet tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")) \
        == ANN_HOSTS
    began = time.monotonic()
    wait_live(page, ANN_HOSTS)
    live_after = time.monotonic() - began
    assert live_after < 15
    assert page.locator("#fleet tbody tr").count() == len(ANN_HOSTS)
    for name in ANN_HOSTS:
        assert row(page, name).locator('[data-field="team"]').text_content() == "payments"
        assert number(row(page, name).locator('[data-field="processes_live"]').text_content()) > 0
    assert page.locator("#conn").get_attribute("data-state") == "connected"
    n = len(ANN_HOSTS)
    assert page.locator("#fleet-totals").text_content().startswith(f"{n} hosts · {n} online")
    page.wait_for_timeout(1200)  # a few fleet.update frames more
    # idx-1 is online and sending, yet never reaches ann's page nor her live connection
    sent = [host for message in messages(tab, "fleet.snapshot", "fleet.update") for host in message["hosts"]]
    assert sent and {host["name"] for host in sent} == set(ANN_HOSTS)
    assert {host["team"] for host in sent} == {"payments"}
    content = page.content()
    assert not [other for other in OTHER_HOSTS if other in content or other.replace("<", "&lt;") in content]
    tab.shot("fleet.png", down_to="#fleet")


def test_host_page_draws_charts_and_live_readouts(tab):
    tab.login("ann")
    page = tab.page
    wait_live(page, ["web-1"])
    row(page, "web-1").locator('[data-field="name"] a').click()
    page.wait_for_url("**/hosts/web-1/")
    assert page.locator("h1").text_content() == "web-1"
    assert page.locator("#tab-overview").get_attribute("aria-selected") == "true"
    rate = wait_readout(page)
    assert rate > 0
    charts_drawn(page)
    for name in ("latency", "capacity", "cpu", "rss"):
        text = page.locator(f'[data-readout="{name}"]').text_content()
        assert text and "—" not in text.split("·")[0], (name, text)
    assert page.locator("#status-totals").text_content().startswith("≈ ")
    # the group menu learns the host's groups from the snapshot
    page.wait_for_function("() => document.querySelectorAll('#group option').length === 3")
    assert page.locator("#group option").evaluate_all("os => os.map(o => o.value)") == ["*", "app0", "app1"]
    # a shorter window: the page subscribes again and keeps drawing
    mark = len(tab.frames)
    page.select_option("#window", "60")
    assert query_of(page.url) == {"tab": "overview", "group": "*", "window": "60"}
    wait_message(tab, lambda m: m.get("type") == "host.snapshot", mark, 10, "the 60 s snapshot")
    assert wait_readout(page) > 0
    charts_drawn(page)
    tab.shot("host.png", history=55)


def test_view_state_lives_in_the_url_and_survives_a_reload(tab):
    tab.login("ann", "/hosts/web-2/")
    page = tab.page
    wait_readout(page)
    page.click("#tab-processes")
    assert query_of(page.url) == {"tab": "processes", "group": "*", "window": "300"}
    page.select_option("#window", "900")
    page.select_option("#group", "app0")
    assert query_of(page.url) == {"tab": "processes", "group": "app0", "window": "900"}
    # web-2: one group of 3 processes; waited for, as the table is redrawn when the group's data lands
    page.wait_for_function("() => document.querySelectorAll('#processes tbody tr').length === 3",
                           timeout=20_000)
    assert page.locator("#processes tbody tr").count() == 3
    page.reload()
    assert query_of(page.url) == {"tab": "processes", "group": "app0", "window": "900"}
    assert page.locator("#tab-processes").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-processes").is_visible()
    assert page.locator("#panel-overview").is_hidden()
    assert page.locator("#window").input_value() == "900"
    assert page.locator("#group").input_value() == "app0"
    page.locator("#processes tbody tr").first.wait_for()
    assert page.locator("#processes tbody tr").count() == 3
    # back in history: the previous state, without a reload
    page.go_back()
    assert query_of(page.url) == {"tab": "processes", "group": "*", "window": "900"}
    assert page.locator("#group").input_value() == "*"
    # a link with a view opens that view
    tab.goto("/hosts/web-1/?tab=gc&group=app1&window=3600")
    assert page.locator("#tab-gc").get_attribute("aria-selected") == "true"
    assert page.locator("#panel-gc").is_visible()
    assert page.locator("#window").input_value() == "3600"


def test_theme_switch_persists_across_a_reload(tab):
    tab.login("ann", "/hosts/web-1/")
    page = tab.page
    html = page.locator("html")
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    assert html.get_attribute("data-theme") in (None, "light")
    assert page.locator("#theme-toggle").text_content() == "Dark theme"
    page.click("#theme-toggle")
    assert html.get_attribute("data-theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.reload()
    assert html.get_attribute("data-theme") == "dark"
    assert page.evaluate(background) == dark
    assert page.locator("#theme-toggle").text_content() == "Light theme"
    wait_readout(page)
    charts_drawn(page)
    tab.goto("/")  # the choice holds on every page
    assert html.get_attribute("data-theme") == "dark"
    tab.goto("/hosts/web-1/?window=60")
    wait_readout(page)
    charts_drawn(page)
    tab.shot("host-dark.png", history=60)
    page.click("#theme-toggle")
    page.reload()
    assert html.get_attribute("data-theme") == "light"


def test_a_host_named_with_html_renders_as_text(tab):
    tab.login("bob")
    page = tab.page
    wait_live(page, ["idx-1"])
    link = page.locator("#fleet tbody tr a", has_text="onerror")
    assert link.text_content() == XSS
    assert page.locator("#fleet img").count() == 0
    chip = page.get_by_text("note=<b>bold</b>")
    assert chip.count() == 1 and page.locator("#fleet b").count() == 0
    link.click()
    page.wait_for_url(lambda url: unquote(urlsplit(url).path) == f"/hosts/{XSS}/")
    assert page.locator("h1").text_content() == XSS
    assert page.title() == XSS + " · wsgi-fleet"
    page.wait_for_function("() => document.getElementById('status-totals').textContent.startsWith('No data')")
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have run by now
    assert tab.dialogs == []


def test_console_restart_shows_reconnecting_then_live_data_again(tab, console):
    tab.login("ann", "/hosts/web-1/")
    page = tab.page
    pill = page.locator("#conn")
    wait_readout(page)
    assert pill.get_attribute("data-state") == "connected"
    tab.tolerate = OUTAGE_NOISE
    began = time.monotonic()
    console.stop_console()
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'reconnecting'",
                           timeout=10_000)
    assert pill.text_content().startswith("reconnecting in ")
    down_seen = time.monotonic() - began
    page.wait_for_timeout(1000)
    assert pill.get_attribute("data-state") in ("reconnecting", "connecting")
    console.start_console()
    restarted, mark = time.monotonic(), len(tab.frames)
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'connected'",
                           timeout=20_000)
    connected_after = time.monotonic() - restarted

    # A frame from the new console process with traffic in it: the agents are back.
    def traffic(message: dict) -> bool:
        if message.get("type") != "host.frame":
            return False
        return bool((message["groups"].get("*") or {}).get("throughput"))

    wait_message(tab, traffic, mark, 30, "a host.frame with traffic from the restarted console")
    live_after = time.monotonic() - restarted
    assert messages(tab, "hello", since=mark) and messages(tab, "host.snapshot", since=mark)
    assert wait_readout(page) > 0
    tab.tolerate = None
    assert pill.get_attribute("data-state") == "connected"
    # the age readout is redrawn once a second: "stale" from the outage until then
    page.wait_for_function("() => document.getElementById('data-age').dataset.kind === 'fresh'", timeout=5000)
    assert page.locator("#notice").is_hidden()
    print(f"reconnecting shown {down_seen:.1f} s after SIGTERM; connected {connected_after:.1f} s and "
          f"live data {live_after:.1f} s after the restart")
    console.check_alive()
