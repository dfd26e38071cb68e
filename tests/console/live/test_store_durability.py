"""Redis as a store that keeps what it acknowledged: its configuration judged and said on the
pages, a restart that lost the data said with the time the store has data from again, and
pages that keep receiving frames across a restart of the Redis under their channel layer.

Each test has a redis-server of its own (``support.redis_server``): nothing here stops or
reconfigures the shared Redis at 6379.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from live_helpers import Agent, Page, make_host, make_member, of, tick
from support.redis_server import OwnRedis
from support.stores import drop_store

from console.live import agents, pages
from console.windows import durability, get_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@contextlib.contextmanager
def own_redis(directory: Path, **options: str | tuple[str, ...]) -> Iterator[OwnRedis]:
    server = OwnRedis(directory, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def console_on(server: OwnRedis, monkeypatch) -> AsyncIterator:
    """The live consumers' window store on ``server`` (a prefix of the test's own)."""
    store = get_store(server.url, prefix=f"wftest:{uuid.uuid4().hex[:12]}:", timeout=1.0)
    monkeypatch.setattr(agents, "window_store", lambda: store)
    monkeypatch.setattr(pages, "window_store", lambda: store)
    try:
        yield store
    finally:
        await drop_store(store)


async def status_of(store) -> durability.StoreState:
    state = await durability.store_state(store)
    assert state is not None
    return state


@pytest.mark.parametrize(("options", "verdict"), [
    ({"appendonly": "no"}, durability.AT_RISK),
    ({"appendonly": "yes", "appendfsync": "everysec"}, durability.DURABLE),
    ({"appendonly": "yes", "appendfsync": "always"}, durability.DURABLE),
    ({"appendonly": "yes", "appendfsync": "no"}, durability.AT_RISK),
    ({"appendonly": "yes", "maxmemory": "100mb", "maxmemory-policy": "volatile-lru"}, durability.AT_RISK),
    ({"appendonly": "no", "rename-command": ("CONFIG", "")}, durability.AT_RISK),  # INFO still says
    ({"appendonly": "yes", "rename-command": ("CONFIG", "")}, durability.UNKNOWN),
])
async def test_the_page_status_says_whether_redis_keeps_acknowledged_data(tmp_path, monkeypatch, options,
                                                                           verdict):
    host, _ = await make_host("web-a")
    user = await make_member("ann", host)
    with own_redis(tmp_path, **options) as server:
        async with console_on(server, monkeypatch):
            page = Page(user)
            try:
                await page.start()
                status = await page.until(lambda m: m["type"] == "status" and "durability" in m)
            finally:
                await page.close()
            later = Page(user)  # the process knows now: the next page's hello says it
            try:
                hello = await later.start()
            finally:
                await later.close()
    assert hello["type"] == "hello" and hello["durability"] == status["durability"]
    said = status["durability"]
    assert status["store_ok"] is True and said["state"] == verdict, said
    if verdict == durability.DURABLE:
        assert said["fix"] == "" and "keeps acknowledged data" in said["text"]
    else:
        assert "appendonly yes" in said["fix"] and "appendfsync everysec" in said["fix"]
    if verdict == durability.AT_RISK:
        assert said["text"].startswith("Redis would lose acknowledged data")


@pytest.mark.parametrize("appendonly", ["no", "yes"])
async def test_a_restart_that_lost_the_data_is_said_with_when_data_begins_again(tmp_path, monkeypatch,
                                                                               appendonly):
    with own_redis(tmp_path, appendonly=appendonly, appendfsync="always") as server:
        async with console_on(server, monkeypatch) as store:
            before = await status_of(store)
            assert before.data_since is not None and before.lost_at is None
            await asyncio.to_thread(server.restart)
            await store.aping()  # the pooled connection that died with Redis
            await asyncio.sleep(durability.CHECK_EVERY)
            after = await status_of(store)
    assert after.run_id != before.run_id
    if appendonly == "no":
        assert after.lost_at is not None and after.data_since == after.lost_at > before.data_since
    else:
        assert after.lost_at is None and after.data_since == before.data_since


async def feed(token: str, stop: asyncio.Event) -> None:
    """One process ticking every 0.25 s through an agent that reconnects when refused (4503
    while Redis is down), each connection a new instance, as a restarted agent would be."""
    agent: Agent | None = None
    while not stop.is_set():
        try:
            if agent is None:
                agent = Agent(token, instance=uuid.uuid4().hex)
                welcome = await agent.start()
                assert welcome["t"] == "welcome"
            ack = await agent.batch([tick(100, time.time())])
            assert ack["t"] == "ack"
        except Exception:  # refused, or the connection closed: a real agent spools and retries
            if agent is not None:
                with contextlib.suppress(Exception):
                    await agent.close()
            agent = None
            await asyncio.sleep(0.5)
            continue
        await asyncio.sleep(0.25)
    if agent is not None:
        await agent.close()


def live(after: float):
    return lambda m: (m["type"] == "host.frame" and not m.get("partial") and m["t"] > after
                      and m["groups"].get("*", {}).get("ticks", 0) > 0)


async def test_a_page_keeps_receiving_frames_after_the_channel_layer_redis_restarts(tmp_path, monkeypatch,
                                                                                    settings):
    host, token = await make_host("web-a")
    user = await make_member("ann", host)
    with own_redis(tmp_path, appendonly="no") as server:
        settings.CHANNEL_LAYERS = {"default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": server.url, "socket_timeout": None}],
                       "prefix": f"wfctest{uuid.uuid4().hex[:8]}"}}}
        async with console_on(server, monkeypatch):
            stop = asyncio.Event()
            feeder = asyncio.create_task(feed(token, stop))
            page = Page(user)
            try:
                await page.start()
                await page.send({"type": "subscribe", "scope": "host", "host": host.pk})
                await page.until(of("host.snapshot"))
                await page.until(live(0))
                await asyncio.to_thread(server.restart)
                restarted = time.time()
                # the same connection, never resubscribed: frames of seconds after the restart
                await page.until(live(restarted), timeout=30)
                lost = (lambda m: m["type"] == "status" and m.get("history_lost_at"))  # noqa: E731
                said = next((m for m in page.messages if lost(m)), None) or await page.until(lost)
                assert said["store_ok"] is True and said["data_since"] >= restarted - 5
                assert page.closed is None
            finally:
                stop.set()
                await feeder
                await page.close()


@pytest.mark.parametrize(("appendonly", "level", "verdict"), [
    ("no", "WARNING", durability.AT_RISK), ("yes", "INFO", durability.DURABLE)])
async def test_the_console_start_logs_what_redis_keeps(tmp_path, caplog, appendonly, level, verdict):
    with own_redis(tmp_path, appendonly=appendonly) as server, \
            caplog.at_level("INFO", logger="console.windows.durability"):
        said = await asyncio.to_thread(durability.check_at_start, server.url)  # a sync caller
    assert said.state == verdict
    [record] = [r for r in caplog.records if r.name == "console.windows.durability"]
    assert record.levelname == level and said.text in record.getMessage()


async def test_a_redis_that_does_not_answer_at_start_is_unknown_not_an_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    assert (await asyncio.to_thread(durability.check_at_start, url)).state == durability.UNKNOWN
