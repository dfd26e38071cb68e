// GC tab, the data model: per-second buckets of the selection, per-series
// checkpoints of the cumulative counters, the newest pause events, and how
// tab.snapshot and tab.frame fold into them (docs/live-protocol.md, "gc"); then
// the view (what is drawn) and the totals of a time range.
// Separate because it is plain data with no DOM or canvas: the uPlot charts,
// the hand-drawn canvases, the chips and the table all read the same model.
//
// Everything held is additive and keyed by time, so live seconds append and old
// ones fall off the window without the raw data: rates are differences of
// checkpoints, and a bucket's pause histogram is sparse ({bucket: count}).

import { BUCKETS, addInto } from "../hdr.js";
import { num } from "../util.js";

export const MAX_EVENTS = 2000; // as the console sends at most (console/live/tabs/gc.py)
const CHECKPOINT = 10; // seconds between a series' kept counter readings
export const CURRENT = 15; // a series heard from within this many seconds is current (config row)
const SNAP = 10; // seconds: a time axis starting this close to the window's starts with it
export const MAIN = "(main)"; // the interp option's name for the main interpreter ("" on the wire)
export const GEN_COLORS = ["#3b82f6", "#e8912d", "#d63b3b"];
export const GENS = [0, 1, 2];

// -- helpers (what is not a finite number reads 0: counters, times, ids) --------------------

export function text(value) {
  return typeof value === "string" ? value : "";
}

export function triple(value) {
  return Array.isArray(value) ? GENS.map((g) => num(value[g]) ?? 0) : [0, 0, 0];
}

export const interpName = (n) => (n === "" ? MAIN : n);

/** The bucket of a duration in seconds (the inverse of bounds() in ../hdr.js). */
export function bucketIndex(seconds) {
  const ms = seconds * 1000;
  if (!(ms >= 1)) return 0;
  if (ms >= 65536) return BUCKETS - 1;
  const octave = Math.floor(Math.log2(ms));
  return 4 * octave + Math.min(3, Math.floor((ms / 2 ** octave - 1) * 4));
}

function newBucket(t) {
  return { t, c: [0, 0, 0], cd: 0, un: 0, dr: 0, n: 0, pause: 0, pmin: null, pmax: null, h: {} };
}

function parseRecord(r) {
  if (!r || typeof r !== "object") return null;
  return {
    p: num(r.p) ?? 0, i: num(r.i) ?? 0, s: num(r.s) ?? 0, t: num(r.t) ?? 0, g: text(r.g), n: text(r.n),
    on: r.on ? 1 : 0, fz: num(r.fz) ?? 0, dr: num(r.dr) ?? 0,
    th: triple(r.th), cnt: triple(r.cnt), col: triple(r.col), cd: triple(r.cd), un: triple(r.un),
  };
}

function parseEvent(e) {
  if (!Array.isArray(e) || e.length < 10) return null;
  return {
    t: num(e[0]) ?? 0, d: Math.max(0, num(e[1]) ?? 0), gen: Math.min(2, Math.max(0, num(e[2]) ?? 0)),
    cd: num(e[3]) ?? 0, un: num(e[4]) ?? 0, p: num(e[5]) ?? 0, i: num(e[6]) ?? 0, n: text(e[7]), g: text(e[8]),
    s: num(e[9]) ?? 0,
  };
}

const sum = (a) => a.reduce((x, y) => x + y, 0);

/** A series' counters at one moment, with its running sums of per-tick values. */
function checkpoint(rec, acc) {
  return { t: rec.t, col: rec.col.slice(), cd: sum(rec.cd), un: sum(rec.un), dr: acc.dr, pause: acc.pause, n: acc.n };
}

export function emptyData() {
  return {
    loaded: false, span: 300, since: null, capped: false, limited: false, omitted: 0, totals: null,
    // pids and interpreters map to when they were last seen: a week of restarts must not pile up
    buckets: new Map(), series: new Map(), events: [], seqs: new Map(), pids: new Map(), interps: new Map(),
  };
}

// -- data in ------------------------------------------------------------------------------

function bucketAt(data, t) {
  const second = Math.floor(t);
  if (data.since !== null && second < Math.floor(data.since)) return null;
  let b = data.buckets.get(second);
  if (!b) {
    b = newBucket(second);
    data.buckets.set(second, b);
  }
  return b;
}

