"""The simulated fleet says only what mod_wsgi 6.1.1 says, in its order, with its invariants.

Everything is checked on decoded datagrams (ingest.pipeline.wire.decode), against the rules of
docs/wire-protocol.md, and once against the reference ingester's own decoder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import struct
import subprocess
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from support.required import missing

from ingest.commands import simulate
from ingest.model.fields import BY_NAME, HISTOGRAM_BUCKETS, MAX_SLOTS, PHASES
from ingest.pipeline.wire import Datagram, decode

REFERENCE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-reference" / "bin" / "python"
START = 1_700_000_000.0

# Wire orders as the real captures (tests/data/wire-vectors) send them.
TICK_HEAD = [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 50, 51, 52]
TICK_TAIL = [100, 101, 102, 103, 120, 121, 122, 123, 124, 110, 111, 112, 113, 114]
IDLE_ORDER = [*TICK_HEAD, 60, 63, 64, 65, 66, 67, 90, 93, 94, 95, 96, 97, *TICK_TAIL]
BUSY_ORDER = [*TICK_HEAD, 60, 63, 64, 65, 66, 67, 61, 62, 70, 80, 73, 83, 74, 84, 75, 85, 76, 86, 77, 87,
              71, 81, 72, 82, 90, 93, 91, 92, 94, 95, 96, 97, *TICK_TAIL]
SLOW_ORDER = [200, 201, 202, 203, 205, 230, 231, 232, 233, 250, 251, 220, 221, 222, 223, 224, 225, 234, 235,
              260, 261, 240, 204, 210, 211, 212, 213, 214, 215, 216, 217]
OTHER_ORDERS = {5: [1, 2, 3, 4, 5, 6, 7, 13], 6: [5, 6, 130, 133], 7: [5, 6, 130, 131, 132, 134, 135],
                8: [*range(300, 318), 8], 9: [320, 321, 322, 323, 324, 8]}


def ids(d: Datagram) -> list[int]:
    return [BY_NAME[name].id for name in d.fields]


def section12_bucket(seconds: float) -> int:
    """Bucket by the lower edges 2^k (1 + s/4) ms (docs/wire-protocol.md), not by histogram.bucket_index."""
    ms = seconds * 1000
    lowers = [0.0] + [2 ** (i // 4) * (1 + (i % 4) / 4) for i in range(1, 64)] + [65536.0]
    return max(i for i, lower in enumerate(lowers) if lower <= ms)


@pytest.fixture(scope="module")
def fleet_run() -> list[list[Datagram]]:
    """150 ticks of 2 groups x 3 processes with restarts, slow requests and two interpreters."""
    fleet = simulate.Fleet(2, 3, 4, seed=7, restart_probability=0.04, slow_probability=0.3,
                           interpreters=2, max_requests=400)
    return [[decode(data) for data in fleet.tick(START + i)] for i in range(150)]


@pytest.fixture(scope="module")
def datagrams(fleet_run: list[list[Datagram]]) -> list[Datagram]:
    return [d for tick in fleet_run for d in tick]


def by_pid(datagrams: list[Datagram]) -> dict[int, list[Datagram]]:
    out: dict[int, list[Datagram]] = defaultdict(list)
    for d in datagrams:
        out[d.pid].append(d)
    return out


def test_only_known_fields_kinds_and_sizes(datagrams):
    assert {d.kind for d in datagrams} == {2, 4, 5, 6, 7, 8, 9}
    for d in datagrams:
        assert all(name in BY_NAME for name in d.fields)
        assert d.size <= 8192 and d.version == 1 and d.flags == 0


def test_wire_order_and_presence_per_kind(datagrams):
    for d in datagrams:
        got = ids(d)
        if d.kind == 2:
            assert got == (BUSY_ORDER if d.fields["request_count"] else IDLE_ORDER)
        elif d.kind == 4:
            assert got == [i for i in SLOW_ORDER if i in got] and set(SLOW_ORDER) - set(got) <= {214, 217}
        else:
            want = OTHER_ORDERS[d.kind]
            assert got == [i for i in want if i in got] and set(want) - set(got) <= {8}


def test_seq_is_one_counter_per_process_from_started(datagrams):
    for pid, ds in by_pid(datagrams).items():
        assert [d.seq for d in ds] == list(range(1, len(ds) + 1)), pid
        assert ds[0].kind == 5 and all(d.kind != 5 for d in ds[1:])
        stamps = [ds[0].stamp] + [d.stamp for d in ds if d.kind == 2]  # a tick one interval after STARTED,
        assert all(b - a == pytest.approx(1.0, abs=0.003) for a, b in itertools.pairwise(stamps))  # and so on


def test_tick_invariants(datagrams):
    ticks = [d for d in datagrams if d.kind == 2]
    assert sum(1 for d in ticks if d.fields["request_count"]) > 100
    assert sum(1 for d in ticks if not d.fields["request_count"]) > 10
    for d in ticks:
        f = d.fields
        n = f["request_count"]
        assert sum(f[f"status_{c}xx_total"] for c in range(1, 6)) == n
        assert f["request_throughput"] == n / f["sample_period"]
        assert 0.0 <= f["capacity_utilization"] <= 1.0
        assert f["cpu_utilization"] == f["cpu_user_utilization"] + f["cpu_system_utilization"]
        assert 10 << 20 < f["memory_rss"] < 8 << 30 and f["memory_max_rss"] >= f["memory_rss"] - (64 << 10)
        assert f["process_group"] in {"app0", "app1"} and f["telemetry_interval"] == 1.0
        slots = min(f["request_threads_maximum"], MAX_SLOTS)
        for name in ("completed", "busy_time", "cpu_time", "current_elapsed", "max_duration"):
            assert len(f[f"request_threads_{name}"]) == slots
        assert sum(f["request_threads_completed"]) == n
        assert all(0 <= b <= f["sample_period"] for b in f["request_threads_busy_time"])
        for phase in PHASES:
            hist = f.get(f"{phase}_time_buckets")
            if phase in ("queue", "daemon") and not n:
                assert hist is None and f"{phase}_time" not in f
                continue
            assert len(hist) == HISTOGRAM_BUCKETS and sum(hist) == n
            if not n:
                assert f[f"{phase}_time"] == 0.0 and f"{phase}_time_min" not in f
                continue
            lo, mean, hi = f[f"{phase}_time_min"], f[f"{phase}_time"], f[f"{phase}_time_max"]
            assert lo <= mean <= hi
            used = [i for i, c in enumerate(hist) if c]
            assert used[0] == section12_bucket(lo) and used[-1] == section12_bucket(hi)
        if n:
            parts = sum(f[f"{p}_time"] for p in ("server", "queue", "daemon", "application"))
            assert f["request_time"] == pytest.approx(parts, abs=5e-5)


def test_slot_arrays_are_capped_at_128():
    fleet = simulate.Fleet(1, 1, 150, seed=3)
    ticks = [decode(x) for x in fleet.datagrams(START, 4) if decode(x).kind == 2]
    for d in ticks:
        assert d.fields["request_threads_maximum"] == 150
        assert len(d.fields["request_threads_completed"]) == 128


def test_tick_datagram_order(fleet_run):
    for tick in fleet_run[1:]:
        for ds in by_pid(tick).values():
            kinds = [d.kind for d in ds if d.kind not in (5, 6, 7)]
            if not kinds:  # a replacement that has only sent its STARTED
                continue
            assert kinds[0] == 2 and kinds.count(2) == 1
            slow = [d.fields["slow_record_state"] for d in ds if d.kind == 4]
            assert slow == sorted(slow, reverse=True) and slow.count(0) <= simulate.MAX_ACTIVE_SLOW
            gc = kinds[1 + len(slow):]
            assert kinds[1:1 + len(slow)] == [4] * len(slow) and gc.count(8) == 2 and gc[0] == 8
            current = None
            for d in (d for d in ds if d.kind in (8, 9)):
                name = d.fields.get("interpreter_name", "")
                if d.kind == 8:
                    current = name
                else:
                    assert name == current and d.fields["gc_event_start_stamp"] < d.stamp


def test_gc_snapshots(datagrams):
    last: dict[tuple[int, str], list[int]] = {}
    for d in (d for d in datagrams if d.kind == 8):
        f = d.fields
        assert (f["gc_threshold0"], f["gc_threshold1"], f["gc_threshold2"]) == (700, 10, 10)
        assert f.get("interpreter_name", "") in ("", "subapp") and f["gc_is_enabled"] == 1
        counters = [f[f"gc_collections{g}"] for g in range(3)]
        key = (d.pid, f.get("interpreter_name", ""))
        assert all(a >= b for a, b in zip(counters, last.get(key, [0, 0, 0]), strict=True))
        last[key] = counters
    events = [d.fields for d in datagrams if d.kind == 9]
    assert events and {e["gc_event_generation"] for e in events} <= {0, 1, 2}
    assert all(e["gc_event_duration"] > 0 for e in events)


def test_gc_storm_is_drained_64_per_tick_and_counts_drops():
    fleet = simulate.Fleet(1, 1, 4, seed=0, slow_probability=0.0)
    storms = 0
    for tick in (fleet.tick(START + i) for i in range(1500)):
        per_tick = [decode(x) for x in tick]
        assert sum(1 for d in per_tick if d.kind == 9) <= simulate.GC_DRAIN
        storms += any(d.fields.get("gc_dropped_events") for d in per_tick)
    assert storms


def test_restart_lifecycle(datagrams):
    pids = by_pid(datagrams)
    stops = [d for d in datagrams if d.kind == 6]
    assert len(stops) >= 5
    reasons = {d.fields["shutdown_reason"] for d in stops}
    assert "maximum_requests" in reasons and len(reasons) >= 3
    for stopping in stops:
        ds = pids[stopping.pid]
        rest = ds[ds.index(stopping) + 1:]
        assert [d.kind for d in rest if d.kind not in (4, 8, 9)] == [2, 7]
        stopped = rest[-1]
        assert stopped.fields["lifetime_request_count"] == sum(
            d.fields["request_count"] for d in ds if d.kind == 2)
        assert stopped.fields["process_uptime"] == pytest.approx(stopped.stamp - ds[0].stamp, abs=1e-5)
        assert stopped.fields["shutdown_reason"] == stopping.fields["shutdown_reason"]
        assert stopped.fields["graceful_drain"] == int(stopped.fields["active_requests_at_exit"] == 0)
        assert ds[0].stamp < stopping.stamp < rest[0].stamp < stopped.stamp
        after = datagrams[datagrams.index(stopped) + 1]  # the replacement comes right after
        group = stopping.fields["process_group"]
        assert (after.kind, after.seq, after.fields["process_group"]) == (5, 1, group)
        assert after.pid not in (d.pid for d in datagrams[:datagrams.index(after)])


def test_slow_records_go_from_active_to_completed(datagrams):
    records: dict[tuple[int, str], list[Datagram]] = defaultdict(list)
    for d in (d for d in datagrams if d.kind == 4):
        records[d.pid, d.fields["slow_log_id"]].append(d)
    cut = {d.pid for d in datagrams if d.kind == 7 and not d.fields["graceful_drain"]}
    last_stamp = max(d.stamp for d in datagrams) - 0.5
    shapes = set()
    for (pid, _), recs in records.items():
        states = [r.fields["slow_record_state"] for r in recs]
        assert states == sorted(states) and states.count(1) <= 1
        assert len({r.fields["slow_start_stamp"] for r in recs}) == 1
        durations = [r.fields["slow_duration"] for r in recs]
        assert durations == sorted(set(durations)) and durations[0] >= 1.0
        assert all(r.fields["slow_status"] == r.fields["slow_output_bytes"] == 0 for r in recs if
                   not r.fields["slow_record_state"])
        if states[-1]:
            assert recs[-1].fields["slow_status"] >= 200 and recs[-1].fields["slow_cpu_user_time"] > 0
            shapes.add("active, completed" if len(recs) > 1 else "completed only")
        else:
            assert pid in cut or recs[-1].stamp > last_stamp
            shapes.add("orphan" if pid in cut else "running at the end")
    assert {"active, completed", "completed only"} <= shapes


def test_at_most_16_active_slow_records_per_tick():
    fleet = simulate.Fleet(1, 1, 64, seed=1, slow_probability=1.0, slow_threshold=10.0)
    counts = []
    for i in range(100):
        tick = [decode(x) for x in fleet.tick(START + i)]
        counts.append(sum(1 for d in tick if d.kind == 4 and not d.fields["slow_record_state"]))
    assert max(counts) == simulate.MAX_ACTIVE_SLOW


def test_same_seed_same_bytes():
    def make(seed: int) -> list[bytes]:
        return simulate.Fleet(2, 2, 4, seed=seed, restart_probability=0.1).datagrams(START, 20)

    assert make(5) == make(5)
    assert make(5) != make(6)


def test_user_agent_option():
    def agents(user_agent: bool) -> set[bool]:
        fleet = simulate.Fleet(1, 2, 4, seed=2, slow_probability=1.0, user_agent=user_agent)
        return {"slow_user_agent" in decode(x).fields for x in fleet.datagrams(START, 10) if x[5] == 4}

    assert agents(True) == {True} and agents(False) == {False}


def test_busy_ticks_round_robin_with_consecutive_seqs():
    data = simulate.busy_ticks(7, 50, threads=4, seed=0)
    ds = [decode(x) for x in data]
    assert len(ds) == 50 and all(d.kind == 2 and d.fields["request_count"] > 0 for d in ds)
    assert all(ids(d) == BUSY_ORDER for d in ds)
    pids = by_pid(ds)
    assert len(pids) == 7 and [d.pid for d in ds[:7]] == sorted(pids)
    for seqs in ([d.seq for d in p] for p in pids.values()):
        assert seqs == list(range(2, 2 + len(seqs)))


def receive_while(path: str, send) -> tuple[list[bytes], dict]:
    """Bind ``path``, run ``send()`` while a thread receives, return what arrived and its summary."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    got: list[bytes] = []
    done = threading.Event()

    def receive() -> None:
        while True:
            try:
                got.append(sock.recv(65536))
            except TimeoutError:
                if done.is_set():
                    return

    reader = threading.Thread(target=receive)
    reader.start()
    try:
        summary = send()
    finally:
        done.set()
        reader.join()
        sock.close()
    return got, summary


