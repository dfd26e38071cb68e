// GC tab, the two hand-drawn canvases: the pause timeline (one dot per
// collection, log scale) and the pause histogram (65 HDR buckets with
// p50/p95/p99 markers), each with its hover tooltip and readout.
// Separate because it is canvas drawing only: it reads a view and its totals
// (./gc_model.js) and knows nothing of frames, selectors or the table.
// The histogram is not ../histogram.js's HistogramChart: that one draws only the
// occupied buckets, labels upper edges and marker names on the canvas, and says
// "requests"; this one starts at 0 ms with lower-edge labels and a legend below.

import * as fmt from "../format.js";
import { BUCKETS, bounds, percentile } from "../hdr.js";
import { GEN_COLORS, GENS, MAX_EVENTS, bucketIndex, interpName } from "./gc_model.js";

const HEIGHT = 190;
const PAD = { left: 58, right: 10, top: 8, bottom: 22 };

// A bucket edge exactly (1.25 ms, 2 ms, 1.5 s): rounding would blur neighbouring buckets.
const edge = (seconds) => (seconds < 1 ? +(seconds * 1000).toPrecision(4) + " ms" : +seconds.toPrecision(4) + " s");

/**
 * The canvas of `fig` (a figure with .plot > canvas + .chart-tooltip, and a .readout),
 * painted by paintFn(g, width, height, view, total, chart) -> layout and hovered by
 * hoverFn(chart, x, y). `env.colors()` and `env.zoom()` give the theme's colours and
 * the zoomed range (null: the window) at paint time.
 */
function canvasChart(fig, env, paintFn, hoverFn) {
  const plot = fig.querySelector(".plot");
  const canvas = plot.querySelector("canvas");
  const tip = plot.querySelector(".chart-tooltip");
  const readout = fig.querySelector(".readout");
  const chart = { canvas, tip, readout, env, layout: null, last: null, pointer: null };
  chart.paint = (v, total) => {
    chart.last = [v, total];
    const width = plot.clientWidth;
    if (!width) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = HEIGHT + "px";
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, HEIGHT);
    g.font = "11px system-ui, sans-serif";
    chart.layout = paintFn(g, width, HEIGHT, v, total, chart);
    if (chart.pointer) hoverFn(chart, chart.pointer.x, chart.pointer.y); // the tooltip follows new data
  };
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    chart.pointer = { x: event.clientX - box.left, y: event.clientY - box.top };
    hoverFn(chart, chart.pointer.x, chart.pointer.y);
  });
  canvas.addEventListener("mouseleave", () => {
    chart.pointer = null;
    tip.hidden = true;
  });
  return chart;
}

function showTip(chart, lines, x, y) {
  chart.tip.replaceChildren(...lines.map((line) => {
    const div = document.createElement("div");
    div.textContent = line;
    return div;
  }));
  chart.tip.hidden = false;
  const width = chart.canvas.clientWidth;
  const left = x + 12 + chart.tip.offsetWidth > width ? x - chart.tip.offsetWidth - 12 : x + 12;
  chart.tip.style.left = Math.max(0, left) + "px";
  chart.tip.style.top = Math.max(0, y - chart.tip.offsetHeight - 8) + "px";
}

function axisText(chart, g, label, x, y, align) {
  g.fillStyle = chart.env.colors().muted;
  g.textAlign = align;
  g.fillText(label, x, y);
}

// -- the pause timeline ----------------------------------------------------------------------

function drawTimeline(g, width, height, v, total, chart) {
  const colors = chart.env.colors();
  const zoom = chart.env.zoom();
  const [x0, x1] = zoom ? [zoom.min, zoom.max] : v.range;
  const events = v.events.filter((e) => e.t >= x0 && e.t <= x1);
  const maxD = Math.max(0.001, ...events.map((e) => e.d));
  const minD = Math.max(1e-6, Math.min(maxD / 10, ...events.map((e) => e.d || maxD)));
  const lo = Math.log10(minD) - 0.1;
  const hi = Math.log10(maxD) + 0.1;
  const w = width - PAD.left - PAD.right;
  const h = height - PAD.top - PAD.bottom;
  const xOf = (t) => PAD.left + ((t - x0) / (x1 - x0)) * w;
  const yOf = (d) => PAD.top + h - ((Math.log10(Math.max(d, minD)) - lo) / (hi - lo)) * h;
  g.strokeStyle = colors.grid;
  g.lineWidth = 1;
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e += 1) { // a grid line per decade
    const y = Math.round(yOf(10 ** e)) + 0.5;
    g.beginPath(); g.moveTo(PAD.left, y); g.lineTo(width - PAD.right, y); g.stroke();
    axisText(chart, g, fmt.duration(10 ** e), PAD.left - 6, y + 4, "right");
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = x0 + ((x1 - x0) * i) / 4;
    axisText(chart, g, fmt.clock(t), xOf(t), height - 6, i === 0 ? "left" : i === 4 ? "right" : "center");
  }
  const dots = [];
  for (const gen of GENS) { // gen 2 drawn last: the rare, long pauses stay on top
    g.fillStyle = GEN_COLORS[gen];
    const r = gen === 2 ? 4 : 2.5;
    for (const e of events) {
      if (e.gen !== gen) continue;
      const x = xOf(e.t);
      const y = yOf(e.d);
      g.globalAlpha = 0.8;
      g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fill();
      dots.push({ x, y, e });
    }
  }
  g.globalAlpha = 1;
  if (!events.length) axisText(chart, g, "No pauses in this range", PAD.left + w / 2, PAD.top + h / 2, "center");
  chart.readout.textContent = `${fmt.count(total.n)} collections · paused ${fmt.duration(total.pause)}`
    + (v.events.length >= MAX_EVENTS ? ` · newest ${fmt.count(MAX_EVENTS)} drawn` : "");
  return { dots };
}

