// The GC tab's axes (static/console/tabs/gc_axes.js) and what its model says about the
// time axis's start and ended processes (tabs/gc_model.js), and the one time format of
// the tables and tooltips (stamps.js).

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const axes = await importStatic("tabs/gc_axes.js");
const gc = await importStatic("tabs/gc_model.js");
const { BUCKETS, bounds } = await importStatic("hdr.js");
const { stamp } = await importStatic("stamps.js");
const { timeStep } = await importStatic("ticks.js");

function dense(sparse) {
  const out = new Array(BUCKETS).fill(0);
  for (const [i, c] of Object.entries(sparse)) out[Number(i)] = c;
  return out;
}

test("histogram axis: the first tick is the first occupied bucket's lower edge, then round durations", () => {
  for (const [first, label] of [[0, "1 ms"], [1, "1.25 ms"], [4, "2 ms"], [9, "5 ms"], [44, "2.048 s"]]) {
    const counts = dense({ [first]: 3, [first + 6]: 1 });
    const [lower] = bounds(first);
    const min = first === 0 ? 0.0011 : lower * 1.01; // nothing under the first edge
    const a = axes.histogramAxis(counts, min, bounds(first + 6)[0], 58, 600);
    assert.equal(a.ticks[0].label, label, `bucket ${first}`);
    assert.equal(a.ticks[0].x, 58, "the axis starts at the first tick");
    assert.equal(a.strip, null);
    for (const tick of a.ticks.slice(1)) {
      const mantissa = tick.v / 10 ** Math.floor(Math.log10(tick.v) + 1e-9);
      assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `${tick.label} is round`);
      assert.ok(tick.x > a.ticks[0].x && tick.x <= 600);
    }
    const xs = a.ticks.map((t) => t.x);
    assert.deepEqual(xs, [...xs].sort((p, q) => p - q));
  }
});

test("histogram axis: pauses under bucket 0's 1 ms edge get a strip, and a p50 there is on the canvas", () => {
  const counts = dense({ 0: 90, 4: 8, 20: 2 });
  const a = axes.histogramAxis(counts, 0.00012, 0.05, 58, 600);
  assert.equal(a.ticks[0].label, "1 ms");
  assert.deepEqual(a.strip, [0.00012, 0.001]);
  assert.equal(a.ticks[0].x, 58 + axes.STRIP);
  const p50 = a.xOf(0.0003); // below the first tick
  assert.ok(p50 > 58 && p50 < a.ticks[0].x, `p50 at ${p50}`);
  assert.ok(a.xOf(0.00012) === 58 && a.xOf(0) === 58);
  assert.ok(a.xOf(0.0015) > a.ticks[0].x && a.xOf(0.0015) < a.ticks[1].x);
  assert.equal(a.ticks[1].label, "2 ms");
  // bucket 0's bar covers the strip: everything under 1.25 ms is in it
  assert.equal(a.bars[0].index, 0);
  assert.equal(a.bars[0].x0, 58);
  assert.equal(axes.barAt(a, 60), 0);
  assert.equal(axes.barAt(a, a.xOf(0.0021)), 4);
  // every value lands on the canvas, the overflow bucket's too
  const wide = axes.histogramAxis(dense({ 0: 1, 64: 1 }), 0, 120, 58, 600);
  for (const v of [0, 1e-9, 0.0005, 0.001, 1, 65.536, 120, 1e9]) {
    const x = wide.xOf(v);
    assert.ok(x >= 58 && x <= 600, `${v} at ${x}`);
  }
});

test("histogram axis: labelled ticks stay apart, and an empty histogram still has an axis", () => {
  const a = axes.histogramAxis(dense({ 0: 1, 60: 1 }), 0.002, 40, 58, 300);
  for (let i = 1; i < a.ticks.length; i += 1) assert.ok(a.ticks[i].x - a.ticks[i - 1].x >= 44);
  const empty = axes.histogramAxis(dense({}), null, null, 58, 600);
  assert.equal(empty.ticks[0].label, "1 ms");
  assert.deepEqual(empty.bars, []);
});