def test_paced_run_delivers_to_a_bound_socket(sockdir):
    path = str(sockdir / "t.sock")
    got, summary = receive_while(path, lambda: simulate.run(
        path, groups=1, processes=2, threads=4, duration=0.5, rate=2000, seed=1, interpreters=2))
    assert set(summary) == {"sent", "dropped", "unreachable", "seconds"}
    assert summary["sent"] > 100 and summary["unreachable"] == 0 and len(got) == summary["sent"]
    assert summary["sent"] + summary["dropped"] <= 2000 * 0.5 + 20
    decoded = [decode(x) for x in got]
    assert {d.kind for d in decoded} >= {2, 5, 8}


def test_real_time_run_sends_each_process_at_its_phase(sockdir):
    path = str(sockdir / "t.sock")
    got, summary = receive_while(path, lambda: simulate.run(
        path, groups=1, processes=2, interval=0.1, duration=0.35, seed=1, restart_probability=0.0))
    decoded = [decode(x) for x in got]
    assert [d.kind for d in decoded[:2]] == [5, 5] and summary["dropped"] == 0
    assert 0.3 <= summary["seconds"] < 0.6
    for ds in by_pid(decoded).values():
        ticks = [d.stamp for d in ds if d.kind == 2]
        assert len(ticks) >= 2 and ticks[0] - ds[0].stamp == pytest.approx(0.1, abs=0.003)
        assert all(b - a == pytest.approx(0.1, abs=0.003) for a, b in itertools.pairwise(ticks))
    starts = sorted(d.stamp for d in decoded[:2])
    assert starts[1] > starts[0] + 0.001  # not in step


