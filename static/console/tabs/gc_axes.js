// GC tab, the axes of the two hand-drawn canvases (./gc_canvas.js): where a pause
// duration or a time lands in pixels, and which ticks are labelled. Pure (no DOM),
// so node's tests check it (tests/js/gc_axes.test.mjs).
//
// The histogram's duration axis is logarithmic and starts at the first occupied
// bucket's lower edge, a labelled tick there, then round durations (../ticks.js
// logTicks). Bucket 0 is the exception of mod_wsgi's layout: it is the [1, 1.25) ms
// bucket that also takes everything under 1 ms, so its edge is 1 ms and the pauses
// under it (gen-0 collections are often 0.1-0.5 ms) go in a narrow strip left of
// that tick, down to the exact minimum: a p50 there is drawn, not lost off the axis.

import { BUCKETS, bounds } from "../hdr.js";
import { logTicks, timeLabel, timeTicks } from "../ticks.js";

/** Pixels left of the first tick for the pauses under bucket 0's 1 ms edge. */
export const STRIP = 30;
/** Closest two labelled ticks may be, in pixels (the first one always stays). */
const MIN_GAP = 44;
/** Pixels per labelled time tick, at most. */
const TIME_TICK_PX = 90;
const FIRST_EDGE = 0.001; // bucket 0's lower edge as the octaves count it

/** A duration as an axis label, exactly ("1.25 ms", "2 ms", "1.5 s"): rounding would blur bucket edges. */
export function durationLabel(seconds) {
  return seconds < 1 ? +(seconds * 1000).toPrecision(4) + " ms" : +seconds.toPrecision(4) + " s";
}

/** The lower edge a bucket is labelled with: bucket 0's is 1 ms, where its octave starts. */
export function lowerEdge(index) {
  return index <= 0 ? FIRST_EDGE : bounds(index)[0];
}

function occupied(counts) {
  let first = -1;
  let last = -1;
  for (let i = 0; i < Math.min(BUCKETS, counts.length); i += 1) {
    if (counts[i] > 0) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? null : [first, last];
}

/**
 * The histogram's x axis over pixels [left, right] for dense `counts` whose exact
 * smallest and largest pauses are `min` and `max` (null without pauses):
 * `{lo, hi, strip, xOf(seconds), ticks: [{v, label, x}], bars: [{index, x0, x1}]}`.
 * `strip` is [low, lo] when pauses lie under the first tick, else null.
 */
export function histogramAxis(counts, min, max, left, right) {
  const [first, last] = occupied(counts) ?? [0, 0];
  const lo = lowerEdge(first);
  const top = bounds(last)[1];
  const upper = top === Infinity ? Math.max(max ?? 0, bounds(last)[0]) * 1.25 : top;
  const hi = Math.max(upper, lo * 10); // a decade at least: one bucket is not stretched over the width
  const low = min !== null && min > 0 ? Math.max(min, lo / 1000) : lo / 10;
  const strip = first === 0 && min !== null && min < lo ? [Math.min(low, lo * 0.99), lo] : null;
  const start = strip ? left + STRIP : left;
  const span = Math.log(hi / lo);
  const xOf = (v) => {
    if (!(v > 0) || (strip && v <= strip[0])) return left; // zero pauses sit at the strip's start
    if (v < lo) {
      if (!strip) return start;
      return left + (STRIP * Math.log(v / strip[0])) / Math.log(lo / strip[0]);
    }
    return Math.min(right, start + ((right - start) * Math.log(v / lo)) / span);
  };
  const ticks = [{ v: lo, label: durationLabel(lo), x: start }];
  for (const v of logTicks(lo, hi)) {
    const x = xOf(v);
    if (v > lo * (1 + 1e-9) && x - ticks[ticks.length - 1].x >= MIN_GAP && right - x >= MIN_GAP / 2) {
      ticks.push({ v, label: durationLabel(v), x });
    }
  }
  const bars = [];
  for (let i = first; i <= last; i += 1) {
    if (!(counts[i] > 0)) continue;
    const [lower, up] = bounds(i);
    const x0 = i === 0 ? (strip ? left : start) : xOf(lower);
    bars.push({ index: i, x0, x1: up === Infinity ? right : xOf(up) });
  }
  return { lo, hi, strip, xOf, ticks, bars };
}

/** The bucket under pixel `x` of an axis, or -1. */
export function barAt(axis, x) {
  const bar = axis.bars.find((b) => x >= b.x0 && x < Math.max(b.x1, b.x0 + 2));
  return bar ? bar.index : -1;
}

/**
 * The timeline's time axis: [from, to] over pixels [left, right], round local-clock
 * ticks (../ticks.js) labelled in the one 24-hour format of the span.
 */
export function timeAxis(from, to, left, right) {
  const span = Math.max(1e-9, to - from);
  const xOf = (t) => left + ((t - from) / span) * (right - left);
  const most = Math.max(2, Math.floor((right - left) / TIME_TICK_PX));
  const ticks = timeTicks(from, to, most).map((t) => ({ v: t, label: timeLabel(t, to - from), x: xOf(t) }));
  return { xOf, ticks };
}

/** The timeline's pause axis (log): round durations between the shortest and longest shown. */
export function pauseAxis(shortest, longest, top, bottom) {
  const maxD = Math.max(0.001, longest);
  const minD = Math.max(1e-6, Math.min(maxD / 10, shortest || maxD));
  const lo = Math.log10(minD) - 0.1;
  const hi = Math.log10(maxD) + 0.1;
  const yOf = (d) => bottom - ((Math.log10(Math.max(d, minD)) - lo) / (hi - lo)) * (bottom - top);
  let values = logTicks(10 ** lo, 10 ** hi);
  if (values.length > 5) values = values.filter((v) => Number.isInteger(Math.round(Math.log10(v) * 1e6) / 1e6)); // decades only: labels stay apart
  return { yOf, ticks: values.map((v) => ({ v, label: durationLabel(v), y: yOf(v) })) };
}
