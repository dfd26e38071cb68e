"""What the console says about a host's agent: heartbeat counters of any size keep the
connection, and an agent that receives without decoding shows as "agent not decoding",
with its numbers, on the fleet row and the host page, instead of "online"."""

from __future__ import annotations

import time

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_a_huge_heartbeat_counter_is_clamped_and_the_connection_lives():
    host, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        await agent.heartbeat(received=2**64 - 1, lost=2**64 - 1, malformed=-1, decoded=3)
        ack = await agent.batch([tick(100, time.time())])  # answered: the heartbeat closed nothing
        assert ack["t"] == "ack" and ack["written"] == 1
    finally:
        await agent.close()
    await host.arefresh_from_db()
    assert host.datagrams_received == 2**63 - 1 and host.datagrams_lost == 2**63 - 1
    assert host.datagrams_malformed == 0


async def test_an_agent_that_receives_and_decodes_nothing_is_shown_as_not_decoding():
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    agent, page = Agent(token), Page(user)
    try:
        await agent.start()
        await page.start()
        # the decode thread died after 500 datagrams: received climbs, decoded stays
        for received in (500, 620, 790):
            await agent.heartbeat(received=received, decoded=500, malformed=0)
        await agent.batch([])  # answered after the heartbeats: they are all stored
        await page.send({"type": "subscribe", "scope": "fleet"})
        [row] = (await page.until(of("fleet.snapshot")))["hosts"]
        assert row["online"] is True and row["state"] == "not decoding"
        assert row["not_decoding"]["received"] == 290 and row["not_decoding"]["decoded"] == 0
        assert row["agent"]["received"] == 790 and row["agent"]["decoded"] == 500

        await page.send({"type": "subscribe", "scope": "host", "host": host.pk})
        snapshot = await page.until(of("host.snapshot"))
        assert snapshot["agent_state"]["state"] == "not decoding"
        frame = await page.until(lambda m: m["type"] == "host.frame" and "agent_state" in m)
        assert frame["agent_state"]["not_decoding"]["received"] == 290

        # the agent was restarted and decodes again: online
        for received, decoded in ((10, 10), (60, 58)):
            await agent.heartbeat(received=received, decoded=decoded)
        await agent.batch([])
        await page.send({"type": "subscribe", "scope": "fleet"})
        [row] = (await page.until(of("fleet.snapshot")))["hosts"]
        assert row["state"] == "online" and row["not_decoding"] is None
    finally:
        await page.close()
        await agent.close()


async def test_a_reconnect_keeps_the_stall_the_previous_connection_saw():
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    agent = Agent(token)
    try:
        await agent.start()
        await agent.heartbeat(received=100, decoded=40)
        await agent.heartbeat(received=130, decoded=40)
        await agent.batch([])
    finally:
        await agent.close()
    agent, page = Agent(token), Page(user)
    try:
        await agent.start()
        await agent.heartbeat(received=170, decoded=40)
        await agent.batch([])
        await page.start()
        await page.send({"type": "subscribe", "scope": "fleet"})
        [row] = (await page.until(of("fleet.snapshot")))["hosts"]
        assert row["state"] == "not decoding" and row["not_decoding"]["received"] == 70
    finally:
        await page.close()
        await agent.close()


async def test_a_heartbeat_the_console_cannot_take_costs_no_batch():
    """A 4400 is blamed on the agent's oldest batch in flight: a heartbeat never causes one."""
    _, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        await agent.batch([tick(100, time.time())], wait=False)  # in flight behind the heartbeat
        await agent.send({"t": "heartbeat", "instance": agent.instance, "time": time.time(),
                          "counters": "not a map"})
        ack = await agent.receive()
        assert ack["t"] == "ack" and ack["written"] == 1
        assert (await agent.batch([tick(100, time.time() + 1)]))["t"] == "ack"
    finally:
        await agent.close()