def test_missing_socket_counts_unreachable(sockdir, capsys):
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(["--socket", str(sockdir / "nobody.sock"), "--duration", "0.2", "--rate", "0"])
    assert simulate.main(args) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 0 and summary["unreachable"] > 0


REFERENCE_SCRIPT = r"""
import json, struct, sys
from mod_wsgi.telemetry.wire import decode

def plain(value):
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"hex": value.hex()}
    return value

data = open(sys.argv[1], "rb").read()
pos = 0
while pos < len(data):
    (size,) = struct.unpack_from("<I", data, pos)
    chunk = data[pos + 4:pos + 4 + size]
    pos += 4 + size
    try:
        s = decode(chunk)
    except Exception as exc:
        print(json.dumps({"error": repr(exc)}))
        continue
    print(json.dumps({"kind": s.kind, "pid": s.pid, "seq": s.seq, "stamp": s.stamp,
                      "fields": [[k, plain(v)] for k, v in s.fields.items()]}))
"""


def canonical(d: Datagram) -> dict:
    def plain(value):
        if isinstance(value, bytes):
            return {"hex": value.hex()}
        return value.tolist() if hasattr(value, "tolist") else value

    return {"kind": d.kind, "pid": d.pid, "seq": d.seq, "stamp": d.stamp,
            "fields": [[k, plain(v)] for k, v in d.fields.items()]}


@pytest.mark.reference
def test_reference_decoder_reads_simulated_output_identically(tmp_path):
    if not REFERENCE_PYTHON.exists():
        missing(f"reference ingester venv missing: {REFERENCE_PYTHON} (scripts/setup creates it)")
    fleet = simulate.Fleet(2, 2, 8, seed=11, restart_probability=0.05, slow_probability=0.5, interpreters=2)
    data = fleet.datagrams(START, 60)
    capture = tmp_path / "sim.dgrams"
    capture.write_bytes(b"".join(struct.pack("<I", len(x)) + x for x in data))
    script = tmp_path / "decode_with_reference.py"
    script.write_text(REFERENCE_SCRIPT)
    result = subprocess.run([str(REFERENCE_PYTHON), str(script), str(capture)], capture_output=True,
                            text=True, timeout=120, check=True)
    theirs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(theirs) == len(data) and not [t for t in theirs if "error" in t]
    ours = [json.loads(json.dumps(canonical(decode(x)))) for x in data]
    assert theirs == ours
    assert any(f[0] == "slow_path_info" and isinstance(f[1], dict) for t in theirs for f in t["fields"])
