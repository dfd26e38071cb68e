// Capacity tab: the held data. One row per process incarnation keeps its
// columns (one per tick, parallel arrays by key, as tab.snapshot and
// tab.frame send them), plus the small value helpers every other capacity_*
// module uses. Separate so that run detection, drawing, tooltips and cards
// share one idea of a row without depending on the tab's state.

import { num } from "../util.js";

export const KEYS = ["t", "period", "capacity", "cpu", "queue_mean", "daemon_mean", "requests", "gil_wait_mean",
  "application_mean", "busy", "slot_cpu", "completed", "elapsed", "longest"];
const ARRAY_KEYS = new Set(["busy", "slot_cpu", "completed", "elapsed", "longest"]);
export const IDLE = 0.02; // busy fractions below this draw nothing

/** Slot `j` of a (trailing-zero trimmed) slot array, 0 when absent. */
export function at(values, j) {
  return Array.isArray(values) ? num(values[j]) ?? 0 : 0;
}

export function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

/** A threshold as people write it: "500 ms", "1 s", "2.5 s". */
export function seconds(v) {
  return v < 1 ? Math.round(v * 1000) + " ms" : Number(v.toFixed(3)) + " s";
}

export function cut(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

// -- rows ----------------------------------------------------------------------------------------

export function newRow(pid, incarnation, group) {
  const cols = {};
  for (const key of KEYS) cols[key] = [];
  return { key: pid + ":" + incarnation, pid, incarnation, group: typeof group === "string" ? group : "",
    slots: 0, threshold: 0, cols, version: 0, runs: null, lastTick: 0, ended: null };
}

/** Append one column (values by key, from a snapshot or a live tick) if it is newer than the row's last. */
export function pushColumn(row, get) {
  const t = num(get("t"));
  const n = row.cols.t.length;
  if (t === null || (n && t <= row.cols.t[n - 1])) return;
  for (const key of KEYS) {
    const v = get(key);
    row.cols[key].push(ARRAY_KEYS.has(key) ? (Array.isArray(v) ? v : []) : key === "t" ? t : num(v));
  }
  row.lastTick = t;
  row.version += 1;
}

export function dropBefore(row, cutoff) {
  let drop = 0;
  while (drop < row.cols.t.length && row.cols.t[drop] < cutoff) drop += 1;
  if (!drop) return;
  for (const key of KEYS) row.cols[key].splice(0, drop);
  row.version += 1;
}

/** Where a slow-request record ends: its start plus duration, or "now" while it is active. */
export function recordEnd(record, now) {
  const start = num(record.start) ?? 0;
  const end = start + (num(record.duration) ?? 0);
  return record.state === "active" ? Math.max(end, now) : end;
}
