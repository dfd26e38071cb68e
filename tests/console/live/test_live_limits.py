"""Per-connection limits (console/live/limits.py): one agent or one page cannot take the
worker's event loop from the others; refused with close code 4429 and counted. And a
refused agent connection acts on nothing that was queued behind the refusal."""

from __future__ import annotations

import asyncio
import time

import msgpack
import pytest
from live_helpers import Agent, Page, make_host, make_member, of, pack, tick

from console.live.health import faults
from console.live.limits import SLOW_DOWN
from console.live.store import window_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def limits(settings, **values) -> None:
    settings.WSGI_FLEET = {**settings.WSGI_FLEET, **values}


async def closed_with(agent: Agent) -> tuple[list[dict], int]:
    """What the agent received until the console closed the connection, and the code."""
    got = []
    while True:
        output = await agent.comm.receive_output(20)
        if output["type"] == "websocket.close":
            return got, output["code"]
        got.append(msgpack.unpackb(output["bytes"]))


async def test_an_agent_over_its_message_rate_is_told_to_slow_down(settings):
    limits(settings, AGENT_MAX_MESSAGES_PER_SECOND=5)
    host, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        for _ in range(40):  # far over 5 a second, whatever the machine's load
            await agent.heartbeat(received=1, decoded=1)
        got, code = await closed_with(agent)
        assert code == SLOW_DOWN
        assert got[-1]["t"] == "error" and "slow down" in got[-1]["reason"]
        await host.arefresh_from_db()
        assert host.batches_refused == 1
        assert faults.refused["agent over its limits"] >= 1
    finally:
        await agent.close()


async def test_an_agent_over_its_byte_rate_is_told_to_slow_down(settings):
    samples = [tick(pid, time.time()) for pid in range(100)]
    size = len(pack({"t": "batch", "instance": "agent-1", "id": 1, "samples": samples}))
    limits(settings, AGENT_MAX_BYTES_PER_SECOND=size * 3 // 2)  # hello and one batch a second
    _, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        for _ in range(3):
            await agent.batch(samples, wait=False)
        got, code = await closed_with(agent)
        assert code == SLOW_DOWN and got[-1]["t"] == "error"
        assert sum(1 for m in got if m["t"] == "ack") == 1  # the first fitted the second's bytes
    finally:
        await agent.close()


@pytest.mark.parametrize("refusal", ["protocol", "limit"])
async def test_nothing_queued_behind_a_refused_batch_is_written(settings, refusal):
    """The high-water mark must not pass a refused batch: the agent would forget it."""
    if refusal == "limit":
        limits(settings, AGENT_MAX_MESSAGES_PER_SECOND=2)  # hello and batch 1 fit, batch 2 does not
    host, token = await make_host("web-a")
    agent = Agent(token, instance="queued")
    try:
        await agent.start()
        now = time.time()
        good = [tick(100, now)]
        if refusal == "protocol":
            await agent.batch(good, wait=False)  # id 1, written
            await agent.send({"t": "batch", "instance": "queued", "id": 2, "samples": "not a list"})
            agent.next_id = 3  # id 2 was refused with 4400
        else:
            await agent.batch(good, wait=False)  # id 1, written
            await agent.batch(good, wait=False)  # id 2, refused with 4429
        for _ in range(5):  # ids 3..7, already on their way when the console refused 2
            await agent.batch(good, wait=False)
        got, code = await closed_with(agent)
        assert code == (4400 if refusal == "protocol" else SLOW_DOWN)
        assert [m["id"] for m in got if m["t"] == "ack"] == [1]
    finally:
        await agent.close()
    again = Agent(token, instance="queued")
    try:
        welcome = await again.start()
        assert welcome["acked"] == 1  # batch 2 is still the agent's to resend
    finally:
        await again.close()
    assert await window_store().aacked(host.pk, "queued") == 1


async def test_a_subscribe_flood_is_refused_while_another_clients_first_data_arrives():
    host, _ = await make_host("web-a")
    flooder_token = await make_member("mallory", host)
    token = await make_member("ann", host)
    flooder, page = Page(flooder_token), Page(token)
    try:
        await flooder.start()
        await page.start()
        subscribe = {"type": "subscribe", "scope": "host", "host": host.pk, "tab": "capacity"}
        for _ in range(10_000):
            await flooder.send(subscribe)
        await page.send(subscribe)
        await page.until(of("host.snapshot", host=host.pk))
        await page.until(of("tab.snapshot", host=host.pk, tab="capacity"))
        with pytest.raises(ConnectionError):
            await flooder.until(lambda m: False, timeout=60)
        assert flooder.closed == SLOW_DOWN
        refused = [m for m in flooder.messages if m["type"] == "error"]
        assert refused and "too many messages" in refused[0]["reason"]
        answered = [m for m in flooder.messages if m["type"] == "tab.snapshot"]
        assert 0 < len(answered) < 200  # the burst was served, the flood was not
        # the other client is served as before
        await page.send({**subscribe, "tab": "overview"})
        await page.until(of("tab.snapshot", tab="overview"))
        assert page.closed is None
    finally:
        await flooder.close()
        await page.close()


async def test_limits_do_not_touch_a_healthy_agent():
    """An agent as it really runs: a batch every 100 ms and a heartbeat, far inside the defaults."""
    _, token = await make_host("web-a")
    agent = Agent(token)
    try:
        await agent.start()
        for n in range(30):
            ack = await agent.batch([tick(100 + n % 3, time.time())])
            assert ack["t"] == "ack"
            if n % 10 == 0:
                await agent.heartbeat(received=n, decoded=n)
            await asyncio.sleep(0.01)
    finally:
        await agent.close()
