"""The forwarder against a real WebSocket peer speaking docs/agent-protocol.md."""

from __future__ import annotations

import itertools
import logging
import os
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from support.paths import RAW

from ingest.pipeline import capture, wire
from ingest.pipeline.forwarder import Forwarder
from ingest.pipeline.spool import Spool, SpoolError
from ingest.pipeline.state import ProcessTable
from stack.procs import free_port
from tests.support.console_peer import ConsolePeer

TOKEN = "good-token"
DATAGRAMS = [wire.decode(data) for data in capture.read(str(RAW / "A.dgrams.gz"))]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def make(url: str, token: str = TOKEN, **options: Any) -> Forwarder:
    settings: dict[str, Any] = dict(hostname="web-03", batch_interval=0.05, heartbeat_interval=0.5,
                                    reconnect_min=0.02, reconnect_max=0.3, open_timeout=2.0)
    settings.update(options)
    return Forwarder(url, token, **settings)


def expect(d: wire.Datagram, proc) -> dict[str, Any]:
    """The sample the contract asks for, built independently of the forwarder."""
    gc = d.kind in (8, 9)
    return {"k": d.kind, "p": d.pid, "i": proc.incarnation, "s": d.seq, "t": d.stamp, "g": proc.group,
            "n": d.fields.get("interpreter_name", "") if gc else None,
            "f": {k: v.tolist() if isinstance(v, array) else v for k, v in d.fields.items()}}


class Feeder:
    """Plays the agent's decode thread: the real capture through a ProcessTable into the forwarder."""

    def __init__(self) -> None:
        self.table = ProcessTable()
        self.source: Iterator[wire.Datagram] = iter(DATAGRAMS)
        self.expected: list[dict[str, Any]] = []

    def feed(self, fw: Forwarder, count: int | None = None) -> list[dict[str, Any]]:
        out = []
        for d in itertools.islice(self.source, count):
            proc = self.table.add(d)
            fw(d, proc)
            out.append(expect(d, proc))
        self.expected += out
        return out


@pytest.fixture
def peer() -> Iterator[ConsolePeer]:
    p = ConsolePeer().start()
    yield p
    p.close()


def delivered(peer: ConsolePeer, n: int) -> bool:
    return len(peer.written) >= n


def key(sample: dict[str, Any]) -> tuple[int, int, int]:
    return (sample["p"], sample["i"], sample["s"])


def test_every_sample_of_a_real_capture_arrives_once_in_order(peer: ConsolePeer) -> None:
    fw = make(peer.url)
    fw.start()
    feeder = Feeder()
    try:
        feeder.feed(fw)
        assert wait_for(lambda: delivered(peer, len(DATAGRAMS)))
    finally:
        assert fw.stop(timeout=5)
    assert peer.samples() == feeder.expected
    joined = [s for s in peer.samples() if s["k"] in (4, 8, 9)]
    assert joined and all(s["g"] for s in joined)  # slow and GC samples carry no group on the wire
    assert {s["n"] for s in joined if s["k"] != 4} >= {""}
    assert all(s["n"] is None for s in peer.samples() if s["k"] not in (8, 9))
    stats = fw.stats()
    assert stats["samples"] == len(DATAGRAMS)
    assert stats["acked"] == stats["sent"] and stats["spooled"] == stats["dropped"] == 0
    assert peer.hellos[0]["hostname"] == "web-03" and peer.hellos[0]["protocol"] == 1


def test_field_types_travel_as_the_contract_says(peer: ConsolePeer) -> None:
    fields = {"hostname": b"web-\xff", "process_group": "caf\u00e9", "request_count": 2**64 - 1,
              "request_throughput": 0.5, "request_time_buckets": array("i", [1, -2])}
    d = wire.Datagram(1, 2, 0, 4242, 7, 12.5, fields, 0)
    fw = make(peer.url)
    fw.start()
    try:
        fw(d, ProcessTable().add(d))
        assert wait_for(lambda: delivered(peer, 1))
    finally:
        assert fw.stop(timeout=5)
    [sample] = peer.samples()
    assert sample == {"k": 2, "p": 4242, "i": 1, "s": 7, "t": 12.5, "g": "caf\u00e9", "n": None,
                      "f": {"hostname": b"web-\xff", "process_group": "caf\u00e9", "request_count": 2**64 - 1,
                            "request_throughput": 0.5, "request_time_buckets": [1, -2]}}


