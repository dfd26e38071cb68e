import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.datagrams import send_all
from support.paths import BAD, RAW

from ingest.pipeline import capture
from ingest.pipeline.agent import Agent, AgentConfig

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_agent_takes_every_datagram_of_the_real_captures(sockdir):
    path = str(sockdir / "a.sock")
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0))
    agent.start()
    try:
        sent = sum(send_all(path, capture.read(str(RAW / f"{s}.dgrams.gz"))) for s in "ABCDE")
        assert wait_for(lambda: agent.state.totals.received == sent)
    finally:
        agent.stop()
    counters = agent.counters()
    assert sent == 6750
    assert counters["decoded"] == 6750
    assert counters["malformed"] == counters["lost"] == counters["queue_drops"] == 0
    assert not os.path.exists(path)


def test_agent_counts_malformed_datagrams_and_keeps_going(sockdir):
    path = str(sockdir / "a.sock")
    bad = [p.read_bytes() for p in sorted(BAD.glob("*.bin"))]
    expect = [json.loads(line) for line in (BAD / "expect.jsonl").read_text().splitlines()]
    rejected = sum(1 for e in expect if e["expect"] != "accept")
    agent = Agent(AgentConfig(socket=path, socket_mode=0o600, log_interval=0))
    agent.start()
    try:
        send_all(path, bad)
        assert wait_for(lambda: agent.state.totals.received == len(bad))
    finally:
        agent.stop()
    assert agent.state.totals.malformed == rejected
    assert agent.state.totals.decoded == len(bad) - rejected


def test_agent_capture_file_holds_exactly_what_was_received(sockdir):
    path, cap = str(sockdir / "a.sock"), str(sockdir / "cap.dgrams.gz")
    original = list(capture.read(str(RAW / "B.dgrams.gz")))
    agent = Agent(AgentConfig(socket=path, log_interval=0, capture=cap))
    agent.start()
    try:
        send_all(path, original)
        assert wait_for(lambda: agent.state.totals.received == len(original))
    finally:
        agent.stop()
    assert list(capture.read(cap)) == original


def test_serve_drains_unlinks_and_exits_0_on_sigterm(sockdir):
    path, stats = str(sockdir / "a.sock"), str(sockdir / "stats.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "serve", "--socket", path, "--socket-mode", "0600",
         "--log-interval", "0", "--stats-file", stats],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: os.path.exists(path))
        sent = send_all(path, capture.read(str(RAW / "D.dgrams.gz")))
        proc.send_signal(signal.SIGTERM)
        _, log = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0
    assert not os.path.exists(path)
    counters = json.loads(Path(stats).read_text())["counters"]
    assert counters["received"] == counters["decoded"] == sent
    assert "listening on" in log and "received 150" in log


def test_serve_refuses_a_socket_another_agent_holds(sockdir):
    path = str(sockdir / "a.sock")
    first = Agent(AgentConfig(socket=path, log_interval=0))
    first.start()
    try:
        result = subprocess.run([sys.executable, "-m", "ingest", "serve", "--socket", path],
                                cwd=ROOT, capture_output=True, text=True, timeout=20)
    finally:
        first.stop()
    assert result.returncode == 2
    assert "another receiver is bound" in result.stderr
    assert "Traceback" not in result.stderr


def test_agent_reports_the_kernel_queue_its_socket_got(sockdir):
    """The heartbeat's kernel_qlen lets the pages name a short kernel queue as the cause of
    sequence loss; it is the sysctl's value when the socket was bound, and no loss counter
    (a gauge: a restarted agent does not add it to the last run's)."""
    with open("/proc/sys/net/unix/max_dgram_qlen") as fh:
        qlen = int(fh.read())
    agent = Agent(AgentConfig(socket=str(sockdir / "q.sock"), socket_mode=0o600, log_interval=0))
    assert agent.counters()["kernel_qlen"] == 0  # not bound yet: unknown
    agent.start()
    try:
        assert agent.counters()["kernel_qlen"] == qlen
    finally:
        agent.stop()
    from ingest.pipeline.ledger import GAUGES
    assert "kernel_qlen" in GAUGES
