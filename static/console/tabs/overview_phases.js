// The Overview's phase panels: where the window's requests spent their time
// (weighted means, exact min/max, percentiles), the latency histogram of one
// phase, and the phase means over time. Data: the overview tab.snapshot
// (per point: each phase's [duration sum, requests, min, max] and the chosen
// phase's histogram), then a tab.frame per second with the same per group.

import { TimeChart } from "../charts.js";
import * as fmt from "../format.js";
import { BUCKETS, addInto, percentile } from "../hdr.js";
import { HistogramChart } from "../histogram.js";
import { num } from "../util.js";

const LABELS = {
  server: "server", queue: "queue", daemon: "daemon", application: "application", request: "request (total)",
  gil_wait: "GIL wait", input_read: "input read", output_write: "output write",
};
const COLORS = {
  server: "#8a8f98", queue: "#d29922", daemon: "#f0883e", application: "#58a6ff", request: "#3fb950",
  gil_wait: "#bc8cff", input_read: "#39c5cf", output_write: "#db61a2",
};
// The request's path through mod_wsgi, in order: these add up to the request time.
const STACKED = ["server", "queue", "daemon", "application"];
const CHARTED = ["server", "queue", "daemon", "application", "gil_wait"];

/** Add [sum, weight, min, max] rows of one source into an accumulator (in place). */
function addSums(into, rows) {
  if (!Array.isArray(rows)) return into;
  rows.forEach((row, i) => {
    if (!Array.isArray(row)) return;
    const acc = into[i] || (into[i] = [0, 0, null, null]);
    acc[0] += num(row[0]) ?? 0;
    acc[1] += num(row[1]) ?? 0;
    const lo = num(row[2]);
    const hi = num(row[3]);
    if (lo !== null) acc[2] = acc[2] === null ? lo : Math.min(acc[2], lo);
    if (hi !== null) acc[3] = acc[3] === null ? hi : Math.max(acc[3], hi);
  });
  return into;
}

export class PhasePanels {
  constructor(ctx, group) {
    this.ctx = ctx;
    const { panel } = ctx;
    this.phases = Object.keys(LABELS);
    const fallback = ctx.spec.options.phase.default; // the tab registry's, as the server's
    this.phase = ctx.param("phase") || fallback;
    this.select = panel.querySelector("#hist-phase");
    this.select.replaceChildren(...this.phases.map((p) => new Option(LABELS[p], p)));
    this.select.value = this.phase;
    this.select.addEventListener("change", () => {
      this.phase = this.select.value;
      ctx.setParam("phase", this.phase === fallback ? null : this.phase, { resubscribe: true });
    });
    this.histogram = new HistogramChart(panel.querySelector("#latency-hist"));
    const figure = panel.querySelector('figure[data-chart="phases"]');
    this.chart = new TimeChart(figure.querySelector(".plot"), {
      series: CHARTED.map((p) => ({ label: LABELS[p], color: COLORS[p] })),
      format: fmt.duration,
      unit: "seconds",
    });
    group.add(this.chart);
    this.readout = figure.querySelector(".readout");
    this.reset();
  }

  resize() {
    this.chart.resize();
    this.dirty = true;
  }

  theme() {
    this.chart.redraw();
    this.dirty = true;
  }

  options() {
    return { phase: this.phase };
  }

  reset() {
    this.dirty = true;
    this.step = 1;
    this.points = []; // {t, sums: [[sum, weight, min, max] per phase], hist: dense counts of this.phase}
  }

  snapshot(message) {
    this.dirty = true;
    if (Array.isArray(message.phases)) this.phases = message.phases.filter((p) => p in LABELS);
    if (typeof message.phase === "string" && message.phase in LABELS) this.phase = message.phase;
    this.select.value = this.phase;
    this.step = num(message.step) > 0 ? message.step : 1;
    const t = Array.isArray(message.t) ? message.t : [];
    this.points = [];
    t.forEach((time, i) => {
      if (num(time) === null) return;
      this.points.push({
        t: time,
        sums: addSums([], (message.sums || [])[i]),
        hist: addInto(new Array(BUCKETS).fill(0), (message.hist || [])[i]),
      });
    });
  }

  /** One second of live data: merged over the groups the page shows. */
  frame(message) {
    const groups = message.groups && typeof message.groups === "object" ? message.groups : {};
    const wanted = this.ctx.state.group;
    const sums = [];
    const hist = new Array(BUCKETS).fill(0);
    let any = false;
    for (const [name, data] of Object.entries(groups)) {
      if (wanted !== "*" && name !== wanted) continue;
      if (!data || typeof data !== "object") continue;
      any = true;
      addSums(sums, data.sums);
      addInto(hist, data.hist && data.hist[this.phase]);
    }
    if (!any || num(message.t) === null) return;
    this.dirty = true;
    const key = Math.floor(message.t / this.step) * this.step;
    let point = this.points.length ? this.points[this.points.length - 1] : null;
    if (!point || point.t < key) {
      point = { t: key, sums: [], hist: new Array(BUCKETS).fill(0) };
      this.points.push(point);
    } else if (point.t > key) {
      return; // older than the newest point: already in the snapshot
    }
    addSums(point.sums, sums);
    for (let i = 0; i < BUCKETS; i += 1) point.hist[i] += hist[i];
  }

