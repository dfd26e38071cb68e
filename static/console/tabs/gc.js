// GC tab: per process and interpreter, the collector's pressure, collections per
// second, pause timeline and pause histogram, and the configuration row
// (docs/live-protocol.md, "gc").
//
// This module wires the tab: the selection (pid and interpreter, in the URL), the
// uPlot charts and their zoom, Pause/Resume and the createTab hooks. The data model
// is in ./gc_model.js, the hand-drawn timeline and histogram in ./gc_canvas.js, and
// the selectors, chips, notes and table in ./gc_panel.js.
//
// Everything held is additive and keyed by time, so live seconds append and old
// ones fall off the window without the raw data. Pause freezes what is drawn (the
// view below) while frames keep filling the data; Resume draws the present.

import { ChartGroup, TimeChart } from "../charts.js";
import * as fmt from "../format.js";
import { stamp } from "../stamps.js";
import { readColors } from "../util.js";
import { createHistogram, createTimeline } from "./gc_canvas.js";
import { GEN_COLORS, GENS, MAIN, addFrame, computeView, emptyData, interpName, loadSnapshot, summarize, trim } from "./gc_model.js";
import { renderConfig, renderEmpty, renderNotes, renderSelectors, renderTable } from "./gc_panel.js";

const rate = (v) => fmt.number(v, 2) + "/s";

const PALETTE = { fg: ["--fg", "#222"], muted: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"],
  ok: ["--ok", "#3fb950"], warn: ["--warn", "#d29922"], accent: ["--accent", "#58a6ff"], p99: ["--gc-p99", "#a371f7"] };

