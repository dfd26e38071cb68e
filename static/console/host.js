// Host page: tabs, group and window kept in the URL (?tab=&group=&window=),
// host.snapshot then host.frame every second (docs/live-protocol.md).
// Only the visible tab draws; the others keep their data and draw when shown.

import { ChartGroup, TimeChart } from "./charts.js";
import * as fmt from "./format.js";
import { clearNotice, everySecond, serverNow, setDataTime, setLoss, startLive } from "./live.js";

const main = document.getElementById("main");
const hostId = Number(main.dataset.hostId);
const groupSelect = document.getElementById("group");
const windowSelect = document.getElementById("window");
const tabLinks = Array.from(document.querySelectorAll('.tabs [role="tab"]'));

const state = {
  tab: main.dataset.tab,
  group: main.dataset.group,
  window: Number(main.dataset.window),
};

// -- series kept for the charts ------------------------------------------------------

const KEYS = ["throughput", "rate_2xx", "rate_3xx", "rate_4xx", "rate_5xx",
  "capacity", "cpu", "rss", "p50", "p95", "p99"];
// How per-second frames fold into one point when the snapshot's step is
// longer than a second: rates and utilisations average, RSS keeps the last
// value, percentiles keep the worst second (percentiles cannot be averaged;
// the worst second is the honest upper bound).
const FOLD = { rss: "last", p50: "max", p95: "max", p99: "max" };

let store = emptyStore(1);

function emptyStore(step) {
  const s = { step, t: [], weight: [], live: null };
  for (const key of KEYS) s[key] = [];
  return s;
}

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function loadSnapshot(message) {
  const step = num(message.step) && message.step > 0 ? message.step : 1;
  const s = emptyStore(step);
  const series = message.series || {};
  const t = Array.isArray(series.t) ? series.t : [];
  for (let i = 0; i < t.length; i += 1) {
    if (num(t[i]) === null) continue;
    s.t.push(t[i]);
    s.weight.push(step);
    for (const key of KEYS) s[key].push(Array.isArray(series[key]) ? num(series[key][i]) : null);
  }
  store = s;
}

function pushPoint(t, values, weight) {
  store.t.push(t);
  store.weight.push(weight);
  for (const key of KEYS) store[key].push(values[key] ?? null);
}

/** Fold one second of metrics (or null: no data that second) into the series. */
function addFrame(t, metrics) {
  const step = store.step;
  const key = Math.floor(t / step) * step;
  const last = store.t.length ? store.t[store.t.length - 1] : null;
  if (last !== null && key < last) return; // older than what we show
  if (last !== null && key === last && (!store.live || store.live.key !== key)) return; // came with the snapshot
  if (!store.live || store.live.key !== key) {
    if (last !== null && key - last > 2 * step) pushPoint(last + step, {}, 0); // a gap: break the line
    store.live = { key, seconds: 0, sum: {}, n: {}, value: {} };
    pushPoint(key, {}, 0);
  }
  const live = store.live;
  live.seconds += 1;
  for (const name of KEYS) {
    const v = metrics ? num(metrics[name]) : null;
    if (v === null) continue;
    const how = FOLD[name] || "mean";
    if (how === "mean") {
      live.sum[name] = (live.sum[name] || 0) + v;
      live.n[name] = (live.n[name] || 0) + 1;
      live.value[name] = live.sum[name] / live.n[name];
    } else if (how === "max") {
      live.value[name] = Math.max(live.value[name] ?? -Infinity, v);
    } else {
      live.value[name] = v;
    }
  }
  const i = store.t.length - 1;
  store.weight[i] = live.seconds;
  for (const name of KEYS) store[name][i] = live.value[name] ?? null;
}

function trim() {
  const cutoff = serverNow() - state.window;
  let drop = 0;
  while (drop < store.t.length && store.t[drop] < cutoff) drop += 1;
  if (drop === 0) return;
  for (const name of ["t", "weight", ...KEYS]) store[name].splice(0, drop);
}

// -- overview charts ------------------------------------------------------------------

const zoomNote = document.getElementById("zoom-note");
const charts = new ChartGroup((range) => {
  zoomNote.hidden = range === null;
});
document.getElementById("zoom-reset").addEventListener("click", () => charts.setZoom(null));

