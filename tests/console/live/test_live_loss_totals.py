"""The host's database row shows the store's loss totals, which a restarted agent (a new
instance counting from 0) adds to and never erases (docs/store-exactly-once.md)."""

from __future__ import annotations

import time

import pytest
from live_helpers import Agent, make_host

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def run_of(token: str, instance: str, lost: int) -> None:
    agent = Agent(token, instance=instance)
    try:
        await agent.start()
        await agent.send({"t": "heartbeat", "instance": instance, "time": time.time(),
                          "counters": {"received": 10, "decoded": 10, "lost": lost}})
        await agent.batch([])  # answered after the heartbeat: it is stored
    finally:
        await agent.close()


async def test_a_restarted_agent_adds_its_loss_to_the_hosts_row(console_store):
    host, token = await make_host("web-a")
    await run_of(token, "run-1", 5)
    await run_of(token, "run-2", 3)  # a new instance, its counter from 0
    await run_of(token, "run-2", 3)  # the same heartbeat again: counted once
    await host.arefresh_from_db()
    assert host.datagrams_lost == 8
    status = (await console_store.ahost_status([host.pk]))[host.pk]
    assert status["counters"]["lost"] == 8


async def test_a_huge_total_still_fits_the_row(console_store):
    host, token = await make_host("web-a")
    await run_of(token, "run-1", 2**64 - 1)
    await run_of(token, "run-2", 2**63 - 1)
    await host.arefresh_from_db()
    assert host.datagrams_lost == 2**63 - 1
