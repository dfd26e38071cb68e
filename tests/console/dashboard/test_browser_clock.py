"""An agent whose clock is 120 s ahead, as a user sees it in a real browser: the host page's
top bar and the fleet row say it in words with the correction made, and the data is not
"from the future" (before, the page said "data 0.0 s old" of samples stamped 120 s ahead).

The agent is a raw WebSocket client with the token of a host of its own team and user, so
the other browser tests' fleets do not change.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from browser_support import PYTHON, ROOT, row
from websockets.sync.client import connect

from ingest.frames import TICK

pytestmark = pytest.mark.browser

HOST, USER, SKEW = "skewed-1", "dora", 120.0
SETUP = f"""
import os
from django.contrib.auth.models import User
from console.fleet.models import AgentToken, Host, Team
team = Team.objects.create(name="clocks")
team.members.add(User.objects.create_user({USER!r}, password=os.environ["WF_BROWSER_PASSWORD"]))
print("WF_TOKEN " + AgentToken.issue(host=Host.objects.create(name={HOST!r}, team=team))[1])
"""


@pytest.fixture(scope="module")
def token(console) -> str:
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=console.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("WF_TOKEN "))


class SkewedAgent:
    """The protocol as an agent on a host whose clock is SKEW seconds ahead speaks it."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.next_id = ws, 1
        self.send({"t": "hello", "protocol": 1, "agent": "skewed", "instance": "skewed-1"})
        assert self.receive()["t"] == "welcome"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message, use_bin_type=True))

    def receive(self) -> dict[str, Any]:
        return msgpack.unpackb(self.ws.recv(timeout=30), strict_map_key=False)

    def beat(self) -> None:
        self.send({"t": "heartbeat", "instance": "skewed-1", "time": time.time() + SKEW,
                   "counters": {"received": 10, "decoded": 10, "malformed": 0, "lost": 0}})

    def tick(self) -> None:
        f = {"sample_period": 1.0, "telemetry_interval": 1.0, "request_threads_maximum": 2,
             "request_count": 3, "capacity_utilization": 0.25, "request_threads_busy_time": [0.25, 0.25],
             "request_threads_completed": [2, 1]}
        sample = {"k": TICK, "p": 4242, "i": 1, "s": self.next_id, "t": time.time() + SKEW, "g": "app",
                  "n": None, "f": f}
        self.send({"t": "batch", "instance": "skewed-1", "id": self.next_id, "samples": [sample]})
        self.next_id += 1
        assert self.receive()["t"] == "ack"


@pytest.fixture
def skewed(console, token) -> Iterator[SkewedAgent]:
    url = console.url.replace("http://", "ws://") + "/ws/agent/"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=20) as ws:
        agent = SkewedAgent(ws)
        agent.beat()
        agent.tick()
        yield agent


def test_an_agent_clock_ahead_is_said_on_the_host_and_fleet_pages(tab, skewed):
    tab.login(USER)
    page = tab.page
    skew = row(page, HOST).locator(".skew")
    skew.wait_for(state="visible", timeout=20_000)
    assert skew.text_content() == "agent clock 120 s ahead of the console · corrected"
    assert "placed by the console's clock" in skew.get_attribute("title")

    tab.goto(f"/hosts/{HOST}/")
    top = page.locator("#clock-skew")
    top.wait_for(state="visible", timeout=20_000)
    text = top.text_content()
    assert text == "agent clock 120 s ahead of the console · times corrected", text
    said = "its samples are placed by the console's clock (stamps moved by -120.0 s)"
    assert said in top.get_attribute("title")
    assert top.get_attribute("data-kind") == "corrected"
    for _ in range(3):
        skewed.tick()
        time.sleep(0.3)
    age = page.locator("#data-age")
    page.wait_for_function("el => el.textContent.startsWith('data ')", arg=age.element_handle(),
                           timeout=20_000)
    assert "ahead" not in age.text_content(), "the samples were placed on the console's clock"
