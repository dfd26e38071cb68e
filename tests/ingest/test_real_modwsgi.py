"""The agent against real Apache + mod_wsgi 6.1.1 (as root; daemons run as www-data).

Every count asserted here is exact: the agent is bound before Apache starts
(so it sees PROCESS_STARTED and seq 1), the load is a fixed mix whose
responses are all back before we wait two telemetry intervals, and Apache is
stopped with nothing in flight, so every process sends its final tick and
PROCESS_STOPPED. See tests/support/modwsgi.py for the pitfalls it avoids.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.modwsgi import ModWsgiServer, send_mix, skip_unless_available, tally, wait_until, work_dir

from ingest.pipeline.agent import Agent, AgentConfig
from ingest.pipeline.state import Process, ProcessTable
from ingest.pipeline.wire import Datagram

pytestmark = pytest.mark.modwsgi

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.5
SETTLE = 2 * INTERVAL + 0.3  # >= 2 ticks after the last request finished
STARTED, SLOW, STOPPING, STOPPED = 5, 4, 6, 7
SLOW_PATH = "/slow?secs=2.5"
T0 = time.monotonic()


def note(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}] {msg}", flush=True)


@pytest.fixture
def work() -> Iterator[Path]:
    skip_unless_available()
    with work_dir() as path:
        yield path


@contextmanager
def running_agent(sock: Path, listener=None) -> Iterator[Agent]:
    agent = Agent(AgentConfig(socket=str(sock), socket_mode=0o666, socket_group=None, log_interval=0))
    if listener is not None:
        agent.listeners.append(listener)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def seen(table: ProcessTable, kind: int) -> int:
    return sum(1 for p in table.processes() if p.by_kind[kind])


def status_sum(procs: list[Process]) -> list[int]:
    return [sum(p.status[i] for p in procs) for i in range(5)]


def expected_status(mix: dict[str, int], codes: dict[str, int]) -> list[int]:
    out = [0] * 5
    for path, count in mix.items():
        out[codes[path] // 100 - 1] += count
    return out


def run_load(server: ModWsgiServer, mix: dict[str, int], codes: dict[str, int], concurrency: int) -> None:
    t = time.monotonic()
    responses = send_mix(server.port, mix, concurrency=concurrency)
    note(f"load of {len(responses)} requests done in {time.monotonic() - t:.2f} s "
         f"(slowest {max(r.elapsed for r in responses):.2f} s)")
    assert tally(responses) == Counter({(p, codes[p]): n for p, n in mix.items()})


def check_processes(procs: list[Process], count: int, reason: str | None) -> None:
    assert len(procs) == count, [p.summary() for p in procs]
    assert len({p.pid for p in procs}) == count
    for p in procs:
        summary = p.summary()
        assert p.incarnation == 1, summary
        assert p.first_seq == 1 and not p.late_join, summary
        assert p.by_kind[STARTED] == p.by_kind[STOPPING] == p.by_kind[STOPPED] == 1, summary
        assert p.state == "stopped", summary
        assert p.shutdown_reason == reason, summary
        assert p.stopped.get("active_requests_at_exit") == 0, summary
        assert p.lost == 0 and p.malformed == 0, summary


DAEMON_MIX = {SLOW_PATH: 2, "/": 37, "/nf": 11, "/err": 5}
DAEMON_CODES = {SLOW_PATH: 200, "/": 200, "/nf": 404, "/err": 500}


def test_daemon_mode_exact_counts_lifecycle_and_slow_requests(work):
    slow: list[dict[str, Any]] = []

    def on_datagram(d: Datagram, proc: Process) -> None:
        if d.kind == SLOW:
            slow.append({"pid": d.pid, "seq": d.seq, **d.fields})

    sock = work / "telemetry.sock"
    with running_agent(sock, on_datagram) as agent:  # bound before Apache starts
        server = ModWsgiServer(work, telemetry_socket=sock, processes=2, threads=4,
                               interval=INTERVAL, slow_threshold=1.0)
        with server:
            note(f"Apache up on port {server.port} in {server.timings['ready']:.2f} s")
            assert wait_until(lambda: seen(agent.state, STARTED) >= 2, 20), \
                f"{[p.summary() for p in agent.state.processes()]}\n{server.error_log_tail()}"
            note("STARTED from both daemon processes")
            run_load(server, DAEMON_MIX, DAEMON_CODES, concurrency=12)
            time.sleep(SETTLE)  # nothing is in flight: every response is complete
        note(f"Apache stopped, parent exited {server.timings['stop']:.2f} s after apachectl stop")
        assert wait_until(lambda: seen(agent.state, STOPPED) >= 2, 10), \
            [p.summary() for p in agent.state.processes()]
        time.sleep(0.2)  # anything sent after STOPPED would be a bug; give it a chance to show
    counters = agent.counters()
    totals = agent.state.totals
    procs = agent.state.processes()
    note(f"agent counters {counters}")
    for p in procs:
        note(f"process {p.summary()}")

    check_processes(procs, 2, reason="shutdown_signal")
    assert {p.group for p in procs} != {None} and len({p.group for p in procs}) == 1
    assert status_sum(procs) == [0, 39, 0, 11, 5] == expected_status(DAEMON_MIX, DAEMON_CODES)
    assert sum(p.requests for p in procs) == 55
    assert sum(p.stopped["lifetime_request_count"] for p in procs) == 55
    assert totals.lost == 0 and totals.malformed == 0 and totals.late_joins == 0
    assert counters["queue_drops"] == 0 and counters["recv_errors"] == 0
    assert counters["received"] == counters["decoded"] == sum(p.received for p in procs)

    # The two slow requests: active (state 0) first, then completed (state 1, 200), one log id each.
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in slow:
        by_id.setdefault(record["slow_log_id"], []).append(record)
    note(f"slow records: { {k: [r['slow_record_state'] for r in v] for k, v in by_id.items()} }")
    assert len(by_id) == 2, slow
    for log_id, records in by_id.items():
        states = [r["slow_record_state"] for r in records]
        assert states[0] == 0 and states[-1] == 1 and states.count(1) == 1, (log_id, states)
        assert len({r["pid"] for r in records}) == 1, records
        assert len({r["slow_start_stamp"] for r in records}) == 1, records
        active, done = records[0], records[-1]
        assert active["slow_status"] == 0 and active["slow_duration"] >= 1.0, active
        assert done["slow_status"] == 200 and done["slow_duration"] >= 2.5, done
    assert sum(len(p.slow_completed) for p in procs) == 2
    assert all(not p.slow_active and not p.slow_orphaned for p in procs)


EMBEDDED_MIX = {"/": 12, "/nf": 3, "/err": 2}
EMBEDDED_CODES = {"/": 200, "/nf": 404, "/err": 500}


def test_embedded_mode_counts_and_no_process_group(work):
    sock = work / "telemetry.sock"
    with running_agent(sock) as agent:
        server = ModWsgiServer(work, telemetry_socket=sock, processes=2, threads=4,
                               interval=INTERVAL, slow_threshold=1.0, embedded=True)
        with server:
            note(f"Apache (embedded) up on port {server.port} in {server.timings['ready']:.2f} s")
            assert wait_until(lambda: seen(agent.state, STARTED) >= 2, 20), \
                f"{[p.summary() for p in agent.state.processes()]}\n{server.error_log_tail()}"
            run_load(server, EMBEDDED_MIX, EMBEDDED_CODES, concurrency=8)
            time.sleep(SETTLE)
        note(f"Apache stopped in {server.timings['stop']:.2f} s")
        assert wait_until(lambda: seen(agent.state, STOPPED) >= 2, 10), \
            [p.summary() for p in agent.state.processes()]
    procs = agent.state.processes()
    for p in procs:
        note(f"process {p.summary()}")
    # Embedded processes (Apache's children) say nothing about why they stop.
    check_processes(procs, 2, reason=None)
    for p in procs:
        assert p.group is None and "process_group" not in p.identity, p.identity
        assert p.identity.get("mpm_name") == "worker", p.identity
    assert status_sum(procs) == expected_status(EMBEDDED_MIX, EMBEDDED_CODES) == [0, 12, 0, 3, 2]
    assert sum(p.requests for p in procs) == 17
    assert agent.state.totals.lost == 0 and agent.state.totals.malformed == 0


CLI_MIX = {"/": 9, "/nf": 4, "/err": 3, "/redirect": 2}
CLI_CODES = {"/": 200, "/nf": 404, "/err": 500, "/redirect": 302}


def test_cli_serve_subprocess_against_apache(work):
    sock = work / "telemetry.sock"
    stats_file = work / "stats.json"
    log_path = work / "agent.log"
    with open(log_path, "wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "ingest", "serve", "--socket", str(sock), "--socket-mode", "0666",
             "--log-interval", "0", "--stats-file", str(stats_file)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def bound() -> bool:
            if agent.poll() is not None:
                raise AssertionError(f"agent exited {agent.returncode}:\n{log_path.read_text()}")
            try:
                return stat.S_IMODE(os.stat(sock).st_mode) == 0o666
            except FileNotFoundError:
                return False

        assert wait_until(bound, 20), f"agent did not bind {sock}:\n{log_path.read_text()}"
        note("agent subprocess bound its socket")
        server = ModWsgiServer(work, telemetry_socket=sock, processes=2, threads=4,
                               interval=INTERVAL, slow_threshold=1.0)
        with server:
            run_load(server, CLI_MIX, CLI_CODES, concurrency=8)
            time.sleep(SETTLE)
        time.sleep(0.3)  # STOPPED was sent before the parent exited; let the agent take it
        t = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=15)
        note(f"agent exited {code} {time.monotonic() - t:.2f} s after SIGTERM")
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=10)
    output = log_path.read_text()
    assert code == 0, output
    assert not sock.exists()
    stats = json.loads(stats_file.read_text())
    note(f"stats counters {stats['counters']}")
    procs = stats["processes"]
    assert len(procs) == 2, stats
    for p in procs:
        assert p["state"] == "stopped" and p["first_seq"] == 1 and not p["late_join"], p
        assert p["lost"] == 0 and p["malformed"] == 0 and p["group"], p
    totals = {k: sum(p["status"][k] for p in procs) for k in ("1xx", "2xx", "3xx", "4xx", "5xx")}
    assert totals == {"1xx": 0, "2xx": 9, "3xx": 2, "4xx": 4, "5xx": 3}
    assert sum(p["requests"] for p in procs) == 18
    c = stats["counters"]
    assert c["lost"] == c["malformed"] == c["queue_drops"] == c["late_joins"] == 0, c
    assert c["received"] == c["decoded"] > 0, c
