import pytest

from ingest.model.fields import Kind
from ingest.pipeline.sequence import GAP_FLOOR, Step, plausible_gap, step

TICK, STARTED = int(Kind.REQUEST_METRICS), int(Kind.PROCESS_STARTED)


@pytest.mark.parametrize(
    ("last", "seq", "kind", "expected"),
    [
        pytest.param(None, 1, STARTED, Step(True, 0), id="first-started"),
        pytest.param(None, 17, TICK, Step(True, 0, late_join=True), id="late-join-is-not-loss"),
        pytest.param(None, 1, TICK, Step(True, 0), id="first-seq-1-without-started"),
        pytest.param(5, 6, TICK, Step(False, 0), id="in-order"),
        pytest.param(5, 9, TICK, Step(False, 3), id="gap-is-loss"),
        pytest.param(40, 1, STARTED, Step(True, 0), id="pid-reused-with-started"),
        pytest.param(40, 3, TICK, Step(True, 2), id="seq-reset-without-started-loses-the-start"),
        pytest.param(40, 40, TICK, Step(True, 39), id="repeated-seq-is-a-new-life"),
        pytest.param(5, 6, STARTED, Step(True, 5), id="started-mid-sequence-opens-new-life"),
        pytest.param(0xFFFFFFFF, 0, TICK, Step(False, 0), id="u32-wraps"),
    ],
)
def test_step_classifies_sequence_numbers(last, seq, kind, expected):
    assert step(last, seq, kind) == expected


def test_a_forged_jump_is_a_late_joined_life_not_four_billion_lost():
    # one datagram from anyone who may write to the socket must not put 4e9 on the loss shown
    jumped = step(5, 0xFFFFFFF0, TICK, elapsed=0.01)
    assert jumped.new_incarnation and jumped.late_join and jumped.implausible and jumped.lost == 0
    assert step(5, 0xFFFFFFF0, STARTED, elapsed=0.01).lost == 0
    # the real process's next datagram is behind the forged seq: a new life again, its start not loss
    assert step(0xFFFFFFF0, 7, TICK, elapsed=0.01) == Step(True, 6)


def test_a_real_gap_is_believed_as_far_as_the_time_since_allows():
    assert plausible_gap(0) == GAP_FLOOR and plausible_gap(float("nan")) == GAP_FLOOR
    assert step(5, 5 + GAP_FLOOR + 1, TICK, elapsed=0.0) == Step(False, GAP_FLOOR)
    ten_minutes = 600.0
    assert step(5, 5 + 5_000_000, TICK, elapsed=ten_minutes) == Step(False, 4_999_999)
    assert step(5, 5 + GAP_FLOOR + 2, TICK, elapsed=0.0).implausible