def test_console_killed_mid_stream_loses_and_duplicates_nothing(peer: ConsolePeer) -> None:
    peer.crash_after_writes = 3  # the 3rd batch is written, its ack never sent
    fw = make(peer.url)
    fw.start()
    feeder = Feeder()
    try:
        for n in range(30):
            feeder.feed(fw, 100)
            time.sleep(0.01)
            if n == 10:
                assert wait_for(lambda: peer.crash_after_writes is None)  # the worker crash happened
            if n == 20:
                peer.kill()  # then the whole console goes, connections and all
            if n == 25:
                peer.start()  # same port, same store (Redis outlives the console)
        assert wait_for(lambda: delivered(peer, len(DATAGRAMS)))
    finally:
        assert fw.stop(timeout=5)
    written = peer.samples()
    assert len({key(s) for s in written}) == len(written) == len(DATAGRAMS)
    assert written == feeder.expected
    assert len(peer.hellos) >= 3 and fw.stats()["connections"] >= 3


def test_console_down_at_start_spools_then_delivers() -> None:
    port = free_port()
    fw = make(f"ws://127.0.0.1:{port}/ws/agent/")
    fw.start()
    feeder = Feeder()
    peer = ConsolePeer(port=port)
    try:
        for _ in range(5):
            feeder.feed(fw, 200)
            time.sleep(0.06)
        assert wait_for(lambda: fw.stats()["spooled"] >= 2)
        assert not fw.stats()["connected"] and fw.stats()["last_error"]
        peer.start()
        assert wait_for(lambda: delivered(peer, 1000))
        assert fw.stop(timeout=5)
        assert peer.samples() == feeder.expected
    finally:
        peer.close()


def test_full_spool_drops_the_oldest_batches_and_counts_them() -> None:
    port = free_port()
    # Batches of at most 100: sealed when full, and after each whole second (on a busy
    # machine feeding 1,500 samples can cross one, which seals a shorter batch).
    fw = make(f"ws://127.0.0.1:{port}/ws/agent/", max_batch_samples=100, spool_max_bytes=250_000,
              batch_interval=60)
    fw.start()
    peer: ConsolePeer | None = None
    try:
        feeder = Feeder()
        feeder.feed(fw, 1500)

        def all_sealed() -> bool:  # every sample is in the spool or counted as dropped
            kept = sum(batch.count for batch in list(fw.spool.batches.values()))
            return kept + fw.stats()["dropped_samples"] == 1500

        assert wait_for(all_sealed)
        stats = fw.stats()
        assert stats["dropped"] >= 5 and stats["spool_bytes"] <= 250_000
        assert stats["dropped"] <= stats["dropped_samples"] <= 100 * stats["dropped"]
        peer = ConsolePeer(port=port).start()
        assert wait_for(lambda: fw.stats()["spooled"] == 0)
        assert fw.stop(timeout=5)
        written = peer.samples()
        assert written == feeder.expected[-len(written):]  # the newest survive, in order
        assert len(written) == 1500 - stats["dropped_samples"]
    finally:
        fw.stop(timeout=1)  # a failed check must not leave its threads running into later tests
        if peer is not None:
            peer.close()


def test_spool_directory_survives_a_forwarder_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws/agent/"
    spool = tmp_path / "spool"
    feeder = Feeder()
    first = make(url, spool_dir=str(spool))
    first.start()
    feeder.feed(first, 500)
    assert not first.stop(timeout=0.3)  # console down: kept on disk
    assert list(spool.glob("*.batch"))
    peer = ConsolePeer(port=port).start()
    try:
        second = make(url, spool_dir=str(spool))
        assert second.stats()["instance"] == first.stats()["instance"]
        second.start()
        assert wait_for(lambda: delivered(peer, 500))
        feeder.feed(second, 100)
        assert wait_for(lambda: delivered(peer, 600))
        assert second.stop(timeout=5)
        # All acked, no batch file left: the next run must still continue the ids.
        third = make(url, spool_dir=str(spool))
        third.start()
        feeder.feed(third, 50)
        assert wait_for(lambda: delivered(peer, 650))
        assert third.stop(timeout=5)
        assert peer.samples() == feeder.expected and peer.duplicates == 0
        ids = [b for _, b, _ in peer.batches]
        assert ids == sorted(set(ids)) and len({i for i, _, _ in peer.batches}) == 1
    finally:
        peer.close()


