// Processes tab, restarts per hour (#proc-rate): the window's restart buckets as
// bars stacked by category, the totals above them (#proc-restarts,
// #proc-restart-split) and the hover tooltip. Separate because it is its own chart,
// drawn from the model's buckets only; hidden categories leave the bars, not the totals.
//
// `view` is the tab's shared state (see processes.js), read at draw time.

import * as fmt from "../format.js";
import { CATEGORIES } from "./processes_model.js";
import { timeLabel } from "../ticks.js";
import { axisTicks, fitCanvas, lines, placeTooltip, windowLabel } from "./processes_ui.js";

export function createRate(view) {
  const { state, $ } = view;
  const rateCanvas = $("#proc-rate");
  const rateTooltip = $("#proc-rate-tooltip");
  let hoverRate = null;

  function visibleBuckets(t0, t1) {
    const model = view.model;
    return Array.from(model.buckets.values())
      .filter((b) => b[0] + model.bucket > t0 && b[0] <= t1).sort((a, b) => a[0] - b[0]);
  }

  function drawRate(t1) {
    const { model, colors } = view;
    const t0 = t1 - state.window;
    const buckets = visibleBuckets(t0, t1);
    const totals = [0, 0, 0];
    for (const b of buckets) for (let c = 0; c < 3; c += 1) totals[c] += b[1 + c];
    const count = totals[0] + totals[1] + totals[2];
    $("#proc-restarts").textContent = model.loaded
      ? fmt.count(count) + " in " + windowLabel(state.window) + " · " + fmt.number((count * 3600) / state.window) + "/h"
      : fmt.DASH;
    $("#proc-restart-split").textContent = CATEGORIES.map((c, i) => c + " " + fmt.count(totals[i])).join(" · ");
    rateCanvas.dataset.count = String(count);
    const width = rateCanvas.clientWidth || rateCanvas.parentElement.clientWidth;
    const height = 150;
    const g = fitCanvas(rateCanvas, width, height);
    const left = 28;
    const bottom = height - 18;
    const shown = buckets.map((b) => CATEGORIES.reduce((sum, c, i) => sum + (view.shownCategory(c) ? b[1 + i] : 0), 0));
    const max = Math.max(1, ...shown);
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - 6);
    const y = (v) => bottom - (v / max) * (bottom - 8);
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = colors.muted;
    g.textBaseline = "middle";
    g.fillText(String(max), 2, y(max));
    g.fillText("0", 2, bottom);
    g.strokeStyle = colors.grid;
    g.beginPath();
    g.moveTo(left, Math.round(y(max)) + 0.5);
    g.lineTo(width, Math.round(y(max)) + 0.5);
    g.moveTo(left, bottom + 0.5);
    g.lineTo(width, bottom + 0.5);
    g.stroke();
    g.textAlign = "center";
    for (const tick of axisTicks(t0, t1, Math.max(2, Math.min(3, Math.floor(width / 90))))) {
      const half = g.measureText(tick.label).width / 2; // a date label is wide: keep it whole
      g.fillText(tick.label, Math.min(Math.max(x(tick.t), left + half), width - half - 2), height - 8);
    }
    g.textAlign = "start";
    for (const b of buckets) {
      const x0 = x(Math.max(b[0], t0));
      const w = Math.max(1, x(Math.min(b[0] + model.bucket, t1)) - x0 - 1);
      let base = 0;
      CATEGORIES.forEach((c, i) => {
        if (!view.shownCategory(c) || !b[1 + i]) return;
        g.fillStyle = colors[c];
        g.fillRect(x0, y(base + b[1 + i]), w, y(base) - y(base + b[1 + i]));
        base += b[1 + i];
      });
    }
    if (!count && model.loaded) {
      g.fillStyle = colors.muted;
      g.textAlign = "center";
      g.fillText("no restarts in this window", left + (width - left) / 2, bottom / 2);
      g.textAlign = "start";
    }
    if (hoverRate) showRateTip(hoverRate.x, hoverRate.y);
  }

  function showRateTip(px, py) {
    const model = view.model;
    const t1 = view.now();
    const t0 = t1 - state.window;
    const width = rateCanvas.clientWidth;
    const t = t0 + ((px - 28) / Math.max(1, width - 34)) * (t1 - t0);
    const b = visibleBuckets(t0, t1).find((bucket) => t >= bucket[0] && t < bucket[0] + model.bucket);
    if (!b) {
      rateTooltip.hidden = true;
      return;
    }
    const n = b[1] + b[2] + b[3];
    lines(rateTooltip, [timeLabel(b[0], state.window) + " – " + timeLabel(b[0] + model.bucket, state.window),
      fmt.count(n) + " restart" + (n === 1 ? "" : "s") + " · " + fmt.number((n * 3600) / model.bucket) + "/h",
      CATEGORIES.map((c, i) => c + " " + b[1 + i]).join(" · ")]);
    placeTooltip(rateTooltip, rateCanvas.parentElement, px, py);
  }

  rateCanvas.addEventListener("mousemove", (event) => {
    hoverRate = { x: event.offsetX, y: event.offsetY };
    showRateTip(hoverRate.x, hoverRate.y);
  });
  rateCanvas.addEventListener("mouseleave", () => {
    hoverRate = null;
    rateTooltip.hidden = true;
  });

  return { draw: drawRate };
}
