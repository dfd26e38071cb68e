// Capacity tab: the canvas. Paints a layout (bands of lanes, built by the tab
// in capacity.js) as the worker-slot heatmap with slow runs outlined, a time
// grid and axis. Separate because it only reads: it gets the layout, the
// theme colours and the canvas, and holds no state of its own.
//
// The layout's `span`, `now`, `t0`, `x0`, `x1`, `width` and `x(t)` place time
// on the canvas; each band is a group heading or a row with its lanes and runs.
// The axis has the ticks and labels of every chart of the page (ticks.js).

import { timeLabel, timeTicks } from "../ticks.js";
import { IDLE, at, clamp, cut } from "./capacity_model.js";

export const GUTTER = 132;
export const AXIS = 22;
export const RIGHT = 12;
// Heat scale: [busy fraction, rgb, alpha]; alpha over the panel makes one scale work in both
// themes. Keep in step with .cap-gradient in capacity.css.
const HEAT = [[0, [38, 166, 154], 0.25], [0.15, [38, 166, 154], 0.55], [0.5, [66, 133, 244], 0.75],
  [0.8, [137, 87, 229], 0.9], [1, [137, 87, 229], 1]];
const HEAT_STYLES = Array.from({ length: 21 }, (_, i) => heatColor(i / 20));