const perSecond = (v) => (v === null || v === undefined ? fmt.DASH : fmt.number(v) + "/s");
const CHARTS = {
  throughput: {
    columns: ["throughput", "rate_2xx", "rate_3xx", "rate_4xx", "rate_5xx"],
    series: [
      { label: "all", color: "#8a8f98", width: 1, dash: [4, 3] },
      { label: "2xx", color: "#3fb950" },
      { label: "3xx", color: "#58a6ff" },
      { label: "4xx", color: "#d29922" },
      { label: "5xx", color: "#f85149" },
    ],
    format: perSecond,
    readout: (p) => `${perSecond(p.throughput)} · 4xx ${perSecond(p.rate_4xx)} · 5xx ${perSecond(p.rate_5xx)}`,
  },
  latency: {
    columns: ["p50", "p95", "p99"],
    series: [
      { label: "p50", color: "#3fb950" },
      { label: "p95", color: "#d29922" },
      { label: "p99", color: "#bc8cff" },
    ],
    format: fmt.duration,
    axisFormat: (v) => (v === 0 ? "0" : fmt.duration(v)),
    readout: (p) => `p50 ${fmt.duration(p.p50)} · p95 ${fmt.duration(p.p95)} · p99 ${fmt.duration(p.p99)}`,
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
    columns: ["rss"], series: [{ label: "RSS", color: "#bc8cff" }],
    format: fmt.bytes, readout: (p) => fmt.bytes(p.rss),
  },
};

const chartObjects = {};
for (const figure of document.querySelectorAll("figure.chart")) {
  const name = figure.dataset.chart;
  const spec = CHARTS[name];
  const chart = new TimeChart(figure.querySelector(".plot"), spec);
  charts.add(chart);
  chartObjects[name] = { chart, spec, readout: figure.querySelector(".readout") };
}

function latestPoint() {
  const i = store.t.length - 1;
  const point = {};
  for (const key of KEYS) point[key] = i >= 0 ? store[key][i] : null;
  return point;
}

function renderTotals() {
  // Requests in the window, from the per-second rates times the seconds each point covers.
  const sum = (key) => store[key].reduce((acc, v, i) => acc + (v || 0) * store.weight[i], 0);
  const el = document.getElementById("status-totals");
  if (!store.t.length) {
    el.textContent = "No data in this window yet.";
    return;
  }
  const windowLabel = windowSelect.selectedOptions[0] ? windowSelect.selectedOptions[0].textContent : "";
  el.textContent = `≈ ${fmt.count(sum("throughput"))} requests in the last ${windowLabel}: `
    + `2xx ${fmt.count(sum("rate_2xx"))} · 3xx ${fmt.count(sum("rate_3xx"))} · `
    + `4xx ${fmt.count(sum("rate_4xx"))} · 5xx ${fmt.count(sum("rate_5xx"))}`;
}

function drawOverview() {
  const now = serverNow();
  const range = [now - state.window, now];
  const point = latestPoint();
  for (const { chart, spec, readout } of Object.values(chartObjects)) {
    chart.setData([store.t, ...spec.columns.map((key) => store[key])], range);
    chart.flush();
    readout.textContent = spec.readout(point);
  }
  renderTotals();
}

// -- processes -----------------------------------------------------------------------------

let processes = [];

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function drawProcesses() {
  const tbody = document.querySelector("#processes tbody");
  const rows = processes
    .filter((p) => p && typeof p === "object")
    .filter((p) => state.group === "*" || (p.group ?? "") === state.group)
    .sort((a, b) => String(a.group ?? "").localeCompare(String(b.group ?? "")) || (a.pid - b.pid))
    .map((p) => {
      const tr = document.createElement("tr");
      const stateCell = cell("");
      const chip = document.createElement("span");
      chip.className = "chip state";
      chip.dataset.state = String(p.state ?? "");
      chip.textContent = String(p.state ?? fmt.DASH);
      stateCell.append(chip);
      tr.append(
        cell(fmt.count(p.pid), "num"),
        cell(fmt.groupName(p.group ?? "")),
        stateCell,
        cell(fmt.count(p.incarnation), "num"),
        cell(typeof p.started === "number" ? fmt.clock(p.started) : fmt.DASH),
        cell(fmt.percent(num(p.capacity)), "num"),
        cell(fmt.cores(num(p.cpu)), "num"),
        cell(fmt.bytes(num(p.rss)), "num"),
        cell(fmt.count(num(p.requests)), "num"),
      );
      return tr;
    });
  tbody.replaceChildren(...rows);
  const empty = document.getElementById("processes-empty");
  empty.hidden = rows.length > 0;
  empty.textContent = "No processes reported in this window.";
}

// -- drawing only what is on screen ------------------------------------------------------------

let pending = false;
let processesDirty = false;

function draw() {
  pending = false;
  if (document.hidden) return; // drawn again on visibilitychange
  if (state.tab === "overview") drawOverview();
  if (state.tab === "processes" && processesDirty) {
    processesDirty = false;
    drawProcesses();
  }
}

