// The Overview's data, without the page: the chart columns from host.snapshot and the
// complete seconds of host.frame, where the charts mark missing data, and the headline
// readouts from a frame's `recent`. Pure, for node's tests (tests/js/overview_model.test.mjs).
//
// Only complete seconds are drawn. A `partial` host.frame holds what the agent's batches
// of that second brought so far: drawn, its rates, CPU and RSS dip at the right end of
// every chart and jump back a moment later. So the lines end at the newest complete
// second, about PUBLISH_DELAY behind the console's clock, and the marks leave that lag
// alone; the readouts do not read the newest second at all (`recent`, below).

import { metric, SERIES } from "../metrics.js";
import { timeLabel } from "../ticks.js";
import { num } from "../util.js";

// The series the charts draw, by the metric table's names (docs/metrics.md), without 1xx.
export const KEYS = SERIES.filter((name) => name !== "loss" && name !== "status_1xx_rate");
// Kept beside KEYS, not folded from the group's metrics: loss is the host's ("*"), counted
// at the second its heartbeat arrived; a group's view marks it too.
export const COLUMNS = [...KEYS, "loss"];
// How per-second frames fold into one point when the snapshot's step is longer than a
// second: the table's `seconds` fold (rates and utilisations average, percentiles keep
// the worst second: they cannot be averaged, and the worst second is the honest upper bound).
const FOLD = Object.fromEntries(KEYS.map((name) => [name, metric(name).seconds]));

/**
 * The console sends second t complete once its clock reads t + PUBLISH_DELAY
 * (console/live/summary.py's, publish.due_seconds), a second after the second ended.
 */
export const PUBLISH_DELAY = 2;
/** The newest seconds are not a hole before LIVE_LAG: a busy console sends late. */
export const LIVE_LAG = PUBLISH_DELAY + 2;

/** A point's value of `name` from the metrics of the seconds it covers (see FOLD). */
export function fold(name, seconds) {
  const how = FOLD[name];
  let sum = 0;
  let n = 0;
  let out = null;
  for (const m of seconds) {
    const v = m ? num(m[name]) : null;
    if (v === null) continue;
    if (how === "sum") {
      out = (out ?? 0) + v;
    } else if (how === "mean") {
      sum += v;
      n += 1;
      out = sum / n;
    } else if (how === "max") {
      out = Math.max(out ?? -Infinity, v);
    } else {
      out = v;
    }
  }
  return out;
}

/** No points yet; `live`: points built from frames (key -> the metrics of each second in it). */
export function emptyStore(step) {
  const s = { step, t: [], weight: [], live: new Map() };
  for (const key of COLUMNS) s[key] = [];
  return s;
}

function pushPoint(s, t, values, weight) {
  s.t.push(t);
  s.weight.push(weight);
  for (const key of COLUMNS) s[key].push(values[key] ?? null);
}

/**
 * The snapshot's series as points. Its newest points hold seconds the console has not
 * sent complete yet (a point is complete once its last second is, at that second +
 * PUBLISH_DELAY): they are left out, and those seconds come as complete frames
 * instead. Null for another tab's snapshot.
 */
export function snapshotStore(message) {
  const series = message.series || {};
  if (!Array.isArray(series.t)) return null;
  const step = num(message.step) && message.step > 0 ? message.step : 1;
  const now = num(message.now);
  const s = emptyStore(step);
  for (let i = 0; i < series.t.length; i += 1) {
    const t = num(series.t[i]);
    if (t === null) continue;
    if (now !== null && t + step - 1 + PUBLISH_DELAY > now) break; // not sent complete yet
    const last = s.t.length ? s.t[s.t.length - 1] : null;
    if (last !== null && t - last > step) pushPoint(s, last + step, {}, 0); // a hole: the lines stop there
    const values = {};
    for (const key of COLUMNS) values[key] = Array.isArray(series[key]) ? num(series[key][i]) : null;
    pushPoint(s, t, values, step);
  }
  return s;
}

/**
 * Fold one complete second of metrics (or null: no data that second) into the series,
 * in place. A second can come complete more than once (a resend): the newest replaces.
 */
