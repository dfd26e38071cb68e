// Processes tab, the data model: rows (one per process incarnation), lifecycle events
// and restart buckets, and how tab.snapshot, tab.frame and the registry records of
// host.snapshot / host.frame fold into them (docs/live-protocol.md, "processes").
// Separate because it is plain data with no DOM or canvas: the bars, the restart
// chart, the log and the table all read the same model.

import { TICK_COLUMNS } from "../metrics.js";
import { num } from "../util.js";

export const CATEGORIES = ["planned", "tuning", "unplanned"];
export const MAX_EVENTS = 2000; // what the console sends at most; older events leave first
const KINDS = new Set(["started", "stopping", "stopped"]);
const MAX_ROWS = 1000;
const STATES = new Set(["running", "stopping", "stopped", "gone"]);

// -- small helpers ------------------------------------------------------------------------

export function text(value) {
  return typeof value === "string" ? value : "";
}

export function keyOf(pid, inc) {
  return pid + ":" + inc;
}

export function rowStart(row) {
  return row.started ?? row.first_seen ?? null;
}

/** When a bar ends: STOPPED, or the last sample of a silent process; null while it lives. */
export function rowEnd(row) {
  if (row.stopped != null) return row.stopped;
  return row.state === "gone" ? (row.last_seen ?? null) : null;
}

export function stoppedAt(row) {
  return row.stopping ?? row.stopped ?? null;
}

/** Group, then first seen, then pid: a group's processes stay together in start order. */
export function byGroupStartPid(a, b) {
  return a.group.localeCompare(b.group) || (rowStart(a) ?? 0) - (rowStart(b) ?? 0) || a.pid - b.pid || a.inc - b.inc;
}

// -- the model: rows (one per process incarnation), events, restart buckets ------------------

/** Fold an event into its row: the same rule as the console's `apply_event`. */
function applyEvent(row, e) {
  row[e.kind] = e.t;
  row.first_seen = Math.min(row.first_seen ?? e.t, e.t);
  row.last_seen = Math.max(row.last_seen ?? e.t, e.t);
  if (e.kind === "started") {
    if (row.parent == null && e.parent != null) row.parent = e.parent;
    return;
  }
  if (e.reason || !row.reason) {
    row.reason = e.reason ?? null;
    row.category = e.category;
  }
  if (e.kind === "stopping") {
    row.at_decision = e.in_flight ?? null;
    if (row.state === "running" || row.state == null) row.state = "stopping";
  } else {
    Object.assign(row, { at_exit: e.in_flight ?? null, uptime: e.uptime ?? null, requests: e.requests ?? null,
      drain: e.drain ?? null, state: "stopped" });
  }
}

function validEvent(e) {
  return e && typeof e === "object" && KINDS.has(e.kind) && num(e.t) !== null
    && Number.isInteger(e.pid) && Number.isInteger(e.inc);
}

export function createModel() {
  return {
    rows: new Map(), events: new Map(), buckets: new Map(), counted: new Map(), bucket: 60,
    rowsTotal: null, eventsTotal: null, historyFrom: null, loaded: false, version: 0, eventVersion: 0,
  };
}

function addEvent(model, e) {
  const id = keyOf(e.pid, e.inc) + ":" + e.kind;
  if (model.events.has(id)) return;
  model.events.set(id, e);
  model.eventVersion += 1;
  const key = keyOf(e.pid, e.inc);
  let row = model.rows.get(key);
  if (!row) {
    row = { key, pid: e.pid, inc: e.inc, group: text(e.group), state: "running" };
    model.rows.set(key, row);
  }
  applyEvent(row, e);
  if (e.kind !== "started") countRestart(model, key, e.t, e.category);
}

/** One restart per process (its STOPPING, else its STOPPED), in its time bucket. */
function countRestart(model, key, t, category) {
  if (model.counted.has(key)) return;
  model.counted.set(key, t);
  const start = Math.floor(t / model.bucket) * model.bucket;
  const bucket = model.buckets.get(start) ?? [start, 0, 0, 0];
  bucket[1 + Math.max(0, CATEGORIES.indexOf(category))] += 1;
  model.buckets.set(start, bucket);
}