function hoverTimeline(chart, x, y) {
  const dots = chart.layout ? chart.layout.dots : [];
  let best = null;
  let bestDist = 64; // 8 px
  for (const dot of dots) {
    const dist = (dot.x - x) ** 2 + (dot.y - y) ** 2;
    if (dist <= bestDist) { best = dot; bestDist = dist; }
  }
  if (!best) { chart.tip.hidden = true; return; }
  const e = best.e;
  const when = new Date(e.t * 1000);
  showTip(chart, [
    `${when.toLocaleTimeString([], { hour12: false })}.${String(when.getMilliseconds()).padStart(3, "0")} · gen ${e.gen}`,
    `pause ${fmt.duration(e.d)}`,
    `pid ${e.p} · ${interpName(e.n)} · ${fmt.groupName(e.g)}`,
    `collected ${fmt.count(e.cd)} · uncollectable ${fmt.count(e.un)}`,
  ], best.x, best.y);
}

// -- the pause histogram ---------------------------------------------------------------------

function drawHistogram(g, width, height, v, total, chart) {
  const colors = chart.env.colors();
  const counts = total.h;
  let top = 0;
  counts.forEach((c, i) => { if (c > 0) top = i; });
  const shown = Math.max(16, top + 2 > BUCKETS ? BUCKETS : top + 2);
  const w = width - PAD.left - PAD.right;
  const h = height - PAD.top - PAD.bottom;
  const bw = w / shown;
  const peak = Math.max(1, ...counts);
  g.strokeStyle = colors.grid;
  g.beginPath(); g.moveTo(PAD.left, PAD.top + h + 0.5); g.lineTo(width - PAD.right, PAD.top + h + 0.5); g.stroke();
  axisText(chart, g, fmt.count(peak), PAD.left - 6, PAD.top + 10, "right");
  axisText(chart, g, "0", PAD.left - 6, PAD.top + h, "right");
  g.fillStyle = colors.accent;
  for (let i = 0; i < shown; i += 1) {
    if (!counts[i]) continue;
    const bh = Math.max(1, (counts[i] / peak) * h);
    g.fillRect(PAD.left + i * bw + 1, PAD.top + h - bh, Math.max(1, bw - 2), bh);
  }
  for (let i = 0; i < shown; i += 4) axisText(chart, g, i === 0 ? "0" : edge(bounds(i)[0]), PAD.left + i * bw, height - 6, "center");
  const xOf = (value) => {
    const b = bucketIndex(value);
    const [lower, upper] = bounds(b);
    const frac = upper === Infinity ? 0.5 : (value - lower) / (upper - lower);
    return PAD.left + (b + Math.min(1, Math.max(0, frac))) * bw;
  };
  const marks = [];
  if (total.n > 0) {
    for (const [name, p, color] of [["p50", 0.5, colors.ok], ["p95", 0.95, colors.warn], ["p99", 0.99, "#a371f7"]]) {
      const value = percentile(counts, p, total.min, total.max);
      marks.push([name, value]);
      const x = Math.round(xOf(value)) + 0.5;
      g.strokeStyle = color;
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(x, PAD.top); g.lineTo(x, PAD.top + h); g.stroke();
      g.setLineDash([]);
    }
  } else {
    axisText(chart, g, "No pauses in this range", PAD.left + w / 2, PAD.top + h / 2, "center");
  }
  chart.readout.textContent = `n ${fmt.count(total.n)} · min ${fmt.duration(total.min)} · `
    + marks.map(([name, value]) => `${name} ${fmt.duration(value)}`).join(" · ")
    + ` · max ${fmt.duration(total.max)}`;
  return { bw, shown, counts, n: total.n };
}

function hoverHistogram(chart, x, y) {
  const layout = chart.layout;
  const b = layout ? Math.floor((x - PAD.left) / layout.bw) : -1;
  if (!layout || b < 0 || b >= layout.shown || layout.n === 0) { chart.tip.hidden = true; return; }
  const [lower, upper] = bounds(b);
  const below = layout.counts.slice(0, b + 1).reduce((a, c) => a + c, 0);
  showTip(chart, [
    b === 0 ? `under ${edge(upper)}` : upper === Infinity ? `${edge(lower)} or more` : `${edge(lower)} – ${edge(upper)}`,
    `${fmt.count(layout.counts[b])} pauses (${fmt.percent(layout.counts[b] / layout.n)})`,
    `${fmt.percent(below / layout.n)} at or below ${upper === Infinity ? "this" : fmt.duration(upper)}`,
  ], x, y);
}

// -- the charts --------------------------------------------------------------------------------

/** The pause timeline of `fig`: chart.paint(view, total) draws it. */
export function createTimeline(fig, env) {
  return canvasChart(fig, env, drawTimeline, hoverTimeline);
}

/** The pause histogram of `fig`: chart.paint(view, total) draws it. */
export function createHistogram(fig, env) {
  return canvasChart(fig, env, drawHistogram, hoverHistogram);
}
