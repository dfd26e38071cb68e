// Processes tab: each process's life as a bar (STARTED → STOPPING → STOPPED, coloured
// by why it stopped), restarts per hour, the lifecycle event log and the process
// table. All four are linked: selecting a process in one (click, or ↑/↓ on the
// bars) highlights it in the others, and the selection is in the URL (`pid`).
//
// Data (docs/live-protocol.md, "processes"): tab.snapshot gives rows, events and
// restart buckets for the window; tab.frame adds the second's events and each
// process's newest tick; the registry in host.snapshot / host.frame (every 5 s)
// tells what events cannot: a process that went silent without a STOPPED is
// "gone". Time is always the console's clock (ctx.serverNow()), never the
// browser's, so a skewed laptop draws the same bars.
//
// This module holds the tab's shared state (the `view` below), its options (hidden
// categories, pause, selection) and the message handling; the parts live beside it:
//   processes_model.js  rows, events, restart buckets and how messages fold into them
//   processes_gantt.js  the lifecycle bars        processes_rate.js   restarts per hour
//   processes_lists.js  the event log and table   processes_ui.js     shared DOM/canvas helpers

import * as fmt from "../format.js";
import { readColors } from "../util.js";
import { createGantt } from "./processes_gantt.js";
import { createLists } from "./processes_lists.js";
import { CATEGORIES, applyFrame, createModel, mergeRecord, modelFromSnapshot, text, trim } from "./processes_model.js";
import { createRate } from "./processes_rate.js";
import { PALETTE } from "./processes_ui.js";

const FLASH_MS = 2500;

export function createTab(ctx) {
  const { panel, state } = ctx;
  const $ = (selector) => panel.querySelector(selector);
  const pauseButton = $("#proc-pause");

  // What the parts share. They read it when they draw, so a new model (a snapshot)
  // or new colours (a theme change) reach all of them without being told.
  const view = {
    ctx, state, $,
    model: createModel(),
    colors: readColors(PALETTE, panel),
    pausedAt: null,
    selected: ctx.param("pid") || null,
    hidden: new Set(String(ctx.param("hide") || "").split(",").filter((c) => CATEGORIES.includes(c))),
    flash: { key: null, until: 0 },
    scrollTo: null, // {gantt, log}: the key each should scroll to on its next draw
    now: () => view.pausedAt ?? ctx.serverNow(),
    inGroup: (group) => state.group === "*" || text(group) === state.group,
    shownCategory: (category) => !view.hidden.has(category || "unplanned"),
    select,
  };
  view.scrollTo = view.selected ? { gantt: view.selected, log: view.selected } : null;

  const since = () => view.now() - state.window;
  const touch = () => {
    view.model.version += 1;
    if (ctx.visible()) ctx.scheduleDraw();
  };

  for (const box of panel.querySelectorAll('input[name="proc-cat"]')) {
    box.checked = !view.hidden.has(box.value);
    box.addEventListener("change", () => {
      if (box.checked) view.hidden.delete(box.value);
      else view.hidden.add(box.value);
      ctx.setParam("hide", CATEGORIES.filter((c) => view.hidden.has(c)).join(","));
      touch();
    });
  }

  pauseButton.addEventListener("click", () => {
    view.pausedAt = view.pausedAt === null ? ctx.serverNow() : null;
    pauseButton.setAttribute("aria-pressed", view.pausedAt === null ? "false" : "true");
    pauseButton.textContent = view.pausedAt === null ? "Pause" : "Resume (paused at " + fmt.clock(view.pausedAt) + ")";
    touch();
  });

  const gantt = createGantt(view);
  const rate = createRate(view);
  const lists = createLists(view);

  // -- selection, shared by the bars, the log and the table --------------------------------

  function select(key, source) {
    view.selected = key;
    ctx.setParam("pid", key);
    view.flash = { key, until: performance.now() + FLASH_MS };
    if (key) view.scrollTo = { gantt: source === "gantt" ? null : key, log: source === "log" ? null : key };
    lists.markSelection(true);
    window.setTimeout(() => ctx.visible() && ctx.scheduleDraw(), FLASH_MS + 50); // fade the bar's flash
    ctx.scheduleDraw();
  }

  // -- live data ---------------------------------------------------------------------------

  function mergeRegistry(records) {
    if (!Array.isArray(records)) return;
    const t0 = since();
    for (const record of records) mergeRecord(view.model, record, t0);
    trim(view.model, t0);
    touch();
  }

  return {
    reset() {
      view.model = createModel();
      lists.reset();
    },
    hostSnapshot(message) {
      mergeRegistry(message.processes);
    },
    hostFrame(message) {
      if (Array.isArray(message.processes)) mergeRegistry(message.processes);
    },
    snapshot(message) {
      view.model = modelFromSnapshot(message, view.model);
      mergeRegistry(state.processes);
    },
    frame(message) {
      if (!view.model.loaded) return;
      applyFrame(view.model, message, view.inGroup);
      trim(view.model, since());
      touch();
    },
    tick() {
      if (ctx.visible()) ctx.scheduleDraw(); // time moves: the bars slide even without news
    },
    theme() {
      view.colors = readColors(PALETTE, panel);
    },
    resize() {
      ctx.scheduleDraw();
    },
    draw() {
      const t1 = view.now();
      trim(view.model, t1 - state.window);
      gantt.draw(t1);
      rate.draw(t1);
      lists.draw(t1);
    },
  };
}
