"""Bursts: 20,000 datagrams at once reach the console complete, once each, with no reconnect storm.

A burst seals batches of 5,000 samples (~3.3 MB of real-capture samples);
the agent must send them as messages below the frame limit of whatever
WebSocket server fronts the console. daphne drops a frame over its
``--websocket-max-frame-size`` (1 MiB unless set) by closing the TCP
connection: 1006 for the agent, no close frame, no reason. The fake console
(support/console_peer.py, ``frame_limit``) does the same; the last test runs
a real agent against real daphne left at its default frame limit.

Counts are exact: every (pid, incarnation, seq) sent is delivered, and once.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import socket
import tempfile
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.console import AgentProcess, ConsoleSite, note, stored_samples, tail
from support.console_peer import ConsolePeer
from support.modwsgi import wait_until
from support.paths import RAW

from ingest.pipeline import capture, wire
from ingest.pipeline.forwarder import Forwarder
from ingest.pipeline.samples import sample_from
from ingest.pipeline.spool import Spool, encode, pack
from ingest.pipeline.state import ProcessTable
from ingest.pipeline.uplink import FRAME_FLOOR, MAX_BATCH

TOKEN = "good-token"
BURST = 20_000
CAPTURE = [wire.decode(data) for data in capture.read(str(RAW / "A.dgrams.gz"))]
PID_STEP = 100_000  # each pass over the capture is another set of processes


def burst(n: int = BURST, stamp_shift: float = 0.0) -> list[wire.Datagram]:
    """``n`` distinct datagrams: the real capture again and again, each pass under other pids."""
    out = []
    for i, d in enumerate(itertools.islice(itertools.cycle(CAPTURE), n)):
        out.append(dataclasses.replace(d, pid=d.pid + PID_STEP * (i // len(CAPTURE)),
                                       stamp=d.stamp + stamp_shift))
    return out


def expect(d: wire.Datagram, proc: Any) -> dict[str, Any]:
    """The sample the contract asks for (as tests/ingest/test_forwarder.py builds it)."""
    gc = d.kind in (8, 9)
    return {"k": d.kind, "p": d.pid, "i": proc.incarnation, "s": d.seq, "t": d.stamp, "g": proc.group,
            "n": d.fields.get("interpreter_name", "") if gc else None,
            "f": {k: v.tolist() if isinstance(v, array) else v for k, v in d.fields.items()}}


def feed(fw: Forwarder, datagrams: list[wire.Datagram]) -> list[dict[str, Any]]:
    """Play the decode thread: every datagram handed over at once, as an agent does in a burst."""
    table, expected = ProcessTable(), []
    for d in datagrams:
        proc = table.add(d)
        fw(d, proc)
        expected.append(expect(d, proc))
    return expected


def wait_for(predicate: Any, timeout: float = 120.0, step: float = 0.02) -> bool:
    return wait_until(predicate, timeout, step)


def make(url: str, **options: Any) -> Forwarder:
    settings: dict[str, Any] = dict(hostname="web-03", batch_interval=0.05, heartbeat_interval=0.5,
                                    reconnect_min=0.05, reconnect_max=0.5, open_timeout=10.0)
    settings.update(options)
    return Forwarder(url, TOKEN, **settings)


def keys(samples: list[dict[str, Any]]) -> set[tuple[int, int, int]]:
    return {(s["p"], s["i"], s["s"]) for s in samples}


def assert_once_in_order(peer: ConsolePeer, expected: list[dict[str, Any]]) -> None:
    written = peer.samples()
    assert len(written) == len(expected) == BURST
    assert len(keys(written)) == BURST and peer.duplicates == 0
    assert written == expected


def deliver_burst(fw: Forwarder, peer: ConsolePeer) -> dict[str, Any]:
    """Start ``fw``, feed it a burst, let ``peer`` write all of it, stop; the forwarder's stats.

    Every sample must have arrived exactly once and in order.
    """
    fw.start()
    try:
        assert wait_for(lambda: fw.stats()["connected"], 30)
        expected = feed(fw, burst())
        assert wait_for(lambda: len(peer.written) >= BURST)
    finally:
        assert fw.stop(timeout=30)
    assert_once_in_order(peer, expected)
    return fw.stats()


@pytest.fixture
def daphne_like() -> Iterator[ConsolePeer]:
    """A console behind daphne's default frame limit: 1 MiB frames, 4 MiB messages advertised."""
    p = ConsolePeer(frame_limit=1 << 20).start()
    yield p
    p.close()


