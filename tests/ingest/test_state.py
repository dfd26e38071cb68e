from array import array

import pytest
from support.paths import RAW, VECTORS

from ingest.pipeline import capture, state, wire
from ingest.pipeline.state import ProcessTable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(table: ProcessTable, datagrams) -> None:
    for data in datagrams:
        try:
            table.add(wire.decode(data))
        except wire.DecodeError as exc:
            table.add_malformed(data, exc)


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def dgram(kind: int, pid: int, seq: int, **fields) -> bytes:
    return wire.encode(kind, pid, seq, 1795378194.0 + seq, fields)


@pytest.mark.parametrize("scenario", ["A", "B", "C", "D", "E"])
def test_real_captures_have_no_loss_and_no_malformed(scenario):
    table = ProcessTable()
    feed(table, capture.read(str(RAW / f"{scenario}.dgrams.gz")))
    assert table.totals.lost == 0
    assert table.totals.malformed == 0
    assert table.totals.decoded == table.totals.received


def test_late_join_is_counted_as_such_not_as_loss():
    table = ProcessTable()
    feed(table, capture.read(str(RAW / "E.dgrams.gz")))
    late = [p for p in table.processes() if p.late_join]
    assert len(late) == 1 and late[0].first_seq > 1
    assert late[0].lost == 0


def test_restart_in_capture_a_gives_stopped_process_with_reason():
    table = ProcessTable()
    feed(table, capture.read(str(RAW / "A.dgrams.gz")))
    reasons = {p.shutdown_reason for p in table.processes() if p.state == "stopped"}
    assert {"maximum_requests", "script_reload", "shutdown_signal"} <= reasons


def test_gap_is_loss_for_that_process_only():
    table = ProcessTable()
    feed(table, [dgram(5, 10, 1, hostname="h"), dgram(2, 10, 2, request_count=0),
                 dgram(5, 11, 1, hostname="h"), dgram(2, 10, 6, request_count=0)])
    by_pid = {p.pid: p for p in table.processes()}
    assert by_pid[10].lost == 3
    assert by_pid[11].lost == 0
    assert table.totals.lost == 3


def test_pid_reuse_opens_a_new_incarnation():
    table = ProcessTable()
    feed(table, [dgram(5, 10, 1), dgram(2, 10, 2, request_count=3, status_2xx_total=3),
                 dgram(5, 10, 1), dgram(2, 10, 2, request_count=1, status_2xx_total=1)])
    lives = sorted(table.processes(), key=lambda p: p.incarnation)
    assert [(p.pid, p.incarnation, p.requests) for p in lives] == [(10, 1, 3), (10, 2, 1)]
    assert lives[0].state == "gone"
    assert table.totals.lost == 0


def test_slow_and_gc_datagrams_join_their_process_by_pid():
    table = ProcessTable()
    feed(table, [vector("01-k5-started-daemon-main.bin")])
    proc = table.add(wire.decode(vector("16-k4-slow-active-first.bin")))
    assert proc.group == "localhost:8060"
    assert len(proc.slow_active) == 1
    table.add(wire.decode(vector("18-k4-slow-completed.bin")))
    assert len(proc.slow_active) == 0
    assert proc.slow_completed[-1]["slow_status"] == 200
    gc = table.add(wire.decode(dgram(8, proc.pid, proc.last_seq + 1, interpreter_name="subapp")))
    assert gc is proc
    assert "subapp" in proc.interpreters


def test_gc_dropped_events_are_summed_per_tick_counts():
    table = ProcessTable()
    feed(table, [dgram(8, 7, 1, gc_dropped_events=1753), dgram(8, 7, 2, gc_dropped_events=2936),
                 dgram(8, 7, 3, gc_dropped_events=0)])
    (proc,) = table.processes()
    assert proc.interpreters[""].dropped_events == 1753 + 2936


def test_malformed_datagram_is_counted_against_its_pid_without_double_counting_loss():
    table = ProcessTable()
    bad = bytearray(dgram(6, 10, 3, shutdown_reason="x"))
    bad[-3] = 0x07  # unknown type tag on the last record
    feed(table, [dgram(5, 10, 1), dgram(2, 10, 2, request_count=0), bytes(bad), dgram(2, 10, 4)])
    (proc,) = table.processes()
    assert proc.malformed == 1
    assert proc.lost == 0
    assert table.totals.malformed == 1