def test_stop_gives_up_at_its_deadline_and_keeps_the_rest_on_disk(tmp_path: Path, peer) -> None:
    peer.stall = True
    feeder = Feeder()
    fw = make(peer.url, spool_dir=str(tmp_path))
    fw.start()
    feeder.feed(fw, 200)
    assert wait_for(lambda: peer.batches)
    began = time.monotonic()
    assert not fw.stop(timeout=0.3)
    assert time.monotonic() - began < 3 and list(tmp_path.glob("*.batch"))
    peer.stall = False
    again = make(peer.url, spool_dir=str(tmp_path))
    again.start()
    assert wait_for(lambda: delivered(peer, 200))
    assert again.stop(timeout=5) and peer.samples() == feeder.expected


def test_a_console_that_never_welcomes_is_left_and_retried(peer: ConsolePeer) -> None:
    peer.mute = True
    fw = make(peer.url, open_timeout=0.2)
    fw.start()
    feeder = Feeder()
    try:
        feeder.feed(fw, 100)
        assert wait_for(lambda: len(peer.hellos) >= 2)
        assert fw.stats()["last_error"] == "no welcome from the console" and not fw.stats()["connected"]
        peer.mute = False
        assert wait_for(lambda: delivered(peer, 100))
    finally:
        assert fw.stop(timeout=5)
    assert peer.samples() == feeder.expected


def test_wrong_token_is_logged_clearly_and_never_crashes(peer: ConsolePeer, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="ingest.forwarder")
    fw = make(peer.url, token="not-the-token", reconnect_max=0.1)
    fw.start()
    try:
        Feeder().feed(fw, 50)
        assert wait_for(lambda: peer.refused >= 3)
        stats = fw.stats()
        assert not stats["connected"] and stats["last_error"] == "HTTP 403" and stats["connections"] == 0
        assert stats["spooled"] >= 1
    finally:
        assert not fw.stop(timeout=0.2)
    assert "console refused the agent token" in caplog.text
    assert peer.written == []


def test_batch_refused_as_too_large_is_split_and_a_lone_oversized_sample_dropped() -> None:
    peer = ConsolePeer(max_message=40_000, advertised_max=4 << 20).start()  # it lies in welcome
    fw = make(peer.url, batch_interval=0.2)
    try:
        fw.start()
        feeder = Feeder()
        feeder.feed(fw, 60)
        table = ProcessTable()
        huge = wire.Datagram(1, 2, 0, 424242, 1, 1.0, {"process_group": "x" * 50_000}, 0)
        fw(huge, table.add(huge))
        feeder.feed(fw, 60)
        assert wait_for(lambda: delivered(peer, 120) and fw.stats()["spooled"] == 0)
        assert fw.stop(timeout=5)
        assert peer.samples() == feeder.expected
        assert 4413 in peer.closes and fw.stats()["oversized"] == 1
    finally:
        peer.close()


def test_the_advertised_limit_is_honoured_without_a_refusal() -> None:
    peer = ConsolePeer(max_message=40_000).start()
    fw = make(peer.url)
    try:
        fw.start()
        assert wait_for(lambda: fw.stats()["connected"])
        feeder = Feeder()
        feeder.feed(fw, 300)
        assert wait_for(lambda: delivered(peer, 300))
        assert fw.stop(timeout=5)
        assert peer.samples() == feeder.expected and peer.closes == []
    finally:
        peer.close()


def test_store_unavailable_keeps_spooling_then_delivers(peer: ConsolePeer) -> None:
    peer.unavailable_until = time.monotonic() + 0.6
    fw = make(peer.url)
    fw.start()
    feeder = Feeder()
    try:
        feeder.feed(fw, 300)
        assert wait_for(lambda: delivered(peer, 300))
    finally:
        assert fw.stop(timeout=5)
    assert 4503 in peer.closes and peer.samples() == feeder.expected


def test_a_batch_refused_twice_as_a_protocol_error_is_dropped_and_counted(peer: ConsolePeer) -> None:
    feeder = Feeder()
    fw = make(peer.url)
    fw.start()
    try:
        feeder.feed(fw, 100)
        assert wait_for(lambda: delivered(peer, 100))
        bad = DATAGRAMS[150]
        peer.poison = lambda s: (s["p"], s["s"]) == (bad.pid, bad.seq)
        feeder.feed(fw, 100)
        assert wait_for(lambda: fw.stats()["rejected"] == 1)
        feeder.feed(fw, 100)
        assert wait_for(lambda: delivered(peer, 200) and peer.samples()[-1] == feeder.expected[-1])
    finally:
        assert fw.stop(timeout=5)
    written = peer.samples()
    assert peer.closes.count(4400) == 2
    assert written[:100] == feeder.expected[:100] and written[-100:] == feeder.expected[-100:]
    assert [s for s in feeder.expected if s in written] == written  # in order, each once
    assert all((s["p"], s["s"]) != (bad.pid, bad.seq) for s in written)


