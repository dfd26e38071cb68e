// A canvas bar chart of a 65-bucket HDR histogram with p50/p95/p99 markers
// and a hover tooltip (bucket range, count, share, cumulative share). Only
// the buckets from the first to the last non-empty one are drawn, so a
// sub-millisecond phase is not a sliver at the left of 65 bars; the axis starts
// at the first one's lower edge and says so with a label there (an axis that
// seemed to start at 0 made a p50 left of the first label look wrong).

import * as fmt from "./format.js";
import { BUCKETS, bounds, edgeText } from "./hdr.js";
import { readColors } from "./util.js";

const HEIGHT = 200;
const PAD = { left: 44, right: 12, top: 18, bottom: 34 };
export const MARKERS = [
  { key: "p50", color: "#3fb950" },
  { key: "p95", color: "#d29922" },
  { key: "p99", color: "#bc8cff" },
];

/** Least room between two axis labels, in CSS px ("12.5 ms" is about 45 px). */
const LABEL_GAP = 64;

/**
 * The x axis' ticks over buckets first..last: `[edge, label]`, edge e being the lower edge
 * of bucket e (last + 1: the upper edge of the last). The first edge is always labelled;
 * the others every k buckets (1, 2, 4, 8 ...: on whole octaves, 2, 4, 8 ms, once k >= 4),
 * k the least that leaves LABEL_GAP px between labels of bars `barW` px wide.
 */
export function axisTicks(first, last, barW) {
  let every = 1;
  while (every < BUCKETS && every * barW < LABEL_GAP) every *= 2;
  const ticks = [[first, edgeText(bounds(first)[0])]];
  for (let e = Math.ceil((first + 1) / every) * every; e <= Math.min(last + 1, BUCKETS - 1); e += every) {
    if ((e - first) * barW >= LABEL_GAP) ticks.push([e, edgeText(bounds(e)[0])]);
  }
  return ticks;
}

const PALETTE = { muted: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"],
  accent: ["--accent", "#58a6ff"], fg: ["--fg", "#ddd"] };

export class HistogramChart {
  constructor(container) {
    this.container = container;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "histogram-canvas";
    this.canvas.setAttribute("role", "img");
    this.tooltip = document.createElement("div");
    this.tooltip.className = "chart-tooltip";
    this.tooltip.hidden = true;
    container.append(this.canvas, this.tooltip);
    this.dense = new Array(BUCKETS).fill(0);
    this.stats = {};
    this.range = [0, 0];
    this.hover = null;
    this.canvas.addEventListener("mousemove", (e) => this.onMove(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.tooltip.hidden = true;
    });
  }

  /** New counts (dense, 65) and {p50, p95, p99} in seconds (null: none). */
  set(dense, stats) {
    this.dense = dense;
    this.stats = stats;
    let first = dense.findIndex((c) => c > 0);
    let last = BUCKETS - 1 - [...dense].reverse().findIndex((c) => c > 0);
    if (first < 0) {
      first = 0;
      last = 15;
    }
    // at least 8 bars wide: one full bucket is not a bar across the whole chart
    this.range = [first, Math.min(BUCKETS - 1, Math.max(last, first + 7))];
    const total = dense.reduce((a, b) => a + b, 0);
    this.canvas.setAttribute("aria-label", `Histogram of ${total} requests`);
  }

  geometry() {
    const width = this.container.clientWidth;
    const [first, last] = this.range;
    const n = last - first + 1;
    const plotW = Math.max(10, width - PAD.left - PAD.right);
    return { width, first, last, n, plotW, barW: plotW / n };
  }

