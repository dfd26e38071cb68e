// static/console/tabs/overview_model.js: the Overview draws complete seconds only (a
// partial second never dips the end of a line), marks no hole for the seconds still on
// their way, and its readouts show a frame's `recent` with the span it covers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { LIVE_LAG, PUBLISH_DELAY, emptyStore, headline, marksOf, snapshotStore, takeFrame } =
  await importStatic("tabs/overview_model.js");

const T0 = 1796349300;
const steady = (extra = {}) => ({ throughput: 90, capacity: 0.2, cpu: 1.3, memory_rss: 480e6, ticks: 6,
  request_p50: 0.01, request_p95: 0.05, request_p99: 0.1, loss: 0, ...extra });

/** A host.snapshot of `n` steady seconds from T0, taken at `now`. */
function snapshot(n, now, step = 1) {
  const t = Array.from({ length: n }, (_, i) => T0 + i * step);
  const series = { t };
  for (const [key, value] of Object.entries(steady())) series[key] = t.map(() => value);
  return { type: "host.snapshot", step, now, series };
}

const frame = (t, metrics, partial = false) => ({ type: "host.frame", t, groups: { "*": metrics, app0: metrics },
  ...(partial ? { partial: true } : {}) });

test("a partial second is not drawn: the line ends at the newest complete second", () => {
  const s = emptyStore(1);
  assert.equal(takeFrame(s, frame(T0, steady()), "*"), true);
  // the next second, a third of the way through: a third of the requests, CPU and RSS
  assert.equal(takeFrame(s, frame(T0 + 1, steady({ throughput: 30, cpu: 0.4, memory_rss: 160e6 }), true), "*"), false);
  assert.deepEqual(s.t, [T0]);
  assert.deepEqual(s.throughput, [90]);
  assert.equal(takeFrame(s, frame(T0 + 1, steady({ throughput: 88 })), "*"), true);
  assert.deepEqual(s.t, [T0, T0 + 1]);
  assert.deepEqual(s.throughput, [90, 88]);
  // a resend of a complete second replaces it
  takeFrame(s, frame(T0 + 1, steady({ throughput: 89 })), "*");
  assert.deepEqual(s.throughput, [90, 89]);
});

test("the snapshot's seconds not yet sent complete are left for their frames", () => {
  const now = T0 + 60.4;
  const s = snapshotStore(snapshot(61, now));
  const newest = s.t[s.t.length - 1];
  assert.ok(newest + PUBLISH_DELAY <= now, "every second kept had been sent complete");
  assert.ok(newest + 1 + PUBLISH_DELAY > now, "and no second sent complete was left out");
  // the next frames fill in what was left out, with no gap between them
  for (let t = newest + 1; t <= Math.floor(now) - PUBLISH_DELAY + 3; t += 1) takeFrame(s, frame(t, steady()), "*");
  for (let i = 1; i < s.t.length; i += 1) assert.equal(s.t[i] - s.t[i - 1], 1);
  assert.ok(s.throughput.every((v) => v === 90));
  assert.equal(snapshotStore({ type: "host.snapshot", series: {} }), null, "another tab's snapshot");
});

test("a longer step folds the complete seconds of its newest point, never a part-filled bucket", () => {
  const now = T0 + 600 + 4.2; // the bucket from T0 + 600 holds 5 seconds of 10
  const s = snapshotStore(snapshot(61, now, 10));
  assert.equal(s.t[s.t.length - 1], T0 + 590);
  takeFrame(s, frame(T0 + 601, steady({ throughput: 80 })), "*");
  takeFrame(s, frame(T0 + 602, steady({ throughput: 100 })), "*");
  assert.equal(s.t[s.t.length - 1], T0 + 600);
  assert.equal(s.throughput[s.throughput.length - 1], 90, "the mean of the seconds it holds");
  assert.equal(s.weight[s.weight.length - 1], 2);
});

test("the newest seconds are not a hole while they are on their way; silence is", () => {
  const s = emptyStore(1);
  for (let t = T0; t < T0 + 30; t += 1) takeFrame(s, frame(t, steady()), "*");
  const covered = T0 + 30; // the newest complete second ends here
  // at the moment the next complete second is due, and a little later on a busy console
  for (const now of [covered + PUBLISH_DELAY, covered + PUBLISH_DELAY + 1.9]) {
    assert.deepEqual(marksOf(s, [now - 60, now], T0).holes, [], `now ${now - covered} s past the last`);
  }
  const now = covered + 20;
  assert.deepEqual(marksOf(s, [now - 60, now], T0).holes, [[covered, now - LIVE_LAG]]);
  // before the host existed nothing is missing
  assert.deepEqual(marksOf(s, [T0 - 100, T0 + 31], T0).holes, []);
});

test("readouts: the group's headline over the span it states", () => {
  const recent = { span: 10, since: T0, until: T0 + 10, groups: { "*": steady(), app0: steady({ throughput: 40 }) } };
  const all = headline(recent, "*", T0 + 10 + PUBLISH_DELAY);
  assert.equal(all.values.throughput, 90);
  assert.equal(all.span, "last 10 s");
  assert.match(all.title, /complete seconds \d\d:\d\d:\d\d – \d\d:\d\d:\d\d/);
  assert.equal(headline(recent, "app0", T0 + 12).values.throughput, 40);
  // a group without data in the span: a dash, with the span still said
  const none = headline(recent, "app1", T0 + 12);
  assert.equal(none.values, null);
  assert.equal(none.span, "last 10 s");
  // no complete second yet, or none sent: no values, and says so
  for (const missing of [null, undefined, {}, { span: "10" }]) assert.equal(headline(missing, "*", T0).values, null);
  // a headline left behind (the agent went away) says when its span ended
  assert.match(headline(recent, "*", T0 + 60).span, /^10 s to \d\d:\d\d:\d\d$/);
});
