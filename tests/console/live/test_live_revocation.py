"""Revocation holds for the whole life of a connection (console/live/auth.py).

Open agent, token-client and session connections through the real ASGI
stack; then the token is revoked (the admin's way, ``rotatetoken``), the
user deactivated, deleted, logged out or taken off the team, and the open
connection is closed with the documented code within a few re-checks. The
re-check interval is shortened to 0.2 s; nothing here measures time.
"""

from __future__ import annotations

from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from live_helpers import WAIT, Agent, Page, make_host, make_member, of

from console.asgi import application
from console.fleet.models import ApiToken, Host
from console.live import auth

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def quick_recheck(settings):
    settings.WSGI_FLEET = {**settings.WSGI_FLEET, "AUTH_RECHECK": 0.2}


async def closed_with(comm: WebsocketCommunicator) -> int:
    """The close code of the next close, skipping what was sent before it."""
    while True:
        output = await comm.receive_output(WAIT)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def test_rotatetoken_closes_the_open_agent_connection():
    _, token = await make_host("web-03")
    agent = Agent(token)
    assert (await agent.start())["t"] == "welcome"
    await sync_to_async(call_command)("rotatetoken", "web-03", stdout=StringIO(), stderr=StringIO())
    assert await closed_with(agent.comm) == auth.REVOKED
    again = Agent(token)
    connected, _ = await again.comm.connect()
    assert not connected


async def test_deleting_the_host_closes_its_agent():
    host, token = await make_host("web-03")
    agent = Agent(token)
    await agent.start()
    await host.adelete()
    assert await closed_with(agent.comm) == auth.REVOKED


async def test_an_agent_whose_token_holds_stays_connected(monkeypatch):
    _, token = await make_host("web-03")
    await make_host("web-04")
    checked = []
    verdict = auth.agent_verdict

    async def counted(scope):
        checked.append(scope["agent_host"]["name"])
        return await verdict(scope)

    monkeypatch.setattr(auth, "agent_verdict", counted)
    agent = Agent(token)
    await agent.start()
    await sync_to_async(call_command)("rotatetoken", "web-04", stdout=StringIO(), stderr=StringIO())
    while len(checked) < 3:
        assert await agent.comm.receive_nothing(0.2)
    await agent.heartbeat(received=1)  # still served: a heartbeat is answered with nothing, not a close
    assert await agent.comm.receive_nothing(0.3)
    await agent.close()


async def watching_ann() -> tuple[Host, str, Page]:
    """ann, member of web-03's team, on web-03's page with her API token."""
    host, _ = await make_host("web-03")
    token = await make_member("ann", host)
    page = Page(token)
    await page.start()
    await page.send({"type": "subscribe", "scope": "host", "host": host.pk, "window": 600})
    await page.until(of("host.snapshot"))
    return host, token, page


@pytest.mark.parametrize("how", ["revoke", "deactivate", "delete"])
async def test_token_client_is_closed_when_its_token_or_user_goes(how):
    _, _, page = await watching_ann()
    user = await User.objects.aget(username="ann")
    if how == "revoke":
        api = await ApiToken.objects.aget(user=user)
        await database_sync_to_async(api.revoke)()
    elif how == "deactivate":
        user.is_active = False
        await user.asave()
    else:
        await user.adelete()
    assert await closed_with(page.comm) == auth.REVOKED


async def test_a_user_taken_off_the_team_stops_receiving_the_host():
    host, token, page = await watching_ann()
    user = await User.objects.aget(username="ann")
    await host.team.members.aremove(user)
    assert await closed_with(page.comm) == auth.LOST_ACCESS
    # the token still works, but the host is no longer the user's
    again = Page(token)
    await again.start()
    await again.send({"type": "subscribe", "scope": "host", "host": host.pk, "window": 600})
    assert await again.until(of("error")) == {"type": "error", "reason": "no such host"}
    await again.close()


async def test_a_fleet_page_is_closed_when_its_user_is_no_longer_staff():
    await make_host("web-03")
    boss = await User.objects.acreate(username="boss", is_staff=True)
    _, token = await database_sync_to_async(ApiToken.issue)(user=boss)
    page = Page(token)
    await page.start()
    await page.send({"type": "subscribe", "scope": "fleet"})
    snapshot = await page.until(of("fleet.snapshot"))
    assert [h["name"] for h in snapshot["hosts"]] == ["web-03"]
    boss.is_staff = False
    await boss.asave()
    assert await closed_with(page.comm) == auth.LOST_ACCESS


@database_sync_to_async
def logged_in_cookie(username: str) -> str:
    user = User.objects.create_user(username, password="pw-for-tests")
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def test_logging_out_closes_the_pages_of_that_session():
    cookie = await logged_in_cookie("ann")
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"),
               (b"cookie", f"sessionid={cookie}".encode())]
    comm = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(WAIT))["user"] == "ann"
    from django.contrib.sessions.models import Session

    await Session.objects.filter(session_key=cookie).adelete()  # what logging out does
    assert await closed_with(comm) == auth.REVOKED
