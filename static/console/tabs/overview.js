// Overview tab: throughput by status, response time, capacity, CPU and RSS as live
// time series (host.snapshot, then the complete host.frame of every second), each with
// a readout of the last complete seconds (a frame's `recent`) that says its span.

import { ChartGroup, TimeChart } from "../charts.js";
import * as fmt from "../format.js";
import { emptyStore, headline, marksOf, snapshotStore, takeFrame, trimStore } from "./overview_model.js";
import { PhasePanels } from "./overview_phases.js";

/** The latency chart's y axis unless the URL says otherwise (`scale=linear`). */
const DEFAULT_SCALE = "log";

const perSecond = (v) => (v === null || v === undefined ? fmt.DASH : fmt.rate(v) + "/s");
const CHARTS = {
  throughput: {
    columns: ["throughput", "status_2xx_rate", "status_3xx_rate", "status_4xx_rate", "status_5xx_rate"],
    series: [
      { label: "all", color: "#8a8f98", width: 1, dash: [4, 3] },
      { label: "2xx", color: "#3fb950" },
      { label: "3xx", color: "#58a6ff" },
      { label: "4xx", color: "#d29922" },
      { label: "5xx", color: "#f85149" },
    ],
    format: perSecond, unit: "rate",
    readout: (p) => `${perSecond(p.throughput)} · 4xx ${perSecond(p.status_4xx_rate)} · 5xx ${perSecond(p.status_5xx_rate)}`,
  },
  latency: {
    columns: ["request_p50", "request_p95", "request_p99"],
    series: [
      { label: "p50", color: "#3fb950" },
      { label: "p95", color: "#d29922" },
      { label: "p99", color: "#bc8cff" },
    ],
    format: fmt.duration, unit: "seconds",
    readout: (p) => `p50 ${fmt.duration(p.request_p50)} · p95 ${fmt.duration(p.request_p95)} · p99 ${fmt.duration(p.request_p99)}`,
  },
  capacity: {
    columns: ["capacity"], series: [{ label: "capacity", color: "#58a6ff" }],
    format: fmt.percent, unit: "percent", yRange: [0, 1], readout: (p) => fmt.percent(p.capacity),
  },
  cpu: {
    columns: ["cpu"], series: [{ label: "CPU", color: "#f0883e" }],
    format: fmt.cores, unit: "plain", readout: (p) => fmt.cores(p.cpu),
  },
  rss: {
    columns: ["memory_rss"], series: [{ label: "RSS", color: "#bc8cff" }],
    format: fmt.bytes, unit: "bytes", readout: (p) => fmt.bytes(p.memory_rss),
  },
};

/** Set an element's text (and title) only when it changed: the page redraws ten times a second. */
function say(el, text, title = null) {
  if (!el) return;
  if (el.textContent !== text) el.textContent = text;
  if (title !== null && el.title !== title) el.title = title;
}

