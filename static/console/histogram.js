// A canvas bar chart of a 65-bucket HDR histogram with p50/p95/p99 markers
// and a hover tooltip (bucket range, count, share, cumulative share). Only
// the buckets between the first and last non-empty one are drawn, so a
// sub-millisecond phase is not a sliver at the left of 65 bars.

import * as fmt from "./format.js";
import { BUCKETS, bounds, edgeLabel } from "./hdr.js";
import { readColors } from "./util.js";

const HEIGHT = 200;
const PAD = { left: 44, right: 12, top: 18, bottom: 34 };
export const MARKERS = [
  { key: "p50", color: "#3fb950" },
  { key: "p95", color: "#d29922" },
  { key: "p99", color: "#bc8cff" },
];

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
    this.range = [Math.max(0, first - 1), Math.min(BUCKETS - 1, Math.max(last + 1, first + 7))];
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
    ctx.textAlign = "right";
    ctx.fillText(fmt.count(max), PAD.left - 6, PAD.top + 8);
    ctx.fillText("0", PAD.left - 6, PAD.top + plotH);
    for (let i = first; i <= last; i += 1) {
      const c = this.dense[i];
      const x = PAD.left + (i - first) * barW;
      if (c > 0 && max > 0) {
        const h = Math.max(1, (c / max) * plotH);
        ctx.fillStyle = this.hover === i ? fg : accent;
        ctx.fillRect(x + 1, PAD.top + plotH - h, Math.max(1, barW - 2), h);
      }
    }
    // x labels: about one per 70 px, at bucket upper edges
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    const every = Math.max(1, Math.ceil(70 / barW));
    for (let i = first; i <= last; i += every) {
      ctx.fillText(edgeLabel(i), PAD.left + (i - first + 1) * barW, PAD.top + plotH + 14);
    }
    ctx.textAlign = "left";
    ctx.fillText("≤ upper edge of each bucket", PAD.left, HEIGHT - 4);
    for (const { key, color } of MARKERS) {
      const x = this.xOf(this.stats[key], first, barW);
      if (x === null) continue;
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
  }

  /** The x position of a duration: linear inside its bucket, as the percentile was computed. */
  xOf(seconds, first, barW) {
    if (seconds === null || seconds === undefined) return null;
    for (let i = first; i <= this.range[1]; i += 1) {
      const [lower, upper] = bounds(i);
      if (seconds < upper || upper === Infinity) {
        const within = upper === Infinity ? 0 : Math.max(0, Math.min(1, (seconds - lower) / (upper - lower)));
        return PAD.left + (i - first + within) * barW;
      }
    }
    return null;
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
