"""No 1011 because of another host's data: a unit that raises (a host's snapshot, a tab's
snapshot or live data, a fleet row, a second's frame) costs only what shows that host,
with an error the page can show, on a connection that lives on; and nothing non-finite
ever reaches a page's JSON.

The faults are planted by wrapping a builder so that it raises on one host's data: what
real hostile data broke is fixed where it broke, and these tests keep the next bug, found
by the next kind of hostile data, from closing anybody's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick

from console.live import publish, summary
from console.live.health import faults
from console.live.tabs import capacity, overview

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class Planted(RuntimeError):
    """The bug a host's data finds."""


async def feed(agent: Agent, group: str, stop: asyncio.Event) -> None:
    """Ticks of one process, a batch every 0.2 s, as an agent sends them."""
    while not stop.is_set():
        ack = await agent.batch([tick(100, time.time(), group)])
        assert ack["t"] == "ack", ack
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def feeding(*pairs: tuple[Agent, str]):
    stop = asyncio.Event()
    tasks = [asyncio.create_task(feed(agent, group, stop)) for agent, group in pairs]
    try:
        yield tasks
    finally:
        stop.set()
        await asyncio.gather(*tasks)  # an agent connection that died fails the test here


async def test_host_b_keeps_its_frames_while_host_a_breaks_a_tab_builder(monkeypatch):
    a, token_a = await make_host("web-a")
    b, token_b = await make_host("web-b")
    token = await make_member("ann", a, b)
    real = capacity.live

    def fragile(samples, second):
        if any(s.get("g") == "poison" for s in samples):
            raise Planted("host A's data breaks the capacity builder")
        return real(samples, second)

    monkeypatch.setattr(capacity, "live", fragile)
    before = faults.of_host(a.pk)
    agents = [Agent(token_a), Agent(token_b)]
    pages = [Page(token), Page(token)]
    try:
        for agent in agents:
            assert (await agent.start())["t"] == "welcome"
        for page, host in zip(pages, (a, b), strict=True):
            await page.start()
            await page.send({"type": "subscribe", "scope": "host", "host": host.pk, "tab": "capacity"})
            await page.until(of("tab.snapshot", host=host.pk))
        page_a, page_b = pages
        async with feeding((agents[0], "poison"), (agents[1], "app")):
            frame = await page_b.until(of("tab.frame", tab="capacity", host=b.pk))
            assert set(frame["ticks"]["pid"]) == {100}
            error = await page_a.until(of("error", host=a.pk, tab="capacity"))
            assert "capacity" in error["reason"] and "internal error" in error["reason"]
            # host A's page lives on: its host frames keep coming, and host B's tab frames too
            await page_a.until(of("host.frame", host=a.pk))
            await page_b.until(of("tab.frame", tab="capacity", host=b.pk))
        assert not any(m["type"] == "error" for m in page_b.messages)
        assert page_a.closed is None and page_b.closed is None
        assert faults.of_host(a.pk) > before
    finally:
        for client in (*pages, *agents):
            await client.close()


async def test_a_snapshot_that_fails_is_an_error_about_that_host_and_tab(monkeypatch):
    a, _ = await make_host("web-a")
    b, _ = await make_host("web-b")
    token = await make_member("ann", a, b)
    real_tab, real_host = capacity.snapshot, publish._host_snapshot

    async def fragile_tab(store, host, request, now):
        if host["id"] == a.pk:
            raise Planted("host A's stored data breaks the capacity snapshot")
        return await real_tab(store, host, request, now)

    async def fragile_host(store, host, request, now):
        if host["id"] == a.pk and request.tab == "overview":
            raise Planted("host A's stored data breaks its summary")
        return await real_host(store, host, request, now)

    monkeypatch.setattr(capacity, "snapshot", fragile_tab)
    monkeypatch.setattr(publish, "_host_snapshot", fragile_host)
    page = Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": a.pk, "tab": "capacity"})
        await page.until(of("host.snapshot", host=a.pk))
        error = await page.until(of("error", host=a.pk))
        assert error["tab"] == "capacity" and error["about"] == "tab.snapshot"
        # the summary fails, the tab's own data still comes
        await page.send({"type": "subscribe", "scope": "host", "host": a.pk, "tab": "overview"})
        error = await page.until(of("error", host=a.pk))
        assert error["about"] == "host.snapshot"
        await page.until(of("tab.snapshot", host=a.pk, tab="overview"))
        # the same connection serves another host at once
        await page.send({"type": "subscribe", "scope": "host", "host": b.pk, "tab": "capacity"})
        await page.until(of("host.snapshot", host=b.pk))
        await page.until(of("tab.snapshot", host=b.pk, tab="capacity"))
        assert page.closed is None
    finally:
        await page.close()


async def test_one_broken_fleet_row_does_not_break_the_fleet_subscribe(monkeypatch):
    a, _ = await make_host("web-a")
    b, _ = await make_host("web-b")
    token = await make_member("ann", a, b)
    real = summary.fleet_metrics

    async def fragile(store, host_id, *args):
        if host_id == a.pk:
            raise Planted("host A's frames break its fleet row")
        return await real(store, host_id, *args)

    monkeypatch.setattr(summary, "fleet_metrics", fragile)
    page = Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "fleet"})
        snapshot = await page.until(of("fleet.snapshot"))
        rows = {row["id"]: row for row in snapshot["hosts"]}
        assert set(rows) == {a.pk, b.pk}
        assert rows[a.pk]["name"] == "web-a" and "internal error" in rows[a.pk]["error"]
        assert "error" not in rows[b.pk] and rows[b.pk]["state"] == "offline"
    finally:
        await page.close()


