import pytest
from support.paths import RAW, VECTORS

from ingest import capture, wire
from ingest.state import ProcessTable


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