def test_a_burst_is_sent_below_the_frame_limit_without_a_drop(daphne_like: ConsolePeer) -> None:
    fw = make(daphne_like.url)
    stats = deliver_burst(fw, daphne_like)
    assert daphne_like.frame_drops == 0 and daphne_like.closes == []
    assert stats["connections"] == 1 and stats["reconnects"] == 0 and len(daphne_like.hellos) == 1
    assert max(daphne_like.sizes) <= MAX_BATCH
    batches = [n for _, _, n in daphne_like.batches]
    assert sum(batches) == BURST and len(batches) >= BURST * 670 // MAX_BATCH  # ~780 samples each
    assert stats["oversized"] == stats["dropped"] == stats["rejected"] == stats["frame_drops"] == 0


def test_batches_over_the_frame_limit_are_split_after_the_drop(daphne_like: ConsolePeer) -> None:
    # An agent allowed 4 MiB batches (the old behaviour): 5,000 samples, ~3.3 MB each.
    fw = make(daphne_like.url, max_batch_bytes=4 << 20)
    stats = deliver_burst(fw, daphne_like)
    # A drop with the window full (resend one at a time), then one per halving: 3.3 MB -> 1.6 -> 0.8.
    assert stats["frame_drops"] >= 1 and daphne_like.frame_drops <= 4
    assert stats["connections"] == daphne_like.frame_drops + 1 and stats["max_batch_bytes"] <= 1 << 20
    assert daphne_like.closes == [] and stats["oversized"] == stats["rejected"] == 0


def test_a_frame_limit_below_the_agents_bound_is_learned() -> None:
    peer = ConsolePeer(frame_limit=150_000).start()  # and 4 MiB advertised: the welcome cannot tell
    fw = make(peer.url)
    try:
        stats = deliver_burst(fw, peer)
        # 512 KiB -> 256 KiB -> 128 KiB: a drop to start resending one at a time, one per halving.
        assert stats["frame_drops"] >= 1 and peer.frame_drops <= 4
        assert stats["connections"] == peer.frame_drops + 1
        assert FRAME_FLOOR <= stats["max_batch_bytes"] <= 150_000
    finally:
        peer.close()


def test_a_plain_drop_during_a_burst_splits_nothing(daphne_like: ConsolePeer) -> None:
    daphne_like.crash_after_writes = 3  # a worker killed mid-burst: 1006, nothing to do with size
    fw = make(daphne_like.url)
    stats = deliver_burst(fw, daphne_like)
    assert stats["connections"] == 2 and stats["frame_drops"] == 0 and stats["max_batch_bytes"] == MAX_BATCH


def test_big_batches_spooled_by_an_older_agent_are_split_before_sending(tmp_path: Path,
                                                                        daphne_like: ConsolePeer) -> None:
    spool = Spool(tmp_path, max_bytes=64 << 20, max_age=3600)
    table, expected, encoded = ProcessTable(), [], []
    for d in burst():
        proc = table.add(d)
        encoded += encode([sample_from(d, proc)])
        expected.append(expect(d, proc))
    parts, too_big = pack(encoded, 4 << 20)
    assert not too_big and max(len(p) for p, _ in parts) > 3 << 20
    for data, count in parts:
        spool.add(data, count)
    spool.close()
    fw = make(daphne_like.url, spool_dir=str(tmp_path))
    fw.start()
    try:
        assert wait_for(lambda: len(daphne_like.written) >= BURST)
    finally:
        assert fw.stop(timeout=30)
    assert_once_in_order(daphne_like, expected)
    assert daphne_like.frame_drops == 0 and fw.stats()["connections"] == 1
    assert max(daphne_like.sizes) <= MAX_BATCH


# -- stop() in a burst --------------------------------------------------------------------


