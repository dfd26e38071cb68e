// The GC tab's model (static/console/tabs/gc_model.js): how tab.snapshot and
// tab.frame fold into per-second buckets, series checkpoints and events, what
// the view and the totals of a range read, and what trimming keeps.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const gc = await importStatic("tabs/gc_model.js");
const { BUCKETS } = await importStatic("hdr.js");

/** A series record as the console sends it (docs/live-protocol.md, "gc"). */
function record(t, s, fields = {}) {
  return { p: 11, i: 0, s, t, g: "g", n: "", on: true, fz: 0, dr: 0, th: [700, 10, 10],
    cnt: [0, 0, 0], col: [0, 0, 0], cd: [0, 0, 0], un: [0, 0, 0], ...fields };
}

/** A pause event: [t, duration, gen, collected, uncollectable, pid, incarnation, interp, group, seq]. */
const event = (t, d, gen, s, pid = 11) => [t, d, gen, 0, 0, pid, 0, "", "g", s];

function snapshot() {
  return {
    span: 60, since: 1000, now: 1030, pids: [11, "x"], interps: ["", "sub"], seqs: { "11:0": 5 },
    series_total: 3,
    buckets: {
      t: [1000, 1001, 1003], c0: [2, "bad", 1], c1: [0, 1], c2: [0, 0, 1], cd: [5, 0, 0], un: [0, 0, 1],
      dr: [0, 1, 0], n: [1, 0, 2], pause: [0.25, null, 0.5], pmin: [0.25, null, 0.125], pmax: [0.25, null, 0.375],
      h: [{ 30: 1 }, null, { 28: 1, "33": 1 }],
    },
    series: [{
      first: record(1000, 1, { col: [10, 2, 1], cd: [5, 0, 0] }),
      last: record(1020, 5, { col: [30, 4, 1], cd: [15, 0, 0], un: [0, 0, 2] }),
      dropped: 1, pause: 0.5, events: 3,
    }, { first: null, last: record(1020, 5) }],
    events: [event(1000.5, 0.25, 0, 3), event(1003.25, 0.125, 2, 4), ["junk"],
      [null, -1, 7, null, "x", 11, 0, 5, null, null]],
  };
}

test("a snapshot with nothing in it: the defaults", () => {
  for (const msg of [{}, { span: 0, since: 0, buckets: "x", series: {}, events: null }]) {
    const d = gc.loadSnapshot(msg, 50);
    assert.equal(d.loaded, true);
    assert.equal(d.span, 300);
    assert.equal(d.since, null);
    assert.equal(d.omitted, 0);
    assert.deepEqual([d.buckets.size, d.series.size, d.events.length, d.pids.size], [0, 0, 0, 0]);
    const view = gc.computeView(d, 50);
    assert.deepEqual(view.columns.t, []);
    assert.deepEqual(view.range, [-250, 50]);
  }
});

test("a snapshot: what is not a number reads 0", () => {
  const d = gc.loadSnapshot(snapshot(), 5000);
  assert.deepEqual([d.span, d.since, d.omitted], [60, 1000, 1]);
  assert.deepEqual(Array.from(d.pids), [[11, 1030], [0, 1030]]);
  assert.deepEqual(Array.from(d.interps.keys()), ["", "sub"]);
  assert.equal(d.seqs.get("11:0"), 5);
  const b = d.buckets.get(1001);
  assert.deepEqual([b.c, b.cd, b.dr, b.n, b.pause, b.pmin, b.pmax, b.h], [[0, 1, 0], 0, 1, 0, 0, null, null, {}]);
  assert.deepEqual(d.buckets.get(1003).c, [1, 0, 1]);
  assert.deepEqual(d.events, [
    { t: 1000.5, d: 0.25, gen: 0, cd: 0, un: 0, p: 11, i: 0, n: "", g: "g", s: 3 },
    { t: 1003.25, d: 0.125, gen: 2, cd: 0, un: 0, p: 11, i: 0, n: "", g: "g", s: 4 },
    { t: 0, d: 0, gen: 2, cd: 0, un: 0, p: 11, i: 0, n: "", g: "", s: 0 },
  ]);
  assert.equal(d.series.size, 1, "a series without its first record is left out");
});

test("the view: dense seconds, series rates from checkpoints", () => {
  const view = gc.computeView(gc.loadSnapshot(snapshot(), 0), 1030);
  assert.equal(view.from, 1000);
  assert.deepEqual(view.range, [1000, 1030], "the axis starts where the (limited) data does, not at now - span");
  assert.deepEqual(view.columns.t, [1000, 1001, 1002, 1003]);
  assert.deepEqual(view.columns.c, [[2, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]]);
  assert.deepEqual(view.columns.pause, [0.25, 0, 0, 0.5]);
  assert.deepEqual(view.columns.pmax, [0.25, null, null, 0.375]);
  assert.deepEqual(view.pids, [0, 11]);
  assert.deepEqual(view.interps, ["", "sub"]);
  assert.equal(view.series.length, 1);
  assert.deepEqual(view.seriesTotal[0].stats, {
    rates: [1, 0.1, 0], collected: 0.5, uncollectable: 2, dropped: 1, pause: 0.5, share: 0.025,
  });
});

