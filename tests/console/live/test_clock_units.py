"""The clock skew measure and the move of a sample's instants, without a connection."""

from __future__ import annotations

import pytest
from tab_helpers import sample

from console.live import agents, protocol, summary
from console.live.agents import AgentClock, shifted
from ingest.model.kinds import GC_EVENT, SLOW


def test_the_median_ignores_one_late_heartbeat_and_small_moves_keep_the_shift():
    clock = AgentClock()
    for late in (0.0, 0.0, 9.0, 0.0, 0.1):  # one heartbeat held up 9 s behind a busy console
        clock.observe(1000.0 + 120.0, 1000.0 + late)
    assert clock.skew == pytest.approx(120.0) and clock.shift == pytest.approx(120.0)
    clock.observe(1000.0 + 120.5, 1000.0)  # half a second of drift: samples stay in order
    assert clock.shift == pytest.approx(120.0)
    for _ in range(5):
        clock.observe(1000.0, 1000.0)
    assert clock.shift == 0 and clock.counters()[summary.SKEW_MS] == 0


def test_every_instant_of_a_sample_moves_and_nothing_else():
    slow = sample(SLOW, 7, 2000.0, slow_start_stamp=1990.0, slow_duration=10.0)
    gc = sample(GC_EVENT, 7, 2000.0, gc_event_start_stamp=1999.5, gc_event_duration=0.5)
    moved = [shifted(s, 120.0) for s in (slow, gc)]
    assert moved[0]["t"] == 1880.0 and moved[0]["f"]["slow_start_stamp"] == 1870.0
    assert moved[0]["f"]["slow_duration"] == 10.0
    assert moved[1]["f"]["gc_event_start_stamp"] == 1879.5 and moved[1]["f"]["gc_event_duration"] == 0.5
    assert slow["t"] == 2000.0 and slow["f"]["slow_start_stamp"] == 1990.0, "the original is untouched"
    assert sorted(agents.EPOCH_FIELDS) == ["gc_event_start_stamp", "slow_start_stamp"]


@pytest.mark.parametrize("value", [None, "1795378200", True, float("nan"), float("inf"), -5.0, 0, 2.0**34])
def test_a_heartbeat_time_that_is_no_clock_is_ignored_not_refused(value):
    assert protocol.heartbeat_time({"t": "heartbeat", "time": value, "counters": {}}) is None


def test_a_heartbeat_time_is_taken_as_epoch_seconds():
    assert protocol.heartbeat_time({"time": 1795378200}) == 1795378200.0