def test_stop_right_after_a_burst_delivers_it(daphne_like: ConsolePeer) -> None:
    fw = make(daphne_like.url)
    fw.start()
    assert wait_for(lambda: fw.stats()["connected"], 30)
    expected = feed(fw, burst())
    assert fw.stop(timeout=60)  # the open batch is sealed by stop() itself
    assert_once_in_order(daphne_like, expected)
    assert fw.stats()["lost_at_stop"] == 0 and fw.stats()["spooled"] == 0


def test_stop_keeps_an_undelivered_burst_on_disk(tmp_path: Path, daphne_like: ConsolePeer) -> None:
    daphne_like.stall = True  # the store hangs: nothing is acked
    fw = make(daphne_like.url, spool_dir=str(tmp_path))
    fw.start()
    expected = feed(fw, burst())
    assert wait_for(lambda: daphne_like.batches, 30)
    assert not fw.stop(timeout=0.5)
    stats = fw.stats()
    assert stats["lost_at_stop"] == 0 and stats["dropped"] == 0
    on_disk = sorted(tmp_path.glob("*.batch"))
    assert len(on_disk) == stats["spooled"] and all(p.stat().st_size <= MAX_BATCH for p in on_disk)
    daphne_like.stall = False
    again = make(daphne_like.url, spool_dir=str(tmp_path))
    again.start()
    try:
        assert wait_for(lambda: len(daphne_like.written) >= BURST)
    finally:
        assert again.stop(timeout=30)
    assert_once_in_order(daphne_like, expected)
    assert not list(tmp_path.glob("*.batch"))


def test_stop_without_a_spool_directory_counts_what_is_lost(daphne_like: ConsolePeer) -> None:
    fw = make(daphne_like.url)
    fw.start()
    assert wait_for(lambda: fw.stats()["connected"], 30)
    feed(fw, burst(2_000))
    assert wait_for(lambda: len(daphne_like.written) >= 2_000 and fw.stats()["spooled"] == 0)
    daphne_like.stall = True
    feed(fw, burst(BURST)[2_000:])
    assert not fw.stop(timeout=0.5)
    stats = fw.stats()
    assert stats["lost_at_stop"] == stats["spooled"] >= 1
    assert stats["lost_samples_at_stop"] == BURST - len(daphne_like.written)


# -- a real agent, real daphne at its default frame limit -------------------------------


@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wf-burst-", dir="/tmp"))
    yield path
    if not os.environ.get("WF_E2E_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


def test_a_burst_reaches_real_daphne_at_its_default_frame_limit(work: Path) -> None:
    """The issue's set-up: ``daphne --websocket-max-message-size 4194304`` and nothing else."""
    site = ConsoleSite(work, max_frame=None)
    agent: AgentProcess | None = None
    try:
        host = site.setup({"burst": {"hosts": ["web-03"]}})["hosts"]["web-03"]
        site.start()
        agent = AgentProcess(work, "web-03", console_url=site.url,
                             token_file=site.write_token(host["token"], "web-03")).start()
        assert wait_for(lambda: agent.connections() >= 1, 60), tail(agent.log)
        shift = time.time() - 1 - max(d.stamp for d in CAPTURE)  # stamped the last minutes
        datagrams = [wire.encode_datagram(d) for d in burst(stamp_shift=shift)]
        since = min(d.stamp for d in CAPTURE) + shift - 1
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            for data in datagrams:  # blocking: a full socket queue waits, it does not drop
                sender.sendto(data, str(agent.sock))
        note(f"sent {len(datagrams)} datagrams ({sum(map(len, datagrams))} bytes)")
        counted: list[int] = []

        def complete() -> bool:
            counted.append(len(stored_samples(site, host["id"], since)))
            return counted[-1] >= BURST

        assert wait_for(complete, 180, step=1.0), (
            f"{counted[-1]} of {BURST} stored\n{tail(agent.log)}\n{tail(site.log)}")
        stored = stored_samples(site, host["id"], since)
        assert len(stored) == BURST and len(keys(stored)) == BURST
        stats = agent.stop()["counters"]
        assert stats["decoded"] == BURST and stats["queue_drops"] == 0
        log = agent.log_text()
        assert agent.connections() == 1 and "console connection closed" not in log, tail(agent.log)
        assert "undelivered" not in log
    finally:
        if agent is not None:
            agent.kill()
        site.kill()
        site.cleanup_redis()
