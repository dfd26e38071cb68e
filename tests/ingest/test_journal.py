"""With a spool directory nothing the forwarder accepted dies with it, and no loss is forgotten."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from support.paths import RAW
from test_forwarder import Feeder, delivered, free_port, make, wait_for

from ingest.pipeline import spool as spool_module
from ingest.pipeline.agent import Agent, AgentConfig
from ingest.pipeline.forwarder import Forwarder
from ingest.pipeline.journal import journals
from ingest.pipeline.ledger import Ledger
from tests.support.console_peer import ConsolePeer

ROOT = Path(__file__).resolve().parents[2]

#: A forwarder fed by a process table, as in the agent, killed with SIGKILL by itself: some batches
#: sealed into the spool (the console is down), some full ones waiting, and an open one.
KILLED = """
import itertools, os, signal, sys, time
from ingest.pipeline import capture, wire
from ingest.pipeline.forwarder import Forwarder
from ingest.pipeline.state import ProcessTable

table = ProcessTable()
fw = Forwarder("ws://127.0.0.1:9/ws/agent/", "t", spool_dir=sys.argv[1], batch_interval=0.05,
               max_batch_samples=200, reconnect_min=5, marks=table.marks,
               counters=lambda: {"received": table.totals.received, "decoded": table.totals.decoded})
datagrams = [wire.decode(d) for d in capture.read(sys.argv[2])]
fw.start()
for n, d in enumerate(datagrams[:int(sys.argv[3])]):
    fw(d, table.add(d))
    if n == 500:
        time.sleep(0.5)  # sealed and spooled
fw._loop.call_soon_threadsafe(time.sleep, 3600)  # the loop thread stalls: nothing more is sealed
time.sleep(0.2)
for d in datagrams[int(sys.argv[3]):int(sys.argv[4])]:
    fw(d, table.add(d))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sigkilled_forwarder_loses_nothing_it_accepted(tmp_path: Path) -> None:
    spool, total = tmp_path / "spool", 1150
    result = subprocess.run([sys.executable, "-c", KILLED, str(spool), str(RAW / "A.dgrams.gz"), "700",
                             str(total)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    assert list(spool.glob("*.batch")) and len(journals(spool)) >= 2  # full ones waiting, the open one
    feeder = Feeder()
    feeder.feed(make("ws://127.0.0.1:9/", spool_dir=None), total)  # the samples it was given
    peer = ConsolePeer().start()
    try:
        again = make(peer.url, spool_dir=str(spool))
        assert not journals(spool)  # turned into batches, nothing else to do
        again.start()
        assert wait_for(lambda: delivered(peer, total))
        assert again.stop(timeout=5)
    finally:
        peer.close()
    assert peer.samples() == feeder.expected  # each once, in order
    ledger = Ledger(spool)
    assert ledger.base["decoded"] == ledger.base["received"] == total  # counted by the next run
    assert ledger.marks == {m.pid: m._replace(heard=ledger.marks[m.pid].heard) for m in feeder.table.marks(0)}
    assert any(m.ended for m in ledger.marks.values())  # capture A has restarts


def test_spool_drops_are_counted_in_samples_and_seconds_and_survive_a_restart(tmp_path: Path) -> None:
    url, spool = f"ws://127.0.0.1:{free_port()}/ws/agent/", str(tmp_path / "spool")
    first = make(url, spool_dir=spool, max_batch_samples=100, spool_max_bytes=250_000, batch_interval=60)
    first.start()
    feeder = Feeder()
    feeder.feed(first, 1500)
    assert wait_for(lambda: first.stats()["spooled"] + first.stats()["dropped"] == 15)
    assert not first.stop(timeout=0.3)
    stats = first.stats()
    lost = feeder.expected[:stats["dropped_samples"]]  # the oldest go
    assert stats["dropped"] >= 5 and stats["dropped_samples"] == 100 * stats["dropped"]
    assert stats["dropped_seconds"] == len({int(s["t"]) for s in lost}) > 0
    second = make(url, spool_dir=spool, max_batch_samples=100, spool_max_bytes=250_000, batch_interval=60)
    kept = {k: stats[k] for k in ("dropped", "dropped_samples", "dropped_seconds")}
    assert {k: second.stats()[k] for k in kept} == kept  # continued, not from 0
    second.start()
    feeder.feed(second, 500)
    assert wait_for(lambda: second.stats()["dropped"] >= kept["dropped"] + 5)
    assert not second.stop(timeout=0.3)
    assert second.stats()["dropped_samples"] == 100 * second.stats()["dropped"]
    assert second.stats()["dropped_seconds"] > kept["dropped_seconds"]


def test_seconds_of_a_batch_ignore_stamps_that_are_no_time() -> None:
    samples = [{"t": 10.5}, {"t": 10.9}, {"t": 11.0}, {"t": float("nan")}, {"t": -1}, {"t": 2.0**40}, {}]
    data = b"".join([bytes([0x90 + len(samples)]), *spool_module.encode(samples)])
    assert spool_module.stamp_seconds(data) == {10, 11}
    assert spool_module.stamp_seconds(b"\xc1") == set()


def test_the_status_line_says_what_the_spool_dropped(sockdir: Path, caplog) -> None:
    agent = Agent(AgentConfig(socket=str(sockdir / "a.sock"), log_interval=0))
    agent.more = lambda: {"dropped": 3, "dropped_samples": 1200, "dropped_seconds": 41}
    caplog.set_level(logging.INFO, logger="ingest.agent")
    agent.log_status()
    assert "spool full: dropped 3 batches, 1200 samples, 41 seconds of data" in caplog.text
    assert "resumed after silence 0" in caplog.text


def test_a_ledger_that_cannot_be_read_starts_from_zero(tmp_path: Path, caplog) -> None:
    (tmp_path / "ledger").write_bytes(b"\x93garbage")
    caplog.set_level(logging.WARNING, logger="ingest.forwarder")
    fw = Forwarder(f"ws://127.0.0.1:{free_port()}/ws/agent/", "t", spool_dir=str(tmp_path))
    assert fw.stats()["dropped"] == 0 and not fw.ledger.marks and "unreadable" in caplog.text
    fw.stop(timeout=0)
    assert time.time() - Ledger(tmp_path).path.stat().st_mtime < 60  # and is rewritten at stop