  draw() {
    const { width, first, last, n, plotW, barW } = this.geometry();
    if (width === 0) return;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(HEIGHT * ratio);
    this.canvas.style.width = width + "px";
    this.canvas.style.height = HEIGHT + "px";
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, HEIGHT);
    const { muted, grid, accent, fg } = readColors(PALETTE);
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    let max = 0;
    for (let i = first; i <= last; i += 1) max = Math.max(max, this.dense[i]);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = muted;
    ctx.strokeStyle = grid;
    ctx.beginPath();
    ctx.moveTo(PAD.left, PAD.top + plotH + 0.5);
    ctx.lineTo(PAD.left + plotW, PAD.top + plotH + 0.5);
    ctx.stroke();
    // the count scale's top only: a "0" at the corner read as the start of the time axis
    ctx.textAlign = "right";
    ctx.fillText(fmt.count(max), PAD.left - 6, PAD.top + 8);
    for (let i = first; i <= last; i += 1) {
      const c = this.dense[i];
      const x = PAD.left + (i - first) * barW;
      if (c > 0 && max > 0) {
        const h = Math.max(1, (c / max) * plotH);
        ctx.fillStyle = this.hover === i ? fg : accent;
        ctx.fillRect(x + 1, PAD.top + plotH - h, Math.max(1, barW - 2), h);
      }
    }
    ctx.fillStyle = muted;
    ctx.strokeStyle = muted;
    const labels = [];
    for (const [edge, label] of axisTicks(first, last, barW)) {
      const x = PAD.left + (edge - first) * barW;
      ctx.beginPath();
      ctx.moveTo(x + 0.5, PAD.top + plotH);
      ctx.lineTo(x + 0.5, PAD.top + plotH + 4);
      ctx.stroke();
      ctx.textAlign = edge === first ? "left" : "center";
      ctx.fillText(label, x, PAD.top + plotH + 15);
      labels.push(label);
    }
    this.canvas.dataset.ticks = labels.join("|"); // the canvas says nothing to a test
    ctx.textAlign = "left";
    ctx.fillText("bucket edges: a bar holds the durations from its left edge to its right", PAD.left, HEIGHT - 4);
    const drawn = [];
    for (const { key, color } of MARKERS) {
      const x = this.xOf(this.stats[key], first, barW);
      if (x === null) continue;
      drawn.push(`${key}:${Math.round(x)}`);
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + plotH);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath();
      ctx.moveTo(x - 5, PAD.top - 8);
      ctx.lineTo(x + 5, PAD.top - 8);
      ctx.lineTo(x, PAD.top - 1);
      ctx.fill();
      ctx.fillText(key, Math.min(x + 6, PAD.left + plotW - 24), PAD.top - 6);
    }
    this.canvas.dataset.markers = drawn.join(",");
    this.canvas.dataset.plotLeft = String(PAD.left);
  }

  /**
   * The x position of a duration: linear inside its bucket, as the percentile was
   * computed; one outside the drawn buckets sits at that end, so a marker is always drawn.
   */
  xOf(seconds, first, barW) {
    if (seconds === null || seconds === undefined) return null;
    for (let i = first; i <= this.range[1]; i += 1) {
      const [lower, upper] = bounds(i);
      if (seconds < upper || upper === Infinity) {
        const within = upper === Infinity ? 0 : Math.max(0, Math.min(1, (seconds - lower) / (upper - lower)));
        return PAD.left + (i - first + within) * barW;
      }
    }
    return PAD.left + (this.range[1] - first + 1) * barW;
  }

  onMove(event) {
    const { first, last, barW } = this.geometry();
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const index = first + Math.floor((x - PAD.left) / barW);
    if (index < first || index > last) {
      this.hover = null;
      this.tooltip.hidden = true;
      this.draw();
      return;
    }
    this.hover = index;
    const total = this.dense.reduce((a, b) => a + b, 0);
    let cumulative = 0;
    for (let i = 0; i <= index; i += 1) cumulative += this.dense[i];
    const [lower, upper] = bounds(index);
    const share = (v) => (total ? ((100 * v) / total).toFixed(1) + " %" : fmt.DASH);
    const lines = [
      `${fmt.duration(lower)} – ${upper === Infinity ? "∞" : fmt.duration(upper)}`,
      `${fmt.count(this.dense[index])} requests (${share(this.dense[index])})`,
      `≤ this bucket: ${share(cumulative)}`,
    ];
    this.tooltip.replaceChildren(...lines.map((text) => {
      const div = document.createElement("div");
      div.textContent = text;
      return div;
    }));
    this.tooltip.hidden = false;
    const left = Math.min(x + 12, this.container.clientWidth - this.tooltip.offsetWidth - 4);
    this.tooltip.style.left = Math.max(0, left) + "px";
    this.tooltip.style.top = Math.max(0, event.clientY - rect.top - this.tooltip.offsetHeight - 8) + "px";
    this.draw();
  }
}
