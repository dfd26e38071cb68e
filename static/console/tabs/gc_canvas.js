// GC tab, the two hand-drawn canvases: the pause timeline (one dot per
// collection, log scale) and the pause histogram (65 HDR buckets with
// p50/p95/p99 markers), each with its hover tooltip and readout.
// Separate because it is canvas drawing only: it reads a view and its totals
// (./gc_model.js), its axes come from ./gc_axes.js, and it knows nothing of
// frames, selectors or the table.
// The histogram is not ../histogram.js's HistogramChart: that one draws only the
// occupied buckets, labels upper edges and marker names on the canvas, and says
// "requests"; this one has a log duration axis and a legend below.
//
// What is drawn is also written on the figure (data-axis: ticks, range, markers),
// so that a reader of the page, a test for one, needs no pixels to know it.

import * as fmt from "../format.js";
import { bounds, percentile } from "../hdr.js";
import { stamp } from "../stamps.js";
import { valueTicks } from "../ticks.js";
import { barAt, durationLabel, histogramAxis, pauseAxis, timeAxis } from "./gc_axes.js";
import { GEN_COLORS, GENS, MAX_EVENTS, interpName } from "./gc_model.js";

const HEIGHT = 190;
const PAD = { left: 58, right: 10, top: 8, bottom: 22 };
const MARKERS = [["p50", 0.5, "ok"], ["p95", 0.95, "warn"], ["p99", 0.99, "p99"]];

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
  const chart = { fig, canvas, tip, readout, env, layout: null, last: null, pointer: null };
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

function gridLine(g, colors, x0, y0, x1, y1) {
  g.strokeStyle = colors.grid;
  g.lineWidth = 1;
  g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke();
}

function drawTimeline(g, width, height, v, total, chart) {
  const colors = chart.env.colors();
  const zoom = chart.env.zoom();
  const [x0, x1] = zoom ? [zoom.min, zoom.max] : v.range;
  const events = v.events.filter((e) => e.t >= x0 && e.t <= x1);
  const bottom = height - PAD.bottom;
  const longest = Math.max(0, ...events.map((e) => e.d));
  const shortest = Math.min(Infinity, ...events.map((e) => e.d || Infinity));
  const ys = pauseAxis(Number.isFinite(shortest) ? shortest : 0, longest, PAD.top, bottom);
  const xs = timeAxis(x0, x1, PAD.left, width - PAD.right);
  for (const tick of ys.ticks) {
    const y = Math.round(tick.y) + 0.5;
    gridLine(g, colors, PAD.left, y, width - PAD.right, y);
    axisText(chart, g, tick.label, PAD.left - 6, y + 4, "right");
  }
  for (const tick of xs.ticks) {
    const x = Math.round(tick.x) + 0.5;
    gridLine(g, colors, x, PAD.top, x, bottom);
    axisText(chart, g, tick.label, x, height - 6, "center");
  }
  const dots = [];
  for (const gen of GENS) { // gen 2 drawn last: the rare, long pauses stay on top
    g.fillStyle = GEN_COLORS[gen];
    const r = gen === 2 ? 4 : 2.5;
    for (const e of events) {
      if (e.gen !== gen) continue;
      const x = xs.xOf(e.t);
      const y = ys.yOf(e.d);
      g.globalAlpha = 0.8;
      g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fill();
      dots.push({ x, y, e });
    }
  }
  g.globalAlpha = 1;
  if (!events.length) axisText(chart, g, "No pauses in this range", (PAD.left + width - PAD.right) / 2, (PAD.top + bottom) / 2, "center");
  chart.fig.dataset.axis = JSON.stringify({ from: x0, to: x1, ticks: xs.ticks.map((t) => ({ t: t.v, label: t.label })) });
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
  showTip(chart, [
    `${stamp(e.t, { ms: true })} · gen ${e.gen}`,
    `pause ${fmt.duration(e.d)}`,
    `pid ${e.p} · ${interpName(e.n)} · ${fmt.groupName(e.g)}`,
    `collected ${fmt.count(e.cd)} · uncollectable ${fmt.count(e.un)}`,
  ], best.x, best.y);
}

// -- the pause histogram ---------------------------------------------------------------------

function drawHistogram(g, width, height, v, total, chart) {
  const colors = chart.env.colors();
  const counts = total.h;
  const right = width - PAD.right;
  const bottom = height - PAD.bottom;
  const h = bottom - PAD.top;
  const axis = histogramAxis(counts, total.min, total.max, PAD.left, right);
  const peak = Math.max(1, ...counts);
  const yOf = (c) => bottom - (c / peak) * h;
  for (const c of valueTicks(0, peak, 3)) {
    const y = Math.round(yOf(c)) + 0.5;
    gridLine(g, colors, PAD.left, y, right, y);
    axisText(chart, g, fmt.count(c), PAD.left - 6, y + 4, "right");
  }
  if (axis.strip) { // the pauses under the first tick: bucket 0 cannot tell them apart
    g.fillStyle = colors.grid;
    g.fillRect(PAD.left, PAD.top, axis.ticks[0].x - PAD.left, h);
  }
  g.fillStyle = colors.accent;
  for (const bar of axis.bars) {
    const bh = Math.max(1, (counts[bar.index] / peak) * h);
    g.fillRect(bar.x0 + 0.5, bottom - bh, Math.max(1, bar.x1 - bar.x0 - 1), bh);
  }
  for (const tick of axis.ticks) {
    const x = Math.round(tick.x) + 0.5;
    gridLine(g, colors, x, bottom, x, bottom + 4);
    axisText(chart, g, tick.label, x, height - 6, "center");
  }
  const marks = [];
  if (total.n > 0) {
    for (const [name, p, color] of [...MARKERS].reverse()) { // p50 drawn last: on top where they coincide
      const value = percentile(counts, p, total.min, total.max);
      const x = Math.round(axis.xOf(value)) + 0.5;
      marks.unshift({ name, value, x });
      g.strokeStyle = colors[color];
      g.lineWidth = 2;
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(x, PAD.top); g.lineTo(x, bottom); g.stroke();
      g.setLineDash([]);
      g.lineWidth = 1;
    }
  } else {
    axisText(chart, g, "No pauses in this range", (PAD.left + right) / 2, PAD.top + h / 2, "center");
  }
  chart.fig.dataset.axis = JSON.stringify({
    left: PAD.left, right, strip: axis.strip, ticks: axis.ticks.map((t) => ({ v: t.v, label: t.label, x: t.x })),
    marks, colors: Object.fromEntries(MARKERS.map(([name, , color]) => [name, colors[color]])),
  });
  chart.readout.textContent = `n ${fmt.count(total.n)} · min ${fmt.duration(total.min)} · `
    + marks.map(({ name, value }) => `${name} ${fmt.duration(value)}`).join(" · ")
    + ` · max ${fmt.duration(total.max)}`;
  return { axis, counts, n: total.n };
}

function hoverHistogram(chart, x, y) {
  const layout = chart.layout;
  const b = layout && layout.n > 0 ? barAt(layout.axis, x) : -1;
  if (b < 0) { chart.tip.hidden = true; return; }
  const [lower, upper] = bounds(b);
  const below = layout.counts.slice(0, b + 1).reduce((a, c) => a + c, 0);
  showTip(chart, [
    b === 0 ? `under ${durationLabel(upper)}` : upper === Infinity ? `${durationLabel(lower)} or more`
      : `${durationLabel(lower)} – ${durationLabel(upper)}`,
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
