"""Shared by the live-layer robustness tests: real consumers through the real ASGI stack
(channels' WebsocketCommunicator, in-process store and channel layer), agents and pages
as the protocol has them, and a reader that keeps every raw text a page received."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgpack
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from console.asgi import application
from console.fleet.models import AgentToken, ApiToken, Host, Team
from ingest.model.kinds import TICK

#: Generous: the machine is shared and busy; nothing here measures time.
WAIT = 20.0


def pack(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


@database_sync_to_async
def make_host(name: str, team: str = "payments") -> tuple[Host, str]:
    team_row, _ = Team.objects.get_or_create(name=team)
    host = Host.objects.create(name=name, team=team_row)
    _, token = AgentToken.issue(host=host)
    return host, token


@database_sync_to_async
def make_member(username: str, *hosts: Host) -> str:
    """A user in the teams of ``hosts``; returns a user API token."""
    user = User.objects.create(username=username)
    for host in hosts:
        host.team.members.add(user)
    _, token = ApiToken.issue(user=user)
    return token


def tick(pid: int, t: float, group: str | None = "app", **fields: Any) -> dict:
    f = {"sample_period": 1.0, "telemetry_interval": 1.0, "request_threads_maximum": 2, "request_count": 3,
         "capacity_utilization": 0.25, "cpu_utilization": 0.1, "request_threads_busy_time": [0.25, 0.25],
         "request_threads_completed": [2, 1], **fields}
    return {"k": TICK, "p": pid, "i": 1, "s": 1, "t": t, "g": group, "n": None, "f": f}


class Agent:
    """One agent connection: hello, batches with increasing ids, heartbeats."""

    def __init__(self, token: str, instance: str = "agent-1") -> None:
        self.comm = WebsocketCommunicator(application, "/ws/agent/",
                                          headers=[(b"authorization", f"Bearer {token}".encode())])
        self.instance, self.next_id = instance, 1

    async def start(self) -> dict:
        connected, _ = await self.comm.connect()
        assert connected
        await self.send({"t": "hello", "protocol": 1, "agent": "test", "instance": self.instance})
        return await self.receive()

    async def send(self, message: dict) -> None:
        await self.comm.send_to(bytes_data=pack(message))

    async def receive(self, timeout: float = WAIT) -> dict:
        return msgpack.unpackb(await self.comm.receive_from(timeout), strict_map_key=False)

    async def batch(self, samples: list[dict], *, wait: bool = True) -> dict | None:
        batch_id, self.next_id = self.next_id, self.next_id + 1
        await self.send({"t": "batch", "instance": self.instance, "id": batch_id, "samples": samples})
        return await self.receive() if wait else None

    async def heartbeat(self, **counters: int) -> None:
        await self.send({"t": "heartbeat", "instance": self.instance, "time": time.time(),
                         "counters": counters})

    async def close(self) -> None:
        await self.comm.disconnect()


class Page:
    """One ``/ws/live/`` connection with a user API token; keeps every text it received."""

    def __init__(self, token: str) -> None:
        self.comm = WebsocketCommunicator(application, "/ws/live/",
                                          headers=[(b"authorization", f"Bearer {token}".encode())])
        self.texts: list[str] = []
        self.messages: list[dict] = []
        self.closed: int | None = None

    async def start(self) -> dict:
        connected, _ = await self.comm.connect()
        assert connected
        return await self.next()

    async def send(self, message: dict) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def next(self, timeout: float = WAIT) -> dict:
        output = await self.comm.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.closed = output.get("code", 1000)
            raise ConnectionError(f"closed with {self.closed}")
        text = output["text"]
        self.texts.append(text)
        # strict: what JSON.parse accepts, no NaN / Infinity
        message = json.loads(text, parse_constant=_refuse)
        self.messages.append(message)
        return message

    async def until(self, predicate: Callable[[dict], bool], timeout: float = WAIT) -> dict:
        """The next message that satisfies ``predicate`` (others are kept in ``messages``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:  # a timeout ends the consumer (asgiref's communicator cancels it): a failure
                message = await self.next(max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                kinds = [(m.get("type"), m.get("tab")) for m in self.messages[-15:]]
                raise AssertionError(f"no matching message within {timeout} s; last: {kinds}") from None
            if predicate(message):
                return message

    async def close(self) -> None:
        await self.comm.disconnect()


def _refuse(token: str) -> Any:
    raise AssertionError(f"{token} in a message: JSON.parse would refuse it")


def of(kind: str, **match: Any) -> Callable[[dict], bool]:
    """A predicate: a message of ``kind`` whose keys equal ``match``."""
    return lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in match.items())