  trim() {
    const cutoff = this.ctx.serverNow() - this.ctx.state.window - this.step;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].t < cutoff) drop += 1;
    if (drop) this.points.splice(0, drop);
  }

  totals() {
    const sums = [];
    const hist = new Array(BUCKETS).fill(0);
    for (const point of this.points) {
      addSums(sums, point.sums);
      for (let i = 0; i < BUCKETS; i += 1) hist[i] += point.hist[i];
    }
    return { sums, hist };
  }

  /** Redraw only when the phase data changed (it arrives once a second; frames come ~10 times). */
  draw(range) {
    if (!this.dirty) {
      this.chart.setData(this.chart.data || [[]], range);
      this.chart.flush();
      return;
    }
    this.dirty = false;
    this.trim();
    const { sums, hist } = this.totals();
    const index = this.phases.indexOf(this.phase);
    const row = sums[index] || [0, 0, null, null];
    const stats = {};
    for (const [key, p] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) stats[key] = percentile(hist, p, row[2], row[3]);
    this.histogram.set(hist, stats);
    this.histogram.draw();
    this.drawTable(sums);
    const n = hist.reduce((a, b) => a + b, 0);
    this.ctx.panel.querySelector("#hist-readout").textContent = n
      ? `n ${fmt.count(n)} · min ${fmt.duration(row[2])} · p50 ${fmt.duration(stats.p50)} · `
        + `p95 ${fmt.duration(stats.p95)} · p99 ${fmt.duration(stats.p99)} · max ${fmt.duration(row[3])}`
      : "no requests in this window";
    // the means over time
    const columns = CHARTED.map((p) => {
      const i = this.phases.indexOf(p);
      return this.points.map((pt) => {
        const r = pt.sums[i];
        return r && r[1] > 0 ? r[0] / r[1] : null;
      });
    });
    this.chart.setData([this.points.map((p) => p.t), ...columns], range);
    this.chart.flush();
    this.readout.textContent = CHARTED.map((p) => {
      const r = sums[this.phases.indexOf(p)];
      return `${LABELS[p]} ${fmt.duration(r && r[1] > 0 ? r[0] / r[1] : null)}`;
    }).join(" · ");
  }

  drawTable(sums) {
    const panel = this.ctx.panel;
    const rows = [];
    const bar = [];
    const total = STACKED.reduce((acc, p) => {
      const r = sums[this.phases.indexOf(p)];
      return acc + (r && r[1] > 0 ? r[0] / r[1] : 0);
    }, 0);
    for (const [i, phase] of this.phases.entries()) {
      const r = sums[i] || [0, 0, null, null];
      const mean = r[1] > 0 ? r[0] / r[1] : null;
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      const swatch = document.createElement("span");
      swatch.className = "phase-swatch";
      swatch.style.background = COLORS[phase];
      name.append(swatch, LABELS[phase]);
      tr.append(name);
      const isHist = phase === this.phase;
      for (const value of [mean, null, null, null, r[2], r[3]]) {
        const td = document.createElement("td");
        td.className = "num";
        td.textContent = fmt.duration(value);
        tr.append(td);
      }
      const count = document.createElement("td");
      count.className = "num";
      count.textContent = fmt.count(r[1]);
      tr.append(count);
      if (isHist) {
        tr.classList.add("selected");
        tr.children[2].textContent = fmt.duration(this.histogram.stats.p50);
        tr.children[3].textContent = fmt.duration(this.histogram.stats.p95);
        tr.children[4].textContent = fmt.duration(this.histogram.stats.p99);
      } else {
        for (const c of [2, 3, 4]) tr.children[c].title = "choose this phase for the histogram to see percentiles";
      }
      tr.dataset.phase = phase;
      tr.addEventListener("click", () => {
        if (phase === this.phase) return;
        this.select.value = phase;
        this.select.dispatchEvent(new Event("change"));
      });
      rows.push(tr);
      if (STACKED.includes(phase) && mean !== null && total > 0) {
        const span = document.createElement("span");
        span.style.width = ((100 * mean) / total).toFixed(2) + "%";
        span.style.background = COLORS[phase];
        span.title = `${LABELS[phase]} ${fmt.duration(mean)} (${((100 * mean) / total).toFixed(0)} %)`;
        bar.push(span);
      }
    }
    panel.querySelector("#phase-table tbody").replaceChildren(...rows);
    panel.querySelector("#phase-bar").replaceChildren(...bar);
    panel.querySelector("#phases-note").textContent = this.points.length ? "" : "(no requests in this window)";
  }
}
