"""Every loss counted once, across agent restarts and silences.

Real agents (``python -m ingest serve --console ... --spool-dir ...``) on
real UNIX sockets, stopped with SIGTERM or killed with SIGKILL, forwarding to
the fake console of support/console_peer.py, which keeps every sample it
wrote and every heartbeat it got.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.console import AgentProcess, note, tail
from support.console_peer import ConsolePeer
from support.datagrams import send_all
from support.modwsgi import wait_until

from ingest.model.fields import Kind
from ingest.pipeline import wire

STAMP = 1795378194.0
TICK, STARTED = int(Kind.REQUEST_METRICS), int(Kind.PROCESS_STARTED)


def dgram(kind: int, pid: int, seq: int, **fields: Any) -> bytes:
    return wire.encode(kind, pid, seq, STAMP + seq, {"process_group": "g", **fields})


def ticks(pid: int, seqs: range, interval: float = 1.0) -> list[bytes]:
    return [dgram(TICK, pid, seq, request_count=1, telemetry_interval=interval) for seq in seqs]


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wf-rs-", dir="/tmp"))  # short: AF_UNIX paths
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def peer() -> Iterator[ConsolePeer]:
    p = ConsolePeer().start()
    yield p
    p.close()


def agent(work: Path, peer: ConsolePeer) -> AgentProcess:
    token = work / "token"
    token.write_text("good-token\n")
    a = AgentProcess(work, "web-03", console_url=peer.url, token_file=token)
    a.cmd += ["--batch-interval", "0.25"]
    return a


def last_beat(peer: ConsolePeer) -> dict[str, int]:
    return peer.heartbeats[-1]["counters"] if peer.heartbeats else {}


def beat_shows(peer: ConsolePeer, **expected: int) -> bool:
    beat = last_beat(peer)
    return all(beat.get(name) == value for name, value in expected.items())


def written(peer: ConsolePeer, pid: int | None = None) -> list[tuple[int, int, int]]:
    return [(s["p"], s["i"], s["s"]) for s in peer.samples() if pid is None or s["p"] == pid]


def assert_never_smaller(peer: ConsolePeer, *names: str) -> None:
    for name in names:
        values = [hb["counters"].get(name, 0) for hb in peer.heartbeats]
        assert values == sorted(values), f"{name} went down: {values}"


def test_restart_with_a_spool_keeps_counting_every_loss(work: Path, peer: ConsolePeer) -> None:
    peer.bad = lambda s: s["s"] == 3  # the console refuses one sample a run: refused_samples
    first = agent(work, peer).start()
    lossy = [dgram(STARTED, 10, 1), *ticks(10, range(2, 6)), *ticks(10, range(9, 11))]  # 6-8 lost
    sent = send_all(str(first.sock), [*lossy, b"WSGX" + bytes(40)])
    assert wait_until(lambda: beat_shows(peer, received=sent, lost=3, malformed=1, refused_samples=1), 30), \
        tail(first.log)
    stats = first.stop()["counters"]
    assert (stats["lost"], stats["malformed"], stats["received"]) == (3, 1, sent)
    beats = len(peer.heartbeats)
    second = agent(work, peer).start()  # the same spool directory
    lossy = [dgram(STARTED, 11, 1), *ticks(11, range(2, 4)), *ticks(11, range(6, 8))]  # 4-5 lost
    again = send_all(str(second.sock), lossy)
    assert wait_until(lambda: beat_shows(peer, received=sent + again, lost=5, refused_samples=2), 30), \
        tail(second.log)
    stats = second.stop()["counters"]
    assert (stats["lost"], stats["malformed"], stats["decoded"]) == (5, 1, sent + again - 1)
    assert stats["refused_samples"] == 2 and stats["incarnations"] == 2
    assert len(peer.heartbeats) > beats
    assert_never_smaller(peer, "received", "decoded", "malformed", "lost", "incarnations", "refused_samples")


def test_a_pid_continuing_across_an_agent_restart_counts_its_gap(work: Path, peer: ConsolePeer) -> None:
    first = agent(work, peer).start()
    send_all(str(first.sock), [dgram(STARTED, 20, 1), *ticks(20, range(2, 11))])
    assert wait_until(lambda: len(written(peer)) == 10, 30), tail(first.log)
    first.stop()
    # seq 11-30 are sent while no agent is bound: mod_wsgi's sends fail, its counter goes on
    second = agent(work, peer).start()
    send_all(str(second.sock), ticks(20, range(31, 36)))
    assert wait_until(lambda: len(written(peer)) == 15 and beat_shows(peer, lost=20), 30), tail(second.log)
    stats = second.stop()["counters"]
    assert {i for _, i, _ in written(peer, 20)} == {1}  # the same life, not a second process
    assert (stats["lost"], stats["resumed"], stats["incarnations"], stats["late_joins"]) == (20, 1, 1, 0)


def test_a_process_silent_then_back_resumes_with_its_gap_as_loss(work: Path, peer: ConsolePeer) -> None:
    a = agent(work, peer).start()
    interval = 0.1  # gone after 3 intervals + 1 s of silence
    send_all(str(a.sock), [dgram(STARTED, 30, 1), *ticks(30, range(2, 6), interval)])
    # gone: decoded and then expired (on a busy machine "received" can come long before "decoded")
    assert wait_until(lambda: beat_shows(peer, received=5, decoded=5, processes=0), 30), tail(a.log)
    send_all(str(a.sock), ticks(30, range(9, 13), 60.0))  # back, and no longer in a hurry to go
    assert wait_until(lambda: beat_shows(peer, received=9, decoded=9, processes=1, lost=3), 30), tail(a.log)
    stats = a.stop()
    assert {i for _, i, _ in written(peer, 30)} == {1} and len(written(peer, 30)) == 9
    (proc,) = stats["processes"]  # no phantom
    assert (proc["incarnation"], proc["state"], proc["lost"]) == (1, "running", 3)
    assert (stats["counters"]["resumed"], stats["counters"]["incarnations"]) == (1, 1)


class Sender(threading.Thread):
    """16 mod_wsgi processes ticking: every seq used once, whether an agent is bound or not."""

    def __init__(self, path: Path, pids: range = range(100, 116)):
        super().__init__(daemon=True)
        self.path, self.pids = str(path), pids
        self.seq = 0
        self.failed = 0  # sends refused: no agent bound
        self.stop = threading.Event()

    def run(self) -> None:
        out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        out.settimeout(5)
        while not self.stop.wait(0.01):
            self.seq += 1
            for pid in self.pids:
                kind = STARTED if self.seq == 1 else TICK
                try:
                    out.sendto(dgram(kind, pid, self.seq, request_count=1), self.path)
                except OSError:
                    self.failed += 1
        out.close()


def test_sigkill_mid_stream_then_restart_loses_nothing_accepted_and_counts_the_rest(
        work: Path, peer: ConsolePeer) -> None:
    first = agent(work, peer).start()
    sender = Sender(first.sock)
    sender.start()
    try:
        assert wait_until(lambda: len(peer.written) >= 3000, 60), tail(first.log)
        first.kill()  # SIGKILL: no drain, no last save; the socket stays, refusing sends
        assert wait_until(lambda: sender.failed >= 16 * 20, 30)  # 20 rounds sent to nobody
        os.unlink(first.sock)
        second = agent(work, peer).start()
        mark = sender.seq
        assert wait_until(lambda: sender.seq >= mark + 50, 60)
    finally:
        sender.stop.set()
        sender.join(10)
    stats = second.stop()["counters"]
    samples = written(peer)
    assert not [k for k, n in Counter(samples).items() if n > 1] and peer.duplicates >= 0
    assert {i for _, i, _ in samples} == {1}  # every process kept its life across the kill
    sent = sender.seq * len(sender.pids)
    # Every seq the processes used was delivered once or counted lost once: what the kernel and the
    # receive queue held at the kill, and what was sent while nothing was bound.
    assert len(samples) + stats["lost"] == sent, (len(samples), stats["lost"], sent)
    assert stats["lost"] >= sender.failed and stats["processes"] == len(sender.pids)
    assert stats["decoded"] == len(samples) and stats["late_joins"] == 0
    assert_never_smaller(peer, "received", "decoded", "lost")
    log = second.log_text()
    assert "Traceback" not in log, tail(second.log)
    note(next((line for line in log.splitlines() if ".journal:" in line), "no open batch at the kill"))
