// static/console/chart_axes.js: a y axis' ticks are round in the unit its labels show,
// its top is a labelled tick, and a log axis spans whole 1-2-5 values and draws no value
// that is not above 0.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { UNITS, linearRange, linearTicks, logLabel, logRange, positiveOnly, tickLabel, timeSplits } =
  await importStatic("chart_axes.js");
const { logTicks } = await importStatic("ticks.js");
const MiB = 1024 ** 2;

/** The labels of a linear axis over data up to `max`, as the chart draws them. */
function labels(max, unit, fixed = null) {
  const unitOf = UNITS[unit];
  const [low, high] = linearRange(0, max, unitOf, fixed);
  return linearTicks(low, high, unitOf).map((v) => tickLabel(v, unitOf(high)));
}

test("memory ticks fall on round MiB, and the top one is labelled", () => {
  // 572 MiB of RSS: the ticks the issue saw were 191 / 381 / 572 MiB
  assert.deepEqual(labels(572 * MiB, "bytes"), ["0", "200 MiB", "400 MiB", "600 MiB"]);
  assert.deepEqual(labels(1.7 * 1024 * MiB, "bytes"), ["0", "0.5 GiB", "1 GiB", "1.5 GiB", "2 GiB"]);
  for (const max of [3 * MiB, 37 * MiB, 458 * MiB, 66 * MiB, 9.3 * 1024 * MiB]) {
    const unitOf = UNITS.bytes;
    const [low, high] = linearRange(0, max, unitOf);
    assert.ok(high >= max, `${max}: the scale holds the data`);
    const ticks = linearTicks(low, high, unitOf);
    assert.equal(ticks[ticks.length - 1], high, `${max}: the top is a tick`);
    assert.ok(ticks.length >= 3 && ticks.length <= 6, `${max}: ${ticks.length} ticks`);
    const step = (ticks[1] - ticks[0]) / unitOf(high).factor;
    const mantissa = step / 10 ** Math.floor(Math.log10(step));
    assert.ok([1, 2, 2.5, 5].some((m) => Math.abs(m - mantissa) < 1e-9), `${max}: step ${step}`);
  }
});

test("rates, durations, shares and cores are labelled in their own unit", () => {
  assert.deepEqual(labels(93, "rate"), ["0", "25/s", "50/s", "75/s", "100/s"]);
  assert.deepEqual(labels(0.0123, "seconds"), ["0", "5 ms", "10 ms", "15 ms"]);
  assert.deepEqual(labels(2.2, "seconds"), ["0", "1 s", "2 s", "3 s"]);
  assert.deepEqual(labels(0.4, "percent", [0, 1]), ["0", "25 %", "50 %", "75 %", "100 %"]);
  assert.deepEqual(labels(1.29, "plain"), ["0", "0.5", "1", "1.5"]);
  // float noise never reaches a label
  assert.equal(tickLabel(0.30000000000000004, UNITS.plain(1)), "0.3");
});

test("a fixed range is a floor the data can widen, and an empty chart still has an axis", () => {
  assert.deepEqual(linearRange(0, 0.4, UNITS.percent, [0, 1]), [0, 1]);
  assert.deepEqual(linearRange(0, 1.3, UNITS.percent, [0, 1]), [0, 1.3]);
  assert.deepEqual(linearRange(null, null, UNITS.rate), [0, 1]);
  assert.deepEqual(linearRange(0, 0, UNITS.rate), [0, 1]);
});

test("log axis: out to 1-2-5 values, each tick labelled in the unit of its size", () => {
  assert.deepEqual(logRange(0.012, 0.147), [0.01, 0.2]);
  assert.deepEqual(logTicks(...logRange(0.012, 0.147)), [0.01, 0.02, 0.05, 0.1, 0.2]);
  // one p99 spike of 3 s over a p50 of 2 ms: labelled decades, the data filling the chart
  const [low, high] = logRange(0.0021, 3.1);
  assert.deepEqual([low, high], [0.002, 5]);
  assert.deepEqual(logTicks(low, high).map((v) => logLabel(v, UNITS.seconds)), ["10 ms", "100 ms", "1 s"]);
  // a flat line still spans a range; no positive data: a default one
  const [a, b] = logRange(0.005, 0.005);
  assert.ok(a <= 0.005 && b > 0.005);
  assert.deepEqual(logRange(null, null), [1e-3, 1]);
});

test("values not above 0 are no data on a log axis", () => {
  assert.deepEqual(positiveOnly([0.01, 0, -1, null, 0.2, Number.NaN]), [0.01, null, null, null, 0.2, null]);
});

test("time ticks are round times, at most five, whatever the chart's width", () => {
  const from = 1796349376.4;
  const ticks = timeSplits(from, from + 300);
  assert.ok(ticks.length >= 4 && ticks.length <= 6);
  for (const t of ticks) assert.equal(t % 60, 0);
});
