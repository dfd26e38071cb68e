// Axis ticks and time labels every chart of the pages shares, uPlot's and the hand-drawn
// canvases' alike: ticks on round values of the unit (whole seconds, minutes, hours of
// the local clock; 1-2-5 steps of the unit a value is shown in), and one time format
// (24-hour; seconds when the span is short, the date when it is long). Pure: node's
// tests import it (tests/js/ticks.test.mjs).

/** Round time steps, in seconds, from one second to a week. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 604800];

/** Seconds the local clock is ahead of UTC at `epoch` (ticks of an hour or more fall on local hours). */
function localOffset(epoch) {
  return -new Date(epoch * 1000).getTimezoneOffset() * 60;
}

/** The round step giving at most `most` ticks over `span` seconds (at least one tick). */
export function timeStep(span, most = 5) {
  const want = span / Math.max(1, most);
  return TIME_STEPS.find((s) => s >= want) ?? TIME_STEPS[TIME_STEPS.length - 1];
}

/**
 * Tick times in [from, to], on multiples of a round step of the local clock, at most `most`
 * of them: every chart with the same span gets the same ticks, whatever its width.
 */
export function timeTicks(from, to, most = 5) {
  if (!(to > from)) return [];
  const step = timeStep(to - from, most);
  const offset = step >= 3600 ? localOffset(from) : 0;
  const out = [];
  for (let t = Math.ceil((from + offset) / step) * step - offset; t <= to; t += step) out.push(t);
  return out;
}

const pad = (n) => String(n).padStart(2, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Spans (s) up to which a time label carries seconds, and past which it carries the date. */
export const SECONDS_UNTIL = 900;
export const DATE_AFTER = 86400;

/**
 * `epoch` on the local 24-hour clock, as a chart spanning `span` seconds labels it:
 * "15:32:07" up to SECONDS_UNTIL, "15:32" up to DATE_AFTER, "Nov 26 15:32" past it.
 */
export function timeLabel(epoch, span) {
  const d = new Date(epoch * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (span > DATE_AFTER) return `${MONTHS[d.getMonth()]} ${d.getDate()} ${hm}`;
  return span <= SECONDS_UNTIL ? `${hm}:${pad(d.getSeconds())}` : hm;
}

/** A 1-2-5 step (times a power of ten) giving at most `most` steps over `range`. */
export function niceStep(range, most = 4) {
  if (!(range > 0)) return 1;
  const raw = range / Math.max(1, most);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9));
  return step ?? 10 * power;
}

/**
 * Ticks on round values in [min, max], at most about `most` of them. `unit` is the factor
 * of the unit a value is shown in (1024 ** 2 for MiB): the ticks are round in that unit
 * (200, 400, 600 MiB, not 191, 381, 572).
 */
export function valueTicks(min, max, most = 4, unit = 1) {
  if (!(max > min)) return Number.isFinite(min) ? [min] : [];
  const step = niceStep((max - min) / unit, most) * unit;
  const out = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max * (1 + 1e-9) + 1e-12; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

/** The 1024-power a byte count of about `value` is shown in (format.bytes's unit). */
export function byteUnit(value) {
  let unit = 1;
  while (Math.abs(value) >= unit * 1024 && unit < 1024 ** 4) unit *= 1024;
  return unit;
}

/**
 * Ticks of a log axis in [min, max] (both > 0): every power of ten, with 2 and 5 between
 * them when the range spans fewer than three decades (1 ms, 2 ms, 5 ms, 10 ms ...).
 */
export function logTicks(min, max) {
  if (!(min > 0) || !(max > min)) return min > 0 ? [min] : [];
  const low = Math.floor(Math.log10(min));
  const high = Math.ceil(Math.log10(max));
  const steps = high - low < 3 ? [1, 2, 5] : [1];
  const out = [];
  for (let e = low; e <= high; e += 1) {
    for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(Number(v.toPrecision(6)));
    }
  }
  return out;
}