/** A registry record (host.snapshot / host.frame) updates its row; a live process gets one. */
export function mergeRecord(model, record, since) {
  if (!record || typeof record !== "object" || !Number.isInteger(record.pid)) return;
  const key = keyOf(record.pid, record.incarnation);
  let row = model.rows.get(key);
  if (!row) {
    const live = record.state === "running" || record.state === "stopping";
    if (!live && !(num(record.last_seen) !== null && record.last_seen >= since)) return;
    if (record.state === "stopped" && model.loaded) return; // its events tell its story
    row = { key, pid: record.pid, inc: record.incarnation, group: text(record.group), state: record.state };
    model.rows.set(key, row);
  }
  // STOPPED is final; a "running" record may lag a STOPPING event by a few seconds.
  if (STATES.has(record.state) && row.state !== "stopped" && !(record.state === "running" && row.state === "stopping")) {
    row.state = record.state;
  }
  for (const name of ["first_seen", "started", "stopping", "stopped", "interval"]) {
    if (row[name] == null && num(record[name]) !== null) row[name] = record[name];
  }
  if (num(record.last_seen) !== null) row.last_seen = Math.max(row.last_seen ?? 0, record.last_seen);
  const parent = record.identity && num(record.identity.process_parent_pid);
  if (row.parent == null && parent !== null) row.parent = parent;
}

/** Drop what left the window, and keep the held data under its caps. */
export function trim(model, since) {
  const before = model.events.size;
  for (const [id, e] of model.events) if (e.t < since) model.events.delete(id);
  if (model.events.size > MAX_EVENTS) {
    const oldest = Array.from(model.events).sort((a, b) => a[1].t - b[1].t);
    for (const [id] of oldest.slice(0, model.events.size - MAX_EVENTS)) model.events.delete(id);
  }
  if (model.events.size !== before) model.eventVersion += 1;
  for (const [key, row] of model.rows) {
    const end = rowEnd(row);
    if (end !== null && end < since) model.rows.delete(key);
  }
  if (model.rows.size > MAX_ROWS) {
    const ended = Array.from(model.rows.values()).filter((r) => rowEnd(r) !== null)
      .sort((a, b) => rowEnd(a) - rowEnd(b));
    for (const row of ended.slice(0, model.rows.size - MAX_ROWS)) model.rows.delete(row.key);
  }
  for (const [start] of model.buckets) if (start + model.bucket <= since) model.buckets.delete(start);
  for (const [key, t] of model.counted) if (t < since - model.bucket) model.counted.delete(key);
}

// -- the messages ----------------------------------------------------------------------------

/**
 * A new model from a tab.snapshot. `held` is the model the page had: its live rows
 * (from the registry) are as new as the snapshot, or newer, so they stay.
 */
export function modelFromSnapshot(message, held) {
  const registry = Array.from(held.rows.values());
  const model = createModel();
  model.bucket = num(message.restarts && message.restarts.bucket) || 60;
  for (const row of Array.isArray(message.rows) ? message.rows : []) {
    if (!row || typeof row !== "object" || typeof row.key !== "string") continue;
    const copy = { ...row, group: text(row.group) };
    model.rows.set(row.key, copy);
    if (stoppedAt(copy) !== null) model.counted.set(row.key, stoppedAt(copy));
  }
  for (const b of (message.restarts && Array.isArray(message.restarts.buckets)) ? message.restarts.buckets : []) {
    if (Array.isArray(b) && b.length === 4 && b.every((v) => num(v) !== null)) model.buckets.set(b[0], b.slice());
  }
  for (const e of Array.isArray(message.events) ? message.events : []) {
    if (validEvent(e)) model.events.set(keyOf(e.pid, e.inc) + ":" + e.kind, e);
  }
  model.rowsTotal = num(message.rows_total);
  model.eventsTotal = num(message.events_total);
  model.historyFrom = num(message.history_from);
  model.loaded = true;
  // the registry the page already holds is as new as the snapshot, or newer
  for (const row of registry) if (!model.rows.has(row.key) && (row.state === "running" || row.state === "stopping")) model.rows.set(row.key, row);
  return model;
}

/** A tab.frame: the second's events (those of the shown group) and each process's newest tick. */
export function applyFrame(model, message, inGroup) {
  for (const e of Array.isArray(message.events) ? message.events : []) {
    if (validEvent(e) && inGroup(e.group)) addEvent(model, e);
  }
  for (const tick of Array.isArray(message.ticks) ? message.ticks : []) {
    const row = Array.isArray(tick) ? model.rows.get(keyOf(tick[0], tick[1])) : null;
    if (!row) continue; // not in this group, or not yet known: the registry brings it
    // [pid, incarnation, ...TICK_COLUMNS]: capacity, cpu, memory_rss, throughput (docs/metrics.md)
    TICK_COLUMNS.forEach((name, j) => { row[name] = num(tick[2 + j]); });
    if (num(message.t) !== null) row.last_seen = Math.max(row.last_seen ?? 0, message.t);
  }
}