function addEventToBucket(b, d) {
  b.n += 1;
  b.pause += d;
  b.pmin = b.pmin === null ? d : Math.min(b.pmin, d);
  b.pmax = b.pmax === null ? d : Math.max(b.pmax, d);
  const k = bucketIndex(d);
  b.h[k] = (b.h[k] || 0) + 1;
}

function seriesKey(x) {
  return `${x.p}:${x.i}:${x.n}`;
}

function addRecord(data, rec) {
  const key = seriesKey(rec);
  const s = data.series.get(key);
  if (!s) {
    const acc = { dr: 0, pause: 0, n: 0 };
    data.series.set(key, { key, p: rec.p, i: rec.i, n: rec.n, g: rec.g, last: rec, acc, cps: [checkpoint(rec, acc)] });
    return;
  }
  if (rec.t <= s.last.t) return; // already counted
  const b = bucketAt(data, rec.t);
  if (b) {
    GENS.forEach((g) => { b.c[g] += Math.max(0, rec.col[g] - s.last.col[g]); });
    b.cd += Math.max(0, sum(rec.cd) - sum(s.last.cd));
    b.un += Math.max(0, sum(rec.un) - sum(s.last.un));
    b.dr += rec.dr;
  }
  s.acc.dr += rec.dr;
  s.last = rec;
  s.g = rec.g;
  // The last checkpoint follows the present; a new one starts every CHECKPOINT seconds.
  const cps = s.cps;
  if (cps.length < 2 || cps[cps.length - 1].t - cps[cps.length - 2].t >= CHECKPOINT) cps.push(checkpoint(rec, s.acc));
  else cps[cps.length - 1] = checkpoint(rec, s.acc);
}

function addEvent(data, ev) {
  const b = bucketAt(data, ev.t);
  if (b) addEventToBucket(b, ev.d);
  data.events.push(ev);
  const s = data.series.get(seriesKey(ev));
  if (s) {
    s.acc.pause += ev.d;
    s.acc.n += 1;
    s.cps[s.cps.length - 1] = { ...s.cps[s.cps.length - 1], pause: s.acc.pause, n: s.acc.n };
  }
}

/** The data of a tab.snapshot; `now` dates its pids and interpreters when it carries no time. */
export function loadSnapshot(msg, now) {
  const d = emptyData();
  d.loaded = true;
  d.span = num(msg.span) || 300;
  d.since = num(msg.since) || null;
  d.capped = Boolean(msg.capped);
  d.limited = Boolean(msg.limited);
  const listed = Array.isArray(msg.series) ? msg.series.length : 0;
  d.omitted = Math.max(0, (typeof msg.series_total === "number" ? msg.series_total : listed) - listed);
  d.totals = msg.window_totals && typeof msg.window_totals === "object" ? msg.window_totals : null;
  const seen = num(msg.now) || now;
  for (const p of Array.isArray(msg.pids) ? msg.pids : []) d.pids.set(num(p) ?? 0, seen);
  for (const n of Array.isArray(msg.interps) ? msg.interps : []) d.interps.set(text(n), seen);
  if (msg.seqs && typeof msg.seqs === "object") for (const [k, v] of Object.entries(msg.seqs)) d.seqs.set(k, num(v) ?? 0);
  const cols = msg.buckets && typeof msg.buckets === "object" ? msg.buckets : {};
  const col = (name, i) => (Array.isArray(cols[name]) ? cols[name][i] : null);
  for (let i = 0; i < (Array.isArray(cols.t) ? cols.t.length : 0); i += 1) {
    const b = newBucket(num(col("t", i)) ?? 0);
    b.c = GENS.map((g) => num(col("c" + g, i)) ?? 0);
    b.cd = num(col("cd", i)) ?? 0;
    b.un = num(col("un", i)) ?? 0;
    b.dr = num(col("dr", i)) ?? 0;
    b.n = num(col("n", i)) ?? 0;
    b.pause = num(col("pause", i)) ?? 0;
    b.pmin = typeof col("pmin", i) === "number" ? col("pmin", i) : null;
    b.pmax = typeof col("pmax", i) === "number" ? col("pmax", i) : null;
    const h = col("h", i);
    if (h && typeof h === "object") for (const [k, v] of Object.entries(h)) b.h[Number(k)] = num(v) ?? 0;
    d.buckets.set(b.t, b);
  }
  for (const entry of Array.isArray(msg.series) ? msg.series : []) {
    const first = parseRecord(entry && entry.first);
    const last = parseRecord(entry && entry.last);
    if (!first || !last) continue;
    const acc = { dr: num(entry.dropped) ?? 0, pause: num(entry.pause) ?? 0, n: num(entry.events) ?? 0 };
    const cps = [checkpoint(first, { dr: 0, pause: 0, n: 0 })];
    if (last.t > first.t) cps.push(checkpoint(last, acc));
    const key = seriesKey(last);
    d.series.set(key, { key, p: last.p, i: last.i, n: last.n, g: last.g, last, acc, cps });
  }
  d.events = (Array.isArray(msg.events) ? msg.events : []).map(parseEvent).filter(Boolean);
  return d;
}

