"""The agent survives its own faults, says so when it cannot, and stays bounded.

Real agents on real UNIX datagram sockets; faults are injected from the
outside (a listener or a process-table handler that raises), never by
replacing the isolation under test.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from support.datagrams import send_all
from support.modwsgi import wait_until
from support.paths import RAW

from ingest.model.fields import Kind
from ingest.pipeline import capture, wire
from ingest.pipeline.agent import Agent, AgentConfig
from ingest.pipeline.receiver import Receiver
from ingest.pipeline.state import ProcessTable

ROOT = Path(__file__).resolve().parents[2]
STAMP = 1795378194.0


def wait_for(predicate, timeout=30.0):
    return wait_until(predicate, timeout)


def dgram(kind: Kind, pid: int, seq: int, **fields) -> bytes:
    return wire.encode(int(kind), pid, seq, STAMP + seq, fields)


def run_dump(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "dump", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_listener_that_raises_costs_one_datagram_and_is_quarantined(sockdir, caplog):
    path, quarantine = str(sockdir / "a.sock"), str(sockdir / "q.dgrams")
    good = list(capture.read(str(RAW / "D.dgrams.gz")))
    bad = [dgram(Kind.GC_EVENT, 666, seq, interpreter_name="evil") for seq in range(1, 51)]
    seen: list[int] = []

    def fragile(d, proc):
        if d.pid == 666:
            raise ValueError("listener cannot take pid 666")

    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0, quarantine=quarantine))
    agent.listeners.append(fragile)
    agent.listeners.append(lambda d, proc: seen.append(d.pid))  # after the fragile one: still called
    caplog.set_level(logging.ERROR, logger="ingest.agent")
    agent.start()
    try:
        sent = send_all(path, good[:70] + bad + good[70:])
        assert wait_for(lambda: agent.state.totals.received == sent)
        assert wait_for(lambda: agent.counters()["internal_errors"] == len(bad))
    finally:
        agent.stop()
    counters = agent.counters()
    assert counters["decoded"] == sent and counters["malformed"] == 0
    assert len(seen) == sent  # every datagram reached the next listener, the bad ones too
    assert seen[-1] == wire.decode(good[-1]).pid
    errors = [r for r in caplog.records if r.name == "ingest.agent" and r.levelno >= logging.ERROR]
    assert errors[0].exc_info is not None and "listener" in errors[0].getMessage()
    assert "pid 666" in errors[0].getMessage() and quarantine in errors[0].getMessage()
    assert len(errors) <= 2  # the first with its traceback; the rest as one count at stop
    assert "49 like this" in errors[-1].getMessage()
    assert list(capture.read(quarantine)) == bad
    result = run_dump("--input", quarantine, "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["pid"] for line in result.stdout.splitlines()] == [666] * len(bad)


def test_a_handler_that_raises_leaves_the_agent_decoding(sockdir, monkeypatch):
    path, quarantine = str(sockdir / "a.sock"), str(sockdir / "q.dgrams")
    original = ProcessTable._handlers[int(Kind.SLOW_REQUEST)]

    def broken(table, proc, d):
        if d.fields.get("slow_method") == "BREAK":
            raise KeyError("slow handler bug")
        original(table, proc, d)

    monkeypatch.setitem(ProcessTable._handlers, int(Kind.SLOW_REQUEST), broken)
    poison = dgram(Kind.SLOW_REQUEST, 77, 2, slow_method="BREAK", slow_record_state=0)
    after = [dgram(Kind.REQUEST_METRICS, 77, seq, request_count=1) for seq in range(3, 13)]
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0, quarantine=quarantine))
    agent.start()
    try:
        sent = send_all(path, [dgram(Kind.PROCESS_STARTED, 77, 1, process_group="g"), poison, *after])
        assert wait_for(lambda: agent.state.totals.received == sent)
    finally:
        agent.stop()
    assert agent.counters()["internal_errors"] == 1
    assert agent.faults.by_kind == {"process table: KeyError": 1}
    (proc,) = agent.state.processes()
    assert proc.requests == len(after) and proc.lost == 0
    assert list(capture.read(quarantine)) == [poison]


def test_quarantine_is_bounded_and_kept_across_restarts(sockdir):
    path, quarantine = str(sockdir / "a.sock"), str(sockdir / "q.dgrams")

    def fragile(d, proc):
        raise RuntimeError("every datagram breaks this listener")

    def run(datagrams) -> None:
        agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0,
                                  quarantine=quarantine, quarantine_bytes=2_000))
        agent.listeners.append(fragile)
        agent.start()
        try:
            sent = send_all(path, datagrams)
            assert wait_for(lambda: agent.counters()["internal_errors"] == sent)
        finally:
            agent.stop()

    first = [dgram(Kind.GC_EVENT, 5, seq, interpreter_name="x" * 200) for seq in range(1, 4)]
    run(first)
    assert list(capture.read(quarantine)) == first
    second = [dgram(Kind.GC_EVENT, 6, seq, interpreter_name="y" * 200) for seq in range(1, 31)]
    run(second)
    kept = list(capture.read(quarantine))
    assert os.path.getsize(quarantine) <= 2_000
    assert kept == second[-len(kept):] and len(kept) >= 7  # the latest, whole records
    assert os.stat(quarantine).st_mode & 0o077 == 0


def test_hostile_values_in_handlers_cost_nothing(sockdir):
    """Wrong types and values the decoder may let through: no internal error, no unbounded expiry."""
    path = str(sockdir / "a.sock")
    hostile = [
        dgram(Kind.PROCESS_STARTED, 9, 1, process_group="g"),
        dgram(Kind.REQUEST_METRICS, 9, 2, telemetry_interval=1e308, request_count=2**64 - 1),
        dgram(Kind.REQUEST_METRICS, 9, 3, telemetry_interval=float("nan"), status_2xx_total=3),
        dgram(Kind.GC_SNAPSHOT, 9, 4, interpreter_name=b"\xff\xfe", gc_dropped_events=5),
        dgram(Kind.SLOW_REQUEST, 9, 5, slow_log_id="", slow_record_state=0),
    ]
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0))
    agent.start()
    try:
        sent = send_all(path, hostile)
        assert wait_for(lambda: agent.state.totals.received == sent)
    finally:
        agent.stop()
    c = agent.counters()
    assert c["internal_errors"] == 0
    assert c["decoded"] + c["malformed"] == sent
    for proc in agent.state.processes():
        assert 0.01 <= proc.interval <= 3600.0


SERVE_WITH_A_LISTENER_THAT_EXITS = """
import runpy, sys
from ingest.pipeline.agent import Agent