test("totals of a range: counts, pause extremes and the pause histogram", () => {
  const { buckets } = gc.computeView(gc.loadSnapshot(snapshot(), 0), 1030);
  const early = gc.summarize(buckets, 1000, 1002);
  assert.deepEqual([early.c, early.cd, early.un, early.dr, early.n, early.pause, early.min, early.max],
    [[2, 1, 0], 5, 0, 1, 1, 0.25, 0.25, 0.25]);
  const all = gc.summarize(buckets, 999.5, 1004);
  assert.deepEqual([all.c, all.n, all.pause, all.min, all.max], [[3, 1, 1], 3, 0.75, 0.125, 0.375]);
  assert.equal(all.h.length, BUCKETS);
  assert.deepEqual([all.h[28], all.h[30], all.h[33]], [1, 1, 1]);
  assert.equal(all.h.reduce((a, b) => a + b, 0), 3);
  const none = gc.summarize(buckets, 2000, 3000);
  assert.deepEqual([none.n, none.min, none.max], [0, null, null]);
});

test("a frame: counter differences per second, duplicates and other groups left out", () => {
  const d = gc.loadSnapshot(snapshot(), 0);
  const wanted = (g, p) => p !== 12;
  const added = gc.addFrame(d, {
    records: [
      record(1021, 6, { col: [33, 4, 2], cd: [16, 0, 0], un: [0, 0, 2], dr: 2 }),
      record(1021, 5, { col: [99, 99, 99] }), // seq 5: the snapshot has it
      record(1021, 9, { p: 13, g: "other", col: [99, 99, 99] }),
      record(1021, 9, { p: 12, col: [99, 99, 99] }), // not wanted: listed, not counted
      null,
    ],
    events: [event(1021.5, 0.25, 1, 7), event(1021.5, 1, 1, 4), event(1021.75, 1, 1, 9, 12), ["short"]],
  }, "g", wanted);
  assert.equal(added, 1);
  const b = d.buckets.get(1021);
  assert.deepEqual([b.c, b.cd, b.un, b.dr, b.n, b.pause, b.pmin, b.pmax], [[3, 0, 1], 1, 0, 2, 1, 0.25, 0.25, 0.25]);
  assert.deepEqual(b.h, { [gc.bucketIndex(0.25)]: 1 });
  assert.equal(gc.bucketIndex(0.25), 31);
  assert.deepEqual(Array.from(d.pids.keys()), [11, 0, 12]);
  assert.equal(d.pids.get(11), 1021);
  assert.equal(d.pids.has(13), false);
  const s = d.series.get("11:0:");
  assert.deepEqual(s.acc, { dr: 3, pause: 0.75, n: 4 });
  assert.equal(s.cps.length, 3, "a new checkpoint 10 s after the last");
  assert.equal(d.events.length, 4);
  assert.equal(gc.addFrame(d, { records: [record(1021, 8)] }, "*", () => true), 0, "the same second again");
  assert.deepEqual(d.buckets.get(1021).c, [3, 0, 1]);
});

test("trim keeps the window ending at now", () => {
  const d = gc.loadSnapshot(snapshot(), 0);
  gc.addFrame(d, { records: [record(1021, 6)], events: [event(1021.5, 0.25, 1, 7)] }, "g", () => true);
  gc.trim(d, 1075);
  assert.deepEqual(Array.from(d.buckets.keys()), [1021]);
  assert.deepEqual(d.events.map((e) => e.t), [1021.5]);
  assert.deepEqual(Array.from(d.pids.keys()), [11, 0]);
  assert.equal(d.series.size, 1);
  gc.trim(d, 1095);
  assert.deepEqual([d.buckets.size, d.events.length, d.pids.size, d.interps.size, d.series.size], [0, 0, 0, 0, 0]);
});

test("trim keeps at most MAX_EVENTS, the newest", () => {
  const d = gc.loadSnapshot({ span: 60, now: 100 }, 0);
  const events = [];
  for (let k = 0; k < gc.MAX_EVENTS + 5; k += 1) events.push(event(90 + k / 1000, 0.001, 0, k));
  events.reverse();
  gc.addFrame(d, { events }, "*", () => true);
  gc.trim(d, 100);
  assert.equal(d.events.length, gc.MAX_EVENTS);
  assert.equal(d.events[0].s, 5);
});

test("triple and interpName", () => {
  assert.deepEqual(gc.triple([1, "x", null, 4]), [1, 0, 0]);
  assert.deepEqual(gc.triple("x"), [0, 0, 0]);
  assert.deepEqual(gc.triple([Infinity]), [0, 0, 0]);
  assert.equal(gc.interpName(""), gc.MAIN);
  assert.equal(gc.interpName("sub"), "sub");
});