function isDuplicate(data, x) {
  const seen = data.seqs.get(`${x.p}:${x.i}`);
  return seen !== undefined && x.s <= seen;
}

/**
 * Fold a tab.frame into loaded data: records of `group` ("*": all) name the pids and
 * interpreters to choose from; those and the events that `wanted(g, p, n)` accepts
 * are counted. Returns how many events were added.
 */
export function addFrame(data, msg, group, wanted) {
  let added = 0;
  for (const raw of Array.isArray(msg.records) ? msg.records : []) {
    const rec = parseRecord(raw);
    if (!rec || isDuplicate(data, rec) || !(group === "*" || rec.g === group)) continue;
    data.pids.set(rec.p, rec.t);
    data.interps.set(rec.n, rec.t);
    if (wanted(rec.g, rec.p, rec.n)) addRecord(data, rec);
  }
  for (const raw of Array.isArray(msg.events) ? msg.events : []) {
    const ev = parseEvent(raw);
    if (!ev || isDuplicate(data, ev) || !wanted(ev.g, ev.p, ev.n)) continue;
    addEvent(data, ev);
    added += 1;
  }
  return added;
}

/** Keep only the window ending at `now`: memory stays flat however long the page is open. */
export function trim(data, now) {
  const cutoff = now - data.span;
  for (const t of data.buckets.keys()) if (t < Math.floor(cutoff)) data.buckets.delete(t);
  if (data.events.length && (data.events[0].t < cutoff || data.events.length > MAX_EVENTS)) {
    data.events = data.events.filter((e) => e.t >= cutoff);
    if (data.events.length > MAX_EVENTS) {
      data.events.sort((a, b) => a.t - b.t);
      data.events.splice(0, data.events.length - MAX_EVENTS);
    }
  }
  for (const choices of [data.pids, data.interps]) {
    for (const [value, t] of choices) if (t < cutoff) choices.delete(value);
  }
  for (const [key, s] of data.series) {
    if (s.last.t < cutoff) data.series.delete(key);
    else while (s.cps.length > 2 && s.cps[1].t <= cutoff) s.cps.shift();
  }
}

// -- the view: what is drawn --------------------------------------------------------------

/**
 * Where the time axis starts: the window's start, or later where the first GC data
 * of the selection is (a host, agent or process that started since). Before that
 * nothing could have been collected, so an empty stretch there would say nothing;
 * after it, an empty stretch is a process that ran and did not collect. A start
 * within SNAP of the window's is the window's: records come once per tick.
 */
export function axisStart(data, from, seconds) {
  let first = seconds.length ? seconds[0] : Infinity;
  for (const s of data.series.values()) first = Math.min(first, s.cps[0].t);
  if (data.events.length) first = Math.min(first, data.events[0].t);
  return Number.isFinite(first) && first > from + SNAP ? first : from;
}

/** The registry's process list (host messages) by "pid:incarnation". */
export function processIndex(processes) {
  const out = new Map();
  for (const p of Array.isArray(processes) ? processes : []) {
    if (p && typeof p === "object") out.set(`${num(p.pid)}:${num(p.incarnation)}`, p);
  }
  return out;
}