def test_forged_sequence_jumps_cost_the_loss_counter_nothing():
    # an attacker writes the pid of a real process with a seq near 2**32, good and malformed
    table = ProcessTable(clock=Clock())
    bad = bytearray(dgram(6, 10, 0xFFFFFF00, shutdown_reason="x"))
    bad[-3] = 0x07
    feed(table, [dgram(5, 10, 1), dgram(2, 10, 2, request_count=0), bytes(bad),
                 dgram(2, 10, 3, request_count=0), dgram(2, 10, 0xFFFFFFF0, request_count=0),
                 dgram(2, 10, 4, request_count=0)])
    # the real process's next datagram is behind the forged one: a new life whose first three
    # datagrams look lost (what a pid reuse would look like), not the 4e9 the forger wrote
    assert table.totals.lost == 3
    assert table.totals.seq_jumps == 1 and table.totals.malformed == 1


def test_unreadable_header_is_counted_unattributed():
    table = ProcessTable()
    feed(table, [b"", b"WSGX" + bytes(40)])
    assert table.totals.malformed == 2
    assert table.totals.malformed_unattributed == 2


def test_silent_process_is_marked_gone_and_its_active_slow_records_orphaned():
    clock = Clock()
    table = ProcessTable(clock=clock)
    feed(table, [vector("01-k5-started-daemon-main.bin"), vector("16-k4-slow-active-first.bin")])
    (proc,) = table.processes()
    clock.now += 10
    table.expire()
    assert proc.state == "gone"
    assert proc.slow_orphaned == 1
    assert table.current == {}


def test_stopped_process_is_forgotten_after_retention():
    clock = Clock()
    table = ProcessTable(clock=clock)
    feed(table, [dgram(5, 10, 1), dgram(7, 10, 2, process_uptime=1.0)])
    assert [p.state for p in table.processes()] == ["stopped"]
    clock.now += 3600
    table.expire()
    assert table.processes() == []


def raw(kind: int, pid: int, seq: int, **fields) -> wire.Datagram:
    """A datagram as the decoder would hand it over, without the decoder's checks."""
    return wire.Datagram(1, kind, 0, pid, seq, 1795378194.0 + seq, fields, 64)


def test_full_table_evicts_the_process_heard_from_longest_ago():
    clock = Clock()
    table = ProcessTable(clock=clock, max_processes=3)
    for pid in (1, 2, 3):
        table.add(raw(5, pid, 1))
        clock.now += 1
    table.add(raw(2, 1, 2))  # pid 1 speaks again: pid 2 is now the longest silent
    table.add(raw(5, 4, 1))
    assert list(table.current) == [3, 1, 4]
    assert table.totals.evicted == 1


def test_ended_processes_are_bounded_and_counted_when_forgotten_early():
    table = ProcessTable(max_ended=2)
    for pid in range(10, 15):
        table.add(raw(5, pid, 1))
        table.add(raw(7, pid, 2, process_uptime=1.0))
    assert [p.pid for p in table.ended] == [13, 14]
    assert table.totals.evicted == 3


def test_incarnation_numbers_stay_increasing_when_their_memory_is_bounded():
    table = ProcessTable(max_processes=1, max_ended=1)
    lives: dict[int, list[int]] = {}
    for round_ in range(5):
        for pid in range(100, 110):
            proc = table.add(raw(5, pid, 1))
            lives.setdefault(pid, []).append(proc.incarnation)
        assert len(table._incarnations) <= 4, round_
    for numbers in lives.values():
        assert numbers == sorted(set(numbers))  # a pid's lives never share a number


