// Capacity tab: slow runs. Finds a row's slow runs from its slot timings
// alone and pairs each with the slow-request record that covers it. Separate
// from the tab because it is pure: the threshold is a view option, so runs
// are found again here whenever it changes, without the console.

import { num } from "../util.js";
import { at, recordEnd } from "./capacity_model.js";

/**
 * Runs of one row at `threshold`: pass 1 follows a slot's running request
 * across ticks (age at or above the threshold and growing), ended by the
 * tick whose longest-finished value shows it completing; pass 2 takes a
 * single tick whose longest request passed the threshold between ticks.
 */
export function detectRuns(row, threshold) {
  const { t, period, elapsed, longest } = row.cols;
  const runs = [];
  const last = t.length - 1;
  for (let slot = 0; slot < row.slots; slot += 1) {
    const ended = new Set();
    let run = null;
    for (let c = 0; c <= last; c += 1) {
      const e = at(elapsed[c], slot);
      const m = at(longest[c], slot);
      if (run && e >= threshold && e > run.age) {
        run.age = e;
        continue;
      }
      if (run) {
        if (m >= threshold && m >= run.age) { // finished during this tick
          run.end = run.start + m;
          run.finished = true;
          ended.add(c);
        } else {
          run.end = t[c - 1]; // vanished (restart, lost ticks): no known end
        }
        runs.push(run);
        run = null;
      }
      if (e >= threshold) run = { slot, start: t[c] - e, end: t[c], age: e, finished: false, active: false };
    }
    if (run) {
      run.active = true;
      runs.push(run);
    }
    for (let c = 0; c <= last; c += 1) {
      const m = at(longest[c], slot);
      if (ended.has(c) || m < threshold) continue;
      const end = t[c] - (num(period[c]) ?? 1) / 2; // finished somewhere in the tick
      runs.push({ slot, start: end - m, end, age: m, finished: true, active: false, between: true });
    }
  }
  return runs;
}

/** The record of the same pid, incarnation and thread (slot + 1) overlapping the run most (±1 s). */
export function matchRecord(row, run, byThread, now) {
  const candidates = byThread.get(row.key + ":" + (run.slot + 1)) || [];
  let best = null;
  let bestOverlap = 0;
  for (const record of candidates) {
    const start = num(record.start);
    if (start === null) continue;
    const overlap = Math.min(recordEnd(record, now), run.end + 1) - Math.max(start, run.start - 1);
    if (overlap > bestOverlap) {
      best = record;
      bestOverlap = overlap;
    }
  }
  return best;
}
