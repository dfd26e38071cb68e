"""Stored raw samples: compact, and restored exactly as the agent sent them."""

from __future__ import annotations

from array import array

import msgpack
import pytest
from window_helpers import scenario, vector

from console.windows.samples import compact_fields, pack_sample, unpack_sample, unpack_samples


@pytest.mark.parametrize("name", ["A", "B", "C", "D", "E"])
def test_every_sample_of_the_captures_comes_back_exactly(name):
    samples = scenario(name)
    blobs = [pack_sample(s) for s in samples]
    assert [unpack_sample(b) for b in blobs] == samples
    assert unpack_samples(b"".join(blobs)) == samples
    assert sum(map(len, blobs)) * 4 < sum(len(msgpack.packb(s)) for s in samples)


def test_zeros_are_dropped_only_where_absence_means_zero():
    busy = vector("07")
    busy["f"]["queue_time"] = 0.0  # measured, and zero: must survive
    packed = compact_fields(2, busy["f"])
    assert packed[61] == 0.0
    assert 101 not in packed  # input_reads_total 0: always present, so absence is zero
    idle = compact_fields(2, vector("03")["f"])
    assert 61 not in idle and 91 not in idle  # not measured on idle ticks: stays absent
    assert unpack_sample(pack_sample(busy)) == busy


def test_mostly_zero_arrays_are_sparse():
    tick = vector("55")  # 150 threads, 128 slots, idle
    slots = tick["f"]["request_threads_busy_time"]
    slots[3] = 0.25
    packed = compact_fields(2, tick["f"])
    assert packed[111] == {3: 0.25}
    assert unpack_sample(pack_sample(tick))["f"]["request_threads_busy_time"] == slots


def test_arrays_straight_from_the_decoder_are_accepted():
    tick = vector("07")
    raw = {**tick, "f": {k: array("i", v) if k.endswith("_buckets") else v for k, v in tick["f"].items()}}
    assert unpack_sample(pack_sample(raw)) == tick
