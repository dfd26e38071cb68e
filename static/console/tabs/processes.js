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

import * as fmt from "../format.js";

const CATEGORIES = ["planned", "tuning", "unplanned"];
const KINDS = new Set(["started", "stopping", "stopped"]);
const ROW_H = 22;
const AXIS_H = 24;
const PAD_RIGHT = 12; // room for the "still running" chevron at now
const MAX_EVENTS = 2000; // what the console sends at most; older events leave first
const MAX_ROWS = 1000;
const FLASH_MS = 2500;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800];
const STATES = new Set(["running", "stopping", "stopped", "gone"]);

// -- small helpers ------------------------------------------------------------------------

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function text(value) {
  return typeof value === "string" ? value : "";
}

function keyOf(pid, inc) {
  return pid + ":" + inc;
}

function rowStart(row) {
  return row.started ?? row.first_seen ?? null;
}

/** When a bar ends: STOPPED, or the last sample of a silent process; null while it lives. */
function rowEnd(row) {
  if (row.stopped != null) return row.stopped;
  return row.state === "gone" ? (row.last_seen ?? null) : null;
}

function stoppedAt(row) {
  return row.stopping ?? row.stopped ?? null;
}

/** Group, then first seen, then pid: a group's processes stay together in start order. */
function byGroupStartPid(a, b) {
  return a.group.localeCompare(b.group) || (rowStart(a) ?? 0) - (rowStart(b) ?? 0) || a.pid - b.pid || a.inc - b.inc;
}

/** Wall-clock time with milliseconds: lifecycle events are often a few ms apart. */
function clockMs(t) {
  if (num(t) === null) return fmt.DASH;
  return fmt.clock(t) + "." + String(Math.floor((t - Math.floor(t)) * 1000)).padStart(3, "0");
}

