"""The hostile-sender cases against the real console: daphne, Redis (store and channel
layer) and PostgreSQL, a real agent fed by the simulator for the host that behaves, and
raw WebSocket clients for the one that does not (an agent token, a user token).

What a user would notice is asserted: the behaving host's page keeps receiving its
seconds, a page that opens during the abuse gets its first data, every message is valid
JSON under the stated bound, and the abusers are refused with the documented codes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from support.console import (
    AgentProcess,
    ConsoleSite,
    LiveClient,
    Simulator,
    create_pg_database,
    drop_pg_database,
    live_clients,
    note,
    tail,
    unique,
)
from support.modwsgi import wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from console.live.jsontext import MAX_TEXT
from console.live.limits import SLOW_DOWN
from console.live.tabs.base import MAX_PROCESSES
from ingest.model.kinds import STARTED

FAKE = 20_000


@pytest.fixture
def site() -> Iterator[ConsoleSite]:
    work = Path(tempfile.mkdtemp(prefix="wf-live-", dir="/tmp"))
    name = unique("db").lower()
    made = ConsoleSite(work, database_url=create_pg_database(name))
    try:
        yield made
    finally:
        made.kill()
        made.cleanup_redis()
        drop_pg_database(name)
        shutil.rmtree(work, ignore_errors=True)


class RawAgent:
    """An agent token in the hands of an attacker: the protocol, without the agent's manners."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 1
        self.send({"t": "hello", "protocol": 1, "agent": "raw", "instance": "raw-1"})
        assert self.receive()["t"] == "welcome"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message, use_bin_type=True))

    def receive(self) -> dict[str, Any]:
        return msgpack.unpackb(self.ws.recv(timeout=30), strict_map_key=False)

    def batch(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        self.send({"t": "batch", "instance": "raw-1", "id": self.next_id, "samples": samples})
        self.next_id += 1
        return self.receive()


def started(pid: int, t: float) -> dict[str, Any]:
    return {"k": STARTED, "p": pid, "i": 1, "s": 1, "t": t, "g": "app", "n": None,
            "f": {"mod_wsgi_version": "6.1.1", "python_version": "3.11.2", "apache_version": "Apache/2.4.71",
                  "mpm_name": "event", "hostname": "evil.example.com", "process_parent_pid": 1}}


def complete(host_id: int):
    return lambda m: m.get("type") == "host.frame" and m.get("host") == host_id and not m.get("partial")


def test_hostile_agent_and_page_cost_the_others_nothing(site: ConsoleSite) -> None:
    tag = unique()
    good, bad, user = f"{tag}-good", f"{tag}-bad", f"{tag}-ann"
    fleet = site.setup({f"{tag}-team": {"hosts": [good, bad], "users": [user]}})
    site.start()
    ids = {name: fleet["hosts"][name]["id"] for name in (good, bad)}
    token = fleet["users"][user]["token"]
    agent = AgentProcess(site.work, "good", console_url=site.url,
                         token_file=site.write_token(fleet["hosts"][good]["token"], "good")).start()
    simulator = Simulator(agent.sock, processes=2, groups=1, seed=3).start()
    watcher, bad_page, flooder, late = (LiveClient(site.live_url, token, name)
                                        for name in ("watcher", "bad-page", "flooder", "late"))
    try:
        headers = {"Authorization": f"Bearer {fleet['hosts'][bad]['token']}"}
        with live_clients(watcher, bad_page, flooder, late), \
                connect(site.url + "ws/agent/", additional_headers=headers, open_timeout=20) as raw_ws:
            watcher.request({"type": "subscribe", "scope": "host", "host": ids[good], "window": 60},
                            complete(ids[good]), timeout=30)
            bad_page.request({"type": "subscribe", "scope": "host", "host": ids[bad], "tab": "processes"},
                             lambda m: m.get("type") == "tab.snapshot", timeout=30)
            note("the good host's page has its seconds; the bad host's page is open")

            raw = RawAgent(raw_ws)
            raw.send({"t": "heartbeat", "instance": "raw-1", "time": time.time(),
                      "counters": {"received": 2**64 - 1, "lost": 2**64 - 1, "decoded": 1}})
            now = time.time()
            for first in range(0, FAKE, 5000):
                assert raw.batch([started(10_000 + p, now) for p in range(first, first + 5000)])["t"] == "ack"
            note(f"{FAKE} STARTED from fake pids written; the heartbeat closed nothing")

            mark = len(flooder.snapshot())
            for _ in range(10_000):
                try:
                    flooder.send({"type": "subscribe", "scope": "host", "host": ids[good]})
                except (ConnectionClosed, OSError):  # the console closed the flood first: what we test
                    break
            note(f"10,000 subscribes sent; flooder closed: {flooder.closed}")
            first = late.request({"type": "subscribe", "scope": "host", "host": ids[good], "window": 60},
                                 lambda m: m.get("type") == "host.snapshot", timeout=30)
            assert first["host"] == ids[good]
            note(f"the late page has its snapshot; flooder closed: {flooder.closed}")
            assert wait_until(lambda: flooder.closed is not None, 60), "the flooder was never closed"
            assert flooder.closed == SLOW_DOWN
            refused = [m for m in flooder.snapshot()[mark:] if m.get("type") == "error"]
            assert refused and "too many messages" in refused[0]["reason"]
            note(f"flooder closed {flooder.closed} after {len(refused)} refusals; the late page was served")

            listed = bad_page.wait_for(lambda m: m.get("type") == "host.frame" and "processes" in m
                                       and m.get("processes_total", 0) > FAKE // 2, 30)
            assert len(listed["processes"]) <= MAX_PROCESSES
            mark = len(watcher.snapshot())
            seconds = [m["t"] for m in watcher.snapshot() if complete(ids[good])(m)]
            watcher.wait_for(lambda m: complete(ids[good])(m) and m["t"] > max(seconds) + 2, 30, after=mark)

            for client in (watcher, bad_page, late):
                assert client.closed is None, (client.name, client.closed, client.close_reason)
                for text in client.texts:
                    assert len(text) <= MAX_TEXT
                    json.loads(text, parse_constant=_refuse)
            assert not [m for m in bad_page.snapshot() if m.get("type") == "error"]
    finally:
        simulator.stop()
        agent.kill()
    log = site.log.read_text(errors="replace")
    assert "Traceback" not in log, tail(site.log, 80)
    counters = site.manage("shell", "-c", (
        "from console.fleet.models import Host;"
        f"h = Host.objects.get(pk={ids[bad]}); print('COUNTERS', h.datagrams_received, h.datagrams_lost)"))
    assert f"COUNTERS {2**63 - 1} {2**63 - 1}" in counters.stdout


def _refuse(token: str) -> None:
    raise AssertionError(f"{token} in a message: JSON.parse would refuse it")
