"""Batches compressed by the agent (``zsamples``, ingest/pipeline/batchwire.py): written exactly like
plain ones, and bounded: a small message that inflates past the message limit is refused
with nothing written, never held in memory."""

from __future__ import annotations

import time
import zlib

import msgpack
import pytest
from django.conf import settings
from live_helpers import Agent, make_host, tick

from console.live.store import window_store
from ingest.pipeline import batchwire

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def send_packed(agent: Agent, samples: bytes, compress: bool) -> dict:
    batch_id, agent.next_id = agent.next_id, agent.next_id + 1
    prefix = batchwire.batch_prefix(agent.instance)
    await agent.comm.send_to(bytes_data=batchwire.batch_message(prefix, batch_id, samples, compress))
    return await agent.receive()


async def test_the_console_offers_zlib_and_writes_a_compressed_batch_like_a_plain_one():
    host, token = await make_host("web-a")
    agent = Agent(token)
    try:
        welcome = await agent.start()
        assert welcome["compression"] == batchwire.ZLIB
        now = time.time()
        samples = [tick(100 + i, now, "app", request_count=3, status_2xx_total=3) for i in range(200)]
        packed = msgpack.packb(samples, use_bin_type=True)
        ack = await send_packed(agent, packed, compress=True)
        assert ack["t"] == "ack" and ack["written"] == 200 and not ack.get("dropped")
        plain = await send_packed(agent, msgpack.packb([tick(999, now, "app")], use_bin_type=True), False)
        assert plain["t"] == "ack" and plain["written"] == 1
        assert len(zlib.compress(packed, 1)) * 5 < len(packed)  # what the link is spared
    finally:
        await agent.close()
    stored = await window_store().araw(host.pk, now - 5, now + 5, limit=10_000)
    assert len(stored) == 201


@pytest.mark.parametrize("case", ["bomb", "not zlib", "not bytes", "cut short"])
async def test_a_compressed_batch_that_is_not_what_it_says_is_refused_and_nothing_is_written(case):
    host, token = await make_host("web-a")
    agent = Agent(token)
    limit = settings.WSGI_FLEET["AGENT_MAX_MESSAGE"]
    good = zlib.compress(msgpack.packb([tick(100, time.time())]), 1)
    zsamples = {"bomb": zlib.compress(b"\x00" * (limit + 1), 9), "not zlib": b"\x78\x9c garbage",
                "not bytes": "text", "cut short": good[:-3]}[case]
    try:
        await agent.start()
        await agent.send({"t": "batch", "instance": agent.instance, "id": 1, "zsamples": zsamples})
        reply = await agent.receive()
        assert reply["t"] == "error" and "zsamples" in reply["reason"]
        assert (await agent.comm.receive_output(2))["code"] == 4400
    finally:
        await agent.close()
    assert await window_store().araw(host.pk, 0, time.time() + 5, limit=10) == []
