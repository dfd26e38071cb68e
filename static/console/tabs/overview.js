// Overview tab: throughput by status, response time, capacity, CPU and RSS
// as live time series (host.snapshot, then host.frame every second).

import { ChartGroup, TimeChart } from "../charts.js";
import * as fmt from "../format.js";
import { metric, SERIES } from "../metrics.js";
import { num } from "../util.js";
import { PhasePanels } from "./overview_phases.js";

// The series the charts draw, by the metric table's names (docs/metrics.md), without 1xx.
const KEYS = SERIES.filter((name) => name !== "loss" && name !== "status_1xx_rate");
// Kept beside KEYS, not folded from the group's metrics: loss is the host's ("*"), counted
// at the second its heartbeat arrived; a group's view marks it too.
const COLUMNS = [...KEYS, "loss"];
// How per-second frames fold into one point when the snapshot's step is longer than a
// second: the table's `seconds` fold (rates and utilisations average, RSS keeps the last
// value, percentiles keep the worst second: they cannot be averaged, and the worst second
// is the honest upper bound).
const FOLD = Object.fromEntries(KEYS.map((name) => [name, metric(name).seconds]));

const perSecond = (v) => (v === null || v === undefined ? fmt.DASH : fmt.number(v) + "/s");
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
    format: perSecond,
    readout: (p) => `${perSecond(p.throughput)} · 4xx ${perSecond(p.status_4xx_rate)} · 5xx ${perSecond(p.status_5xx_rate)}`,
  },
  latency: {
    columns: ["request_p50", "request_p95", "request_p99"],
    series: [
      { label: "p50", color: "#3fb950" },
      { label: "p95", color: "#d29922" },
      { label: "p99", color: "#bc8cff" },
    ],
    format: fmt.duration,
    axisFormat: (v) => (v === 0 ? "0" : fmt.duration(v)),
    readout: (p) => `p50 ${fmt.duration(p.request_p50)} · p95 ${fmt.duration(p.request_p95)} · p99 ${fmt.duration(p.request_p99)}`,
  },
  capacity: {
    columns: ["capacity"], series: [{ label: "capacity", color: "#58a6ff" }],
    format: fmt.percent, yRange: [0, 1], readout: (p) => fmt.percent(p.capacity),
  },
  cpu: {
    columns: ["cpu"], series: [{ label: "CPU", color: "#f0883e" }],
    format: fmt.cores, axisFormat: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2)), readout: (p) => fmt.cores(p.cpu),
  },
  rss: {
    columns: ["memory_rss"], series: [{ label: "RSS", color: "#bc8cff" }],
    format: fmt.bytes, readout: (p) => fmt.bytes(p.memory_rss),
  },
};

/** A point's value of `name` from the metrics of the seconds it covers (see FOLD). */
function fold(name, seconds) {
  const how = FOLD[name];
  let sum = 0;
  let n = 0;
  let out = null;
  for (const m of seconds) {
    const v = m ? num(m[name]) : null;
    if (v === null) continue;
    if (how === "sum") {
      out = (out ?? 0) + v;
    } else if (how === "mean") {
      sum += v;
      n += 1;
      out = sum / n;
    } else if (how === "max") {
      out = Math.max(out ?? -Infinity, v);
    } else {
      out = v;
    }
  }
  return out;
}

function emptyStore(step) {
  // live: points built from frames (key -> the metrics of each second in it), newest few only
  const s = { step, t: [], weight: [], live: new Map() };
  for (const key of COLUMNS) s[key] = [];
  return s;
}

/**
 * Where the charts mark missing data: `holes`, stretches inside the window (from when the
 * host was created) without a point that holds ticks, and `loss`, the points with loss.
 * One pass over the points. The newest seconds are not a hole before LIVE_LAG: the
 * complete second comes PUBLISH_DELAY (2 s) late, and its partial versions may not.
 */
const LIVE_LAG = 4;

function marksOf(s, range, knownSince) {
  const holes = [];
  const loss = [];
  let covered = Math.max(range[0], knownSince || range[0]); // data (or the window's start) up to here
  for (let i = 0; i < s.t.length; i += 1) {
    const t = s.t[i];
    if (s.loss[i] > 0) loss.push([t, s.loss[i], s.step]);
    if (!(s.ticks[i] > 0)) continue;
    if (t > covered) holes.push([covered, t]);
    covered = Math.max(covered, t + s.step);
  }
  if (range[1] - LIVE_LAG > covered + s.step) holes.push([covered, range[1] - LIVE_LAG]);
  return { holes, loss };
}