export function createTab(ctx) {
  const { panel, state } = ctx;
  // Before the host was created there is nothing missing: no hole is drawn there.
  const knownSince = Number(document.getElementById("main").dataset.hostCreated) || 0;
  let store = emptyStore(1);
  let recent = null; // the newest complete frame's headline: what every readout shows
  let lastFrameAt = 0;

  const zoomNote = panel.querySelector("#zoom-note");
  const charts = new ChartGroup((range) => {
    zoomNote.hidden = range === null;
  });
  panel.querySelector("#zoom-reset").addEventListener("click", () => charts.setZoom(null));

  const phases = new PhasePanels(ctx, charts);
  const scale = panel.querySelector("#latency-scale");
  scale.value = ctx.param("scale") === "linear" ? "linear" : DEFAULT_SCALE;
  const chartObjects = {};
  for (const figure of panel.querySelectorAll("figure.chart[data-chart]")) {
    const name = figure.dataset.chart;
    const spec = CHARTS[name];
    if (!spec) continue;
    const log = name === "latency" && scale.value === "log";
    const chart = new TimeChart(figure.querySelector(".plot"), { ...spec, log });
    charts.add(chart);
    chartObjects[name] = { chart, spec, readout: figure.querySelector(".readout"), span: figure.querySelector(".readout-span") };
  }
  scale.addEventListener("change", () => {
    ctx.setParam("scale", scale.value === DEFAULT_SCALE ? null : scale.value);
    chartObjects.latency.chart.setLog(scale.value === "log");
    ctx.scheduleDraw();
  });

  function loadSnapshot(message) {
    const s = snapshotStore(message);
    if (!s) return; // another tab's snapshot: no series
    store = s;
    if (store.t.length) ctx.setDataTime(store.t[store.t.length - 1]);
  }

  /** The marks in words, above the charts: a canvas says nothing to a screen reader. */
  function renderMarks(marks) {
    const el = panel.querySelector("#chart-marks");
    if (!el) return;
    const lost = marks.loss.reduce((sum, m) => sum + m[1], 0);
    const empty = marks.holes.reduce((sum, [from, to]) => sum + (to - from), 0);
    const parts = [];
    if (marks.loss.length) {
      parts.push(`${fmt.count(lost)} datagrams lost by sequence gaps, counted in ${fmt.count(marks.loss.length)}`
        + ` point${marks.loss.length === 1 ? "" : "s"} (red)`);
    }
    if (empty >= 1) parts.push(`${fmt.age(empty)} without data (hatched)`);
    const text = parts.length ? "Marked on the charts: " + parts.join(" · ") : "";
    if (el.textContent !== text) el.textContent = text;
    el.hidden = !text;
    el.dataset.lost = String(lost);
  }

  function renderTotals() {
    // Requests in the window, from the per-second rates times the seconds each point covers.
    const sum = (key) => store[key].reduce((acc, v, i) => acc + (v || 0) * store.weight[i], 0);
    const el = panel.querySelector("#status-totals");
    if (!store.t.length) {
      el.textContent = "No data in this window yet.";
      return;
    }
    const select = document.getElementById("window");
    const windowLabel = select && select.selectedOptions[0] ? select.selectedOptions[0].textContent : "";
    el.textContent = `≈ ${fmt.count(sum("throughput"))} requests in the last ${windowLabel}: `
      + `2xx ${fmt.count(sum("status_2xx_rate"))} · 3xx ${fmt.count(sum("status_3xx_rate"))} · `
      + `4xx ${fmt.count(sum("status_4xx_rate"))} · 5xx ${fmt.count(sum("status_5xx_rate"))}`;
  }

  return {
    reset() {
      store = emptyStore(1);
      recent = null;
      phases.reset();
      charts.setZoom(null);
    },
    options: () => phases.options(),
    snapshot: (message) => phases.snapshot(message),
    frame: (message) => phases.frame(message),
    hostSnapshot: loadSnapshot,
    hostFrame(message) {
      lastFrameAt = Date.now();
      if (!takeFrame(store, message, state.group)) return; // a partial second: drawn once complete
      recent = message.recent ?? null;
      trimStore(store, ctx.serverNow() - state.window);
    },
    tick() {
      // Without frames (agent gone, connection lost) time still moves: slide the
      // window so the silence shows as an empty stretch at the right.
      if (Date.now() - lastFrameAt > 1500) {
        trimStore(store, ctx.serverNow() - state.window);
        ctx.scheduleDraw();
      }
    },
    draw() {
      const now = ctx.serverNow();
      const range = [now - state.window, now];
      const head = headline(recent, state.group, now);
      const marks = marksOf(store, range, knownSince);
      for (const { chart, spec, readout, span } of Object.values(chartObjects)) {
        chart.setData([store.t, ...spec.columns.map((key) => store[key])], range, marks);
        chart.flush();
        say(readout, spec.readout(head.values || {}));
        say(span, head.span, head.title);
      }
      renderTotals();
      renderMarks(marks);
      phases.draw(range);
    },
    resize() {
      for (const { chart } of Object.values(chartObjects)) chart.resize();
      phases.resize();
    },
    theme() {
      for (const { chart } of Object.values(chartObjects)) chart.redraw();
      phases.theme();
    },
  };
}
