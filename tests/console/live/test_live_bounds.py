"""Bounded host messages: a flood of STARTED datagrams from fake pids made host frames of
10-36 MB and closed every tab of that host with 1011, while another host on the same worker
lost seconds. Now every message lists at most MAX_PROCESSES processes, says how many more
there are, and stays under jsontext.MAX_TEXT."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick

from console.live.jsontext import MAX_TEXT
from console.live.tabs.base import MAX_PROCESSES
from console.windows.store import MAX_PROCESSES_PER_HOST
from ingest.model.kinds import STARTED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

FAKE = 20_000
REAL = 99_999


async def keep_ticking(agent: Agent, pid: int) -> None:
    while True:
        await agent.batch([tick(pid, time.time())])
        await asyncio.sleep(0.3)


def started(pid: int, t: float) -> dict:
    return {"k": STARTED, "p": pid, "i": 1, "s": 1, "t": t, "g": "app", "n": None,
            "f": {"mod_wsgi_version": "6.1.1", "python_version": "3.11.2", "apache_version": "Apache/2.4.71",
                  "mpm_name": "event", "hostname": "web-a.example.com", "process_parent_pid": 1}}


async def test_a_flood_of_fake_pids_makes_bounded_frames_and_costs_no_other_host_its_frames():
    a, token_a = await make_host("web-a")
    b, token_b = await make_host("web-b")
    user = await make_member("ann", a, b)
    agent_a, agent_b = Agent(token_a), Agent(token_b)
    page_a, page_b = Page(user), Page(user)
    real = None
    try:
        for agent in (agent_a, agent_b):
            await agent.start()
        for page, host, tab in ((page_a, a, "processes"), (page_b, b, "overview")):
            await page.start()
            await page.send({"type": "subscribe", "scope": "host", "host": host.pk, "tab": tab})
            await page.until(of("tab.snapshot", host=host.pk))
        now = time.time()
        for first in range(0, FAKE, 5000):  # the flood: one second of STARTED from 20,000 pids
            ack = await agent_a.batch([started(10_000 + pid, now) for pid in range(first, first + 5000)])
            assert ack["written"] == 5000
        real = asyncio.create_task(keep_ticking(agent_a, REAL))  # and one real process

        events = 0  # the flood may be published over more than one second
        while events < FAKE:
            frame = await page_a.until(of("tab.frame", tab="processes"), timeout=30)
            assert len(frame["events"]) <= 2000
            events += len(frame.get("events", ())) + frame.get("omitted", {}).get("events", 0)
        assert events == FAKE
        # the real process, above every fake pid, is listed: live and recently seen go first
        listed = await page_a.until(lambda m: m["type"] == "host.frame"
                                    and any(p["pid"] == REAL for p in m.get("processes", ())), timeout=30)
        total = min(FAKE + 1, MAX_PROCESSES_PER_HOST)  # the store keeps the most recently seen
        assert len(listed["processes"]) == MAX_PROCESSES and listed["processes_total"] == total

        # a page that opens now gets a bounded snapshot of every tab, saying how many more
        for tab in ("overview", "capacity", "processes"):
            await page_a.send({"type": "subscribe", "scope": "host", "host": a.pk, "tab": tab})
            snapshot = await page_a.until(of("host.snapshot", tab=tab))
            assert len(snapshot["processes"]) == MAX_PROCESSES and snapshot["processes_total"] >= FAKE
            body = await page_a.until(of("tab.snapshot", tab=tab))
            if tab == "capacity":  # the fake pids are silent, so gone by now: test_tab_capacity has the cap
                assert len(body["processes"]) <= MAX_PROCESSES
                assert any(p["pid"] == REAL for p in body["processes"])
            if tab == "processes":
                assert len(body["rows"]) <= 500 and body["rows_total"] >= FAKE

        # host B's page went on receiving its seconds, and nobody was closed
        seconds = {m["t"] for m in page_b.messages if m["type"] == "host.frame" and not m.get("partial")}
        await page_b.until(lambda m: m["type"] == "host.frame" and not m.get("partial")
                           and m["t"] > max(seconds, default=0))
        assert page_a.closed is None and page_b.closed is None
        assert not [m for m in page_a.messages if m["type"] == "error"]
        for page in (page_a, page_b):
            assert max(len(text) for text in page.texts) <= MAX_TEXT
    finally:
        if real is not None:
            real.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await real
        for client in (page_a, page_b, agent_a, agent_b):
            await client.close()