test("time axis: round ticks of ticks.js inside the range, labelled in one 24-hour format", () => {
  const from = 1796349858.4;
  for (const span of [60, 217, 300]) {
    const a = axes.timeAxis(from, from + span, 58, 600);
    const step = timeStep(span, Math.floor(542 / 90));
    assert.ok(a.ticks.length >= 2);
    for (const tick of a.ticks) {
      assert.equal(tick.v % step, 0, `${tick.v} is on the ${step} s step`);
      assert.ok(tick.x >= 58 && tick.x <= 600);
      assert.match(tick.label, /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/);
    }
  }
});

function record(t, s, fields = {}) {
  return { p: 11, i: 1, s, t, g: "g", n: "", on: 1, fz: 0, dr: 0, th: [700, 10, 10],
    cnt: [0, 0, 0], col: [0, 0, 0], cd: [0, 0, 0], un: [0, 0, 0], ...fields };
}

function snapshotFrom(first, now) {
  return { span: 300, since: now - 300, now, pids: [11], interps: [""], seqs: {}, series_total: 1,
    buckets: { t: [Math.floor(first)], c0: [1], c1: [0], c2: [0], cd: [0], un: [0], dr: [0], n: [0], pause: [0],
      pmin: [null], pmax: [null], h: [{}] },
    series: [{ key: "11:1:", first: record(first, 1), last: record(now - 1, 9), pause: 0, events: 0, dropped: 0 }],
    events: [] };
}

test("the time axis starts where the GC data does, or with the window when the data covers it", () => {
  const now = 10_000;
  const late = gc.computeView(gc.loadSnapshot(snapshotFrom(now - 40, now), now), now);
  assert.equal(late.range[0], now - 40);
  assert.equal(late.from, now - 300);
  const full = gc.computeView(gc.loadSnapshot(snapshotFrom(now - 299.2, now), now), now);
  assert.deepEqual(full.range, [now - 300, now]);
});

test("a series whose process stopped, went away or fell silent is kept and marked ended", () => {
  const now = 10_000;
  const data = gc.loadSnapshot(snapshotFrom(now - 100, now), now);
  const s = data.series.get("11:1:");
  assert.equal(gc.seriesEnd(s, { pid: 11, incarnation: 1, state: "running" }, now), null);
  assert.deepEqual(gc.seriesEnd(s, { state: "stopped", stopped: now - 2 }, now), { kind: "stopped", at: now - 2 });
  assert.deepEqual(gc.seriesEnd(s, { state: "gone" }, now), { kind: "gone", at: now - 1 });
  assert.deepEqual(gc.seriesEnd(s, null, now + 60), { kind: "silent", at: now - 1 });
  const view = gc.computeView(data, now, [{ pid: 11, incarnation: 1, state: "stopped", stopped: now - 2 }]);
  assert.equal(view.seriesTotal.length, 1);
  assert.equal(view.seriesTotal[0].end.kind, "stopped");
  gc.trim(data, now + 250); // still in the window: kept
  assert.equal(gc.computeView(data, now + 250).seriesTotal.length, 1);
  gc.trim(data, now + 302); // its last record left the window
  assert.equal(gc.computeView(data, now + 302).seriesTotal.length, 0);
});

test("stamps: the 24-hour clock with seconds, milliseconds and the date where asked", () => {
  const t = new Date(2026, 10, 26, 15, 32, 7, 123).getTime() / 1000;
  assert.equal(stamp(t), "15:32:07");
  assert.equal(stamp(t, { ms: true }), "15:32:07.123");
  assert.equal(stamp(t, { date: true }), "Nov 26 15:32:07");
  assert.equal(stamp(t, { date: true, ms: true }), "Nov 26 15:32:07.123");
  assert.equal(stamp(new Date(2026, 0, 2, 0, 5, 9).getTime() / 1000), "00:05:09");
  assert.equal(stamp(null), "—");
  assert.equal(stamp(Number.NaN), "—");
});
