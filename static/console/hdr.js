// mod_wsgi's 65-bucket latency histograms (docs/wire-protocol.md, "Histograms";
// ingest/model/histogram.py holds the same rules for the console): 16 octaves of 4
// linear buckets in milliseconds plus an overflow bucket. Bucket 0 starts at
// 0, not 1 ms: it also holds every duration below 1 ms.

export const BUCKETS = 65;
const OVERFLOW = BUCKETS - 1;

/** [lower, upper) of a bucket in seconds; the overflow bucket's upper edge is Infinity. */
export function bounds(index) {
  if (index >= OVERFLOW) return [65.536, Infinity];
  const octave = Math.floor(index / 4);
  const sub = index % 4;
  const lower = index === 0 ? 0 : 2 ** octave * (1 + sub / 4);
  return [lower / 1000, (2 ** octave * (1 + (sub + 1) / 4)) / 1000];
}

/** Add a sparse histogram ({bucket: count}, string keys as JSON has them) into a dense one. */
export function addInto(dense, sparse) {
  if (!sparse || typeof sparse !== "object") return dense;
  for (const [key, value] of Object.entries(sparse)) {
    const index = Number(key);
    if (Number.isInteger(index) && index >= 0 && index < BUCKETS && Number.isFinite(value)) dense[index] += value;
  }
  return dense;
}

/**
 * The p-quantile in seconds: interpolated inside the bucket holding rank p x N,
 * then clamped into the exact [lo, hi] of the same data, so a percentile is
 * never outside what was observed. null when the histogram is empty.
 */
export function percentile(dense, p, lo = null, hi = null) {
  let total = 0;
  for (const c of dense) if (c > 0) total += c;
  if (total <= 0) return null;
  const rank = p * total;
  let below = 0;
  let value = 0;
  for (let i = 0; i < dense.length; i += 1) {
    const c = dense[i];
    if (c <= 0) continue;
    if (below + c >= rank) {
      const [lower, upper] = bounds(i);
      value = upper === Infinity ? (hi ?? lower) : lower + ((rank - below) / c) * (upper - lower);
      break;
    }
    below += c;
  }
  if (lo !== null && lo !== undefined) value = Math.max(value, lo);
  if (hi !== null && hi !== undefined) value = Math.min(value, hi);
  return value;
}

/** A bucket edge (seconds) as an axis labels it: "0", "1.25 ms", "2 s". */
export function edgeText(seconds) {
  if (seconds === 0) return "0";
  const ms = seconds * 1000;
  return ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${+ms.toFixed(2)} ms`;
}

/** Short label of a bucket's upper edge: "1.25 ms", "2 s", "> 65 s". */
export function edgeLabel(index) {
  const [, upper] = bounds(index);
  return upper === Infinity ? "> 65 s" : edgeText(upper);
}
