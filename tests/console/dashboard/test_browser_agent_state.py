"""What a user sees of a sick agent and a flooded host, in a real browser.

An agent whose decoder died keeps receiving: its heartbeats show ``received``
climbing and ``decoded`` standing still. The fleet row and the host page say
"agent not decoding" with the numbers, not "online". A host flooded with
STARTED from fake pids shows the processes it lists and how many more there
are. The agent here is a raw WebSocket client with the host's token (a real
agent's counters are sane), on a host of its own team and user, so the other
browser tests' fleets do not change.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from browser_support import row
from raw_agent import RawAgent, agent_token, raw_agent

from ingest.model.kinds import STARTED

pytestmark = pytest.mark.browser

HOST, USER = "stalled-1", "carol"
FAKE = 1200


@pytest.fixture(scope="module")
def token(console) -> str:
    return agent_token(console, HOST, USER, "ops")


class StalledAgent:
    """An agent whose decode thread died: only heartbeats, received climbing."""

    def __init__(self, raw: RawAgent) -> None:
        self.raw, self.received = raw, 500

    def beat(self) -> None:
        self.received += 100
        self.raw.heartbeat({"received": self.received, "decoded": 500, "malformed": 0, "lost": 0})


@pytest.fixture
def stalled(console, token) -> Iterator[StalledAgent]:
    with raw_agent(console, token, "stalled-1") as raw:
        agent = StalledAgent(raw)
        for _ in range(3):
            agent.beat()
        now = time.time()  # and a flood of STARTED from fake pids, decoded before the decoder died
        fake = [{"k": STARTED, "p": 10_000 + n, "i": 1, "s": 1, "t": now, "g": "app", "n": None,
                 "f": {"hostname": "evil", "process_parent_pid": 1}} for n in range(FAKE)]
        agent.raw.batch(fake)
        yield agent


def test_an_agent_that_stopped_decoding_says_so_on_the_fleet_and_host_pages(tab, stalled):
    tab.login(USER)
    page = tab.page
    state = row(page, HOST).locator(".state")
    page.wait_for_function("el => el.textContent.startsWith('agent not decoding')",
                           arg=state.element_handle(), timeout=20_000)
    text = state.text_content()
    words = r"agent not decoding: [0-9,]+ datagrams received, 0 decoded since [0-9:]+"
    assert re.fullmatch(words, text), text
    assert int(text.split(": ")[1].split(" ")[0].replace(",", "")) >= 200
    assert row(page, HOST).locator(".dot").get_attribute("data-state") == "stalled"
    assert "1 agent not decoding" in page.locator("#fleet-totals").text_content()

    stalled.beat()
    tab.goto(f"/hosts/{HOST}/")
    host_state = page.locator("#host-state")
    page.wait_for_function("el => el.textContent.startsWith('agent not decoding')",
                           arg=host_state.element_handle(), timeout=20_000)
    assert host_state.get_attribute("data-kind") == "stalled"
    note = page.locator("#host-processes")
    note.wait_for(state="visible", timeout=20_000)
    assert note.text_content() == f"1,000 processes listed, and {FAKE - 1000} more processes"
    # every message the page got was strict JSON under the bound
    for frame in tab.frames:
        assert len(frame) <= 1 << 20
        json.loads(frame, parse_constant=lambda token: pytest.fail(f"{token} in a message"))
