"""An agent speaking the protocol by hand to a browser test's console: for states a real
agent reaches only by failing (a dead decoder, a wrong clock, losses of every kind)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import msgpack
from browser_support import PYTHON, ROOT
from websockets.sync.client import connect

from ingest.model.kinds import TICK

SETUP = """
import json, os
from django.contrib.auth.models import User
from console.fleet.models import AgentToken, Host, Team
host, user, team_name = json.loads(os.environ["WF_RAW_AGENT"])
team = Team.objects.create(name=team_name)
team.members.add(User.objects.create_user(user, password=os.environ["WF_BROWSER_PASSWORD"]))
print("WF_TOKEN " + AgentToken.issue(host=Host.objects.create(name=host, team=team))[1])
"""
#: A tick of one process with two request threads, busy a quarter of the time.
TICK_FIELDS = {"sample_period": 1.0, "telemetry_interval": 1.0, "request_threads_maximum": 2,
               "request_count": 3, "capacity_utilization": 0.25, "cpu_utilization": 0.1,
               "request_threads_busy_time": [0.25, 0.25], "request_threads_completed": [2, 1]}


def agent_token(console: Any, host: str, user: str, team: str) -> str:
    """A new team with ``user`` (the browser's password) and ``host``; the host's agent token."""
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", SETUP], cwd=ROOT, capture_output=True,
                          env={**console.env, "WF_RAW_AGENT": json.dumps([host, user, team])},
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("WF_TOKEN "))


class RawAgent:
    """hello on connect; heartbeats and batches as the caller makes them."""

    def __init__(self, ws: Any, instance: str) -> None:
        self.ws, self.instance, self.next_id = ws, instance, 1
        self.send({"t": "hello", "protocol": 1, "agent": instance, "instance": instance})
        assert self.receive()["t"] == "welcome"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message, use_bin_type=True))

    def receive(self) -> dict[str, Any]:
        return msgpack.unpackb(self.ws.recv(timeout=30), strict_map_key=False)

    def heartbeat(self, counters: dict[str, int], clock_offset: float = 0.0) -> None:
        self.send({"t": "heartbeat", "instance": self.instance, "time": time.time() + clock_offset,
                   "counters": counters})

    def batch(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        self.send({"t": "batch", "instance": self.instance, "id": self.next_id, "samples": samples})
        self.next_id += 1
        ack = self.receive()
        assert ack["t"] == "ack", ack
        return ack

    def ticks_of(self, *fields: dict[str, Any], clock_offset: float = 0.0) -> dict[str, Any]:
        """One batch: a tick of pid 4242 + i for each of ``fields``, stamped now (+ offset)."""
        return self.batch([{"k": TICK, "p": 4242 + i, "i": 1, "s": self.next_id,
                            "t": time.time() + clock_offset, "g": "app", "n": None, "f": f}
                           for i, f in enumerate(fields)])


@contextlib.contextmanager
def raw_agent(console: Any, token: str, instance: str) -> Iterator[RawAgent]:
    url = console.url.replace("http://", "ws://") + "/ws/agent/"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=20) as ws:
        yield RawAgent(ws, instance)