/**
 * Whether a series' process has ended, and since when: `{kind, at}` with kind
 * "stopped" (its STOPPED arrived), "gone" (the registry gave it up: silent without
 * one) or "silent" (no GC record for CURRENT seconds, whatever the registry says);
 * null while it reports. An ended series keeps its row for the window shown.
 */
export function seriesEnd(s, proc, now) {
  const state = proc ? proc.state : null;
  if (state === "stopped") return { kind: "stopped", at: num(proc.stopped) ?? s.last.t };
  if (state === "gone") return { kind: "gone", at: s.last.t };
  return s.last.t < now - CURRENT ? { kind: "silent", at: s.last.t } : null;
}

/** What is drawn at `now`; `processes` is the host's process list (ended rows are marked by it). */
export function computeView(data, now, processes = []) {
  const from = Math.max(now - data.span, data.since ?? -Infinity);
  const seconds = Array.from(data.buckets.keys()).sort((a, b) => a - b);
  const columns = { t: [], c: [[], [], []], pause: [], pmax: [] };
  const start = axisStart(data, from, seconds);
  // Dense over the seconds in view only: a GC pass stamped years away (a broken
  // or hostile sender) must not make this loop run for billions of seconds.
  const first = seconds.length ? Math.max(seconds[0], Math.floor(from)) : 0;
  const last = seconds.length ? Math.min(seconds[seconds.length - 1], Math.ceil(now) + 1) : -1;
  for (let t = first; t <= last; t += 1) { // dense: a second without a tick counts none
    const b = data.buckets.get(t);
    columns.t.push(t);
    GENS.forEach((g) => columns.c[g].push(b ? b.c[g] : 0));
    columns.pause.push(b ? b.pause : 0);
    columns.pmax.push(b && b.pmax !== null ? b.pmax : null);
  }
  // Reporting series first; those of ended processes (restarts) after them, marked, until they age out.
  const index = processIndex(processes);
  const ends = new Map(Array.from(data.series.values(), (s) => [s.key, seriesEnd(s, index.get(`${s.p}:${s.i}`), now)]));
  const ended = (s) => (ends.get(s.key) ? 1 : 0);
  const series = Array.from(data.series.values()).sort((a, b) => ended(a) - ended(b) || a.g.localeCompare(b.g)
    || a.p - b.p || a.i - b.i || a.n.localeCompare(b.n));
  return {
    now, from, start, range: [start, now], columns,
    buckets: seconds.map((t) => data.buckets.get(t)),
    events: data.events.slice(), series,
    seriesTotal: series.map((s) => ({ s, stats: seriesStats(s), end: ends.get(s.key) })),
    pids: Array.from(data.pids.keys()).sort((a, b) => a - b), interps: Array.from(data.interps.keys()).sort(),
  };
}

function seriesStats(s) {
  const a = s.cps[0];
  const b = s.cps[s.cps.length - 1];
  const dt = b.t - a.t;
  const per = (x) => (dt > 0 ? x / dt : null);
  return {
    rates: GENS.map((g) => per(Math.max(0, b.col[g] - a.col[g]))),
    collected: per(Math.max(0, b.cd - a.cd)), uncollectable: Math.max(0, b.un - a.un),
    dropped: b.dr - a.dr, pause: b.pause - a.pause, share: per(b.pause - a.pause),
  };
}

/** Totals over the buckets in [lo, hi) (the window, or the zoomed range). */
export function summarize(buckets, lo, hi) {
  const out = { c: [0, 0, 0], cd: 0, un: 0, dr: 0, n: 0, pause: 0, min: null, max: null, h: new Array(BUCKETS).fill(0) };
  for (const b of buckets) {
    if (b.t < Math.floor(lo) || b.t >= hi) continue;
    GENS.forEach((g) => { out.c[g] += b.c[g]; });
    out.cd += b.cd;
    out.un += b.un;
    out.dr += b.dr;
    out.n += b.n;
    out.pause += b.pause;
    if (b.pmin !== null) out.min = out.min === null ? b.pmin : Math.min(out.min, b.pmin);
    if (b.pmax !== null) out.max = out.max === null ? b.pmax : Math.max(out.max, b.pmax);
    addInto(out.h, b.h);
  }
  return out;
}
