"""An agent whose clock is 120 s ahead, as a user sees it in a real browser: the host page's
top bar and the fleet row say it in words with the correction made, and the data is not
"from the future" (before, the page said "data 0.0 s old" of samples stamped 120 s ahead).

The agent is a raw WebSocket client with the token of a host of its own team and user, so
the other browser tests' fleets do not change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from browser_support import row
from raw_agent import TICK_FIELDS, RawAgent, agent_token, raw_agent

pytestmark = pytest.mark.browser

HOST, USER, SKEW = "skewed-1", "dora", 120.0


@pytest.fixture(scope="module")
def token(console) -> str:
    return agent_token(console, HOST, USER, "clocks")


class SkewedAgent:
    """An agent on a host whose clock is SKEW seconds ahead: its heartbeats and stamps."""

    def __init__(self, raw: RawAgent) -> None:
        self.raw = raw

    def beat(self) -> None:
        self.raw.heartbeat({"received": 10, "decoded": 10, "malformed": 0, "lost": 0}, clock_offset=SKEW)

    def tick(self) -> None:
        self.raw.ticks_of(TICK_FIELDS, clock_offset=SKEW)


@pytest.fixture
def skewed(console, token) -> Iterator[SkewedAgent]:
    with raw_agent(console, token, "skewed-1") as raw:
        agent = SkewedAgent(raw)
        agent.beat()
        agent.tick()
        yield agent


def test_an_agent_clock_ahead_is_said_on_the_host_and_fleet_pages(tab, skewed):
    tab.login(USER)
    page = tab.page
    skew = row(page, HOST).locator(".skew")
    skew.wait_for(state="visible", timeout=20_000)
    assert skew.text_content() == "agent clock 120 s ahead of the console · corrected"
    assert "placed by the console's clock" in skew.get_attribute("title")

    tab.goto(f"/hosts/{HOST}/")
    top = page.locator("#clock-skew")
    top.wait_for(state="visible", timeout=20_000)
    text = top.text_content()
    assert text == "agent clock 120 s ahead of the console · times corrected", text
    said = "its samples are placed by the console's clock (stamps moved by -120.0 s)"
    assert said in top.get_attribute("title")
    assert top.get_attribute("data-kind") == "corrected"
    for _ in range(3):
        skewed.tick()
        time.sleep(0.3)
    age = page.locator("#data-age")
    page.wait_for_function("el => el.textContent.startsWith('data ')", arg=age.element_handle(),
                           timeout=20_000)
    assert "ahead" not in age.text_content(), "the samples were placed on the console's clock"