def test_handlers_take_hostile_values_without_raising():
    clock = Clock()
    table = ProcessTable(clock=clock)
    table.add(raw(5, 9, 1, process_group=array("i", [1, 2]), hostname="h"))
    table.add(raw(2, 9, 2, telemetry_interval=1e308, request_count=array("i", [5]),
                  status_2xx_total=-4, status_5xx_total=True, process_group="g"))
    table.add(raw(2, 9, 3, telemetry_interval=float("nan"), request_count=2))
    table.add(raw(8, 9, 4, interpreter_name=array("i", [7]), gc_dropped_events=b"\x01"))
    table.add(raw(4, 9, 5, slow_log_id=array("i", [1]), slow_thread_id=array("d", [0.5]),
                  slow_record_state=0))
    table.add(raw(4, 9, 6, slow_log_id="r1", slow_record_state=array("i", [1])))
    (proc,) = table.processes()
    assert proc.interval == 3600.0  # 1e308 clamped; NaN ignored
    assert proc.requests == 2 and proc.status == [0, 0, 0, 0, 0]
    assert proc.identity == {"hostname": "h", "process_group": "g"}
    assert len(proc.interpreters) == 1 and len(proc.slow_active) == 2
    clock.now += 3 * 3600 + 2
    table.expire()
    assert proc.state == "gone"  # even a huge interval ends


def test_interval_below_the_bound_does_not_end_a_process_at_once():
    clock = Clock()
    table = ProcessTable(clock=clock)
    table.add(raw(2, 9, 1, telemetry_interval=1e-300))
    clock.now += 0.5
    table.expire()
    assert [p.state for p in table.processes()] == ["running"]


def test_active_slow_records_and_interpreters_are_bounded_per_process(monkeypatch):
    monkeypatch.setattr(state, "MAX_SLOW_ACTIVE", 5)
    monkeypatch.setattr(state, "MAX_INTERPRETERS", 3)
    table = ProcessTable()
    for seq in range(1, 21):
        table.add(raw(4, 9, seq, slow_log_id=f"r{seq}", slow_record_state=0))
    for seq in range(21, 41):
        table.add(raw(8, 9, seq, interpreter_name=f"i{seq}"))
    (proc,) = table.processes()
    assert list(proc.slow_active) == [f"r{n}" for n in range(16, 21)]
    assert proc.slow_orphaned == 15
    assert sorted(proc.interpreters) == ["i21", "i22", "i23"]


def _kept_is_consistent(table: ProcessTable) -> None:
    procs = table.processes()
    assert table.kept == sum(p.kept for p in procs)
    for p in procs:
        held = p.tick_size + sum(r["size"] for r in [*p.slow_active.values(), *p.slow_completed])
        held += sum(i.size for i in p.interpreters.values())
        assert p.kept - held == (64 if p.state == "stopped" else 0)  # a STOPPED from raw() is 64 bytes


def test_bytes_held_are_bounded_ended_processes_first_then_the_longest_silent():
    clock = Clock()
    table = ProcessTable(clock=clock, max_bytes=60_000)
    completed = {"slow_log_id": "r", "slow_record_state": 1}
    for pid in range(1, 4):  # three ended processes of 10 completed slow requests, 1 kB each
        table.add(raw(5, pid, 1))
        for seq in range(2, 12):
            table.add(wire.Datagram(1, 4, 0, pid, seq, 1.0, completed, 1000))
        table.add(raw(7, pid, 12))
    assert len(table.ended) == 3 and table.kept == 3 * (10_000 + 64)
    for pid in range(10, 20):  # ten running ones with a 10 kB tick each: six fit
        table.add(raw(5, pid, 1))
        table.add(wire.Datagram(1, 2, 0, pid, 2, 1.0, {"request_count": 1}, 10_000))
        assert table.kept <= 60_000
        _kept_is_consistent(table)
    assert len(table.ended) == 0  # they went first
    assert list(table.current) == list(range(14, 20))
    assert table.totals.evicted == 3 + 4
    clock.now += 100
    table.expire()  # all silent: ended, their ticks released
    clock.now += 3600
    table.expire()
    assert table.processes() == [] and table.kept == 0


def test_bytes_held_follow_replacements_and_releases():
    clock = Clock()
    table = ProcessTable(clock=clock)
    table.add(raw(5, 9, 1))
    for seq in range(2, 400):
        kind = (2, 4, 8, 9)[seq % 4]
        fields = {"slow_log_id": f"r{seq % 300}", "slow_record_state": seq % 3 == 0} if kind == 4 else \
            {"interpreter_name": f"i{seq % 70}"}
        table.add(wire.Datagram(1, kind, 0, 9, seq, 1795378194.0 + seq, fields, 100 + seq))
        _kept_is_consistent(table)
    clock.now += 10
    table.expire()
    _kept_is_consistent(table)
    (proc,) = table.processes()
    assert proc.state == "gone" and proc.tick_size == 0 and not proc.slow_active
