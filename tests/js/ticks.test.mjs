// static/console/ticks.js: the ticks every chart shares fall on round values of their
// unit, at most the number asked for, and time labels have one format per span.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { byteUnit, logTicks, niceStep, timeLabel, timeStep, timeTicks, valueTicks } = await importStatic("ticks.js");

test("time ticks: round local-clock steps, the same for every chart of one span", () => {
  const from = 1796349376.4;
  for (const [span, step] of [[60, 15], [300, 60], [900, 300], [3600, 900], [86400, 21600], [14 * 86400, 604800]]) {
    assert.equal(timeStep(span, 5), step, `span ${span}`);
    const ticks = timeTicks(from, from + span, 5);
    assert.ok(ticks.length >= 1 && ticks.length <= 5 + 1, `span ${span}: ${ticks.length} ticks`);
    for (const t of ticks) {
      assert.ok(t >= from && t <= from + span);
      const local = t - new Date(t * 1000).getTimezoneOffset() * 60;
      assert.equal(local % Math.min(step, 86400), 0, `span ${span}: tick ${t} off the round step`);
    }
  }
  assert.deepEqual(timeTicks(10, 10), []);
});

test("time labels: 24-hour, seconds for short spans, the date for long ones", () => {
  const t = new Date(2026, 10, 26, 15, 32, 7).getTime() / 1000;
  assert.equal(timeLabel(t, 300), "15:32:07");
  assert.equal(timeLabel(t, 3600), "15:32");
  assert.equal(timeLabel(t, 7 * 86400), "Nov 26 15:32");
  assert.equal(timeLabel(new Date(2026, 0, 2, 3, 4, 5).getTime() / 1000, 60), "03:04:05");
});

test("value ticks: 1-2-5 steps of the unit shown", () => {
  assert.deepEqual(valueTicks(0, 100, 4), [0, 25, 50, 75, 100]);
  assert.deepEqual(valueTicks(0, 9, 4), [0, 2.5, 5, 7.5]);
  const MiB = 1024 ** 2;
  assert.equal(byteUnit(572 * MiB), MiB);
  assert.deepEqual(valueTicks(0, 600 * MiB, 3, MiB).map((v) => v / MiB), [0, 200, 400, 600]);
  for (const [range, most] of [[0.37, 4], [1234, 5], [1e-4, 3], [7, 4]]) {
    const step = niceStep(range, most);
    assert.ok(range / step <= most + 1e-9, `${range}/${most}: step ${step}`);
    const mantissa = step / 10 ** Math.floor(Math.log10(step));
    assert.ok([1, 2, 2.5, 5].some((m) => Math.abs(m - mantissa) < 1e-9), `step ${step}`);
  }
  assert.deepEqual(valueTicks(5, 5), [5]);
});

test("log ticks: powers of ten, with 2 and 5 over a short range", () => {
  assert.deepEqual(logTicks(0.001, 0.1), [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]);
  assert.deepEqual(logTicks(0.0005, 20), [0.001, 0.01, 0.1, 1, 10]);
  assert.deepEqual(logTicks(0, 1), []);
});