function addSecond(s, t, metrics, hostLoss) {
  const step = s.step;
  const key = Math.floor(t / step) * step;
  const last = s.t.length ? s.t[s.t.length - 1] : null;
  let point = s.live.get(key);
  if (!point) {
    if (last !== null && key <= last) return; // older than what we show, or came with the snapshot
    if (last !== null && key - last > 2 * step) pushPoint(s, last + step, {}, 0); // a gap: break the line
    point = { seconds: new Map(), loss: new Map() };
    s.live.set(key, point);
    for (const old of s.live.keys()) if (old < key - 4 * Math.max(step, 2)) s.live.delete(old);
    pushPoint(s, key, {}, 0);
  }
  let i = s.t.length - 1;
  while (i > 0 && s.t[i] !== key) i -= 1;
  if (s.t[i] !== key) return; // trimmed away meanwhile
  point.seconds.set(t, metrics);
  point.loss.set(t, num(hostLoss) ?? 0);
  for (const name of KEYS) s[name][i] = fold(name, point.seconds.values());
  s.loss[i] = Array.from(point.loss.values()).reduce((a, b) => a + b, 0);
  s.weight[i] = point.seconds.size;
}

/**
 * A host.frame into the series (in place) when it is complete; a partial one is left
 * out (see the top of this file). True when it was taken: its `recent` is the readouts'.
 */
export function takeFrame(s, message, group) {
  if (message.partial || num(message.t) === null) return false;
  const groups = message.groups && typeof message.groups === "object" ? message.groups : {};
  addSecond(s, message.t, groups[group] || null, groups["*"] ? groups["*"].loss : 0);
  return true;
}

/** Drop the points before `cutoff`, in place. */
export function trimStore(s, cutoff) {
  let drop = 0;
  while (drop < s.t.length && s.t[drop] < cutoff) drop += 1;
  if (drop === 0) return;
  for (const name of ["t", "weight", ...COLUMNS]) s[name].splice(0, drop);
}

/**
 * Where the charts mark missing data: `holes`, stretches inside the window (from when the
 * host was created) without a point that holds ticks, and `loss`, the points with loss.
 * One pass over the points; the newest LIVE_LAG seconds are not a hole.
 */
export function marksOf(s, range, knownSince) {
  const holes = [];
  const loss = [];
  let covered = Math.max(range[0], knownSince || range[0]); // data (or the window's start) up to here
  for (let i = 0; i < s.t.length; i += 1) {
    const t = s.t[i];
    if (s.loss[i] > 0) loss.push([t, s.loss[i], s.step]);
    if (!(s.ticks[i] > 0)) continue;
    if (t > covered) holes.push([covered, t]);
    covered = Math.max(covered, t + s.step);
  }
  if (range[1] - LIVE_LAG > covered + s.step) holes.push([covered, range[1] - LIVE_LAG]);
  return { holes, loss };
}

/** Past this many seconds behind the clock, a headline is said to be old by its end time. */
const HEADLINE_STALE = LIVE_LAG + 2;

/**
 * The readouts' values and what they say of their span, from the newest complete
 * frame's `recent` ({span, since, until, groups}): `values` are the group's metrics over
 * the span (null: none), `span` the short text beside them, `title` the exact seconds.
 */
export function headline(recent, group, now) {
  const span = recent && typeof recent === "object" ? num(recent.span) : null;
  if (span === null) {
    return { values: null, span: "waiting for a complete second",
      title: "The readouts show complete seconds only; the first one is on its way." };
  }
  const groups = recent.groups && typeof recent.groups === "object" ? recent.groups : {};
  const values = groups[group] && typeof groups[group] === "object" ? groups[group] : null;
  const since = num(recent.since);
  const until = num(recent.until);
  const old = until !== null && now !== null && now - until > HEADLINE_STALE;
  const title = since !== null && until !== null
    ? `the complete seconds ${timeLabel(since, span)} – ${timeLabel(until, span)}`
      + (values ? "" : ": no data from this group") : "";
  return { values, span: old ? `${span} s to ${timeLabel(until, span)}` : `last ${span} s`, title };
}
