"""mod_wsgi's histogram layout and the one percentile every view computes.

mod_wsgi counts durations in 65 buckets: bucket 0 below 1 ms, then 16
octaves of milliseconds (1-2, 2-4, ... 32.8-65.5 s) split in 4 equal
sub-buckets, then one overflow bucket. The agent's simulator, the frames,
the tabs and the page's ``hdr.js`` all use these edges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from .fields import HISTOGRAM_BUCKETS

OVERFLOW_BUCKET: Final = HISTOGRAM_BUCKETS - 1
PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def bucket_bounds(index: int) -> tuple[float, float]:
    """Lower (inclusive) and upper (exclusive) edge of a bucket, in seconds.

    Bucket 0 starts at 0, not 1 ms: it also holds every duration below
    1 ms, exact zeros included. The overflow bucket has no upper edge.
    """
    if index >= OVERFLOW_BUCKET:
        return 65.536, math.inf
    octave, sub = divmod(index, 4)
    lower = 0.0 if index == 0 else 2 ** octave * (1 + sub / 4)
    return lower / 1000, 2 ** octave * (1 + (sub + 1) / 4) / 1000


def bucket_index(seconds: float) -> int:
    """The bucket mod_wsgi would count a duration in."""
    ms = seconds * 1000
    if not ms >= 1:  # also NaN
        return 0
    if ms >= 65536:
        return OVERFLOW_BUCKET
    octave = math.frexp(ms)[1] - 1
    return 4 * octave + min(3, int((ms / 2 ** octave - 1) * 4))


def percentile(counts: Mapping[int, float], p: float, lo: float | None = None,
               hi: float | None = None) -> float | None:
    """The p-quantile in seconds of a (merged) histogram; None when it is empty.

    Interpolates inside the bucket holding rank p x N, then clamps into the
    exact [lo, hi] of the same window: a single 3.500333 s request reads
    3.500333 s, not the middle of its 512 ms bucket.
    """
    total = sum(c for c in counts.values() if c > 0)
    if total <= 0:
        return None
    rank, below, value = p * total, 0.0, 0.0
    for index in sorted(counts):
        count = counts[index]
        if count <= 0:
            continue
        if below + count >= rank:
            lower, upper = bucket_bounds(index)
            if math.isinf(upper):
                value = hi if hi is not None else lower
            else:
                value = lower + (rank - below) / count * (upper - lower)
            break
        below += count
    if lo is not None:
        value = max(value, lo)
    if hi is not None:
        value = min(value, hi)
    return value
