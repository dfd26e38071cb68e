// Processes tab, small DOM and canvas helpers shared by its parts: the lifecycle bars
// (processes_gantt.js), restarts per hour (processes_rate.js) and the log and table
// (processes_lists.js). Separate so those parts use one copy: tooltips, canvas
// sizing, the theme's colours (PALETTE), time axes and time labels (those of every
// chart of the page: ticks.js).

import * as fmt from "../format.js";
import { DATE_AFTER, timeLabel, timeTicks } from "../ticks.js";
import { el, num } from "../util.js";

/**
 * A time of day with milliseconds, in the charts' 24-hour format: lifecycle events are
 * often a few ms apart. Over a window longer than a day (`span`), the date first.
 */
export function clockMs(t, span = 0) {
  if (num(t) === null) return fmt.DASH;
  const ms = String(Math.floor((t - Math.floor(t)) * 1000)).padStart(3, "0");
  const day = span > DATE_AFTER ? timeLabel(t, span).slice(0, -5) : ""; // "Nov 26 15:32" less its "15:32"
  return day + timeLabel(t, 0) + "." + ms;
}

/** Axis ticks across [t0, t1], at most `most`, each with its label as every chart of the page writes it. */
export function axisTicks(t0, t1, most) {
  return timeTicks(t0, t1, most).map((t) => ({ t, label: timeLabel(t, t1 - t0) }));
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

/** The theme colours the parts draw with (util.js readColors, read from the tab's panel). */
export const PALETTE = {
  fg: ["--fg", "#222"], muted: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"],
  panel: ["--panel", "#fff"], stripe: ["--proc-stripe", "rgba(128,128,128,.08)"],
  accent: ["--accent", "#0969da"], running: ["--proc-running", "#64748b"],
  gone: ["--proc-gone", "#888"], planned: ["--proc-planned", "#1a7f37"],
  tuning: ["--proc-tuning", "#9a6700"], unplanned: ["--proc-unplanned", "#cf222e"],
};