export function createTab(ctx) {
  const { panel, state } = ctx;
  // Before the host was created there is nothing missing: no hole is drawn there.
  const knownSince = Number(document.getElementById("main").dataset.hostCreated) || 0;
  let store = emptyStore(1);
  let lastFrameAt = 0;

  const zoomNote = panel.querySelector("#zoom-note");
  const charts = new ChartGroup((range) => {
    zoomNote.hidden = range === null;
  });
  panel.querySelector("#zoom-reset").addEventListener("click", () => charts.setZoom(null));

  const phases = new PhasePanels(ctx, charts);
  const chartObjects = {};
  for (const figure of panel.querySelectorAll("figure.chart[data-chart]")) {
    const name = figure.dataset.chart;
    const spec = CHARTS[name];
    if (!spec) continue;
    const chart = new TimeChart(figure.querySelector(".plot"), spec);
    charts.add(chart);
    chartObjects[name] = { chart, spec, readout: figure.querySelector(".readout") };
  }

  function loadSnapshot(message) {
    const series = message.series || {};
    if (!Array.isArray(series.t)) return; // another tab's snapshot: no series
    const step = num(message.step) && message.step > 0 ? message.step : 1;
    const s = emptyStore(step);
    for (let i = 0; i < series.t.length; i += 1) {
      if (num(series.t[i]) === null) continue;
      const last = s.t.length ? s.t[s.t.length - 1] : null;
      if (last !== null && series.t[i] - last > step) {
        // Seconds without data: a null point, so the lines stop at the hole instead of crossing it.
        s.t.push(last + step);
        s.weight.push(0);
        for (const key of COLUMNS) s[key].push(null);
      }
      s.t.push(series.t[i]);
      s.weight.push(step);
      for (const key of COLUMNS) s[key].push(Array.isArray(series[key]) ? num(series[key][i]) : null);
    }
    store = s;
    if (store.t.length) ctx.setDataTime(store.t[store.t.length - 1]);
  }

  function pushPoint(t, values, weight) {
    store.t.push(t);
    store.weight.push(weight);
    for (const key of COLUMNS) store[key].push(values[key] ?? null);
  }

  /**
   * Fold one second of metrics (or null: no data that second) into the series.
   * A second arrives more than once: `partial` as each agent batch lands, then
   * complete two seconds later; the newest version of a second replaces the older.
   */
  function addFrame(t, metrics, hostLoss) {
    const step = store.step;
    const key = Math.floor(t / step) * step;
    const last = store.t.length ? store.t[store.t.length - 1] : null;
    let point = store.live.get(key);
    if (!point) {
      if (last !== null && key <= last) return; // older than what we show, or came with the snapshot
      if (last !== null && key - last > 2 * step) pushPoint(last + step, {}, 0); // a gap: break the line
      point = { seconds: new Map(), loss: new Map() };
      store.live.set(key, point);
      for (const old of store.live.keys()) if (old < key - 4 * Math.max(step, 2)) store.live.delete(old);
      pushPoint(key, {}, 0);
    }
    let i = store.t.length - 1;
    while (i > 0 && store.t[i] !== key) i -= 1;
    if (store.t[i] !== key) return; // trimmed away meanwhile
    point.seconds.set(t, metrics);
    point.loss.set(t, num(hostLoss) ?? 0);
    for (const name of KEYS) store[name][i] = fold(name, point.seconds.values());
    store.loss[i] = Array.from(point.loss.values()).reduce((a, b) => a + b, 0);
    store.weight[i] = point.seconds.size;
  }

  function trim() {
    const cutoff = ctx.serverNow() - state.window;
    let drop = 0;
    while (drop < store.t.length && store.t[drop] < cutoff) drop += 1;
    if (drop === 0) return;
    for (const name of ["t", "weight", ...COLUMNS]) store[name].splice(0, drop);
  }

  function latestPoint() {
    const i = store.t.length - 1;
    const point = {};
    for (const key of KEYS) point[key] = i >= 0 ? store[key][i] : null;
    return point;
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
      phases.reset();
      charts.setZoom(null);
    },
    options: () => phases.options(),
    snapshot: (message) => phases.snapshot(message),
    frame: (message) => phases.frame(message),
    hostSnapshot: loadSnapshot,
    hostFrame(message) {
      const groups = message.groups && typeof message.groups === "object" ? message.groups : {};
      addFrame(message.t, groups[state.group] || null, groups["*"] ? groups["*"].loss : 0);
      trim();
      lastFrameAt = Date.now();
    },
    tick() {
      // Without frames (agent gone, connection lost) time still moves: slide the
      // window so the silence shows as an empty stretch at the right.
      if (Date.now() - lastFrameAt > 1500) {
        trim();
        ctx.scheduleDraw();
      }
    },
    draw() {
      const now = ctx.serverNow();
      const range = [now - state.window, now];
      const point = latestPoint();
      const marks = marksOf(store, range, knownSince);
      for (const { chart, spec, readout } of Object.values(chartObjects)) {
        chart.setData([store.t, ...spec.columns.map((key) => store[key])], range, marks);
        chart.flush();
        readout.textContent = spec.readout(point);
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
