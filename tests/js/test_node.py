"""The page's pure modules under node's test runner (tests/js/*.test.mjs).

hdr.js and the GC tab's bucketIndex must agree with ingest.model.histogram,
which the console computes with: this test makes the vectors with the Python
model, writes them to a temporary JSON file and runs ``node --test`` with its
path in WSGI_FLEET_VECTORS. The same run covers the capacity tab's slow-run
detection and the GC tab's model. Node is Debian's nodejs (scripts/setup);
without it the test skips, or fails under WSGI_FLEET_TESTS=all.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

from support.required import missing

from ingest.model.histogram import OVERFLOW_BUCKET, bucket_bounds, bucket_index, percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
P = (0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def durations(rng: random.Random) -> list[float]:
    """Every bucket edge and its neighbouring doubles, zero, negatives, huge values and random ones."""
    out = {0.0, -0.0, -1.0, 1e-9, 0.0005, 65.535, 65.536, 100.0, 1e9, 3.500333}
    for index in range(OVERFLOW_BUCKET + 1):
        for edge in bucket_bounds(index):
            if math.isfinite(edge):
                out.update((edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf)))
    out.update(10 ** rng.uniform(-4, 2) for _ in range(500))
    return sorted(out)


def percentile_cases(rng: random.Random) -> list[dict]:
    """Sparse histograms (empty, zero and negative counts, fractions, overflow) at every p, with and
    without the exact [lo, hi] of their window."""
    hists: list[dict[int, float]] = [{}, {3: 0}, {3: -2.0, 7: 0}, {0: 1}, {OVERFLOW_BUCKET: 3}, {40: 1}]
    for _ in range(120):
        indexes = rng.sample(range(OVERFLOW_BUCKET + 1), rng.randint(1, 6))
        if rng.random() < 0.1:
            indexes.append(OVERFLOW_BUCKET)
        hist: dict[int, float] = {}
        for index in sorted(set(indexes)):
            roll = rng.random()
            hist[index] = (0 if roll < 0.05 else -1 if roll < 0.08
                           else round(rng.uniform(0.1, 50), 3) if roll < 0.3 else rng.randint(1, 1000))
        hists.append(hist)
    cases = []
    for hist in hists:
        present = [i for i in sorted(hist) if hist[i] > 0]
        windows: list[tuple[float | None, float | None]] = [(None, None)]
        if present:
            def inside(index: int) -> float:
                lower, upper = bucket_bounds(index)
                return rng.uniform(lower, upper if math.isfinite(upper) else lower * 2)

            lo, hi = inside(present[0]), inside(present[-1])
            windows += [(lo, max(lo, hi)), (None, max(lo, hi)), (lo, None)]
        for lo, hi in windows:
            for p in P:
                cases.append({"counts": {str(i): c for i, c in hist.items()}, "p": p, "lo": lo, "hi": hi,
                              "expected": percentile(hist, p, lo, hi)})
    return cases


def make_vectors() -> dict:
    rng = random.Random(15)
    return {
        "bounds": [[lo, hi if math.isfinite(hi) else None]
                   for lo, hi in map(bucket_bounds, range(OVERFLOW_BUCKET + 1))],
        "durations": [[s, bucket_index(s)] for s in durations(rng)],
        "percentiles": percentile_cases(rng),
    }


def test_node_modules(tmp_path: Path) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        missing("node is missing: run scripts/setup, which installs Debian's nodejs")
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(make_vectors(), allow_nan=False))
    files = sorted(str(p.relative_to(ROOT)) for p in HERE.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {HERE}"
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, "WSGI_FLEET_VECTORS": str(path), "NODE_NO_WARNINGS": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed ({result.returncode}):\n{output}"
    # every test ran: none skipped for want of the vectors, none marked todo
    counts = dict(re.findall(r"^# (tests|pass|fail|cancelled|skipped|skip|todo) (\d+)$", result.stdout, re.M))
    assert int(counts.get("tests", 0)) > 0 and counts.get("pass") == counts["tests"], output
    not_passed = ("fail", "cancelled", "skipped", "skip", "todo")
    assert not any(int(counts.get(key, 0)) for key in not_passed), output
