"""An agent whose clock is off is measured, said, and placed by the console's clock.

Before, an agent 120 s ahead was stored in the future (the live window empty, the page
saying "data 0.0 s old") and one 120 s behind gave no live frames and showed its running
processes "gone". Each test runs on the in-process store and on Redis.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick

from console.live import summary

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def beat(agent: Agent, skew: float) -> None:
    await agent.send({"t": "heartbeat", "instance": agent.instance, "time": time.time() + skew,
                      "counters": {"received": 1, "decoded": 1}})


async def feed(agent: Agent, skew: float, stop: asyncio.Event) -> None:
    """One process ticking every 0.25 s on the skewed clock, with a heartbeat now and then."""
    beats = 0
    while not stop.is_set():
        ack = await agent.batch([tick(100, time.time() + skew)])
        assert ack["t"] == "ack", ack
        beats += 1
        if beats % 8 == 0:
            await beat(agent, skew)
        await asyncio.sleep(0.25)


@pytest.mark.parametrize("skew", [120.0, -120.0])
async def test_a_skewed_agent_is_placed_at_console_time_and_said(console_store, skew):
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    agent, page = Agent(token), Page(user)
    stop = asyncio.Event()
    feeder = None
    try:
        await agent.start()
        await beat(agent, skew)  # as the real agent does: right after hello, before any batch
        before = time.time()
        ack = await agent.batch([tick(100, time.time() + skew)])
        assert ack["written"] == 1
        [written] = await console_store.araw(host.pk, before - 5, time.time() + 5)
        assert abs(written["t"] - before) < 5, "the sample is placed on the console's clock"
        feeder = asyncio.create_task(feed(agent, skew, stop))

        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": host.pk})
        snapshot = await page.until(of("host.snapshot"))
        clock = snapshot["agent_state"]["clock"]
        assert clock["shown"] and abs(clock["skew"] - skew) < 2 and abs(clock["shift"] - skew) < 2
        side = "ahead of" if skew > 0 else "behind"
        assert f"agent clock 120 s {side} the console" in clock["text"]
        assert clock["correction"].startswith("its samples are placed by the console's clock")
        # live frames: the stored second two seconds back holds this agent's ticks
        frame = await page.until(lambda m: m["type"] == "host.frame" and not m.get("partial")
                                 and m["groups"].get("*", {}).get("ticks", 0) > 0)
        assert abs(frame["t"] - frame["now"]) < 10
        assert frame["agent_state"]["clock"]["shown"]
        [process] = await console_store.aprocesses(host.pk)
        assert process["state"] == "running"

        await page.send({"type": "subscribe", "scope": "fleet"})
        [row] = (await page.until(of("fleet.snapshot")))["hosts"]
        assert row["clock"]["shown"] and f"120 s {side}" in row["clock"]["text"]
        assert "console_clock_skew_ms" not in row["agent"], "not an agent counter, not a loss"
    finally:
        stop.set()
        if feeder is not None:
            await feeder
        await page.close()
        await agent.close()


async def test_a_clock_in_step_is_not_shown_nor_corrected(console_store):
    host, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        await beat(agent, 0.3)
        stamp = time.time() + 0.3
        await agent.batch([tick(100, stamp)])
        [written] = await console_store.araw(host.pk, stamp - 5, stamp + 5)
        assert written["t"] == stamp
        status = (await console_store.ahost_status([host.pk]))[host.pk]
        clock = summary.agent_clock(status["counters"])
        assert clock is not None and not clock["shown"] and clock["shift"] == 0 and clock["correction"] == ""
        assert clock["text"] == "agent clock in step with the console"
    finally:
        await agent.close()


async def test_a_reconnect_keeps_the_correction_in_force(console_store):
    host, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        await beat(agent, 60.0)
        await agent.batch([])
    finally:
        await agent.close()
    agent = Agent(token, instance="agent-2")
    try:
        await agent.start()
        before = time.time()
        await agent.batch([tick(100, time.time() + 60.0)])  # before this connection's first heartbeat
        await beat(agent, 60.3)
        await agent.batch([tick(100, time.time() + 60.3)])
        stamps = [s["t"] for s in await console_store.araw(host.pk, before - 5, time.time() + 100)]
        assert len(stamps) == 2 and all(abs(t - before) < 5 for t in stamps)
    finally:
        await agent.close()
