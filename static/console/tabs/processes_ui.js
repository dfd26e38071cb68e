// Processes tab, small DOM and canvas helpers shared by its parts: the lifecycle bars
// (processes_gantt.js), restarts per hour (processes_rate.js) and the log and table
// (processes_lists.js). Separate so those parts use one copy: tooltips, canvas
// sizing, time ticks, the theme's colours (PALETTE) and time labels.

import * as fmt from "../format.js";
import { el, num } from "../util.js";

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800];

/** Wall-clock time with milliseconds: lifecycle events are often a few ms apart. */
export function clockMs(t) {
  if (num(t) === null) return fmt.DASH;
  return fmt.clock(t) + "." + String(Math.floor((t - Math.floor(t)) * 1000)).padStart(3, "0");
}

export function windowLabel(seconds) {
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

export function lines(box, items) {
  box.replaceChildren(...items.filter(Boolean).map((item, i) => el("div", i === 0 ? "proc-tip-head" : "", item)));
}

export function placeTooltip(box, wrap, x, y) {
  box.hidden = false;
  const flip = x + 14 + box.offsetWidth > wrap.clientWidth;
  box.style.left = Math.max(0, flip ? x - box.offsetWidth - 14 : x + 14) + "px";
  box.style.top = Math.max(0, y - box.offsetHeight - 10) + "px";
}

/** A canvas sized for the device's pixels, cleared, in CSS-pixel coordinates. */
export function fitCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(width * dpr));
  const h = Math.max(1, Math.round(height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
    canvas.style.height = height + "px";
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  return g;
}

/** Text cut with "…" to fit `max` pixels (6-digit pids and long group names never overlap). */
export function fit(g, value, max) {
  if (g.measureText(value).width <= max) return value;
  let lo = 0;
  let hi = value.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (g.measureText(value.slice(0, mid) + "…").width <= max) lo = mid;
    else hi = mid - 1;
  }
  return lo > 0 ? value.slice(0, lo) + "…" : "";
}

/** Time ticks at round local times, at most `most` of them across [t0, t1]. */
export function timeTicks(t0, t1, most) {
  const span = Math.max(1, t1 - t0);
  const step = TIME_STEPS.find((s) => span / s <= most) ?? Math.ceil(span / most / 86400) * 86400;
  const offset = -new Date(t1 * 1000).getTimezoneOffset() * 60;
  const ticks = [];
  for (let t = Math.ceil((t0 + offset) / step) * step - offset; t <= t1; t += step) ticks.push(t);
  const label = (t) => {
    const d = new Date(t * 1000);
    if (step >= 86400) return (d.getMonth() + 1) + "/" + d.getDate();
    return d.toTimeString().slice(0, step < 60 ? 8 : 5);
  };
  return ticks.map((t) => ({ t, label: label(t) }));
}

/** The theme colours the parts draw with (util.js readColors, read from the tab's panel). */
export const PALETTE = {
  fg: ["--fg", "#222"], muted: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"],
  panel: ["--panel", "#fff"], stripe: ["--proc-stripe", "rgba(128,128,128,.08)"],
  accent: ["--accent", "#0969da"], running: ["--proc-running", "#64748b"],
  gone: ["--proc-gone", "#888"], planned: ["--proc-planned", "#1a7f37"],
  tuning: ["--proc-tuning", "#9a6700"], unplanned: ["--proc-unplanned", "#cf222e"],
};
