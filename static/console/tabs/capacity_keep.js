// Capacity tab: which rows are kept, and how a row learns that its process ended.
// A process that stopped (STOPPED in tab.frame, or the registry says so) or went
// silent (the registry's "gone") keeps its band, marked ended, until its end leaves
// the span: the process that just died is the one people want to look at. Held rows
// are bounded like the console's lists: live rows are never dropped for ended ones;
// past MAX_ROWS the ended rows that ended first go, and are counted so the page can
// say how many ended processes it does not show. Pure (no DOM): node's tests import
// it (tests/js/capacity_keep.test.mjs).

import { num } from "../util.js";
import { dropBefore } from "./capacity_model.js";

/** Rows held at most: what one message lists (console/live/tabs/base.py, MAX_PROCESSES). */
export const MAX_ROWS = 1000;
/** Ended rows dropped over MAX_ROWS that are remembered (for the count) at most. */
const MAX_DROPPED = 10 * MAX_ROWS;
const ALIVE = new Set(["running", "stopping"]);

/**
 * Mark `row` ended: `state` "stopped" (final) or "gone" (silent; it may speak again);
 * `t` when (STOPPED's stamp, or the last sample), `reason` the shutdown reason if any.
 * A new object each time: a paused view's copy of the row keeps what it showed.
 */
export function markEnded(row, state, t, reason = null) {
  const when = num(t);
  if (when === null || (row.ended && row.ended.state === "stopped")) return;
  if (row.ended && row.ended.state === state && row.ended.t === when) return;
  row.ended = { state, t: when, reason: typeof reason === "string" && reason ? reason : null };
}

/** A tick newer than its silence (`t`), or a live registry record (no `t`): the row was not gone after all. */
export function revive(row, t = null) {
  if (row.ended && row.ended.state === "gone" && (t === null || t > row.ended.t)) row.ended = null;
}

/** What a registry record (host.snapshot / host.frame `processes`) says of its row. */
export function noteRecord(row, record) {
  const state = String(record.state ?? "");
  if (state === "stopped") {
    markEnded(row, "stopped", num(record.stopped) ?? num(record.last_seen), record.shutdown_reason);
  } else if (state === "gone") markEnded(row, "gone", num(record.last_seen));
  else if (ALIVE.has(state)) revive(row);
}

/** The registry's records by "pid:incarnation" (the page's state.processes). */
export function registryOf(processes) {
  const out = new Map();
  for (const p of Array.isArray(processes) ? processes : []) {
    if (p && typeof p === "object") out.set(p.pid + ":" + p.incarnation, p);
  }
  return out;
}

/** Is `row` on screen at `now` over `span` s? Ended: until its end leaves; else alive, or too new to be listed. */
export function shown(row, registry, now, span) {
  if (row.ended) return row.ended.t >= now - span;
  const known = registry.get(row.key);
  return known ? ALIVE.has(String(known.state ?? "")) : now - row.lastTick < 10;
}

/**
 * Trim the held `rows` (Map key -> row) to `cutoff`: old columns go, an ended row goes once
 * its end is older, a row the registry does not know and that has no column goes; past
 * MAX_ROWS the ended rows that ended first go, remembered in `dropped` (key -> end).
 */
export function trimRows(rows, cutoff, registry, dropped) {
  for (const [key, row] of rows) {
    dropBefore(row, cutoff);
    const known = registry.get(key);
    if (known) noteRecord(row, known);
    if (row.ended ? row.ended.t < cutoff : !known && !row.cols.t.length) rows.delete(key);
  }
  if (rows.size > MAX_ROWS) {
    const ended = Array.from(rows.values()).filter((r) => r.ended).sort((a, b) => a.ended.t - b.ended.t);
    for (const row of ended.slice(0, rows.size - MAX_ROWS)) {
      rows.delete(row.key);
      dropped.set(row.key, row.ended.t);
    }
  }
  for (const [key, t] of dropped) if (t < cutoff || dropped.size > MAX_DROPPED) dropped.delete(key);
}

/**
 * Ended processes in the span the page does not show: those it dropped (`dropped`), and
 * those the snapshot left out (`omitted`: {count, until}, counted until the last would leave).
 */
export function endedNotShown(dropped, omitted, now, span) {
  let n = 0;
  for (const t of dropped.values()) if (t >= now - span) n += 1;
  if (omitted && omitted.until >= now - span) n += omitted.count;
  return n;
}
