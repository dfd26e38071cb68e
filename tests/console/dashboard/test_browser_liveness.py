"""What an open page says of a host whose agent stops, and of a URL it cannot show as asked.

A dead agent sends no message saying it died: the pages age what they were told, on the
console's clock. An open fleet page turns the row offline (its rates no longer shown) and
the host page's "last seen" keeps counting, with no reload. The agent is a raw WebSocket
client on a host of its own team and user, so the other browser tests' fleets do not change.
"""

from __future__ import annotations

import time

import pytest
from browser_support import Tab, number, row
from raw_agent import TICK_FIELDS, agent_token, raw_agent

pytestmark = pytest.mark.browser

HOST, USER, TEAM = "fading-1", "fern", "night-shift"


@pytest.fixture(scope="module")
def token(console) -> str:
    return agent_token(console, HOST, USER, TEAM)


def test_a_host_whose_agent_stops_goes_offline_on_open_pages(tab, console, token):
    tab.login(USER, "/")
    fleet = tab.page
    host = Tab(fleet.context.new_page(), console.url, console.fed_since)
    host.goto(f"/hosts/{HOST}/")
    with raw_agent(console, token, HOST) as agent:
        for _ in range(4):  # a few seconds of ticks: the row gets rates
            agent.heartbeat({"received": 10, "decoded": 10})
            agent.ticks_of(TICK_FIELDS)
            time.sleep(1)
        fleet.wait_for_function(
            """name => {
                 const tr = document.querySelector(`#fleet tbody tr[data-name="${name}"]`);
                 return tr && tr.querySelector('.state').textContent === 'online'
                   && parseFloat(tr.querySelector('[data-field="throughput"]').textContent) > 0;
               }""", arg=HOST, timeout=15_000)
        assert host.page.locator("#host-state").text_content().startswith("online")
    stopped = time.time()  # the connection is closed: nothing more comes for this host
    fleet.wait_for_function(
        """name => document.querySelector(`#fleet tbody tr[data-name="${name}"] .state`)
                    .textContent === 'offline'""", arg=HOST, timeout=25_000)
    assert time.time() - stopped >= 10  # went offline by its age (15 s since heard from), not at once
    cells = row(fleet, HOST)
    assert cells.locator('[data-field="throughput"]').text_content() == "—"  # not the last rate as if now
    assert cells.locator('[data-field="age"]').text_content().startswith("offline, ")
    assert "0 online" in fleet.locator("#fleet-totals").text_content()
    state = host.page.locator("#host-state")
    host.page.wait_for_function(
        "() => document.querySelector('#host-state').textContent.startsWith('offline')", timeout=10_000)
    first = number(state.text_content().split("last seen ", 1)[1])
    host.page.wait_for_timeout(2500)
    later = number(state.text_content().split("last seen ", 1)[1])
    assert first is not None and later is not None and later >= first + 2, (first, later)
    assert host.errors == []


def test_the_fleet_filter_matches_one_field_by_name(tab, token):
    tab.login(USER, "/?q=team=" + TEAM[:5])
    page = tab.page
    assert row(page, HOST).is_visible()
    page.fill("#fleet-filter", "team=nobody")
    page.wait_for_function("() => document.querySelector('#fleet-shown').textContent === '0 of 1 shown'")
    page.fill("#fleet-filter", f"name={HOST}")
    page.wait_for_function("() => document.querySelector('#fleet-shown').textContent === '1 of 1 shown'")


def test_a_url_the_host_page_cannot_show_is_said(tab, token):
    tab.login(USER, f"/hosts/{HOST}/?tab=nope&window=abc&group=nope")
    page = tab.page
    problems = page.locator("#url-problems").text_content()
    assert "There is no tab “nope”: showing Overview." in problems
    assert "The window “abc” is not a number of seconds" in problems
    note = page.locator("#group-problem")
    note.wait_for(state="visible", timeout=15_000)
    assert "no process group “nope”" in note.text_content()
    note.locator("button").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('group') === '*'")
    assert note.is_hidden()
