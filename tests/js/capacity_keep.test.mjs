// The capacity tab's held rows (static/console/tabs/capacity_keep.js): a process that
// stopped or went silent keeps its band, marked ended, until its end leaves the span;
// the rows held stay bounded, live ones first, and the ended ones let go are counted.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const keep = await importStatic("tabs/capacity_keep.js");
const { newRow, pushColumn } = await importStatic("tabs/capacity_model.js");

/** A row of pid `pid` with a tick every second over [from, to]. */
function row(pid, from, to) {
  const r = newRow(pid, 1, "app0");
  for (let t = from; t <= to; t += 1) pushColumn(r, (key) => ({ t, period: 1, busy: [0.5] })[key] ?? null);
  return r;
}

const registry = (...records) => keep.registryOf(records.map(([pid, state, more]) => ({ pid, incarnation: 1, state, ...more })));

test("a stopped process keeps its band and every column until its end leaves the span", () => {
  const rows = new Map([["1:1", row(1, 100, 160)], ["2:1", row(2, 100, 130)]]);
  keep.markEnded(rows.get("2:1"), "stopped", 130.2, "maximum_requests");
  const live = registry([1, "running"], [2, "running"]); // the registry lags the STOPPED by seconds
  keep.trimRows(rows, 160 - 62, live, new Map());
  const stopped = rows.get("2:1");
  assert.deepEqual(stopped.ended, { state: "stopped", t: 130.2, reason: "maximum_requests" });
  assert.equal(stopped.cols.t.length, 31, "its columns in the span are all there");
  assert.equal(keep.shown(stopped, live, 160, 60), true);
  assert.equal(keep.shown(stopped, live, 190.2, 60), true);
  assert.equal(keep.shown(stopped, live, 190.3, 60), false, "its end left the span");
  keep.trimRows(rows, 191 - 62, live, new Map());
  assert.ok(rows.has("2:1"), "held a little longer than shown: the trim has slack");
  keep.trimRows(rows, 200 - 60, live, new Map());
  assert.deepEqual(Array.from(rows.keys()), ["1:1"]);
});

test("STOPPED is final; gone comes from the registry and goes when the process speaks again", () => {
  const r = row(3, 100, 110);
  keep.noteRecord(r, { state: "gone", last_seen: 110 });
  assert.deepEqual(r.ended, { state: "gone", t: 110, reason: null });
  keep.revive(r, 109);
  assert.equal(r.ended.state, "gone", "a late tick from before its silence changes nothing");
  keep.revive(r, 111);
  assert.equal(r.ended, null);
  keep.noteRecord(r, { state: "stopped", stopped: 112.5, last_seen: 112.5, shutdown_reason: "restart_interval" });
  keep.noteRecord(r, { state: "gone", last_seen: 115 });
  keep.noteRecord(r, { state: "running", last_seen: 112 });
  keep.revive(r, 120);
  assert.deepEqual(r.ended, { state: "stopped", t: 112.5, reason: "restart_interval" });
  const unknown = row(4, 100, 110);
  keep.noteRecord(unknown, { state: "stopped", last_seen: 110.5 }); // STOPPED's stamp missing: its last sample
  assert.equal(unknown.ended.t, 110.5);
});

test("over MAX_ROWS the ended rows that ended first go, counted until they would have left", () => {
  const rows = new Map();
  const n = keep.MAX_ROWS + 5;
  for (let pid = 1; pid <= n; pid += 1) rows.set(pid + ":1", row(pid, 100, 110));
  for (let pid = 1; pid <= 8; pid += 1) keep.markEnded(rows.get(pid + ":1"), "stopped", 100 + pid);
  const dropped = new Map();
  keep.trimRows(rows, 90, new Map(), dropped);
  assert.equal(rows.size, keep.MAX_ROWS);
  assert.deepEqual(Array.from(dropped.keys()), ["1:1", "2:1", "3:1", "4:1", "5:1"]);
  assert.ok(rows.has("6:1") && rows.has("9:1") && rows.has(n + ":1"), "live rows are never dropped for ended ones");
  assert.equal(keep.endedNotShown(dropped, null, 110, 60), 5);
  assert.equal(keep.endedNotShown(dropped, { count: 7, until: 120 }, 163.5, 60), 2 + 7);
  assert.equal(keep.endedNotShown(dropped, { count: 7, until: 120 }, 181, 60), 0);
  keep.trimRows(rows, 103.5, new Map(), dropped);
  assert.deepEqual(Array.from(dropped.keys()), ["4:1", "5:1"]);
});