export function createTab(ctx) {
  const { panel, state } = ctx;
  const $ = (sel) => panel.querySelector(sel);
  const pidSelect = $("#gc-pid");
  const interpSelect = $("#gc-interp");
  const pauseButton = $("#gc-pause");
  let data = emptyData();
  let view = null; // what is drawn; frozen while paused
  let paused = null; // {since, events} while paused
  let zoom = null;
  let lastFrameAt = 0;
  let colors = readColors(PALETTE);

  const selection = () => {
    const pid = Number(ctx.param("pid"));
    const interp = ctx.param("interp");
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : null, interp: interp === null ? null : (interp === MAIN ? "" : interp) };
  };
  let sel = selection();

  // -- charts ------------------------------------------------------------------------------
  const group = new ChartGroup((range) => {
    zoom = range;
    $("#gc-zoom").hidden = range === null;
    if (view) renderView(view);
  });
  $("#gc-zoom-reset").addEventListener("click", () => group.setZoom(null));
  const figure = (name) => $(`figure[data-chart="${name}"]`);
  const collections = new TimeChart(figure("collections").querySelector(".plot"), {
    series: GENS.map((g) => ({ label: "gen " + g, color: GEN_COLORS[g] })),
    format: (v) => (v === null || v === undefined ? fmt.DASH : fmt.number(v) + "/s"),
    axisFormat: (v) => fmt.number(v),
  });
  const pauses = new TimeChart(figure("pause").querySelector(".plot"), {
    series: [{ label: "paused", color: "#8b5cf6" }, { label: "longest", color: GEN_COLORS[2], width: 1, dash: [4, 3] }],
    format: fmt.duration,
    axisFormat: (v) => (v === 0 ? "0" : fmt.duration(v)),
  });
  group.add(collections);
  group.add(pauses);
  const env = { colors: () => colors, zoom: () => zoom };
  const timeline = createTimeline(figure("timeline"), env);
  const histogram = createHistogram(figure("histogram"), env);

  // -- data in: frames keep only what the selection shows ----------------------------------

  function wanted(g, p, n) {
    return (state.group === "*" || g === state.group) && (sel.pid === null || p === sel.pid)
      && (sel.interp === null || n === sel.interp);
  }

  // -- rendering ------------------------------------------------------------------------------

  function renderCharts(v, total, span) {
    const cols = v.columns;
    collections.setData([cols.t, ...cols.c], v.range);
    pauses.setData([cols.t, cols.pause, cols.pmax], v.range);
    collections.flush();
    pauses.flush();
    const seconds = Math.max(1, span);
    figure("collections").querySelector(".readout").textContent = GENS.map((g) => `gen ${g} ${rate(total.c[g] / seconds)}`).join(" · ");
    const procs = new Set(v.series.map((s) => `${s.p}:${s.i}`)).size || 1;
    figure("pause").querySelector(".readout").textContent = `${fmt.duration(total.pause)} in ${fmt.age(seconds)}`
      + ` · ${fmt.percent(total.pause / seconds / procs)} of each process's time`;
  }

  function renderView(v) {
    renderSelectors($, v, sel);
    renderEmpty($, v, sel, data.span, state.group);
    if ($("#gc-body").hidden) return;
    const [lo, hi] = zoom ? [zoom.min, zoom.max] : [v.from, v.now + 1];
    const total = summarize(v.buckets, lo, hi);
    // Rates over the time GC data covers: a host that just started has seconds, not the window.
    const start = v.buckets.length ? Math.max(v.from, v.buckets[0].t) : v.from;
    const span = zoom ? zoom.max - zoom.min : Math.min(data.span, v.now - start);
    renderConfig($, v, total);
    renderNotes($, data, state.window, v);
    renderCharts(v, total, span);
    timeline.paint(v, total);
    histogram.paint(v, total);
    renderTable($, v);
  }

  // -- controls ------------------------------------------------------------------------------

  function choose(pid, interp) {
    sel = { pid, interp };
    ctx.setParam("pid", pid === null ? null : pid);
    ctx.setParam("interp", interp === null ? null : interpName(interp), { resubscribe: true });
  }

  pidSelect.addEventListener("change", () => choose(pidSelect.value ? Number(pidSelect.value) : null, sel.interp));
  interpSelect.addEventListener("change", () => {
    const value = interpSelect.value;
    choose(sel.pid, value === "" ? null : value === MAIN ? "" : value);
  });
  $("#gc-show-all").addEventListener("click", () => choose(null, null));
  $("#gc-series tbody").addEventListener("click", (event) => {
    const tr = event.target instanceof Element ? event.target.closest("tr") : null;
    if (!tr) return;
    const interp = tr.dataset.interp;
    choose(Number(tr.dataset.pid), interp === MAIN ? "" : interp);
  });
  $("#gc-series tbody").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target instanceof HTMLElement) event.target.click();
  });

  function setPaused(on) {
    paused = on ? { since: ctx.serverNow(), events: 0 } : null;
    pauseButton.textContent = on ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", on ? "true" : "false");
    renderPaused();
    ctx.scheduleDraw();
  }

  function renderPaused() {
    const badge = $("#gc-paused");
    badge.hidden = !paused;
    if (paused) badge.textContent = `Paused at ${stamp(paused.since)} · ${fmt.count(paused.events)} new event${paused.events === 1 ? "" : "s"}`;
  }

  pauseButton.addEventListener("click", () => setPaused(!paused));

  return {
    options() {
      sel = selection();
      const out = {};
      if (sel.pid !== null) out.pid = sel.pid;
      if (sel.interp !== null) out.interp = interpName(sel.interp);
      return out;
    },
    reset() {
      data = emptyData();
      view = null;
      sel = selection();
      group.setZoom(null);
      if (paused) setPaused(false); // a new view is not what was frozen
    },
    snapshot(msg) {
      data = loadSnapshot(msg, ctx.serverNow());
      trim(data, ctx.serverNow());
      lastFrameAt = Date.now();
    },
    frame(msg) {
      if (data.loaded) { // the snapshot brings what came before
        const added = addFrame(data, msg, state.group, wanted);
        if (paused) paused.events += added;
        trim(data, ctx.serverNow());
      }
      lastFrameAt = Date.now();
    },
    tick() {
      if (Date.now() - lastFrameAt > 1500) { // no frames: still slide the window
        trim(data, ctx.serverNow());
        ctx.scheduleDraw();
      }
    },
    draw() {
      if (!data.loaded) return;
      renderPaused();
      if (paused && view) return; // frozen: data keeps arriving, the picture does not move
      view = computeView(data, ctx.serverNow(), state.processes);
      renderView(view);
    },
    resize() {
      collections.resize();
      pauses.resize();
      for (const chart of [timeline, histogram]) if (chart.last) chart.paint(...chart.last);
    },
    theme() {
      colors = readColors(PALETTE);
      collections.redraw();
      pauses.redraw();
      for (const chart of [timeline, histogram]) if (chart.last) chart.paint(...chart.last);
    },
  };
}