async def test_the_publisher_goes_on_after_seconds_that_fail(monkeypatch):
    a, token_a = await make_host("web-a")
    token = await make_member("ann", a)
    real, calls = publish.host_frame, []

    async def fails_twice(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise Planted("one second's frame fails")
        return await real(*args, **kwargs)

    monkeypatch.setattr(publish, "host_frame", fails_twice)
    agent, page = Agent(token_a), Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": a.pk})
        await page.until(of("host.snapshot"))
        await agent.start()
        await agent.heartbeat(received=1, decoded=1)
        error = await page.until(of("error", host=a.pk))
        assert isinstance(error["t"], int) and "second" in error["reason"]
        frame = await page.until(lambda m: m["type"] == "host.frame" and not m.get("partial"))
        assert frame["host"] == a.pk and frame["agent_state"]["online"] is True
        # and the agent's connection never noticed
        assert (await agent.batch([tick(100, time.time())]))["t"] == "ack"
    finally:
        await page.close()
        await agent.close()


async def test_nan_and_infinity_reach_pages_as_null(monkeypatch):
    """Through both paths: the consumer's own messages and the publisher's ready-made texts."""
    a, token_a = await make_host("web-a")
    token = await make_member("ann", a)

    async def snapshot(store, host, request, now):
        return {"phases": [], "step": 1, "t": [now], "sums": [[[math.nan, 1, -math.inf, math.inf]]],
                "hist": [{"3": math.nan}]}

    def live(samples, second):
        return {"groups": {"app": {"sums": [[math.inf, 2, math.nan, None]], "hist": {}}},
                "odd": {(1, 2): b"\xff bytes", "set": {1.5}}}

    monkeypatch.setattr(overview, "snapshot", snapshot)
    monkeypatch.setattr(overview, "live", live)
    agent, page = Agent(token_a), Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": a.pk, "tab": "overview"})
        body = await page.until(of("tab.snapshot"))  # Page.next parses strictly: no NaN, no Infinity
        assert body["sums"] == [[[None, 1, None, None]]] and body["hist"] == [{"3": None}]
        await agent.start()
        await agent.batch([tick(100, time.time())])
        frame = await page.until(of("tab.frame", tab="overview"))
        assert frame["groups"]["app"]["sums"] == [[None, 2, None, None]]
        assert frame["odd"] == {"(1, 2)": "\\xff bytes", "set": [1.5]}
        for text in page.texts:
            assert "NaN" not in text and "Infinity" not in text
    finally:
        await page.close()
        await agent.close()


async def test_a_fleet_row_that_fails_to_update_shows_the_host_with_an_error(monkeypatch):
    a, token_a = await make_host("web-a")
    token = await make_member("ann", a)

    async def fragile(store, host_id, *args):
        raise Planted("host A's frames break its fleet row")

    agent, page = Agent(token_a), Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "fleet"})
        await page.until(of("fleet.snapshot"))
        monkeypatch.setattr(summary, "fleet_metrics", fragile)
        monkeypatch.setattr(publish, "fleet_metrics", fragile)
        await agent.start()
        await agent.heartbeat(received=1, decoded=1)
        update = await page.until(lambda m: m["type"] == "fleet.update" and "error" in m["hosts"][0])
        assert update["hosts"][0]["id"] == a.pk and update["hosts"][0]["online"] is True
        assert update["hosts"][0]["console"]["internal_errors"] > 0
    finally:
        await page.close()
        await agent.close()


async def test_a_worker_that_stalls_still_sends_every_second_to_its_pages():
    """A busy worker's publisher wakes late: it sends each second it passed, not just the newest."""
    a, token_a = await make_host("web-a")
    token = await make_member("ann", a)
    agent, page = Agent(token_a), Page(token)
    try:
        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": a.pk})
        await page.until(of("host.snapshot"))
        await agent.start()
        async with feeding((agent, "app")):
            complete = lambda m: m["type"] == "host.frame" and not m.get("partial")  # noqa: E731
            seconds = [(await page.until(complete))["t"]]
            time.sleep(2.6)  # the whole worker stalls: every task on its event loop waits
            while len(seconds) < 7:
                seconds.append((await page.until(complete))["t"])
        assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), seconds
    finally:
        await page.close()
        await agent.close()


async def test_a_publisher_stalled_beyond_catching_up_starts_again_from_the_newest_second():
    newest = 1000 - publish.PUBLISH_DELAY
    assert publish.due_seconds(None, 1000.4) == [newest]
    assert publish.due_seconds(newest - 3, 1000.4) == [newest - 2, newest - 1, newest]
    assert publish.due_seconds(newest, 1000.9) == []  # woke twice in one second
    assert publish.due_seconds(newest - publish.CATCH_UP - 1, 1000.0) == [newest]
