// hdr.js (bucket edges, addInto, percentile) and the GC tab's bucketIndex against
// ingest.model.histogram, on vectors tests/js/test_node.py computes in Python.

import assert from "node:assert/strict";
import { test } from "node:test";

import { NO_VECTORS, importStatic, vectors } from "./static.mjs";

const hdr = await importStatic("hdr.js");
const { bucketIndex } = await importStatic("tabs/gc_model.js");
const v = vectors();
const skip = v ? false : NO_VECTORS;

/** Equal, or within a few ulps: Python and JS sum fractional counts in the same order, but say so loosely. */
function close(actual, expected, what) {
  if (expected === null) return assert.equal(actual, null, what);
  assert.equal(typeof actual, "number", what);
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} (JS) != ${expected} (Python)`);
}

test("bucket edges are Python's bucket_bounds", { skip }, () => {
  assert.equal(hdr.BUCKETS, v.bounds.length);
  v.bounds.forEach(([lower, upper], i) => {
    assert.deepEqual(hdr.bounds(i), [lower, upper === null ? Infinity : upper], `bucket ${i}`);
  });
});

test("bucketIndex is Python's bucket_index", { skip }, () => {
  assert.ok(v.durations.length > 200);
  for (const [seconds, index] of v.durations) {
    assert.equal(bucketIndex(seconds), index, `bucketIndex(${seconds})`);
  }
});

test("a duration lies within the edges of its bucket", { skip }, () => {
  for (const [seconds] of v.durations) {
    if (!(seconds >= 0)) continue;
    const [lower, upper] = hdr.bounds(bucketIndex(seconds));
    assert.ok(lower <= seconds && seconds < upper, `${seconds} in [${lower}, ${upper})`);
  }
});

test("percentile is Python's percentile", { skip }, () => {
  assert.ok(v.percentiles.length > 500);
  for (const { counts, p, lo, hi, expected } of v.percentiles) {
    const dense = hdr.addInto(new Array(hdr.BUCKETS).fill(0), counts);
    close(hdr.percentile(dense, p, lo, hi), expected, `percentile(${JSON.stringify(counts)}, ${p}, ${lo}, ${hi})`);
  }
});

test("percentile: empty is null, lo and hi clamp, the overflow bucket reads hi", () => {
  const dense = () => new Array(hdr.BUCKETS).fill(0);
  assert.equal(hdr.percentile(dense(), 0.5), null);
  assert.equal(hdr.percentile(hdr.addInto(dense(), { 3: -2, 4: 0 }), 0.5), null);
  // one 3.500333 s request reads 3.500333 s, not the middle of its bucket
  const one = hdr.addInto(dense(), { [bucketIndex(3.500333)]: 1 });
  assert.equal(hdr.percentile(one, 0.5, 3.500333, 3.500333), 3.500333);
  const over = hdr.addInto(dense(), { 64: 1 });
  assert.equal(hdr.percentile(over, 0.99), 65.536);
  assert.equal(hdr.percentile(over, 0.99, null, 80), 80);
});

test("addInto takes JSON's string keys and ignores what is not a bucket", () => {
  const dense = hdr.addInto(new Array(hdr.BUCKETS).fill(0), { 0: 1, "64": 2, 65: 5, "-1": 5, x: 5, 3: "7", 4: NaN, 5: 1.5 });
  assert.equal(dense[0], 1);
  assert.equal(dense[64], 2);
  assert.equal(dense[5], 1.5);
  assert.equal(dense.reduce((a, b) => a + b, 0), 4.5);
  assert.equal(dense.length, hdr.BUCKETS);
  assert.equal(hdr.addInto(dense, null), dense);
});

test("edgeLabel names a bucket's upper edge", () => {
  assert.equal(hdr.edgeLabel(0), "1.25 ms");
  assert.equal(hdr.edgeLabel(40), "1.28 s");
  assert.equal(hdr.edgeLabel(64), "> 65 s");
});
