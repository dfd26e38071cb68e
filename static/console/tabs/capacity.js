// Capacity tab: a worker-slot heatmap, one band per live process and one
// lane per slot, time left to right; slow runs outlined on top; a card per
// process with means, peaks and a saturated / CPU-GIL-bound classifier.
//
// Data (docs/live-protocol.md, "Capacity"): tab.snapshot gives each
// process's columns as parallel arrays, tab.frame the second's ticks the
// same way plus slow records. Slow runs are found here, not on the console,
// so the threshold is a pure view option (in the URL, no resubscribe).
//
// This file is the tab itself: held rows and records, trimming, the controls
// (threshold ladder, span, pause) and the layout each draw builds. The rest:
// capacity_model.js (rows, value helpers), capacity_runs.js (slow runs),
// capacity_classify.js (stats, flags), capacity_paint.js (canvas),
// capacity_tip.js (hover, tooltips), capacity_cards.js (the cards table),
// capacity_keep.js (which rows are kept; ended processes keep their band).

import { openKey, openRequest, pendingKey, updateRequest } from "../drilldown.js";
import * as fmt from "../format.js";
import { num, readColors } from "../util.js";
import { renderCards } from "./capacity_cards.js";
import { classify, rowStats } from "./capacity_classify.js";
import { timeLabel } from "../ticks.js";
import { MAX_ROWS, endedNotShown, markEnded, registryOf, revive, shown as onScreen, trimRows }
  from "./capacity_keep.js";
import { KEYS, clamp, newRow, pushColumn, recordEnd, seconds } from "./capacity_model.js";
import { AXIS, GUTTER, PALETTE, RIGHT, laneHeight, paint } from "./capacity_paint.js";
import { detectRuns, matchRecord } from "./capacity_runs.js";
import { cellRecord, hit, missingNote, showTip } from "./capacity_tip.js";

const LADDER = [0.5, 1, 2, 5, 10, 30]; // slow-run thresholds offered, in seconds
const ENDED = new Set(["stopped", "gone"]);

// -- the tab ------------------------------------------------------------------------------------------

