"""Every kind of loss reaches the pages: host snapshots, host frames and fleet rows carry
each loss total, the Overview's series and the per-second frames carry the second's
sequence loss (``loss``) and its ticks (0: a hole), and a snapshot says why the console
dropped samples. Each test runs on the in-process store and on Redis.
"""

from __future__ import annotations

import time

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

KINDS = {"lost": 7, "queue_drops": 5, "dropped": 2, "dropped_samples": 40, "dropped_seconds": 4,
         "refused_samples": 1, "malformed": 3}


async def test_the_pages_get_every_loss_kind_and_the_second_it_was_counted(console_store):
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    agent, page = Agent(token), Page(user)
    try:
        await agent.start()
        await agent.heartbeat(received=10, decoded=10)
        now = time.time()
        # one good tick, and one the console's checks refuse (a string where a number goes)
        ack = await agent.batch([tick(100, now), {**tick(101, now), "f": {"request_count": "many"}}])
        assert ack["dropped"] == 1, ack
        await agent.heartbeat(received=20, decoded=20, **KINDS)
        await agent.batch([tick(100, time.time())])  # answered after the heartbeat: it is stored

        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": host.pk, "window": 60, "points": 60})
        snapshot = await page.until(of("host.snapshot"))
        for kind, value in KINDS.items():
            assert snapshot["agent"][kind] == value, kind
        assert snapshot["agent"]["bad_samples"] == 1
        [reason] = snapshot["bad_reasons"]
        assert "request_count" in reason["reason"]
        series = snapshot["series"]
        assert len(series["loss"]) == len(series["ticks"]) == len(series["t"])
        assert sum(series["loss"]) == 7, "the heartbeat's growth of lost is at its second"
        assert all(n > 0 for n, lost in zip(series["ticks"], series["loss"], strict=True) if not lost)

        # the stored second of the heartbeat: its loss and its ticks, published two seconds on
        frame = await page.until(lambda m: m["type"] == "host.frame" and not m.get("partial")
                                 and m["groups"].get("*", {}).get("loss", 0) > 0)
        assert frame["groups"]["*"]["loss"] == 7 and "ticks" in frame["groups"]["*"]
        assert {k: frame["agent"][k] for k in KINDS} == KINDS
        assert frame["agent"]["bad_samples"] == 1

        await page.send({"type": "subscribe", "scope": "fleet"})
        [row] = (await page.until(of("fleet.snapshot")))["hosts"]
        assert {k: row["agent"][k] for k in KINDS} == KINDS
    finally:
        await page.close()
        await agent.close()


async def test_a_groups_series_carries_the_hosts_loss(console_store):
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    agent, page = Agent(token), Page(user)
    try:
        await agent.start()
        await agent.heartbeat(received=1, decoded=1)
        await agent.batch([tick(100, time.time())])
        await agent.heartbeat(received=5, decoded=5, lost=4)
        await agent.batch([tick(100, time.time())])

        await page.start()
        await page.send({"type": "subscribe", "scope": "host", "host": host.pk, "group": "app",
                         "window": 60, "points": 60})
        snapshot = await page.until(of("host.snapshot"))
        assert snapshot["bad_reasons"] == []
        assert sum(snapshot["series"]["loss"]) == 4, "loss is the host's, shown on a group's charts too"
    finally:
        await page.close()
        await agent.close()