function windowLabel(seconds) {
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

function el(tag, textContent, className) {
  const node = document.createElement(tag);
  if (textContent !== undefined && textContent !== null) node.textContent = textContent;
  if (className) node.className = className;
  return node;
}

function lines(box, items) {
  box.replaceChildren(...items.filter(Boolean).map((item, i) => el("div", item, i === 0 ? "proc-tip-head" : "")));
}

function placeTooltip(box, wrap, x, y) {
  box.hidden = false;
  const flip = x + 14 + box.offsetWidth > wrap.clientWidth;
  box.style.left = Math.max(0, flip ? x - box.offsetWidth - 14 : x + 14) + "px";
  box.style.top = Math.max(0, y - box.offsetHeight - 10) + "px";
}

/** A canvas sized for the device's pixels, cleared, in CSS-pixel coordinates. */
function fitCanvas(canvas, width, height) {
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
function fit(g, value, max) {
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
function timeTicks(t0, t1, most) {
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

function readColors(panel) {
  const style = getComputedStyle(panel);
  const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    fg: get("--fg", "#222"), muted: get("--muted", "#888"), grid: get("--grid", "rgba(128,128,128,.2)"),
    panel: get("--panel", "#fff"), stripe: get("--proc-stripe", "rgba(128,128,128,.08)"),
    accent: get("--accent", "#0969da"), running: get("--proc-running", "#64748b"),
    gone: get("--proc-gone", "#888"), planned: get("--proc-planned", "#1a7f37"),
    tuning: get("--proc-tuning", "#9a6700"), unplanned: get("--proc-unplanned", "#cf222e"),
  };
}

// -- the model: rows (one per process incarnation), events, restart buckets ------------------

/** Fold an event into its row: the same rule as the console's `apply_event`. */
function applyEvent(row, e) {
  row[e.kind] = e.t;
  row.first_seen = Math.min(row.first_seen ?? e.t, e.t);
  row.last_seen = Math.max(row.last_seen ?? e.t, e.t);
  if (e.kind === "started") {
    if (row.parent == null && e.parent != null) row.parent = e.parent;
    return;
  }
  if (e.reason || !row.reason) {
    row.reason = e.reason ?? null;
    row.category = e.category;
  }
  if (e.kind === "stopping") {
    row.at_decision = e.in_flight ?? null;
    if (row.state === "running" || row.state == null) row.state = "stopping";
  } else {
    Object.assign(row, { at_exit: e.in_flight ?? null, uptime: e.uptime ?? null, requests: e.requests ?? null,
      drain: e.drain ?? null, state: "stopped" });
  }
}

function validEvent(e) {
  return e && typeof e === "object" && KINDS.has(e.kind) && num(e.t) !== null
    && Number.isInteger(e.pid) && Number.isInteger(e.inc);
}

function createModel() {
  return {
    rows: new Map(), events: new Map(), buckets: new Map(), counted: new Map(), bucket: 60,
    rowsTotal: null, eventsTotal: null, historyFrom: null, loaded: false, version: 0, eventVersion: 0,
  };
}

function addEvent(model, e) {
  const id = keyOf(e.pid, e.inc) + ":" + e.kind;
  if (model.events.has(id)) return;
  model.events.set(id, e);
  model.eventVersion += 1;
  const key = keyOf(e.pid, e.inc);
  let row = model.rows.get(key);
  if (!row) {
    row = { key, pid: e.pid, inc: e.inc, group: text(e.group), state: "running" };
    model.rows.set(key, row);
  }
  applyEvent(row, e);
  if (e.kind !== "started") countRestart(model, key, e.t, e.category);
}

/** One restart per process (its STOPPING, else its STOPPED), in its time bucket. */
function countRestart(model, key, t, category) {
  if (model.counted.has(key)) return;
  model.counted.set(key, t);
  const start = Math.floor(t / model.bucket) * model.bucket;
  const bucket = model.buckets.get(start) ?? [start, 0, 0, 0];
  bucket[1 + Math.max(0, CATEGORIES.indexOf(category))] += 1;
  model.buckets.set(start, bucket);
}

/** A registry record (host.snapshot / host.frame) updates its row; a live process gets one. */
function mergeRecord(model, record, since) {
  if (!record || typeof record !== "object" || !Number.isInteger(record.pid)) return;
  const key = keyOf(record.pid, record.incarnation);
  let row = model.rows.get(key);
  if (!row) {
    const live = record.state === "running" || record.state === "stopping";
    if (!live && !(num(record.last_seen) !== null && record.last_seen >= since)) return;
    if (record.state === "stopped" && model.loaded) return; // its events tell its story
    row = { key, pid: record.pid, inc: record.incarnation, group: text(record.group), state: record.state };
    model.rows.set(key, row);
  }
  // STOPPED is final; a "running" record may lag a STOPPING event by a few seconds.
  if (STATES.has(record.state) && row.state !== "stopped" && !(record.state === "running" && row.state === "stopping")) {
    row.state = record.state;
  }
  for (const name of ["first_seen", "started", "stopping", "stopped", "interval"]) {
    if (row[name] == null && num(record[name]) !== null) row[name] = record[name];
  }
  if (num(record.last_seen) !== null) row.last_seen = Math.max(row.last_seen ?? 0, record.last_seen);
  const parent = record.identity && num(record.identity.process_parent_pid);
  if (row.parent == null && parent !== null) row.parent = parent;
}

/** Drop what left the window, and keep the held data under its caps. */
function trim(model, since) {
  const before = model.events.size;
  for (const [id, e] of model.events) if (e.t < since) model.events.delete(id);
  if (model.events.size > MAX_EVENTS) {
    const oldest = Array.from(model.events).sort((a, b) => a[1].t - b[1].t);
    for (const [id] of oldest.slice(0, model.events.size - MAX_EVENTS)) model.events.delete(id);
  }
  if (model.events.size !== before) model.eventVersion += 1;
  for (const [key, row] of model.rows) {
    const end = rowEnd(row);
    if (end !== null && end < since) model.rows.delete(key);
  }
  if (model.rows.size > MAX_ROWS) {
    const ended = Array.from(model.rows.values()).filter((r) => rowEnd(r) !== null)
      .sort((a, b) => rowEnd(a) - rowEnd(b));
    for (const row of ended.slice(0, model.rows.size - MAX_ROWS)) model.rows.delete(row.key);
  }
  for (const [start] of model.buckets) if (start + model.bucket <= since) model.buckets.delete(start);
  for (const [key, t] of model.counted) if (t < since - model.bucket) model.counted.delete(key);
}

// -- the tab ---------------------------------------------------------------------------------

export function createTab(ctx) {
  const { panel, state } = ctx;
  const $ = (selector) => panel.querySelector(selector);
  const gantt = $("#proc-gantt");
  const ganttCanvas = gantt.querySelector("canvas");
  const sizer = gantt.querySelector(".proc-gantt-sizer");
  const tooltip = $("#proc-tooltip");
  const rateCanvas = $("#proc-rate");
  const rateTooltip = $("#proc-rate-tooltip");
  const logWrap = $("#proc-log-wrap");
  const logBody = $("#proc-log tbody");
  const tableBody = $("#processes tbody");
  const pauseButton = $("#proc-pause");

  let model = createModel();
  let colors = readColors(panel);
  let pausedAt = null;
  let selected = ctx.param("pid") || null;
  let hidden = new Set(String(ctx.param("hide") || "").split(",").filter((c) => CATEGORIES.includes(c)));
  let flash = { key: null, until: 0 };
  let scrollTo = selected ? { gantt: selected, log: selected } : null;
  let ganttRows = []; // what the bars show, in order: hover and keys look rows up here
  let hoverGantt = null; // {x, y} of a resting cursor: its tooltip follows live data
  let hoverRate = null;
  let logSignature = "";
  let tableSignature = "";
  gantt.dataset.rowHeight = String(ROW_H);
  gantt.dataset.axisHeight = String(AXIS_H);

  const now = () => pausedAt ?? ctx.serverNow();
  const since = () => now() - state.window;
  const inGroup = (group) => state.group === "*" || text(group) === state.group;
  const shownCategory = (category) => !hidden.has(category || "unplanned");
  const touch = () => {
    model.version += 1;
    if (ctx.visible()) ctx.scheduleDraw();
  };

  for (const box of panel.querySelectorAll('input[name="proc-cat"]')) {
    box.checked = !hidden.has(box.value);
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(box.value);
      else hidden.add(box.value);
      ctx.setParam("hide", CATEGORIES.filter((c) => hidden.has(c)).join(","));
      touch();
    });
  }

  pauseButton.addEventListener("click", () => {
    pausedAt = pausedAt === null ? ctx.serverNow() : null;
    pauseButton.setAttribute("aria-pressed", pausedAt === null ? "false" : "true");
    pauseButton.textContent = pausedAt === null ? "Pause" : "Resume (paused at " + fmt.clock(pausedAt) + ")";
    touch();
  });

  // -- selection, shared by the bars, the log and the table --------------------------------

  function select(key, source) {
    selected = key;
    ctx.setParam("pid", key);
    flash = { key, until: performance.now() + FLASH_MS };
    if (key) scrollTo = { gantt: source === "gantt" ? null : key, log: source === "log" ? null : key };
    markSelection(true);
    window.setTimeout(() => ctx.visible() && ctx.scheduleDraw(), FLASH_MS + 50); // fade the bar's flash
    ctx.scheduleDraw();
  }

  function markSelection(flashNow) {
    for (const tr of [...logBody.rows, ...tableBody.rows]) {
      const on = tr.dataset.key === selected;
      tr.classList.toggle("selected", on);
      if (on && flashNow) {
        tr.classList.remove("flash");
        void tr.offsetWidth; // restart the animation
        tr.classList.add("flash");
      } else if (!on) tr.classList.remove("flash");
    }
  }

  function rowClicked(event) {
    const tr = event.target.closest("tr[data-key]");
    if (tr) select(tr.dataset.key === selected ? null : tr.dataset.key, event.currentTarget === logBody ? "log" : "table");
  }
  logBody.addEventListener("click", rowClicked);
  tableBody.addEventListener("click", rowClicked);

  // -- the bars ----------------------------------------------------------------------------

  function barRows(t0, t1) {
    const out = [];
    for (const row of model.rows.values()) {
      if (!inGroup(row.group)) continue;
      const end = rowEnd(row);
      const start = rowStart(row);
      if ((end !== null && end < t0) || (start !== null && start > t1)) continue;
      if (stoppedAt(row) !== null && row.category && !shownCategory(row.category)) continue;
      out.push(row);
    }
    return out.sort(byGroupStartPid);
  }

  function colorOf(row) {
    if (row.state === "gone" && row.stopped == null) return colors.gone;
    if (stoppedAt(row) !== null && row.category) return colors[row.category] ?? colors.unplanned;
    return colors.running;
  }

  function gutterWidth(g, rows) {
    let pidWidth = 0;
    let groupWidth = 0;
    for (const row of rows) {
      pidWidth = Math.max(pidWidth, g.measureText(pidLabel(row)).width);
      if (state.group === "*") groupWidth = Math.max(groupWidth, g.measureText(fmt.groupName(row.group)).width);
    }
    return { pid: Math.ceil(pidWidth), total: Math.ceil(Math.min(pidWidth + 14 + Math.min(groupWidth, 150) + 10, 320)) };
  }

  function pidLabel(row) {
    return "pid " + row.pid + (row.inc > 1 ? " #" + row.inc : "");
  }

  function drawGantt(t1) {
    const t0 = t1 - state.window;
    ganttRows = barRows(t0, t1);
    gantt.dataset.rows = String(ganttRows.length);
    const empty = $("#proc-gantt-empty");
    gantt.parentElement.hidden = ganttRows.length === 0;
    empty.hidden = ganttRows.length > 0;
    if (!ganttRows.length) {
      empty.textContent = ganttEmptyText();
      tooltip.hidden = true;
      return;
    }
    const total = AXIS_H + ganttRows.length * ROW_H;
    const maxView = parseFloat(getComputedStyle(gantt).maxHeight) || 416;
    const viewH = Math.min(total, maxView);
    sizer.style.height = Math.max(0, total - viewH) + "px";
    const width = gantt.clientWidth;
    const g = fitCanvas(ganttCanvas, width, viewH);
    applyScroll(viewH);
    const top = gantt.scrollTop;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    const gutter = gutterWidth(g, ganttRows);
    const plot = Math.max(10, width - gutter.total - PAD_RIGHT);
    const x = (t) => gutter.total + ((t - t0) / (t1 - t0)) * plot;
    const ticks = timeTicks(t0, t1, Math.max(2, Math.min(6, Math.floor(plot / 80))));
    const first = Math.max(0, Math.floor(top / ROW_H));
    const last = Math.min(ganttRows.length - 1, Math.ceil((top + viewH - AXIS_H) / ROW_H));
    const flashing = flash.key && performance.now() < flash.until;
    for (let i = first; i <= last; i += 1) {
      const row = ganttRows[i];
      const y = AXIS_H + i * ROW_H - top;
      if (row.key === selected) {
        g.globalAlpha = flashing && flash.key === row.key ? 0.35 : 0.16;
        g.fillStyle = colors.accent;
        g.fillRect(0, y, width, ROW_H);
        g.globalAlpha = 1;
      } else if (i % 2) {
        g.fillStyle = colors.stripe;
        g.fillRect(0, y, width, ROW_H);
      }
      drawGutter(g, row, y, gutter);
      drawBar(g, row, y, x, t0, t1);
    }
    drawAxis(g, ticks, x, width, viewH, gutter.total);
    if (hoverGantt) showGanttTip(hoverGantt.x, hoverGantt.y);
  }

  function drawGutter(g, row, y, gutter) {
    const mid = y + ROW_H / 2;
    g.fillStyle = colors.fg;
    g.fillText(pidLabel(row), 6, mid);
    if (state.group !== "*") return;
    const left = 6 + gutter.pid + 8;
    g.fillStyle = colors.muted;
    g.fillText(fit(g, fmt.groupName(row.group), gutter.total - left - 8), left, mid);
  }

  function drawBar(g, row, y, x, t0, t1) {
    const start = rowStart(row);
    const end = rowEnd(row);
    const x0 = x(Math.max(start ?? t0, t0));
    const x1 = x(Math.min(end ?? t1, t1));
    const top = y + 5;
    const h = ROW_H - 10;
    const color = colorOf(row);
    g.fillStyle = color;
    g.globalAlpha = row.state === "gone" && row.stopped == null ? 0.55 : 1;
    g.fillRect(x0, top, Math.max(2, x1 - x0), h);
    g.globalAlpha = 1;
    if (start === null || start < t0) {
      // a notch: this life began before the window (or before anything was seen)
      g.fillStyle = colors.panel;
      g.beginPath();
      g.moveTo(x0, top);
      g.lineTo(x0 + 4, top + h / 2);
      g.lineTo(x0, top + h);
      g.fill();
    }
    if (end === null) {
      // an open chevron at now: still running
      g.fillStyle = color;
      g.beginPath();
      g.moveTo(x1, top - 2);
      g.lineTo(x1 + 6, top + h / 2);
      g.lineTo(x1, top + h + 2);
      g.fill();
    } else if (row.state === "gone" && row.stopped == null) {
      g.strokeStyle = colors.fg;
      g.setLineDash([2, 2]);
      g.beginPath();
      g.moveTo(x1 + 0.5, top - 3);
      g.lineTo(x1 + 0.5, top + h + 3);
      g.stroke();
      g.setLineDash([]);
    }
    if (row.stopping != null && row.stopping >= t0 && row.stopping <= t1) {
      g.fillStyle = colors.fg; // the STOPPING tick
      g.fillRect(Math.round(x(row.stopping)) - 1, top - 3, 2, h + 6);
    }
  }

  function drawAxis(g, ticks, x, width, height, left) {
    g.fillStyle = colors.panel;
    g.fillRect(0, 0, width, AXIS_H);
    g.strokeStyle = colors.grid;
    g.lineWidth = 1;
    g.fillStyle = colors.muted;
    g.textAlign = "center";
    for (const tick of ticks) {
      const px = Math.round(x(tick.t)) + 0.5;
      g.beginPath();
      g.moveTo(px, AXIS_H - 4);
      g.lineTo(px, height);
      g.stroke();
      g.fillText(tick.label, Math.min(Math.max(px, left + 24), width - 28), AXIS_H / 2);
    }
    g.beginPath();
    g.moveTo(left + 0.5, 0);
    g.lineTo(left + 0.5, height);
    g.moveTo(0, AXIS_H - 0.5);
    g.lineTo(width, AXIS_H - 0.5);
    g.stroke();
    g.textAlign = "start";
  }

  function applyScroll(viewH) {
    if (!scrollTo || !scrollTo.gantt) return;
    const i = ganttRows.findIndex((r) => r.key === scrollTo.gantt);
    if (i >= 0) gantt.scrollTop = Math.max(0, AXIS_H + i * ROW_H - viewH / 2);
    if (i >= 0 || model.loaded) scrollTo.gantt = null;
  }

  function ganttEmptyText() {
    if (!model.loaded) return "Waiting for the first snapshot…";
    const where = state.group === "*" ? "" : " in " + fmt.groupName(state.group);
    const hiddenRows = Array.from(model.rows.values()).some((r) => inGroup(r.group) && r.category && !shownCategory(r.category));
    if (hiddenRows) return "Every process here stopped for a reason you have hidden: tick planned, tuning or unplanned above.";
    return "No process was alive" + where + " in the last " + windowLabel(state.window)
      + ". Check that this host's agent is running (the fleet page shows when it was last seen), or pick a longer window.";
  }

  function rowAt(y) {
    if (y < AXIS_H) return null;
    return ganttRows[Math.floor((y - AXIS_H + gantt.scrollTop) / ROW_H)] ?? null;
  }

  function showGanttTip(x, y) {
    const row = rowAt(y);
    if (!row) {
      tooltip.hidden = true;
      return;
    }
    lines(tooltip, tipLines(row));
    placeTooltip(tooltip, gantt.parentElement, x, y);
  }

  function tipLines(row) {
    const out = ["pid " + row.pid + " · parent " + (row.parent ?? fmt.DASH) + (row.inc > 1 ? " · incarnation " + row.inc : ""),
      "group " + fmt.groupName(row.group),
      "started " + (row.started != null ? clockMs(row.started) : "not seen (first sample " + clockMs(row.first_seen) + ")")];
    if (row.stopping != null) out.push("stopping " + clockMs(row.stopping) + " · " + fmt.count(row.at_decision) + " in flight at decision");
    if (row.stopped != null) out.push("stopped " + clockMs(row.stopped));
    if (stoppedAt(row) !== null) out.push("reason " + (row.reason || "none given") + " (" + (row.category || "unplanned") + ")");
    if (row.stopped != null) {
      out.push("uptime " + fmt.age(row.uptime) + " · " + fmt.count(row.requests) + " requests");
      out.push(fmt.count(row.at_exit) + " in flight at exit · graceful drain " + (row.drain === true ? "yes" : row.drain === false ? "no" : fmt.DASH));
    } else if (row.state === "gone") {
      out.push("state gone: silent since " + clockMs(row.last_seen) + ", no STOPPED received");
    } else {
      out.push("state " + text(row.state) + (row.started != null ? " · up " + fmt.age(now() - row.started) : ""));
    }
    return out;
  }

  ganttCanvas.addEventListener("mousemove", (event) => {
    hoverGantt = { x: event.offsetX, y: event.offsetY };
    showGanttTip(hoverGantt.x, hoverGantt.y);
  });
  ganttCanvas.addEventListener("mouseleave", () => {
    hoverGantt = null;
    tooltip.hidden = true;
  });
  ganttCanvas.addEventListener("click", (event) => {
    const row = rowAt(event.offsetY);
    if (row) select(row.key === selected ? null : row.key, "gantt");
  });
  gantt.addEventListener("scroll", () => ctx.scheduleDraw());
  gantt.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && selected) {
      select(null, "gantt");
      event.preventDefault();
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    const i = ganttRows.findIndex((r) => r.key === selected);
    const next = ganttRows[Math.min(ganttRows.length - 1, Math.max(0, i + (event.key === "ArrowDown" ? 1 : -1)))];
    if (next) select(next.key, "keys");
  });

  // -- restarts per hour -------------------------------------------------------------------

  function visibleBuckets(t0, t1) {
    return Array.from(model.buckets.values())
      .filter((b) => b[0] + model.bucket > t0 && b[0] <= t1).sort((a, b) => a[0] - b[0]);
  }

  function drawRate(t1) {
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
    const shown = buckets.map((b) => CATEGORIES.reduce((sum, c, i) => sum + (shownCategory(c) ? b[1 + i] : 0), 0));
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
    for (const tick of timeTicks(t0, t1, Math.max(2, Math.min(3, Math.floor(width / 90))))) {
      g.fillText(tick.label, Math.min(Math.max(x(tick.t), left + 16), width - 20), height - 8);
    }
    g.textAlign = "start";
    for (const b of buckets) {
      const x0 = x(Math.max(b[0], t0));
      const w = Math.max(1, x(Math.min(b[0] + model.bucket, t1)) - x0 - 1);
      let base = 0;
      CATEGORIES.forEach((c, i) => {
        if (!shownCategory(c) || !b[1 + i]) return;
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
    const t1 = now();
    const t0 = t1 - state.window;
    const width = rateCanvas.clientWidth;
    const t = t0 + ((px - 28) / Math.max(1, width - 34)) * (t1 - t0);
    const b = visibleBuckets(t0, t1).find((bucket) => t >= bucket[0] && t < bucket[0] + model.bucket);
    if (!b) {
      rateTooltip.hidden = true;
      return;
    }
    const n = b[1] + b[2] + b[3];
    lines(rateTooltip, [fmt.clock(b[0]) + " – " + fmt.clock(b[0] + model.bucket),
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

  // -- the event log -----------------------------------------------------------------------

  function logEvents(t0, t1) {
    return Array.from(model.events.values())
      .filter((e) => e.t >= t0 && e.t <= t1 && inGroup(e.group) && (e.kind === "started" || shownCategory(e.category)))
      .sort((a, b) => a.t - b.t || a.pid - b.pid);
  }

  function logRow(e) {
    const key = keyOf(e.pid, e.inc);
    const row = model.rows.get(key);
    const tr = el("tr");
    tr.dataset.key = key;
    tr.dataset.kind = e.kind;
    const kind = el("td");
    const chip = el("span", e.kind, "chip kind");
    chip.dataset.kind = e.kind;
    kind.append(chip);
    const reason = el("td", e.kind === "started" ? "" : (e.reason || "none given"), "reason");
    if (e.kind !== "started") reason.dataset.category = e.category || "unplanned";
    const drained = e.kind !== "stopped" ? "" : e.drain === true ? "yes" : e.drain === false ? "no" : fmt.DASH;
    tr.append(el("td", clockMs(e.t)), kind, el("td", String(e.pid), "num"),
      el("td", String(e.parent ?? row?.parent ?? fmt.DASH), "num"), el("td", fmt.groupName(text(e.group))), reason,
      el("td", e.kind === "stopped" ? fmt.age(e.uptime) : "", "num"),
      el("td", e.kind === "stopped" ? fmt.count(e.requests) : "", "num"),
      el("td", e.kind === "started" ? "" : fmt.count(e.in_flight), "num"), el("td", drained));
    return tr;
  }

  function renderLog(t1) {
    const t0 = t1 - state.window;
    const list = logEvents(t0, t1);
    const ends = list.length ? list[0].t + ":" + list[list.length - 1].t : "";
    const signature = [model.eventVersion, list.length, ends, state.group, [...hidden].join()].join("|");
    if (signature !== logSignature) {
      logSignature = signature;
      const pinned = logWrap.hidden || logWrap.scrollTop + logWrap.clientHeight >= logWrap.scrollHeight - 4;
      logWrap.hidden = list.length === 0; // before scrolling: a hidden box does not scroll
      logBody.replaceChildren(...list.map(logRow));
      markSelection(false);
      if (pinned) logWrap.scrollTop = logWrap.scrollHeight; // oldest first, pinned to the newest
      const empty = $("#proc-log-empty");
      empty.hidden = list.length > 0 || !model.loaded;
      empty.textContent = "No STARTED, STOPPING or STOPPED events in the last " + windowLabel(state.window)
        + (state.group === "*" ? "" : " in " + fmt.groupName(state.group))
        + ". Processes log them when they start or stop (maximum requests, restart interval, reloads, signals);"
        + " pick a longer window to look further back" + (hidden.size ? ", or tick the hidden reasons above." : ".");
      $("#proc-log-note").textContent = logNote(list.length);
    }
    if (scrollTo && scrollTo.log) {
      const tr = Array.from(logBody.rows).find((r) => r.dataset.key === scrollTo.log);
      if (tr) logWrap.scrollTop += tr.getBoundingClientRect().top - logWrap.getBoundingClientRect().top - logWrap.clientHeight / 3;
      if (tr || model.loaded) scrollTo.log = null;
    }
  }

  function logNote(shown) {
    const parts = [fmt.count(shown) + " event" + (shown === 1 ? "" : "s")];
    if (model.eventsTotal !== null && model.eventsTotal > MAX_EVENTS) {
      parts.push("the console sent the newest " + fmt.count(MAX_EVENTS) + " of " + fmt.count(model.eventsTotal)
        + ": pick a shorter window to see the rest");
    }
    if (model.historyFrom !== null) parts.push("nothing kept before " + new Date(model.historyFrom * 1000).toLocaleString());
    return parts.join(" · ");
  }

  // -- the table ---------------------------------------------------------------------------

  function tableRow(row) {
    const tr = el("tr");
    tr.dataset.key = row.key;
    const chip = el("span", "", "chip state");
    const stateCell = el("td");
    stateCell.append(chip);
    tr.append(el("td", String(row.pid), "num"), el("td", fmt.groupName(text(row.group))), stateCell,
      el("td", fmt.count(row.inc), "num"), el("td"), el("td", "", "num"), el("td", "", "num"),
      el("td", "", "num"), el("td", "", "num"));
    return tr;
  }

  /** The cells that change: state, start and the newest tick (only while the process lives). */
  function fillRow(tr, row) {
    const chip = tr.cells[2].firstChild;
    chip.textContent = text(row.state) || fmt.DASH;
    chip.dataset.state = text(row.state);
    const live = row.state === "running" || row.state === "stopping";
    const values = [row.started != null ? fmt.clock(row.started) : fmt.DASH,
      live ? fmt.percent(num(row.capacity)) : fmt.DASH, live ? fmt.cores(num(row.cpu)) : fmt.DASH,
      live ? fmt.bytes(num(row.rss)) : fmt.DASH, live && num(row.rps) !== null ? fmt.number(row.rps) + "/s" : fmt.DASH];
    values.forEach((value, i) => {
      const cell = tr.cells[4 + i];
      if (cell.textContent !== value) cell.textContent = value;
    });
  }

  function renderTable(t1) {
    const t0 = t1 - state.window;
    const rows = Array.from(model.rows.values()).filter((r) => inGroup(r.group)
      && !(rowEnd(r) !== null && rowEnd(r) < t0)).sort(byGroupStartPid);
    const signature = rows.map((r) => r.key).join(",");
    if (signature !== tableSignature || tableBody.rows.length !== rows.length) {
      tableSignature = signature;
      tableBody.replaceChildren(...rows.map(tableRow));
      markSelection(false);
    }
    rows.forEach((row, i) => fillRow(tableBody.rows[i], row));
    const empty = $("#processes-empty");
    empty.hidden = rows.length > 0;
    empty.textContent = model.loaded || model.rows.size
      ? "No processes reported in the last " + windowLabel(state.window) + ". Check that this host's agent is running, or pick a longer window."
      : "Waiting for the first snapshot…";
  }

  // -- live data ---------------------------------------------------------------------------

  function mergeRegistry(records) {
    if (!Array.isArray(records)) return;
    const t0 = since();
    for (const record of records) mergeRecord(model, record, t0);
    trim(model, t0);
    touch();
  }

  return {
    reset() {
      model = createModel();
      logSignature = "";
      tableSignature = "";
    },
    hostSnapshot(message) {
      mergeRegistry(message.processes);
    },
    hostFrame(message) {
      if (Array.isArray(message.processes)) mergeRegistry(message.processes);
    },
    snapshot(message) {
      const registry = Array.from(model.rows.values());
      model = createModel();
      model.bucket = num(message.restarts && message.restarts.bucket) || 60;
      for (const row of Array.isArray(message.rows) ? message.rows : []) {
        if (!row || typeof row !== "object" || typeof row.key !== "string") continue;
        const copy = { ...row, group: text(row.group) };
        model.rows.set(row.key, copy);
        if (stoppedAt(copy) !== null) model.counted.set(row.key, stoppedAt(copy));
      }
      for (const b of (message.restarts && Array.isArray(message.restarts.buckets)) ? message.restarts.buckets : []) {
        if (Array.isArray(b) && b.length === 4 && b.every((v) => num(v) !== null)) model.buckets.set(b[0], b.slice());
      }
      for (const e of Array.isArray(message.events) ? message.events : []) {
        if (validEvent(e)) model.events.set(keyOf(e.pid, e.inc) + ":" + e.kind, e);
      }
      model.rowsTotal = num(message.rows_total);
      model.eventsTotal = num(message.events_total);
      model.historyFrom = num(message.history_from);
      model.loaded = true;
      // the registry the page already holds is as new as the snapshot, or newer
      for (const row of registry) if (!model.rows.has(row.key) && (row.state === "running" || row.state === "stopping")) model.rows.set(row.key, row);
      mergeRegistry(state.processes);
    },
    frame(message) {
      if (!model.loaded) return;
      for (const e of Array.isArray(message.events) ? message.events : []) {
        if (validEvent(e) && inGroup(e.group)) addEvent(model, e);
      }
      for (const tick of Array.isArray(message.ticks) ? message.ticks : []) {
        const row = Array.isArray(tick) ? model.rows.get(keyOf(tick[0], tick[1])) : null;
        if (!row) continue; // not in this group, or not yet known: the registry brings it
        [row.capacity, row.cpu, row.rss, row.rps] = [num(tick[2]), num(tick[3]), num(tick[4]), num(tick[5])];
        if (num(message.t) !== null) row.last_seen = Math.max(row.last_seen ?? 0, message.t);
      }
      trim(model, since());
      touch();
    },
    tick() {
      if (ctx.visible()) ctx.scheduleDraw(); // time moves: the bars slide even without news
    },
    theme() {
      colors = readColors(panel);
    },
    resize() {
      ctx.scheduleDraw();
    },
    draw() {
      const t1 = now();
      trim(model, t1 - state.window);
      drawGantt(t1);
      $("#proc-gantt-note").textContent = model.loaded ? ganttNote() : "";
      drawRate(t1);
      renderLog(t1);
      renderTable(t1);
    },
  };

  function ganttNote() {
    const shown = ganttRows.length;
    const parts = [];
    if (model.rowsTotal !== null && model.rowsTotal > model.rows.size) {
      parts.push("the console sent the " + fmt.count(model.rows.size) + " newest of " + fmt.count(model.rowsTotal) + " processes");
    }
    if (pausedAt !== null) parts.push("paused at " + fmt.clock(pausedAt));
    return [fmt.count(shown) + " process" + (shown === 1 ? "" : "es"), ...parts].join(" · ");
  }
}