export function createTab(ctx) {
  const { panel, state } = ctx;
  // the spans the server accepts, from the tab registry (console/live/tabs/registry.py)
  const SPANS = ctx.spec.options.span.choices;
  const DEFAULT_SPAN = ctx.spec.options.span.default;
  const canvas = panel.querySelector("#cap-canvas");
  const tip = panel.querySelector("#cap-tip");
  const empty = panel.querySelector("#cap-empty");
  const status = panel.querySelector("#cap-status");
  const thresholdSelect = panel.querySelector("#cap-threshold");
  const spanSelect = panel.querySelector("#cap-span");
  const pauseButton = panel.querySelector("#cap-pause");
  const cards = { table: panel.querySelector("#cap-cards"), body: panel.querySelector("#cap-cards tbody"),
    label: panel.querySelector("#cap-cards-span") };

  let rows = new Map();
  let records = new Map();
  let loaded = false;
  let loadedSince = null;
  let omittedProcesses = 0; // live processes the snapshot left out (more than one message lists)
  let omittedEnded = null; // {count, until}: ended processes the snapshot left out
  const dropped = new Map(); // ended rows this page let go over MAX_ROWS: key -> end
  let span = spanParam();
  let pausedAt = null;
  let frozen = null; // while paused: copies of what was shown (rows, records, process states)
  let colors = readColors(PALETTE);
  let ladderFloor = null;
  let layout = null; // what the last draw put where, for hover and click
  let pointer = null; // last mouse position over the canvas

  function spanParam() {
    const v = Number(ctx.param("span"));
    return SPANS.includes(v) ? v : DEFAULT_SPAN;
  }

  function viewNow() {
    return pausedAt ?? ctx.serverNow();
  }

  function rowFor(pid, incarnation, group) {
    const key = pid + ":" + incarnation;
    let row = rows.get(key);
    if (!row) {
      row = newRow(pid, incarnation, group);
      rows.set(key, row);
    }
    return row;
  }

  function setProcessInfo(row, slots, threshold) {
    const n = num(slots);
    if (n !== null) row.slots = clamp(Math.round(n), 0, 128);
    const th = num(threshold);
    if (th !== null) row.threshold = Math.max(0, th);
  }

  function addRecord(record) {
    if (!record || typeof record !== "object" || typeof record.key !== "string") return;
    const old = records.get(record.key);
    if (old && old.state === "completed" && record.state !== "completed") return; // a late active copy
    records.set(record.key, record);
    if (openKey() === record.key) updateRequest(record); // the open drill-down follows an active request
  }

  // -- trimming: memory stays flat whatever the page's age ---------------------------------------

  function trim() {
    const now = ctx.serverNow();
    const cutoff = now - span - 2;
    trimRows(rows, cutoff, registryOf(state.processes), dropped);
    for (const [key, record] of records) {
      const stale = record.state === "active" ? (num(record.stamp) ?? 0) < cutoff : recordEnd(record, now) < cutoff;
      if (stale) records.delete(key);
    }
  }

  /** Rows to show, in the page's group: alive (or too new to be listed yet), or ended within the span. */
  function visibleRows(now) {
    const registry = frozen ? frozen.registry : registryOf(state.processes);
    return Array.from((frozen ? frozen.rows : rows).values())
      .filter((row) => state.group === "*" || row.group === state.group)
      .filter((row) => onScreen(row, registry, now, span))
      .sort((a, b) => a.group.localeCompare(b.group) || a.pid - b.pid || a.incarnation - b.incarnation);
  }

  // -- threshold ladder and other controls -------------------------------------------------------

  /** Offer thresholds from the highest WSGISlowRequests of the shown processes up: below it there are no records. */
  function updateLadder(shown) {
    const floor = Math.max(0, ...shown.map((r) => r.threshold));
    if (floor === ladderFloor) return;
    ladderFloor = floor;
    const values = LADDER.filter((v) => v >= floor);
    if (floor > 0 && !values.includes(floor)) values.unshift(floor);
    thresholdSelect.replaceChildren(...values.map((v) => new Option(seconds(v), String(v))));
  }

  function threshold() {
    const options = Array.from(thresholdSelect.options).map((o) => Number(o.value));
    const wanted = Number(ctx.param("threshold"));
    if (options.length && options.includes(wanted)) return wanted;
    if (options.length && Number.isFinite(wanted) && wanted > 0) {
      return options.find((v) => v >= wanted) ?? options[options.length - 1];
    }
    return ladderFloor > 0 ? ladderFloor : 1;
  }

  thresholdSelect.addEventListener("change", () => {
    ctx.setParam("threshold", thresholdSelect.value);
    ctx.scheduleDraw();
  });
  spanSelect.value = String(span);
  spanSelect.addEventListener("change", () => {
    span = SPANS.includes(Number(spanSelect.value)) ? Number(spanSelect.value) : DEFAULT_SPAN;
    ctx.setParam("span", span === DEFAULT_SPAN ? null : span, { resubscribe: true });
  });
  /**
   * Pause keeps drawing a copy of what is on screen (bounded: one span) while
   * the live data goes on arriving and being trimmed underneath.
   */
  function setPaused(paused) {
    pausedAt = paused ? ctx.serverNow() : null;
    frozen = null;
    if (paused) {
      const copies = new Map();
      for (const [key, row] of rows) {
        const cols = {};
        for (const name of KEYS) cols[name] = row.cols[name].slice();
        copies.set(key, { ...row, cols, runs: null });
      }
      frozen = { rows: copies, records: new Map(records), registry: registryOf(state.processes) };
    }
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    renderStatus();
    ctx.scheduleDraw();
  }

  pauseButton.addEventListener("click", () => setPaused(pausedAt === null));

  // -- drawing --------------------------------------------------------------------------------------

  function buildLayout(shown, now) {
    const th = threshold();
    const byThread = new Map();
    for (const record of (frozen ? frozen.records : records).values()) {
      const key = record.pid + ":" + record.incarnation + ":" + record.thread;
      if (!byThread.has(key)) byThread.set(key, []);
      byThread.get(key).push(record);
    }
    const grouped = state.group === "*" && new Set(shown.map((r) => r.group)).size > 1;
    const bands = [];
    let y = 4;
    let group = null;
    for (const row of shown) {
      if (grouped && row.group !== group) {
        group = row.group;
        bands.push({ heading: fmt.groupName(group), y, h: 18 });
        y += 20;
      }
      if (!row.runs || row.runs.version !== row.version || row.runs.threshold !== th) {
        row.runs = { version: row.version, threshold: th, list: detectRuns(row, th) };
      }
      const runs = row.runs.list.map((run) => {
        const record = matchRecord(row, run, byThread, now);
        if (!record) return { ...run };
        const start = num(record.start);
        const end = record.state === "active" ? now : start + (num(record.duration) ?? 0);
        return { ...run, record, start, end, finished: record.state !== "active", active: record.state === "active" };
      });
      const lane = laneHeight(row.slots);
      const h = Math.max(row.slots * lane, 30);
      const stats = rowStats(row, now - span, now);
      const runCount = runs.filter((r) => r.end >= now - span).length;
      row.flag = classify(stats, runCount, row.slots);
      bands.push({ row, y, h, lane, runs, byThread, stats, runCount });
      y += h + 8;
    }
    return { bands, height: y + AXIS, threshold: th };
  }

  function draw() {
    const now = viewNow();
    const shown = visibleRows(now);
    updateLadder(shown);
    thresholdSelect.value = String(threshold());
    renderStatus();
    renderEmpty(shown);
    const width = Math.max(300, canvas.parentElement.clientWidth - 16);
    const next = buildLayout(shown, now);
    const x0 = GUTTER;
    const x1 = width - RIGHT;
    layout = { ...next, now, span, t0: now - span, x0, x1, width,
      x: (t) => x0 + ((t - (now - span)) / span) * (x1 - x0) };
    paint(canvas, layout, shown.length ? next.height : 0, colors);
    renderCards(cards, layout, span);
    refreshTip();
  }

  function renderStatus() {
    const notes = [];
    if (pausedAt !== null) notes.push(`paused at ${timeLabel(pausedAt, span)} · data keeps arriving`);
    if (span < spanParam()) notes.push(`span limited to the page's window (${seconds(span)})`);
    if (omittedProcesses > 0) notes.push(`and ${fmt.count(omittedProcesses)} more processes not shown`);
    const ended = endedNotShown(dropped, omittedEnded, viewNow(), span);
    if (ended > 0) {
      notes.push(`${fmt.count(ended)} ended process${ended === 1 ? "" : "es"} not shown ` +
        `(more than ${fmt.count(MAX_ROWS)} processes: live ones first)`);
    }
    if (loadedSince !== null && loadedSince > viewNow() - span) {
      notes.push(`columns before ${timeLabel(loadedSince, span)} were not loaded (too many processes for this span); ` +
        "live ones fill in");
    }
    status.dataset.kind = notes.length ? "warn" : "";
    status.textContent = notes.join(" · ");
  }

  function renderEmpty(shown) {
    let text = "";
    if (!loaded) text = "Waiting for the first snapshot…";
    else if (!shown.length) {
      text = `No live process ${state.group === "*" ? "on this host" : "in group " + fmt.groupName(state.group)} ` +
        `has reported worker slots in the last ${seconds(span)}. Rows appear as soon as an agent forwards ` +
        "request-metrics ticks: check that the host's agent is running and that mod_wsgi sends telemetry to its " +
        "socket" + (state.group === "*" ? "." : ", or pick All groups.");
    }
    empty.textContent = text;
    empty.hidden = text === "";
  }

  // -- hover and click -------------------------------------------------------------------------------

  function refreshTip() {
    const found = pointer && hit(layout, span, pointer.x, pointer.y);
    showTip(tip, canvas, pointer, found, layout);
  }

  canvas.addEventListener("mousemove", (event) => {
    pointer = { x: event.offsetX, y: event.offsetY };
    refreshTip();
  });
  canvas.addEventListener("mouseleave", () => {
    pointer = null;
    refreshTip();
  });
  canvas.addEventListener("click", (event) => {
    const found = hit(layout, span, event.offsetX, event.offsetY);
    if (!found) return;
    const threads = found.band.row.slots;
    if (found.kind === "run") {
      const { record } = found.run;
      const note = record ? null : missingNote(found.band.row, found.run, ctx.serverNow());
      openRequest(record || null, { threads, note });
    } else if (found.kind === "cell") {
      const record = cellRecord(found.band, found.i, found.slot, layout.now);
      if (record) openRequest(record, { threads });
    }
  });

  // -- the tab module interface ------------------------------------------------------------------------

  return {
    options() {
      span = spanParam();
      spanSelect.value = String(span);
      // A link's request (req=<key>, awaited by the drill-down): the console sends its record
      // even when it is older than the newest ones a snapshot carries (capacity.py, LINK_LIMIT).
      const linked = pendingKey();
      return typeof linked === "string" ? { span, req: linked } : { span };
    },
    reset() {
      if (pausedAt !== null) setPaused(false); // a new view: start live
      rows = new Map();
      records = new Map();
      loaded = false;
      loadedSince = null;
      omittedProcesses = 0;
      omittedEnded = null;
      dropped.clear();
      ladderFloor = null;
    },
    snapshot(message) {
      const s = num(message.span);
      if (s !== null && s > 0) span = s;
      loadedSince = num(message.loaded_since);
      // processes_total counts the ended ones too; those left out are said apart (omitted_ended)
      const listed = Array.isArray(message.processes) ? message.processes : [];
      const listedEnded = listed.filter((p) => p && ENDED.has(p.state)).length;
      const liveTotal = (num(message.processes_total) ?? listed.length) - (num(message.ended_total) ?? listedEnded);
      omittedProcesses = Math.max(0, liveTotal - (listed.length - listedEnded));
      const left = message.omitted_ended;
      omittedEnded = left && num(left.count) > 0 && num(left.until) !== null
        ? { count: left.count, until: left.until } : null;
      for (const p of listed) {
        if (!p || typeof p !== "object" || num(p.pid) === null) continue;
        const row = rowFor(p.pid, p.incarnation, p.group);
        setProcessInfo(row, p.slots, p.threshold);
        const cols = p.columns && typeof p.columns === "object" ? p.columns : {};
        const n = Array.isArray(cols.t) ? cols.t.length : 0;
        for (let i = 0; i < n; i += 1) pushColumn(row, (key) => (Array.isArray(cols[key]) ? cols[key][i] : null));
        if (!row.lastTick) row.lastTick = num(message.now) ?? 0;
        if (ENDED.has(p.state)) markEnded(row, p.state, p.ended, p.reason);
      }
      // A link's request (the drill-down waits for it; asked before addRecord fills it in): shown
      // with its process's request threads, as a click on its run shows it.
      const wanted = pendingKey();
      for (const record of Array.isArray(message.slow) ? message.slow : []) addRecord(record);
      loaded = true;
      const linked = wanted ? records.get(wanted) : null;
      if (linked && ctx.visible()) {
        const row = rows.get(linked.pid + ":" + linked.incarnation);
        openRequest(linked, { threads: row ? row.slots : null });
      }
      const newest = Math.max(0, ...Array.from(rows.values(), (r) => r.lastTick));
      if (newest) ctx.setDataTime(newest);
    },
    frame(message) {
      const ticks = message.ticks && typeof message.ticks === "object" ? message.ticks : {};
      const ticking = message.omitted ? num(message.omitted.ticking) : null;
      if (ticking !== null && ticking > omittedProcesses) omittedProcesses = ticking;
      const n = Array.isArray(ticks.t) && Array.isArray(ticks.pid) ? ticks.t.length : 0;
      for (let i = 0; i < n; i += 1) {
        const get = (key) => (Array.isArray(ticks[key]) ? ticks[key][i] : null);
        if (num(get("pid")) === null) continue;
        const row = rowFor(get("pid"), get("incarnation"), get("group"));
        setProcessInfo(row, get("slots"), get("threshold"));
        pushColumn(row, get);
        revive(row, num(get("t")));
      }
      for (const record of Array.isArray(message.slow) ? message.slow : []) addRecord(record);
      // [pid, incarnation, when, reason]: the band stays, marked, until its end leaves the span
      for (const stop of Array.isArray(message.stopped) ? message.stopped : []) {
        const row = Array.isArray(stop) ? rows.get(stop[0] + ":" + stop[1]) : null;
        if (row) markEnded(row, "stopped", num(stop[2]) ?? num(message.t), stop[3]);
      }
      trim();
    },
    tick() {
      trim();
      if (ctx.visible()) ctx.scheduleDraw();
    },
    draw,
    resize() {
      ctx.scheduleDraw();
    },
    theme() {
      colors = readColors(PALETTE);
    },
  };
}