function scheduleDraw() {
  if (!pending) {
    pending = true;
    window.requestAnimationFrame(draw);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) scheduleDraw();
});
document.addEventListener("themechange", () => {
  for (const { chart } of Object.values(chartObjects)) chart.redraw();
});
new ResizeObserver(() => {
  if (state.tab !== "overview") return;
  for (const { chart } of Object.values(chartObjects)) chart.resize();
}).observe(document.querySelector(".charts"));

// -- view state in the URL -------------------------------------------------------------------

function query(tab = state.tab) {
  const q = new URLSearchParams(window.location.search);
  q.set("tab", tab);
  q.set("group", state.group);
  q.set("window", String(state.window));
  return "?" + q.toString();
}

function showTab(tab) {
  state.tab = tab;
  for (const link of tabLinks) {
    const selected = link.dataset.tab === tab;
    link.setAttribute("aria-selected", selected ? "true" : "false");
    link.href = query(link.dataset.tab);
    const panel = document.getElementById(link.getAttribute("aria-controls"));
    if (panel) panel.hidden = !selected;
  }
  document.querySelector('#view-form input[name="tab"]').value = tab;
  if (tab === "processes") processesDirty = true;
  scheduleDraw();
}

function ensureGroupOption(group) {
  if (!Array.from(groupSelect.options).some((o) => o.value === group)) {
    groupSelect.append(new Option(fmt.groupName(group), group));
  }
  groupSelect.value = group;
}

function setGroups(groups) {
  const names = Array.isArray(groups) ? groups.filter((g) => typeof g === "string") : [];
  if (!names.includes("*")) names.unshift("*");
  if (!names.includes(state.group)) names.push(state.group);
  groupSelect.replaceChildren(...names.map((g) => new Option(fmt.groupName(g), g)));
  groupSelect.value = state.group;
}

function pointsWanted() {
  const first = Object.values(chartObjects)[0];
  const width = first ? first.chart.width() : 0;
  return Math.max(100, Math.min(2000, Math.round(width || main.clientWidth / 2 || 600)));
}

function subscribe() {
  store = emptyStore(1);
  processes = [];
  charts.setZoom(null);
  live.subscribe({ scope: "host", host: hostId, group: state.group, window: state.window, points: pointsWanted() });
}

function changeView(changes, push) {
  const resubscribe = ("group" in changes && changes.group !== state.group)
    || ("window" in changes && changes.window !== state.window);
  Object.assign(state, changes);
  ensureGroupOption(state.group);
  windowSelect.value = String(state.window);
  if (push) window.history.pushState(null, "", query());
  showTab(state.tab);
  if (resubscribe) {
    clearNotice();
    subscribe();
  }
}

for (const link of tabLinks) {
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (link.dataset.tab !== state.tab) changeView({ tab: link.dataset.tab }, true);
  });
}
groupSelect.addEventListener("change", () => changeView({ group: groupSelect.value }, true));
windowSelect.addEventListener("change", () => changeView({ window: Number(windowSelect.value) }, true));
window.addEventListener("popstate", () => {
  const q = new URLSearchParams(window.location.search);
  const windowSeconds = Number(q.get("window"));
  changeView({
    tab: tabLinks.some((l) => l.dataset.tab === q.get("tab")) ? q.get("tab") : "overview",
    group: q.get("group") ?? "*",
    window: Number.isInteger(windowSeconds) && windowSeconds >= 60 ? windowSeconds : 300,
  }, false);
});

// -- live data --------------------------------------------------------------------------------

let lastFrameAt = 0;

const live = startLive({
  "host.snapshot": (message) => {
    if (message.host !== hostId || message.group !== state.group) return; // answer to an older subscribe
    loadSnapshot(message);
    setGroups(message.groups);
    processes = Array.isArray(message.processes) ? message.processes : [];
    processesDirty = true;
    if (store.t.length) setDataTime(store.t[store.t.length - 1]);
    scheduleDraw();
  },
  "host.frame": (message) => {
    if (message.host !== hostId || num(message.t) === null) return;
    const groups = message.groups && typeof message.groups === "object" ? message.groups : {};
    addFrame(message.t, groups[state.group] || null);
    trim();
    if (groups[state.group]) setDataTime(message.t);
    // Optional extras a frame may carry: the process list when it changed, the agent's counters.
    if (Array.isArray(message.processes)) {
      processes = message.processes;
      processesDirty = true;
    }
    if (message.agent && typeof message.agent.lost === "number") setLoss(message.agent.lost);
    lastFrameAt = Date.now();
    scheduleDraw();
  },
});

// Without frames (agent gone, connection lost) time still moves: slide the
// window so the silence shows as an empty stretch at the right.
everySecond(() => {
  if (state.tab === "overview" && Date.now() - lastFrameAt > 1500) {
    trim();
    scheduleDraw();
  }
});

showTab(state.tab);
ensureGroupOption(state.group);
subscribe();
