"""Frames against the real captures: sums equal the ticks, means are weighted,
percentiles follow docs/wire-protocol.md ("Histograms"), merging is order-free."""

from __future__ import annotations

import math
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import RAW, VECTORS

from ingest.model import frames
from ingest.model.fields import PHASES
from ingest.model.frames import derive, frame_add, merge
from ingest.model.histogram import bucket_bounds, bucket_index, percentile
from ingest.model.kinds import GC_EVENT, GC_SNAPSHOT, SLOW, STARTED, STOPPED, STOPPING, TICK
from ingest.model.sample import Sample, sample_time
from ingest.pipeline import capture
from ingest.pipeline.samples import replay

SCENARIOS = ["A", "B", "C", "D", "E"]


@cache
def scenario(name: str) -> tuple[Sample, ...]:
    return tuple(replay(capture.read(str(RAW / f"{name}.dgrams.gz"))))


def vector_sample(prefix: str) -> Sample:
    (path,) = VECTORS.glob(f"{prefix}-*.bin")
    (sample,) = replay([path.read_bytes()])
    return sample


def frame_of(samples) -> frames.Frame:
    frame: frames.Frame = {}
    for sample in samples:
        frame_add(frame, sample)
    return frame


def ticks(samples):
    return [s for s in samples if s["k"] == TICK]


def by_kind(samples, kind):
    return [s for s in samples if s["k"] == kind]


@pytest.mark.parametrize("name", SCENARIOS)
def test_request_and_status_totals_equal_the_sum_of_the_ticks(name):
    samples = scenario(name)
    d = derive(frame_of(samples), 1.0)
    tick_fields = [s["f"] for s in ticks(samples)]
    assert d["requests"] == sum(f["request_count"] for f in tick_fields) > 0
    for c in range(1, 6):
        assert d[f"status_{c}xx"] == sum(f[f"status_{c}xx_total"] for f in tick_fields)
    assert d["ticks"] == len(tick_fields)
    assert d["input_bytes_rate"] == sum(f["input_bytes_total"] for f in tick_fields)
    assert d["output_bytes_rate"] == sum(f["output_bytes_total"] for f in tick_fields)


@pytest.mark.parametrize("name", SCENARIOS)
def test_time_weighted_sums_are_exact(name):
    samples = scenario(name)
    frame = frame_of(samples)
    fields = [s["f"] for s in ticks(samples)]
    assert frame["per"] == pytest.approx(sum(f["sample_period"] for f in fields))
    cpu = sum(f["cpu_utilization"] * f["sample_period"] for f in fields)
    assert frame.get("cpu", 0) == pytest.approx(cpu)
    assert frame["rss"] == pytest.approx(sum(f["memory_rss"] * f["sample_period"] for f in fields))
    busy = sum(f["capacity_utilization"] * f["sample_period"] * f["request_threads_maximum"] for f in fields)
    avail = sum(f["sample_period"] * f["request_threads_maximum"] for f in fields)
    assert derive(frame, 1.0)["capacity"] == pytest.approx(busy / avail)


@pytest.mark.parametrize("name", SCENARIOS)
def test_phase_means_are_weighted_by_requests_over_measured_ticks(name):
    samples = scenario(name)
    d = derive(frame_of(samples), 1.0)
    for phase in PHASES:
        measured = [f for f in (s["f"] for s in ticks(samples))
                    if f["request_count"] and f"{phase}_time" in f]
        if not measured:
            assert d[f"{phase}_mean"] is None
            continue
        weight = sum(f["request_count"] for f in measured)
        expected = sum(f[f"{phase}_time"] * f["request_count"] for f in measured) / weight
        assert d[f"{phase}_mean"] == pytest.approx(expected)
        assert d[f"{phase}_min"] == min(f[f"{phase}_time_min"] for f in measured)
        assert d[f"{phase}_max"] == max(f[f"{phase}_time_max"] for f in measured)


