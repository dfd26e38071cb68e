// The capacity tab's slow-run detection (static/console/tabs/capacity_runs.js):
// runs found from a row's slot timings alone, and the record each is paired with.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { detectRuns, matchRecord } = await importStatic("tabs/capacity_runs.js");
const { dropBefore, newRow, pushColumn } = await importStatic("tabs/capacity_model.js");

/** A row of `slots` slots from ticks {t, period, elapsed: [per slot], longest: [per slot]}. */
function row(slots, ticks) {
  const r = newRow(101, 0, "g");
  r.slots = slots;
  for (const tick of ticks) pushColumn(r, (key) => tick[key]);
  return r;
}

const run = (fields) => ({ slot: 0, finished: false, active: false, ...fields });

test("a request followed across ticks ends at its start plus the longest finished", () => {
  const r = row(1, [
    { t: 100, period: 1, elapsed: [0.5], longest: [] },
    { t: 101, period: 1, elapsed: [1.5], longest: [] },
    { t: 102, period: 1, elapsed: [2.5], longest: [] },
    { t: 103, period: 1, elapsed: [], longest: [2.75] },
  ]);
  assert.deepEqual(detectRuns(r, 1), [run({ start: 99.5, end: 102.25, age: 2.5, finished: true })]);
  assert.deepEqual(detectRuns(r, 3), [], "a higher threshold finds none");
  assert.deepEqual(detectRuns(r, 2.75), [run({ start: 99.75, end: 102.5, age: 2.75, finished: true, between: true })],
    "at 2.75 s only the tick it finished in passes: placed mid-tick");
});

test("a run that vanishes (restart, lost ticks) ends at its last tick, unfinished", () => {
  const r = row(1, [
    { t: 100, period: 1, elapsed: [1.5], longest: [0] },
    { t: 101, period: 1, elapsed: [2.5], longest: [0] },
    { t: 102, period: 1, elapsed: [0], longest: [0.25] },
  ]);
  assert.deepEqual(detectRuns(r, 1), [run({ start: 98.5, end: 101, age: 2.5 })]);
});

test("a run still going at the newest tick is active", () => {
  const r = row(1, [
    { t: 100, period: 1, elapsed: [0], longest: [] },
    { t: 101, period: 1, elapsed: [1.25], longest: [] },
    { t: 102, period: 1, elapsed: [2.25], longest: [] },
  ]);
  assert.deepEqual(detectRuns(r, 1), [run({ start: 99.75, end: 101, age: 2.25, active: true })]);
});

test("an age that stops growing is a new request in the same slot", () => {
  const r = row(1, [
    { t: 100, period: 1, elapsed: [1.5], longest: [] },
    { t: 101, period: 1, elapsed: [1.25], longest: [1.75] },
  ]);
  assert.deepEqual(detectRuns(r, 1), [
    run({ start: 98.5, end: 100.25, age: 1.5, finished: true }),
    run({ start: 99.75, end: 101, age: 1.25, active: true }),
  ]);
});

test("a request slow between two ticks is placed mid-tick (period 1 when unknown)", () => {
  const r = row(2, [
    { t: 100, period: 1, elapsed: [], longest: [] },
    { t: 101, period: 2, elapsed: [0, 0], longest: [1.5] },
    { t: 102, period: null, elapsed: [], longest: [0, 3] },
    { t: 103, period: 1, elapsed: [0.5], longest: [0.5, 0.75] },
  ]);
  assert.deepEqual(detectRuns(r, 1), [
    run({ start: 98.5, end: 100, age: 1.5, finished: true, between: true }),
    run({ slot: 1, start: 98.5, end: 101.5, age: 3, finished: true, between: true }),
  ]);
});

test("slots past row.slots, and ticks dropped off the window, count nothing", () => {
  const ticks = [
    { t: 100, period: 1, elapsed: [0, 1.5], longest: [] },
    { t: 101, period: 1, elapsed: [0, 2.5], longest: [] },
    { t: 102, period: 1, elapsed: [0, 3.5], longest: [] },
  ];
  assert.deepEqual(detectRuns(row(1, ticks), 1), []);
  const two = row(2, ticks);
  assert.deepEqual(detectRuns(two, 1), [run({ slot: 1, start: 98.5, end: 100, age: 3.5, active: true })]);
  dropBefore(two, 101);
  assert.deepEqual(detectRuns(two, 1), [run({ slot: 1, start: 98.5, end: 101, age: 3.5, active: true })]);
  assert.deepEqual(detectRuns(row(2, []), 1), []);
});

test("garbage in the columns reads as idle, an older tick is not appended", () => {
  const r = row(1, [
    { t: 100, period: "x", elapsed: "x", longest: [null] },
    { t: 101, period: 1, elapsed: ["2", 1.5], longest: [NaN] },
    { t: 100.5, period: 1, elapsed: [9], longest: [9] },
    { t: "102", period: 1, elapsed: [9], longest: [9] },
  ]);
  assert.deepEqual(r.cols.t, [100, 101]);
  assert.deepEqual(detectRuns(r, 1), []);
});

test("matchRecord takes the record of the run's thread that overlaps it most", () => {
  const r = row(2, []);
  const slowRun = { slot: 1, start: 100, end: 104 };
  // overlaps with the run widened by 1 s each side, [99, 105]:
  const a = { start: 99, duration: 2 }; // [99, 101]: 2 s
  const b = { start: 100.5, duration: 4 }; // [100.5, 104.5]: 4 s
  const c = { start: 102, duration: 0.5, state: "active" }; // runs to now (110): [102, 105]: 3 s
  const other = { start: 100, duration: 4 };
  const byThread = new Map([[r.key + ":2", [a, c, b, { duration: 9 }]], [r.key + ":1", [other]]]);
  assert.equal(matchRecord(r, slowRun, byThread, 110), b);
  assert.equal(matchRecord(r, slowRun, new Map([[r.key + ":2", [a, c]]]), 110), c);
  assert.equal(matchRecord(r, slowRun, new Map([[r.key + ":2", [a, c]]]), 102.5), a, "an active record ends at now");
  assert.equal(matchRecord(r, { slot: 0, start: 200, end: 201 }, byThread, 110), null, "none overlaps");
  assert.equal(matchRecord(r, { slot: 5, start: 100, end: 104 }, byThread, 110), null, "no record of that thread");
});
