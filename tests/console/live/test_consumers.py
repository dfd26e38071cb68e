"""The agent and live consumers through the real ASGI stack (in-process store)."""

import time

import msgpack
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from support.paths import RAW

from console.asgi import application
from console.fleet.models import AgentToken, ApiToken, Host, Team
from ingest.pipeline import capture
from ingest.pipeline.samples import replay

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def pack(message):
    return msgpack.packb(message, use_bin_type=True)


async def agent(token, **headers):
    hdrs = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    comm = WebsocketCommunicator(application, "/ws/agent/", headers=hdrs)
    connected, code = await comm.connect()
    return comm, connected, code


@pytest.fixture
def host_and_token(db):
    team = Team.objects.create(name="payments")
    host = Host.objects.create(name="web-03", team=team)
    _, token = AgentToken.issue(host=host)
    return host, token


@pytest.mark.parametrize("token", [None, "", "wfa_000000000000_nope", "garbage"])
async def test_agent_without_a_valid_token_is_refused_the_same_way(host_and_token, token):
    _comm, connected, _code = await agent(token)
    assert not connected  # closed before accept: daphne answers the handshake with 403


async def test_revoked_token_is_refused(host_and_token):
    host, token = host_and_token
    await AgentToken.objects.filter(host=host).aupdate(revoked=host.created)
    _, connected, _ = await agent(token)
    assert not connected


async def test_agent_hello_batch_ack_and_duplicate(host_and_token):
    _host, token = host_and_token
    samples = list(replay(capture.read(str(RAW / "B.dgrams.gz"))))
    comm, connected, _ = await agent(token)
    assert connected
    await comm.send_to(bytes_data=pack({"t": "hello", "protocol": 1, "agent": "test 1", "instance": "abc"}))
    welcome = msgpack.unpackb(await comm.receive_from())
    assert welcome["t"] == "welcome" and welcome["acked"] == 0 and welcome["host"] == "web-03"
    await comm.send_to(bytes_data=pack({"t": "batch", "instance": "abc", "id": 1, "samples": samples}))
    ack = msgpack.unpackb(await comm.receive_from(timeout=5))
    assert ack == {"t": "ack", "id": 1, "written": len(samples), "duplicate": False, "dropped": 0}
    await comm.send_to(bytes_data=pack({"t": "batch", "instance": "abc", "id": 1, "samples": samples}))
    again = msgpack.unpackb(await comm.receive_from(timeout=5))
    assert again["duplicate"] is True and again["written"] == 0
    await comm.disconnect()
    # a new connection of the same agent instance learns what was written
    comm, _, _ = await agent(token)
    await comm.send_to(bytes_data=pack({"t": "hello", "protocol": 1, "agent": "test 1", "instance": "abc"}))
    assert msgpack.unpackb(await comm.receive_from())["acked"] == 1
    await comm.disconnect()


@pytest.mark.parametrize(("payload", "code"), [
    (b"\xc1not msgpack", 4400),
    (msgpack.packb([1, 2, 3]), 4400),
    (msgpack.packb({"t": "batch", "instance": "x", "id": 1, "samples": []}), 4400),  # batch before hello
    (msgpack.packb({"t": "nope"}), 4400),
])
async def test_malformed_messages_are_refused_and_counted(host_and_token, payload, code):
    host, token = host_and_token
    comm, _, _ = await agent(token)
    await comm.send_to(bytes_data=payload)
    error = msgpack.unpackb(await comm.receive_from())
    assert error["t"] == "error" and error["reason"]
    assert (await comm.receive_output())["code"] == code
    await host.arefresh_from_db()
    assert host.batches_refused == 1


async def test_oversized_message_is_refused_with_4413(host_and_token, settings):
    settings.WSGI_FLEET = {**settings.WSGI_FLEET, "AGENT_MAX_MESSAGE": 1000}
    _, token = host_and_token
    comm, _, _ = await agent(token)
    await comm.send_to(bytes_data=b"\x00" * 2000)
    await comm.receive_from()
    assert (await comm.receive_output())["code"] == 4413


async def test_text_frames_are_a_protocol_error(host_and_token):
    _, token = host_and_token
    comm, _, _ = await agent(token)
    await comm.send_to(text_data="hello")
    await comm.receive_from()
    assert (await comm.receive_output())["code"] == 4400