def test_idle_ticks_do_not_pull_means_to_zero():
    busy = vector_sample("07")
    idle = [vector_sample(n) for n in ("03", "04", "08", "36", "46")]
    assert all(s["f"]["request_count"] == 0 for s in idle)
    assert "queue_time" not in idle[0]["f"]  # not measured on idle daemon ticks
    alone, diluted = derive(frame_of([busy]), 1.0), derive(frame_of([busy, *idle]), 6.0)
    for phase in PHASES:
        assert diluted[f"{phase}_mean"] == pytest.approx(alone[f"{phase}_mean"])
        assert diluted[f"{phase}_p50"] == alone[f"{phase}_p50"]
    assert diluted["queue_mean"] == pytest.approx(busy["f"]["queue_time"])


def test_embedded_ticks_leave_queue_and_daemon_means_to_daemon_processes():
    daemon, embedded = vector_sample("07"), vector_sample("37")
    assert "queue_time" not in embedded["f"] and embedded["f"]["request_count"] == 27
    d = derive(frame_of([daemon, embedded]), 1.0)
    assert d["queue_mean"] == pytest.approx(daemon["f"]["queue_time"])
    assert d["daemon_mean"] == pytest.approx(daemon["f"]["daemon_time"])
    expected = (daemon["f"]["request_time"] + 27 * embedded["f"]["request_time"]) / 28
    assert d["request_mean"] == pytest.approx(expected)


def test_percentiles_of_a_single_3_5_s_request_clamp_to_the_exact_value():
    d = derive(frame_of([vector_sample("07")]), 1.0)
    for name in ("p50", "p95", "p99"):
        assert d[f"application_{name}"] == 3.500333
        assert d[f"request_{name}"] == 3.516857
    unclamped = percentile({46: 1}, 0.5)
    assert unclamped == pytest.approx(3.328)  # 3072 + 0.5 x 512 ms, as docs/wire-protocol.md works it out


def test_percentiles_without_requests_are_none():
    d = derive(frame_of([vector_sample("03")]), 1.0)
    assert d["request_p50"] is None and d["request_mean"] is None and d["pct_5xx"] is None
    assert percentile({}, 0.5) is None


def test_overflow_bucket_reads_the_exact_maximum():
    assert percentile({64: 3}, 0.99, None, 70.5) == 70.5
    assert percentile({64: 3}, 0.99) == 65.536


def test_bucket_zero_starts_at_zero_and_interpolates():
    assert bucket_bounds(0) == (0.0, 0.00125)
    assert percentile({0: 2}, 0.5) == pytest.approx(0.000625)
    assert bucket_bounds(46) == (3.072, 3.584)


@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_bucket_index_puts_a_duration_inside_its_bucket(seconds):
    lower, upper = bucket_bounds(bucket_index(seconds))
    assert lower <= seconds < upper or (seconds < 0.001 and lower == 0)


@pytest.mark.parametrize("name", SCENARIOS)
def test_single_request_ticks_histograms_agree_with_bucket_index(name):
    for f in (s["f"] for s in ticks(scenario(name)) if s["f"]["request_count"] == 1):
        for phase in PHASES:
            if f"{phase}_time_min" in f:
                buckets = f[f"{phase}_time_buckets"]
                assert buckets[bucket_index(f[f"{phase}_time_min"])] == 1


@pytest.mark.parametrize("name", SCENARIOS)
def test_gc_collections_pauses_and_dropped_events(name):
    samples = scenario(name)
    d = derive(frame_of(samples), 1.0)
    events = [s["f"] for s in by_kind(samples, GC_EVENT)]
    assert d["gc_collections"] == len(events)
    for gen in range(3):
        assert d[f"gc_gen{gen}_rate"] == sum(1 for f in events if f["gc_event_generation"] == gen)
    assert d["gc_pause_total"] == pytest.approx(sum(f["gc_event_duration"] for f in events))
    assert d["gc_pause_max"] == max((f["gc_event_duration"] for f in events), default=None)
    dropped = sum(s["f"]["gc_dropped_events"] for s in by_kind(samples, GC_SNAPSHOT))
    assert d["gc_dropped"] == dropped
    if name == "E":
        assert dropped >= 1753 + 2936  # a per-tick count, summed (vectors 64-66)


