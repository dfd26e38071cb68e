"""Every kind of loss, as a user sees it in a real browser: the host page's top bar adds them
up, its popover lists each kind with its cause and fix (and why the console refused samples),
the Overview's charts mark the second the sequence loss was counted in red and the seconds
without data as a hatched hole, and the fleet row says the same total and breakdown.

The agent is a raw WebSocket client with the token of a host of its own team and user (as in
test_browser_clock.py), so it can report losses of every kind and the other browser tests'
fleets do not change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from browser_support import row
from raw_agent import TICK_FIELDS, RawAgent, agent_token, raw_agent

pytestmark = pytest.mark.browser

HOST, USER = "lossy-1", "lena"
#: What the agent reports: every kind of loss, in its heartbeat's names.
LOSSES = {"lost": 7, "queue_drops": 5, "dropped": 2, "dropped_samples": 40, "dropped_seconds": 4,
          "refused_samples": 1, "malformed": 3}
#: The page's total: one datagram is one sample; refused (the agent's count) and bad (the
#: console's, 1 here too) samples are one loss: 7 + 5 + 40 + 1 + 3.
TOTAL = 56


@pytest.fixture(scope="module")
def token(console) -> str:
    return agent_token(console, HOST, USER, "losses")


class LossyAgent:
    """One ticking process and the loss counters we choose."""

    def __init__(self, raw: RawAgent) -> None:
        self.raw = raw

    def beat(self, **losses: int) -> None:
        self.raw.heartbeat({"received": 100, "decoded": 100, **losses})

    def ticks(self, seconds: float, wait=time.sleep) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.raw.ticks_of(TICK_FIELDS)
            wait(0.25)


@pytest.fixture
def lossy(console, token) -> Iterator[LossyAgent]:
    """Ticks, 5 s of silence (a hole), a refused sample, then the losses and ticks again."""
    with raw_agent(console, token, "lossy-1") as raw:
        agent = LossyAgent(raw)
        agent.beat()
        agent.ticks(2.5)
        time.sleep(5)
        assert raw.ticks_of({"request_count": "many"})["dropped"] == 1  # the console's checks refuse it
        agent.ticks(1.5)
        agent.beat(**LOSSES, kernel_qlen=10)  # its socket got the kernel's default queue
        agent.ticks(1.5)
        yield agent


def test_every_kind_of_loss_is_counted_explained_and_marked(tab, lossy):
    tab.login(USER)
    page = tab.page
    cell = row(page, HOST).locator('[data-field="lost"]')
    page.wait_for_function("([el, n]) => el.textContent === n", arg=[cell.element_handle(), str(TOTAL)],
                           timeout=20_000)
    top = page.locator("#loss")  # the fleet's top bar: every kind, summed over the hosts lena sees
    assert top.text_content() == f"loss {TOTAL}"
    top.click()
    heading = page.locator("#loss-detail h2").text_content()
    assert heading == f"Loss on the 1 host you can see: {TOTAL} datagrams or samples", heading
    page.keyboard.press("Escape")
    title = cell.get_attribute("title")
    short = ("the kernel queues only 10 datagrams for the agent's socket: "
             "run sysctl -w net.unix.max_dgram_qlen=512")
    for line in (f"sequence gaps: 7 datagrams ({short}", "agent queue full: 5 datagrams",
                 "spool full: 40 samples (2 batches, 4 seconds of data)", "refused by the console: 1 sample",
                 "undecodable datagrams: 3 datagrams", "fix: Raise net.unix.max_dgram_qlen"):
        assert line in title, (line, title)

    tab.goto(f"/hosts/{HOST}/?tab=overview&window=300")
    loss = page.locator("#loss")
    page.wait_for_function("([el, n]) => el.dataset.lost === n", arg=[loss.element_handle(), str(TOTAL)],
                           timeout=20_000)
    assert loss.text_content() == f"loss {TOTAL}"
    assert "bad" in loss.get_attribute("class")
    hint = page.locator("#loss-hint")  # the likely cause beside the counter, with its one-line fix
    assert hint.is_visible()
    assert hint.text_content() == "kernel queue 10: sysctl -w net.unix.max_dgram_qlen=512"
    assert hint.get_attribute("title").startswith(short)
    detail = page.locator("#loss-detail")
    assert not detail.is_visible()
    loss.click()
    detail.wait_for(state="visible")
    assert loss.get_attribute("aria-expanded") == "true"
    assert detail.locator("h2").text_content() == f"Loss on this host: {TOTAL} datagrams or samples"
    kinds = detail.locator("dt").evaluate_all("dts => dts.map(dt => dt.dataset.kind)")
    assert kinds == ["lost", "queue_drops", "spool", "refused", "malformed"]
    text = detail.text_content()
    for said in ("the kernel's socket queue was full", "no agent was bound",  # causes
                 "sysctl net.unix.max_dgram_qlen=512", "--queue-bytes", "--spool-max-bytes",  # fixes
                 "2 batches, 4 seconds of data", "Run an agent version that matches this console",
                 "request_count"):  # the console's reason for the refused sample
        assert said in text, said
    tab.shot("host-loss.png", down_to="#loss-detail")
    page.keyboard.press("Escape")
    detail.wait_for(state="hidden")

    # The charts: a red mark at the second the heartbeat's loss was counted, a hatched hole where
    # the agent sent nothing, both in the tooltip and in words above the charts.
    over = page.locator('figure[data-chart="throughput"] .u-over')
    page.wait_for_function("el => el.dataset.lossX && el.dataset.holeX", arg=over.element_handle(),
                           timeout=20_000)
    marks = page.locator("#chart-marks")
    assert marks.is_visible() and marks.get_attribute("data-lost") == "7"
    assert "7 datagrams lost by sequence gaps" in marks.text_content()
    assert "without data (hatched)" in marks.text_content()
    tab.shot("host-loss-charts.png", down_to='figure[data-chart="throughput"]')
    tooltip = page.locator('figure[data-chart="throughput"] .chart-tooltip')
    box = over.bounding_box()
    x = int(over.get_attribute("data-loss-x").split(",")[0])
    over.hover(position={"x": x, "y": box["height"] / 2})
    tooltip.wait_for(state="visible")
    assert "loss: 7 datagrams" in tooltip.text_content()
    hole = int(over.get_attribute("data-hole-x").split(",")[0])
    over.hover(position={"x": hole, "y": box["height"] / 2})
    page.wait_for_function("el => el.textContent.includes('no data')", arg=tooltip.element_handle())

    # More loss while the page is open: the live frames bring the total and the new mark.
    lossy.beat(**{**LOSSES, "lost": 10}, kernel_qlen=10)
    lossy.ticks(4, wait=lambda s: page.wait_for_timeout(s * 1000))
    page.wait_for_function("([el, n]) => el.dataset.lost === n", arg=[loss.element_handle(), str(TOTAL + 3)],
                           timeout=20_000)
    page.wait_for_function("el => el.dataset.lost === '10'", arg=marks.element_handle(), timeout=20_000)


