"""A silent process that speaks again continues its life; a new life is still a new life."""

from ingest.pipeline import wire
from ingest.pipeline.resume import Mark
from ingest.pipeline.state import ENDED_RETENTION, ProcessTable

STAMP = 1795378194.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dgram(kind: int, pid: int, seq: int, **fields) -> wire.Datagram:
    return wire.decode(wire.encode(kind, pid, seq, STAMP + seq, fields))


def silent_then_back(seq_after: int, kind: int = 2) -> ProcessTable:
    clock = Clock()
    table = ProcessTable(clock=clock)
    table.add(dgram(5, 10, 1, process_group="g"))
    table.add(dgram(2, 10, 2, telemetry_interval=1.0, request_count=1))
    clock.now += 30  # 3 intervals and more: gone
    table.expire()
    assert table.processes()[0].state == "gone" and not table.current
    table.add(dgram(kind, 10, seq_after, request_count=1))
    return table


def test_a_gone_process_whose_seq_continues_resumes_with_its_gap_as_loss():
    table = silent_then_back(9)
    (proc,) = table.processes()  # no phantom: one record, the same life
    assert (proc.incarnation, proc.state, proc.last_seq, proc.lost) == (1, "running", 9, 6)
    assert proc.requests == 2 and table.current[10] is proc
    assert table.totals.lost == 6 and table.totals.resumed == 1 and table.totals.incarnations == 1
    table.expire()
    assert not table.ended  # not kept as ended too


def test_a_backwards_seq_or_a_started_after_silence_is_a_new_life():
    for table in (silent_then_back(1, kind=5), silent_then_back(2)):
        lives = sorted(table.processes(), key=lambda p: p.incarnation)
        assert [(p.incarnation, p.state) for p in lives] == [(1, "gone"), (2, "running")]
        assert table.totals.resumed == 0


def test_an_implausible_jump_after_silence_is_a_new_life_not_loss():
    table = silent_then_back(2_000_000_000)
    assert table.totals.lost == 0 and table.totals.seq_jumps == 1 and len(table.processes()) == 2


def test_marks_of_a_previous_run_continue_the_same_incarnation():
    clock, wall = Clock(), STAMP
    old = ProcessTable(clock=clock)
    for pid in (10, 11, 12):
        old.add(dgram(5, pid, 1, process_group=f"g{pid}"))
        old.add(dgram(2, pid, 2))
    old.add(dgram(5, 12, 1))  # pid 12 restarted: incarnation 2
    marks = old.marks(wall)
    assert sorted(marks) == [Mark(10, 1, 2, wall, "g10"), Mark(11, 1, 2, wall, "g11"), Mark(12, 2, 1, wall)]
    new = ProcessTable(clock=Clock())
    new.remember(marks, wall + 60.0)  # a minute without an agent
    assert new.processes() == []  # stand-ins are not processes until they speak
    a = new.add(dgram(2, 10, 50))  # continued: 47 sent while no agent was bound
    b = new.add(dgram(5, 11, 1))  # restarted meanwhile: the next incarnation
    c = new.add(dgram(8, 12, 3))  # continued, a GC sample: its group from the mark
    assert (a.incarnation, a.lost, a.late_join) == (1, 47, False)
    assert (b.incarnation, b.lost) == (2, 0)
    assert (c.incarnation, c.lost) == (2, 1) and c.group is None
    assert new.totals.lost == 48 and new.totals.resumed == 2 and new.totals.incarnations == 1


def test_a_gap_after_a_restart_is_bounded_by_the_wall_time_since_heard():
    new = ProcessTable(clock=Clock())
    new.remember([Mark(10, 3, 100, STAMP, "g")], STAMP + 1.0)
    proc = new.add(dgram(2, 10, 100 + 50_000))  # 50,000 in one second: not believed
    assert proc.incarnation == 4 and new.totals.lost == 0 and new.totals.seq_jumps == 1


def test_a_gone_process_forgotten_by_the_table_still_resumes_holding_nothing():
    clock = Clock()
    table = ProcessTable(clock=clock)
    table.add(dgram(5, 10, 1, process_group="g"))
    table.add(dgram(4, 10, 2, slow_log_id="r1", slow_record_state=1))  # a completed slow record, kept
    clock.now += 30
    table.expire()
    clock.now += ENDED_RETENTION + 1
    table.expire()
    assert not table.processes() and table.kept == 0
    proc = table.add(dgram(2, 10, 5, request_count=1))
    assert (proc.incarnation, proc.lost, proc.group, len(proc.slow_completed)) == (1, 2, "g", 0)
    assert table.totals.resumed == 1 and table.kept == proc.kept


def test_a_stopped_or_old_mark_is_no_process_to_resume_but_its_number_is_used():
    new = ProcessTable(clock=Clock())
    new.remember([Mark(10, 3, 50, STAMP, "g", ended=True), Mark(11, 2, 50, STAMP - 2 * 86400.0)], STAMP)
    a, b = new.add(dgram(2, 10, 60)), new.add(dgram(2, 11, 60))
    assert (a.incarnation, b.incarnation) == (4, 3)  # never a number the console saw for another life
    assert new.totals.resumed == 0 and new.totals.lost == 0 and new.totals.late_joins == 2