def test_heartbeats_carry_the_agent_counters(peer: ConsolePeer) -> None:
    counters = {"received": 42, "decoded": 41, "malformed": 1, "lost": 0, "queue_drops": 0, "processes": 3}
    fw = make(peer.url, heartbeat_interval=0.1, counters=lambda: counters)
    fw.start()
    try:
        assert wait_for(lambda: len(peer.heartbeats) >= 3)
    finally:
        assert fw.stop(timeout=5)
    beat = peer.heartbeats[-1]
    assert beat["instance"] == fw.stats()["instance"] and abs(beat["time"] - time.time()) < 5
    assert beat["counters"].items() >= counters.items()
    assert {"spooled", "spool_bytes", "dropped"} <= beat["counters"].keys()


def test_console_mark_above_our_last_id_renumbers_instead_of_dropping(tmp_path: Path, peer) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, max_age=60)
    instance = spool.instance
    spool.close()
    # The id mark is lost (an old state file, say); the instance is not.
    (tmp_path / "state").write_bytes(msgpack.packb({"instance": instance, "last_id": 0}))
    peer.marks[("web-03", instance)] = 50
    fw = make(peer.url, spool_dir=str(tmp_path))
    fw.start()
    feeder = Feeder()
    try:
        feeder.feed(fw, 100)
        assert wait_for(lambda: delivered(peer, 100))
    finally:
        assert fw.stop(timeout=5)
    assert peer.samples() == feeder.expected and min(b for _, b, _ in peer.batches) > 50


# -- the spool on its own ------------------------------------------------------------


def test_spool_age_bound() -> None:
    now = [1000.0]
    spool = Spool(None, max_bytes=1 << 20, max_age=10, clock=lambda: now[0])
    for _ in range(3):
        spool.add(b"\x91\x01", 1)
    now[0] += 11
    spool.add(b"\x91\x02", 1)
    assert [b.id for b in spool] == [4] and spool.dropped == 3


def test_spool_split_renumbers_files_and_reloads(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, max_age=60)
    for n in range(3):
        spool.add(bytes([0x91, n]), 1)
    with pytest.raises(SpoolError):
        Spool(tmp_path, max_bytes=1, max_age=1)
    spool.replace(spool.batches[2], [(b"\x91\x0a", 1), (b"\x91\x0b", 1)])
    assert [(b.id, b.samples) for b in spool] == [(1, b"\x91\x00"), (2, b"\x91\x0a"), (3, b"\x91\x0b"),
                                                  (4, b"\x91\x02")]
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, max_age=60)
    assert [(b.id, b.samples) for b in again] == [(b.id, b.samples) for b in spool]
    assert again.last_id == 4 and again.instance == spool.instance
    assert sorted(os.listdir(tmp_path)) == [f"{i:016d}.batch" for i in range(1, 5)] + ["lock", "state"]
    again.close()


def test_samples_the_console_drops_are_counted_by_the_agent(peer: ConsolePeer) -> None:
    peer.bad = lambda sample: sample["k"] == 4  # the console refuses every slow record, say
    fw = make(peer.url)
    fw.start()
    try:
        sent = Feeder().feed(fw, 2000)
        slow = sum(1 for s in sent if s["k"] == 4)
        assert slow > 0
        assert wait_for(lambda: len(peer.written) == len(sent) - slow, timeout=60)
        assert wait_for(lambda: fw.stats()["refused_samples"] == slow, timeout=30)
        assert wait_for(lambda: any(hb["counters"].get("refused_samples") == slow for hb in peer.heartbeats),
                        timeout=30)
    finally:
        fw.stop(timeout=5)


def test_after_slow_down_the_agent_waits_before_reconnecting_and_loses_nothing(peer: ConsolePeer) -> None:
    from ingest.pipeline.uplink import SLOW_DOWN

    peer.slow_down_after = 2
    fw = make(peer.url)
    fw.start()
    try:
        feeder = Feeder()
        for _ in range(4):
            feeder.feed(fw, 200)
            time.sleep(0.1)
        assert wait_for(lambda: len(peer.written) == len(feeder.expected), timeout=60)
        assert 4429 in peer.closes and fw.stats()["slowed"] == 1
        first, second = peer.connected_at[:2]
        assert second - first >= SLOW_DOWN  # not the 0.02-0.3 s of an ordinary reconnect
        assert len({(w["sample"]["p"], w["sample"]["s"]) for w in peer.written}) == len(feeder.expected)
    finally:
        fw.stop(timeout=5)