function heatColor(v) {
  let i = 1;
  while (i < HEAT.length - 1 && v > HEAT[i][0]) i += 1;
  const [a, ca, aa] = HEAT[i - 1];
  const [b, cb, ab] = HEAT[i];
  const f = b > a ? clamp((v - a) / (b - a), 0, 1) : 0;
  const c = ca.map((x, k) => Math.round(x + (cb[k] - x) * f));
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${(aa + (ab - aa) * f).toFixed(3)})`;
}

/** The theme colours paint() reads (util.js readColors). */
export const PALETTE = {
  fg: ["--fg", "#222"], muted: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"],
  border: ["--border", "#ccc"], bad: ["--bad", "#d00"], panel: ["--panel", "#fff"], chip: ["--chip", "#eee"],
};

/** Height of one slot's lane: fewer slots, taller lanes. */
export function laneHeight(slots) {
  if (slots <= 4) return 12;
  if (slots <= 8) return 9;
  if (slots <= 16) return 6;
  if (slots <= 32) return 4;
  return 2;
}

/** Paint layout `lay` into `canvas`, `height` CSS pixels tall (0: clear it). */
export function paint(canvas, lay, height, colors) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = height + "px";
  if (canvas.width !== Math.round(lay.width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(lay.width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, lay.width, height);
  if (!height) return;
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "middle";
  paintGrid(g, lay, height, colors);
  for (const band of lay.bands) {
    if (band.heading !== undefined) {
      g.fillStyle = colors.muted;
      g.font = "600 12px system-ui, sans-serif";
      g.fillText(cut(band.heading, 60), 4, band.y + band.h / 2);
      g.font = "12px system-ui, sans-serif";
      continue;
    }
    paintBand(g, lay, band, colors);
  }
  paintAxis(g, lay, height, colors);
}

/** Round local times across the span, about one per 90 px. */
function axisTicks(lay) {
  return timeTicks(lay.t0, lay.now, Math.max(2, Math.min(10, Math.floor((lay.x1 - lay.x0) / 90))));
}

function paintGrid(g, lay, height, colors) {
  g.strokeStyle = colors.grid;
  g.lineWidth = 1;
  for (const t of axisTicks(lay)) {
    const x = Math.round(lay.x(t)) + 0.5;
    g.beginPath();
    g.moveTo(x, 0);
    g.lineTo(x, height - AXIS);
    g.stroke();
  }
}

function paintAxis(g, lay, height, colors) {
  g.fillStyle = colors.muted;
  g.textAlign = "center";
  for (const t of axisTicks(lay)) {
    const label = timeLabel(t, lay.span);
    const half = g.measureText(label).width / 2;
    g.fillText(label, clamp(lay.x(t), lay.x0 + half, lay.width - half - 2), height - AXIS / 2);
  }
  g.textAlign = "left";
}

/** What the gutter and the band say of an ended process: "stopped 15:32:07", "gone 15:32:07". */
export function endedLabel(ended, span) {
  return `${ended.state} ${timeLabel(ended.t, span)}`;
}

function paintBand(g, lay, band, colors) {
  const { row, y, lane } = band;
  const c = row.cols;
  const { x0, x1 } = lay;
  // gutter: pid and flag, or when it ended
  g.fillStyle = row.ended ? colors.muted : colors.fg;
  g.font = "600 12px system-ui, sans-serif";
  g.fillText("pid " + row.pid, 4, y + 8);
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = colors.muted;
  const flag = row.ended ? endedLabel(row.ended, lay.span) : !row.slots ? "no tick yet"
    : row.flag && row.flag.flag !== "normal" ? row.flag.label : `${row.slots} slot${row.slots === 1 ? "" : "s"}`;
  g.fillText(cut(flag, 18), 4, y + 23);
  // lanes
  g.fillStyle = colors.chip;
  g.fillRect(x0, y, x1 - x0, row.slots * lane);
  const gap = lane >= 6 ? 1 : 0;
  for (let i = 0; i < c.t.length; i += 1) {
    const t = c.t[i];
    const p = c.period[i];
    if (!p || t < lay.t0 || t - p > lay.now) continue;
    const left = Math.max(x0, lay.x(t - p));
    const right = Math.min(x1, lay.x(t));
    if (right <= left) continue;
    const busy = c.busy[i];
    for (let j = 0; j < Math.min(row.slots, busy.length); j += 1) {
      const v = clamp(at(busy, j) / p, 0, 1);
      if (v < IDLE) continue;
      g.fillStyle = HEAT_STYLES[Math.round(v * 20)];
      g.fillRect(left, y + j * lane, right - left + 0.6, lane - gap);
    }
  }
  paintRuns(g, lay, band, colors);
  if (row.ended) paintEnd(g, lay, band, colors);
}

/** An ended process: greyed from its end to now, a line at the end (dashed: gone silent), and a label. */
function paintEnd(g, lay, band, colors) {
  const { row, y, h } = band;
  const { x0, x1 } = lay;
  const end = clamp(lay.x(row.ended.t), x0, x1);
  g.fillStyle = colors.muted;
  g.globalAlpha = 0.22;
  g.fillRect(end, y, x1 - end, h);
  g.globalAlpha = 1;
  g.strokeStyle = colors.fg;
  g.lineWidth = 1.5;
  if (row.ended.state === "gone") g.setLineDash([3, 3]);
  g.beginPath();
  g.moveTo(Math.round(end) + 0.5, y - 2);
  g.lineTo(Math.round(end) + 0.5, y + h + 2);
  g.stroke();
  g.setLineDash([]);
  const label = endedLabel(row.ended, lay.span);
  const width = g.measureText(label).width;
  // inside the greyed part when it fits, else before the end, on a plate over the cells
  const left = end + 6 + width <= x1 ? end + 6 : Math.max(x0, end - 6 - width);
  const mid = y + Math.min(h, 30) / 2;
  g.fillStyle = colors.panel;
  g.globalAlpha = 0.85;
  g.fillRect(left - 3, mid - 8, width + 6, 16);
  g.globalAlpha = 1;
  g.fillStyle = colors.fg;
  g.fillText(label, left, mid);
}

function paintRuns(g, lay, band, colors) {
  const { y, lane, runs } = band;
  const { x0, x1 } = lay;
  g.lineWidth = 1.5;
  for (const run of runs) {
    const left = Math.max(x0, lay.x(run.start));
    const right = Math.min(x1, lay.x(run.end));
    if (right < x0 || left > x1 || right - left < 0.5) continue;
    const top = y + run.slot * lane + 0.75;
    const h = Math.max(lane - 1.5, 2);
    g.fillStyle = colors.bad;
    g.globalAlpha = 0.35;
    g.fillRect(left, top, right - left, h);
    g.globalAlpha = 1;
    g.strokeStyle = colors.bad;
    g.beginPath();
    g.moveTo(left, top);
    g.lineTo(right, top);
    g.moveTo(left, top + h);
    g.lineTo(right, top + h);
    if (run.start >= lay.t0) { g.moveTo(left, top); g.lineTo(left, top + h); } // the request's real start
    if (run.finished && run.end <= lay.now) { g.moveTo(right, top); g.lineTo(right, top + h); }
    g.stroke();
    if (run.record && lane >= 5 && right - left > 6) {
      g.fillStyle = colors.fg;
      g.fillRect(left + 2, top + h / 2 - 2, 4, 4);
    }
    if (run.active && right >= x1 - 1) { // still running past the threshold: a marker at "now"
      g.fillStyle = colors.bad;
      g.beginPath();
      g.moveTo(x1 + 1, top + h / 2);
      g.lineTo(x1 + RIGHT - 2, top + h / 2 - 4);
      g.lineTo(x1 + RIGHT - 2, top + h / 2 + 4);
      g.fill();
    }
  }
}