async def browser(user=None, origin=b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    comm = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    if user is not None:
        comm.scope["user"] = user
    return comm


async def test_live_refuses_anonymous_and_foreign_origins(host_and_token):
    comm = await browser()
    connected, _ = await comm.connect()
    assert not connected
    comm = await browser(origin=b"http://evil.example")
    connected, _ = await comm.connect()
    assert not connected


async def test_live_host_snapshot_has_the_written_requests_and_only_for_members(host_and_token):
    host, token = host_and_token
    samples = list(replay(capture.read(str(RAW / "B.dgrams.gz"))))
    # shift the capture to now, so it lies inside the snapshot window
    offset = time.time() - 5 - max(s["t"] for s in samples)
    for s in samples:
        s["t"] += offset
    comm, _, _ = await agent(token)
    await comm.send_to(bytes_data=pack({"t": "hello", "protocol": 1, "agent": "t", "instance": "i"}))
    await comm.receive_from()
    await comm.send_to(bytes_data=pack({"t": "batch", "instance": "i", "id": 1, "samples": samples}))
    await comm.receive_from(timeout=5)
    await comm.disconnect()

    expected = sum(s["f"].get("request_count", 0) for s in samples if s["k"] == 2)
    outsider = await User.objects.acreate(username="eve")
    member = await User.objects.acreate(username="ann")
    await host.team.members.aadd(member)
    _, eve_token = await database_sync_to_async(ApiToken.issue)(user=outsider)
    _, ann_token = await database_sync_to_async(ApiToken.issue)(user=member)
    for token_, sees in ((eve_token, False), (ann_token, True)):
        comm = WebsocketCommunicator(application, "/ws/live/",
                                     headers=[(b"authorization", f"Bearer {token_}".encode())])
        connected, _ = await comm.connect()
        assert connected
        hello = await comm.receive_json_from()
        assert hello["type"] == "hello" and hello["single_process"] is True
        await comm.send_json_to({"type": "subscribe", "scope": "host", "host": host.pk, "window": 600})
        reply = await comm.receive_json_from(timeout=5)
        if not sees:
            assert reply == {"type": "error", "reason": "no such host"}
        else:
            assert reply["type"] == "host.snapshot"
            assert reply["totals"]["requests"] == expected
            assert sum(reply["totals"][f"status_{c}xx"] for c in range(1, 6)) == expected
        await comm.disconnect()


async def test_live_page_is_told_when_the_window_store_goes_away(host_and_token, monkeypatch):
    from console.live import pages
    from console.windows.store import get_store

    host, _ = host_and_token
    # nothing listens on port 1
    dead = get_store("redis://127.0.0.1:1/0", prefix="wf-test-dead:", timeout=0.5)
    monkeypatch.setattr(pages, "window_store", lambda: dead)
    monkeypatch.setattr(pages, "STORE_CHECK_INTERVAL", 0.05)
    member = await User.objects.acreate(username="ann")
    await host.team.members.aadd(member)
    _, token = await database_sync_to_async(ApiToken.issue)(user=member)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    comm = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from())["type"] == "hello"
    status = await comm.receive_json_from(timeout=5)
    assert status["type"] == "status" and status["store_ok"] is False
    assert "unavailable" in status["reason"]
    await comm.disconnect()


async def test_anything_for_a_page_daphne_has_just_closed_is_dropped_quietly():
    """A frame, a subscribe's answer (the page closed while its snapshot was being built:
    it used to log an internal error and a daphne traceback) and a close."""
    from autobahn.exception import Disconnected

    from console.live.pages import LiveConsumer

    consumer = LiveConsumer()
    tried = []

    async def closed(message):  # what daphne's send does on a closed protocol
        tried.append(message["type"])
        raise Disconnected("Attempt to send on a closed protocol")

    consumer.base_send = LiveConsumer.dropping_when_gone(closed)
    await consumer.live_text({"type": "live.text", "text": "{}"})  # no exception escapes
    await consumer.send_json({"type": "fleet.snapshot", "hosts": []})
    await consumer.close()
    assert tried == ["websocket.send", "websocket.send", "websocket.close"]
