import pytest

from ingest.fields import Kind
from ingest.sequence import Step, step

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