@pytest.mark.parametrize("name", SCENARIOS)
def test_lifecycle_and_slow_counts(name):
    samples = scenario(name)
    d = derive(frame_of(samples), 1.0)
    assert d["started"] == len(by_kind(samples, STARTED))
    assert d["stopping"] == len(by_kind(samples, STOPPING))
    stops = [s["f"] for s in by_kind(samples, STOPPED)]
    assert d["stopped"] == len(stops)
    assert d["non_graceful"] == sum(1 for f in stops if f["graceful_drain"] == 0)
    slow = [s["f"] for s in by_kind(samples, SLOW)]
    completed = [f["slow_duration"] for f in slow if f["slow_record_state"] == 1]
    assert d["slow_completed"] == len(completed)
    assert d["slow_duration_max"] == max(completed, default=None)


def test_a_request_timeout_stop_is_not_graceful():
    d = derive(frame_of([vector_sample("49"), vector_sample("54")]), 1.0)
    assert (d["stopped"], d["non_graceful"]) == (2, 1)


def test_gc_events_are_placed_at_their_own_start_stamp():
    late = vector_sample("67")
    assert sample_time(late) == late["f"]["gc_event_start_stamp"] == pytest.approx(late["t"] - 3.0,
                                                                                         abs=0.01)


def test_dump_omits_zero_sums_but_keeps_zero_minimums():
    frame = frame_of([vector_sample("07"), vector_sample("03")])
    assert frame["<6"] == 0.0  # input_read_time_min of a GET: a real zero
    blob = frames.dump({**frame, "s5": 0, "h4.3": 0})
    loaded = frames.load(blob)
    assert loaded == frames.compact(frame)
    assert "s5" not in loaded and "h4.3" not in loaded and loaded["<6"] == 0.0
    assert len(blob) < 450  # one busy tick + one idle: ~40 values, 9 bytes per float


def test_loss_is_added_explicitly():
    frame = frames.add_loss(frame_of([vector_sample("03")]), 4)
    assert derive(merge([frame, frames.add_loss({}, 1)]), 1.0)["loss"] == 5


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_merging_seconds_in_any_order_and_grouping_gives_the_whole(data):
    samples = scenario(data.draw(st.sampled_from(["B", "D", "E"])))
    seconds: dict[int, frames.Frame] = {}
    for sample in samples:
        frame_add(seconds.setdefault(math.floor(sample_time(sample)), {}), sample)
    parts = data.draw(st.permutations(list(seconds.values())))
    cut = data.draw(st.integers(0, len(parts)))
    merged = merge([merge(parts[:cut]), merge(parts[cut:])])
    whole = frame_of(samples)
    assert merged.keys() == whole.keys()
    for key, value in whole.items():
        assert merged[key] == pytest.approx(value)


KEYS = ["n", "req", "s2", "m4", "h4.46", "<4", ">4", ">gp", "loss"]
frame_strategy = st.dictionaries(
    st.sampled_from(KEYS),
    st.integers(0, 10**6).map(float) | st.floats(0, 1e3, allow_nan=False),
)


@given(frame_strategy, frame_strategy, frame_strategy)
def test_merge_is_associative_and_commutative(a, b, c):
    left, right = merge([merge([a, b]), c]), merge([a, merge([b, c])])
    assert left.keys() == right.keys() == merge([c, b, a]).keys()
    for key in left:
        assert left[key] == pytest.approx(right[key]) == pytest.approx(merge([c, b, a])[key])
    assert merge([a]) == a and merge([]) == {}


def test_derive_needs_a_positive_span():
    with pytest.raises(ValueError, match="span"):
        derive({}, 0)


def test_replayed_samples_carry_the_agent_identity():
    samples = scenario("A")
    slow = by_kind(samples, SLOW)[0]
    assert slow["g"] in ("localhost:8060", "second") and slow["i"] == 1
    gc = by_kind(samples, GC_SNAPSHOT)
    assert {s["n"] for s in gc} == {"", "subapp"}
    assert all(s["n"] is None for s in ticks(samples))
    assert {s["g"] for s in scenario("B")} == {None}