start = Agent.start

def start_with_a_listener_that_exits(self):
    def listener(datagram, proc):
        if datagram.pid == 4242:
            sys.exit("a listener called sys.exit")  # SystemExit: not an Exception, so not caught per datagram
    self.listeners.append(listener)
    start(self)

Agent.start = start_with_a_listener_that_exits
sys.argv = ["ingest", *sys.argv[1:]]
runpy.run_module("ingest", run_name="__main__")
"""


def test_serve_exits_non_zero_when_its_decode_thread_ends(sockdir):
    path = str(sockdir / "a.sock")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_A_LISTENER_THAT_EXITS, "serve", "--socket", path,
         "--socket-mode", "0600", "--log-interval", "0"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: os.path.exists(path))
        send_all(path, [dgram(Kind.PROCESS_STARTED, 1, 1), dgram(Kind.PROCESS_STARTED, 4242, 1)])
        _, log = proc.communicate(timeout=60)  # no signal: it must end by itself
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == 70, log
    lines = [line for line in log.splitlines() if "CRITICAL" in line]
    assert len(lines) == 1
    assert "decode thread ended unexpectedly (SystemExit: a listener called sys.exit)" in lines[0]
    assert "exiting with status 70" in lines[0]
    assert not os.path.exists(path)


def test_agent_reports_a_receive_thread_that_ended(sockdir, monkeypatch):
    path = str(sockdir / "a.sock")
    burst = Receiver._burst

    def failing_burst(self, first):
        if first.startswith(b"die"):
            raise MemoryError("injected")
        return burst(self, first)

    monkeypatch.setattr(Receiver, "_burst", failing_burst)
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0))
    agent.start()
    try:
        send_all(path, [dgram(Kind.PROCESS_STARTED, 1, 1)])
        assert wait_for(lambda: agent.state.totals.received == 1)
        assert agent.failure() is None
        send_all(path, [b"die"])
        assert wait_for(lambda: agent.failure() is not None)
        thread, exc = agent.failure()
        assert thread == "receive thread" and isinstance(exc, MemoryError)
    finally:
        agent.stop()
    assert agent.failure() is None  # stopped on purpose


def test_process_cap_evicts_the_longest_silent_and_counts(sockdir, caplog):
    path = str(sockdir / "a.sock")
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0, max_processes=50))
    caplog.set_level(logging.WARNING, logger="ingest.state")
    agent.start()
    try:
        datagrams = []
        for pid in range(1000, 1200):
            datagrams += [dgram(Kind.PROCESS_STARTED, pid, 1, process_group="g"),
                          dgram(Kind.REQUEST_METRICS, pid, 2, telemetry_interval=3600.0)]
        datagrams.append(dgram(Kind.REQUEST_METRICS, 1000, 1))  # pid 1000 again: in, the longest silent out
        sent = send_all(path, datagrams)
        assert wait_for(lambda: agent.state.totals.received == sent)
        counters = agent.counters()
    finally:
        agent.stop()
    assert counters["processes"] == 50
    assert counters["evicted"] == 200 + 1 - 50
    assert sorted(agent.state.current) == [1000, *range(1151, 1200)]
    full = [r for r in caplog.records if "process table full" in r.getMessage()]
    assert 1 <= len(full) <= 2  # rate-limited: the first, then the count


def test_queue_is_bounded_in_bytes_and_drops_are_counted(sockdir):
    path = str(sockdir / "a.sock")
    release = threading.Event()
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0, max_queue_bytes=256 * 1024))
    agent.listeners.append(lambda d, proc: release.wait(60))  # holds the decode thread
    agent.start()
    try:
        send_all(path, [dgram(Kind.PROCESS_STARTED, 1, 1)])
        assert wait_for(lambda: agent.receiver.handled == 1)
        big = [b"WSGX" + bytes([n]) * 60_000 for n in range(40)]  # malformed, but 60 kB each
        send_all(path, big)
        receiver = agent.receiver
        assert wait_for(lambda: receiver.stats.received == 41)
        queued = receiver.queued_bytes_in - receiver.handled_bytes
        assert queued <= 256 * 1024
        assert receiver.stats.queue_drops == 36  # 4 of 60 kB fit in 256 KiB, whatever the bursts
        release.set()
        assert wait_for(lambda: agent.state.totals.received + receiver.stats.queue_drops == 41)
    finally:
        release.set()
        agent.stop()
    c = agent.counters()
    assert c["decoded"] == 1
    assert (c["malformed"], c["queue_drops"]) == (4, 36)
    assert c["received"] == 41


def test_what_the_receive_queue_drops_is_not_counted_as_sequence_loss_too(sockdir):
    path = str(sockdir / "a.sock")
    release = threading.Event()
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0, max_queue=8))
    agent.listeners.append(lambda d, proc: release.wait(60))  # holds the decode thread
    agent.start()
    try:
        send_all(path, [dgram(Kind.PROCESS_STARTED, 7, 1)])
        assert wait_for(lambda: agent.receiver.handled == 1)
        ticks = [dgram(Kind.REQUEST_METRICS, 7, seq, request_count=1) for seq in range(2, 40)]
        sent = 1 + send_all(path, ticks)
        assert wait_for(lambda: agent.receiver.stats.received == sent)
        release.set()
        done = lambda: agent.state.totals.received + agent.receiver.stats.queue_drops == sent  # noqa: E731
        assert wait_for(done)
        sent += send_all(path, [dgram(Kind.REQUEST_METRICS, 7, 45)])  # 40-44 never sent: lost
        assert wait_for(done)
    finally:
        release.set()
        agent.stop()
    c = agent.counters()
    assert c["queue_drops"] >= 20 and c["decoded"] + c["queue_drops"] == sent
    assert c["lost"] == 5  # the queue's drops are its own kind of loss, counted once
    (proc,) = agent.state.processes()
    assert proc.lost == 5 and proc.incarnation == 1
