// The y axes of the time charts (charts.js): which values the ticks fall on, what the
// scale spans, and how a tick is labelled. Ticks are round in the unit the labels show
// (200 / 400 / 600 MiB, 5 / 10 / 15 ms), so a reader never has to divide 572 by 3. Pure,
// for node's tests (tests/js/chart_axes.test.mjs); the rounding itself is ticks.js's.

import { byteUnit, niceStep, timeTicks, valueTicks } from "./ticks.js";

/** Time ticks on every chart, whatever its width: charts of one span read alike. */
export const TIME_TICKS = 5;
/** Value ticks on a linear y axis (the charts are 190 px high). */
export const VALUE_TICKS = 4;

const BYTE_NAMES = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * The units a y axis can be labelled in: `name -> max -> {factor, suffix}`; a tick of
 * value v reads `v / factor` followed by `suffix`. `seconds` switches to s at 1 s, as
 * format.duration does; `bytes` follows format.bytes's 1024 steps.
 */
export const UNITS = {
  plain: () => ({ factor: 1, suffix: "" }),
  rate: () => ({ factor: 1, suffix: "/s" }),
  percent: () => ({ factor: 0.01, suffix: " %" }),
  seconds: (max) => (max >= 1 ? { factor: 1, suffix: " s" } : { factor: 1e-3, suffix: " ms" }),
  bytes: (max) => {
    const factor = byteUnit(max);
    return { factor, suffix: " " + BYTE_NAMES[Math.round(Math.log(factor) / Math.log(1024))] };
  },
};

/** A number without float noise: 0.30000000000000004 reads 0.3. */
function clean(value) {
  return String(Number(value.toPrecision(6)));
}

/** A tick's label in `unit` ({factor, suffix}); zero is "0" in every unit. */
export function tickLabel(value, unit) {
  if (value === 0) return "0";
  return clean(value / unit.factor) + unit.suffix;
}

/**
 * The linear scale's [min, max]: from 0 (or below, for negative data) up to a tick just
 * above the data, so the top grid line is labelled. `fixed` ([min, max]) is a floor the
 * scale never shrinks below (capacity: 0..100 %), widened when the data goes past it.
 */
export function linearRange(dataMin, dataMax, unitOf, fixed = null) {
  if (fixed) return [fixed[0], Math.max(fixed[1], dataMax ?? fixed[1])];
  const low = Math.min(0, dataMin ?? 0);
  const top = dataMax === null || dataMax === undefined || !(dataMax > 0) ? 1 : dataMax * 1.01; // a line at the very top is hard to see
  const factor = unitOf(top).factor;
  const step = niceStep((top - low) / factor, VALUE_TICKS) * factor;
  return [low, Math.ceil(top / step - 1e-9) * step];
}

/** The linear scale's ticks: round in the unit of its top. */
export function linearTicks(min, max, unitOf) {
  return valueTicks(min, max, VALUE_TICKS, unitOf(Math.max(Math.abs(min), Math.abs(max))).factor);
}

/** `value` rounded down (`up` false) or up to 1, 2 or 5 times a power of ten. */
function round125(value, up) {
  const power = 10 ** Math.floor(Math.log10(value));
  const steps = up ? [1, 2, 5, 10] : [10, 5, 2, 1];
  const pick = steps.find((m) => (up ? m * power >= value * (1 - 1e-9) : m * power <= value * (1 + 1e-9)));
  return Number(((pick ?? 1) * power).toPrecision(6));
}

/**
 * The log scale's [min, max] over the positive data: out to the nearest 1-2-5 values, so
 * the data fills the chart (ticks.js's logTicks labels the ends too while the range spans
 * fewer than three decades, and the decades inside it past that). Without positive data:
 * 1 ms to 1 s (the latency chart is the log chart).
 */
export function logRange(dataMin, dataMax) {
  if (!(dataMin > 0) || !(dataMax > 0)) return [1e-3, 1];
  const low = round125(dataMin, false);
  const high = round125(dataMax, true);
  return [low, high > low ? high : round125(low * 1.5, true)];
}

/** A log tick's label: each in the unit of its own size (1 ms, 10 ms, 1 s). */
export function logLabel(value, unitOf) {
  return tickLabel(value, unitOf(value));
}

/**
 * A column as a log axis can draw it: values that are not above 0 have no place on it,
 * so they are no data for that point (a gap), never a line down to the axis' floor.
 */
export function positiveOnly(column) {
  return column.map((v) => (typeof v === "number" && v > 0 ? v : null));
}

/** The x axis' ticks: ticks.js's round times, TIME_TICKS of them at most. */
export function timeSplits(min, max) {
  return timeTicks(min, max, TIME_TICKS);
}
