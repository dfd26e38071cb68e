// Capacity tab: a worker-slot heatmap, one band per live process and one
// lane per slot, time left to right; slow runs outlined on top; a card per
// process with means, peaks and a saturated / CPU-GIL-bound classifier.
//
// Data (docs/live-protocol.md, "Capacity"): tab.snapshot gives each
// process's columns as parallel arrays, tab.frame the second's ticks the
// same way plus slow records. Slow runs are found here, not on the console,
// so the threshold is a pure view option (in the URL, no resubscribe).

import { openKey, openRequest, updateRequest } from "../drilldown.js";
import * as fmt from "../format.js";

const KEYS = ["t", "period", "capacity", "cpu", "queue", "daemon", "requests", "gil", "application",
  "busy", "slot_cpu", "completed", "elapsed", "longest"];
const ARRAY_KEYS = new Set(["busy", "slot_cpu", "completed", "elapsed", "longest"]);
const LADDER = [0.5, 1, 2, 5, 10, 30]; // slow-run thresholds offered, in seconds
const SPANS = [30, 60, 120, 300];
const DEFAULT_SPAN = 60;
const ALIVE = new Set(["running", "stopping"]);
const RECENT = 3; // s: a run this fresh may still be waiting for its record
const IDLE = 0.02; // busy fractions below this draw nothing
const GUTTER = 132;
const AXIS = 22;
const RIGHT = 12;
// Heat scale: [busy fraction, rgb, alpha]; alpha over the panel makes one scale work in both
// themes. Keep in step with .cap-gradient in capacity.css.
const HEAT = [[0, [38, 166, 154], 0.25], [0.15, [38, 166, 154], 0.55], [0.5, [66, 133, 244], 0.75],
  [0.8, [137, 87, 229], 0.9], [1, [137, 87, 229], 1]];
const HEAT_STYLES = Array.from({ length: 21 }, (_, i) => heatColor(i / 20));

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Slot `j` of a (trailing-zero trimmed) slot array, 0 when absent. */
function at(values, j) {
  return Array.isArray(values) ? num(values[j]) ?? 0 : 0;
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

function heatColor(v) {
  let i = 1;
  while (i < HEAT.length - 1 && v > HEAT[i][0]) i += 1;
  const [a, ca, aa] = HEAT[i - 1];
  const [b, cb, ab] = HEAT[i];
  const f = b > a ? clamp((v - a) / (b - a), 0, 1) : 0;
  const c = ca.map((x, k) => Math.round(x + (cb[k] - x) * f));
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${(aa + (ab - aa) * f).toFixed(3)})`;
}

function readColors() {
  const style = getComputedStyle(document.documentElement);
  const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    fg: get("--fg", "#222"), muted: get("--muted", "#888"), grid: get("--grid", "rgba(128,128,128,.2)"),
    border: get("--border", "#ccc"), bad: get("--bad", "#d00"), panel: get("--panel", "#fff"),
    chip: get("--chip", "#eee"),
  };
}

/** A threshold as people write it: "500 ms", "1 s", "2.5 s". */
function seconds(v) {
  return v < 1 ? Math.round(v * 1000) + " ms" : Number(v.toFixed(3)) + " s";
}

function cut(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

// -- held data ---------------------------------------------------------------------------------

function newRow(pid, incarnation, group) {
  const cols = {};
  for (const key of KEYS) cols[key] = [];
  return { key: pid + ":" + incarnation, pid, incarnation, group: typeof group === "string" ? group : "",
    slots: 0, threshold: 0, cols, version: 0, runs: null, lastTick: 0 };
}

/** Append one column (values by key, from a snapshot or a live tick) if it is newer than the row's last. */
function pushColumn(row, get) {
  const t = num(get("t"));
  const n = row.cols.t.length;
  if (t === null || (n && t <= row.cols.t[n - 1])) return;
  for (const key of KEYS) {
    const v = get(key);
    row.cols[key].push(ARRAY_KEYS.has(key) ? (Array.isArray(v) ? v : []) : key === "t" ? t : num(v));
  }
  row.lastTick = t;
  row.version += 1;
}

function dropBefore(row, cutoff) {
  let drop = 0;
  while (drop < row.cols.t.length && row.cols.t[drop] < cutoff) drop += 1;
  if (!drop) return;
  for (const key of KEYS) row.cols[key].splice(0, drop);
  row.version += 1;
}

function recordEnd(record, now) {
  const start = num(record.start) ?? 0;
  const end = start + (num(record.duration) ?? 0);
  return record.state === "active" ? Math.max(end, now) : end;
}

// -- slow runs ------------------------------------------------------------------------------------

/**
 * Runs of one row at `threshold`: pass 1 follows a slot's running request
 * across ticks (age at or above the threshold and growing), ended by the
 * tick whose longest-finished value shows it completing; pass 2 takes a
 * single tick whose longest request passed the threshold between ticks.
 */
function detectRuns(row, threshold) {
  const { t, period, elapsed, longest } = row.cols;
  const runs = [];
  const last = t.length - 1;
  for (let slot = 0; slot < row.slots; slot += 1) {
    const ended = new Set();
    let run = null;
    for (let c = 0; c <= last; c += 1) {
      const e = at(elapsed[c], slot);
      const m = at(longest[c], slot);
      if (run && e >= threshold && e > run.age) {
        run.age = e;
        continue;
      }
      if (run) {
        if (m >= threshold && m >= run.age) { // finished during this tick
          run.end = run.start + m;
          run.finished = true;
          ended.add(c);
        } else {
          run.end = t[c - 1]; // vanished (restart, lost ticks): no known end
        }
        runs.push(run);
        run = null;
      }
      if (e >= threshold) run = { slot, start: t[c] - e, end: t[c], age: e, finished: false, active: false };
    }
    if (run) {
      run.active = true;
      runs.push(run);
    }
    for (let c = 0; c <= last; c += 1) {
      const m = at(longest[c], slot);
      if (ended.has(c) || m < threshold) continue;
      const end = t[c] - (num(period[c]) ?? 1) / 2; // finished somewhere in the tick
      runs.push({ slot, start: end - m, end, age: m, finished: true, active: false, between: true });
    }
  }
  return runs;
}

/** The record of the same pid, incarnation and thread (slot + 1) overlapping the run most (±1 s). */
function matchRecord(row, run, byThread, now) {
  const candidates = byThread.get(row.key + ":" + (run.slot + 1)) || [];
  let best = null;
  let bestOverlap = 0;
  for (const record of candidates) {
    const start = num(record.start);
    if (start === null) continue;
    const overlap = Math.min(recordEnd(record, now), run.end + 1) - Math.max(start, run.start - 1);
    if (overlap > bestOverlap) {
      best = record;
      bestOverlap = overlap;
    }
  }
  return best;
}

// -- the classifier ----------------------------------------------------------------------------------

/** Means over the shown columns (period- or request-weighted) and single-tick peaks. */
function rowStats(row, t0, t1) {
  const c = row.cols;
  const s = { period: 0, busy: 0, busyPeak: null, cpu: 0, cpuPeak: null, requests: 0, queue: 0, queueN: 0,
    queuePeak: null, daemon: 0, daemonN: 0, daemonPeak: null, gil: 0, app: 0, slotBusy: 0, slotCpu: 0 };
  const peak = (old, v) => (v === null ? old : old === null ? v : Math.max(old, v));
  for (let i = 0; i < c.t.length; i += 1) {
    if (c.t[i] < t0 || c.t[i] > t1) continue;
    const p = c.period[i] ?? 0;
    const req = c.requests[i] ?? 0;
    s.period += p;
    s.requests += req;
    s.busy += (c.capacity[i] ?? 0) * p;
    s.cpu += (c.cpu[i] ?? 0) * p;
    s.busyPeak = peak(s.busyPeak, c.capacity[i]);
    s.cpuPeak = peak(s.cpuPeak, c.cpu[i]);
    if (c.queue[i] !== null && req) { s.queue += c.queue[i] * req; s.queueN += req; }
    if (c.daemon[i] !== null && req) { s.daemon += c.daemon[i] * req; s.daemonN += req; }
    if (req) { s.queuePeak = peak(s.queuePeak, c.queue[i]); s.daemonPeak = peak(s.daemonPeak, c.daemon[i]); }
    s.gil += (c.gil[i] ?? 0) * req;
    s.app += (c.application[i] ?? 0) * req;
    for (let j = 0; j < row.slots; j += 1) {
      s.slotBusy += at(c.busy[i], j);
      s.slotCpu += at(c.slot_cpu[i], j);
    }
  }
  const ratio = (a, b) => (b > 0 ? a / b : null);
  return { ...s, busyMean: ratio(s.busy, s.period), cpuMean: ratio(s.cpu, s.period),
    queueMean: ratio(s.queue, s.queueN), daemonMean: ratio(s.daemon, s.daemonN),
    rpm: s.period > 0 ? (s.requests / s.period) * 60 : null };
}

/** Saturated (out of slots) or CPU/GIL-bound (more threads will not help), with the reasons why. */
function classify(stats, runs, threads) {
  const busy = stats.busyMean ?? 0;
  const cpu = stats.cpuMean ?? 0;
  if (stats.rpm === null || stats.rpm < 3) return { flag: "quiet", label: "quiet", reasons: ["under 3 requests/min: not classified"], lean: "" };
  let score = 0;
  const saturated = [];
  if (busy > 0.8) { score += 0.6 + (busy - 0.8) * 2; saturated.push(`slots busy ${fmt.percent(busy)} of the time`); }
  if ((stats.queueMean ?? 0) > 0.05) { score += 0.5; saturated.push(`requests queue ${fmt.duration(stats.queueMean)} on average`); }
  if (runs >= 3 && busy >= 0.7) { score += 0.5; saturated.push(`${runs} slow runs while ${fmt.percent(busy)} busy`); }
  if (score >= 1) {
    return { flag: "saturated", label: "saturated", reasons: saturated,
      lean: "Out of worker slots: add threads or processes, or find what holds the slow slots." };
  }
  const bound = [];
  const cpuShare = stats.slotBusy > 0 ? stats.slotCpu / stats.slotBusy : null;
  if (cpuShare !== null && cpuShare < 0.5 && busy > 0.5) bound.push(`busy slots get CPU only ${fmt.percent(cpuShare)} of their time`);
  if ((stats.daemonMean ?? 0) > 0.05) bound.push(`daemon hand-off ${fmt.duration(stats.daemonMean)} on average`);
  if (cpu > 0.9 && threads >= 2 && busy > 0.3) bound.push(`${fmt.cores(cpu)} with ${threads} threads`);
  if (stats.app > 0 && stats.gil / stats.app >= 0.15 && busy > 0.3) bound.push(`GIL wait ${fmt.percent(stats.gil / stats.app)} of application time`);
  if (bound.length && !(cpu > 1.2 && busy > 0.5)) {
    return { flag: "cpu", label: "CPU/GIL-bound", reasons: bound,
      lean: "More threads will not help: add processes, or move CPU work out of the request." };
  }
  return { flag: "normal", label: "normal", reasons: [], lean: "" };
}

// -- the tab ------------------------------------------------------------------------------------------

export function createTab(ctx) {
  const { panel, state } = ctx;
  const canvas = panel.querySelector("#cap-canvas");
  const tip = panel.querySelector("#cap-tip");
  const empty = panel.querySelector("#cap-empty");
  const status = panel.querySelector("#cap-status");
  const thresholdSelect = panel.querySelector("#cap-threshold");
  const spanSelect = panel.querySelector("#cap-span");
  const pauseButton = panel.querySelector("#cap-pause");
  const cardsBody = panel.querySelector("#cap-cards tbody");
  const cardsSpan = panel.querySelector("#cap-cards-span");

  let rows = new Map();
  let records = new Map();
  let loaded = false;
  let loadedSince = null;
  let span = spanParam();
  let pausedAt = null;
  let frozen = null; // while paused: copies of what was shown (rows, records, process states)
  let colors = readColors();
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
    const processes = processStates();
    for (const [key, row] of rows) {
      dropBefore(row, cutoff);
      const known = processes.get(key);
      if ((known && !ALIVE.has(known)) || (!known && !row.cols.t.length)) rows.delete(key);
    }
    for (const [key, record] of records) {
      const stale = record.state === "active" ? (num(record.stamp) ?? 0) < cutoff : recordEnd(record, now) < cutoff;
      if (stale) records.delete(key);
    }
  }

  /** The registry's state of each process (pid:incarnation), from the host messages. */
  function processStates() {
    const out = new Map();
    for (const p of state.processes) {
      if (p && typeof p === "object") out.set(p.pid + ":" + p.incarnation, String(p.state ?? ""));
    }
    return out;
  }

  /** Rows to show: alive in the registry (or too new to be listed yet), in the page's group. */
  function visibleRows(now) {
    const processes = frozen ? frozen.processes : processStates();
    return Array.from((frozen ? frozen.rows : rows).values())
      .filter((row) => state.group === "*" || row.group === state.group)
      .filter((row) => {
        const known = processes.get(row.key);
        return known ? ALIVE.has(known) : now - row.lastTick < 10;
      })
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
      frozen = { rows: copies, records: new Map(records), processes: processStates() };
    }
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    renderStatus();
    ctx.scheduleDraw();
  }

  pauseButton.addEventListener("click", () => setPaused(pausedAt === null));

  // -- drawing --------------------------------------------------------------------------------------

  function laneHeight(slots) {
    if (slots <= 4) return 12;
    if (slots <= 8) return 9;
    if (slots <= 16) return 6;
    if (slots <= 32) return 4;
    return 2;
  }

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
    layout = { ...next, now, t0: now - span, x0, x1, width,
      x: (t) => x0 + ((t - (now - span)) / span) * (x1 - x0) };
    paint(layout, shown.length ? next.height : 0);
    renderCards(layout);
    refreshTip();
  }

  function renderStatus() {
    const notes = [];
    if (pausedAt !== null) notes.push(`paused at ${fmt.clock(pausedAt)} · data keeps arriving`);
    if (span < spanParam()) notes.push(`span limited to the page's window (${seconds(span)})`);
    if (loadedSince !== null && loadedSince > viewNow() - span) {
      notes.push(`columns before ${fmt.clock(loadedSince)} were not loaded (too many processes for this span); live ones fill in`);
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

  function paint(lay, height) {
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = height + "px";
    if (canvas.width !== Math.round(lay.width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(lay.width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, lay.width, height);
    if (!height) return;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    paintGrid(g, lay, height);
    for (const band of lay.bands) {
      if (band.heading !== undefined) {
        g.fillStyle = colors.muted;
        g.font = "600 12px system-ui, sans-serif";
        g.fillText(cut(band.heading, 60), 4, band.y + band.h / 2);
        g.font = "12px system-ui, sans-serif";
        continue;
      }
      paintBand(g, lay, band);
    }
    paintAxis(g, lay, height);
  }

  function tickStep() {
    return span <= 30 ? 5 : span <= 60 ? 10 : span <= 120 ? 20 : 60;
  }

  function paintGrid(g, lay, height) {
    g.strokeStyle = colors.grid;
    g.lineWidth = 1;
    const step = tickStep();
    for (let s = 0; s <= span; s += step) {
      const x = Math.round(lay.x(lay.now - s)) + 0.5;
      g.beginPath();
      g.moveTo(x, 0);
      g.lineTo(x, height - AXIS);
      g.stroke();
    }
  }

  function paintAxis(g, lay, height) {
    g.fillStyle = colors.muted;
    g.textAlign = "center";
    const step = tickStep();
    for (let s = 0; s <= span; s += step) {
      const x = lay.x(lay.now - s);
      g.textAlign = s === 0 ? "right" : s === span ? "left" : "center";
      g.fillText(s === 0 ? "now" : `−${s} s`, x, height - AXIS / 2);
    }
    g.textAlign = "left";
  }

  function paintBand(g, lay, band) {
    const { row, y, lane } = band;
    const c = row.cols;
    const { x0, x1 } = lay;
    // gutter: pid and flag
    g.fillStyle = colors.fg;
    g.font = "600 12px system-ui, sans-serif";
    g.fillText("pid " + row.pid, 4, y + 8);
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = colors.muted;
    const flag = !row.slots ? "no tick yet"
      : row.flag && row.flag.flag !== "normal" ? row.flag.label : `${row.slots} slot${row.slots === 1 ? "" : "s"}`;
    g.fillText(cut(flag, 18), 4, y + 23);
    // lanes
    g.fillStyle = colors.chip;
    g.fillRect(x0, y, x1 - x0, row.slots * lane);
    const gap = lane >= 6 ? 1 : 0;
    for (let i = 0; i < c.t.length; i += 1) {
      const t = c.t[i];
      const p = c.period[i];
      if (!p || t < lay.t0 || t - p > lay.now) continue;
      const left = Math.max(x0, lay.x(t - p));
      const right = Math.min(x1, lay.x(t));
      if (right <= left) continue;
      const busy = c.busy[i];
      for (let j = 0; j < Math.min(row.slots, busy.length); j += 1) {
        const v = clamp(at(busy, j) / p, 0, 1);
        if (v < IDLE) continue;
        g.fillStyle = HEAT_STYLES[Math.round(v * 20)];
        g.fillRect(left, y + j * lane, right - left + 0.6, lane - gap);
      }
    }
    paintRuns(g, lay, band);
  }

  function paintRuns(g, lay, band) {
    const { y, lane, runs } = band;
    const { x0, x1 } = lay;
    g.lineWidth = 1.5;
    for (const run of runs) {
      const left = Math.max(x0, lay.x(run.start));
      const right = Math.min(x1, lay.x(run.end));
      if (right < x0 || left > x1 || right - left < 0.5) continue;
      const top = y + run.slot * lane + 0.75;
      const h = Math.max(lane - 1.5, 2);
      g.fillStyle = colors.bad;
      g.globalAlpha = 0.35;
      g.fillRect(left, top, right - left, h);
      g.globalAlpha = 1;
      g.strokeStyle = colors.bad;
      g.beginPath();
      g.moveTo(left, top);
      g.lineTo(right, top);
      g.moveTo(left, top + h);
      g.lineTo(right, top + h);
      if (run.start >= lay.t0) { g.moveTo(left, top); g.lineTo(left, top + h); } // the request's real start
      if (run.finished && run.end <= lay.now) { g.moveTo(right, top); g.lineTo(right, top + h); }
      g.stroke();
      if (run.record && lane >= 5 && right - left > 6) {
        g.fillStyle = colors.fg;
        g.fillRect(left + 2, top + h / 2 - 2, 4, 4);
      }
      if (run.active && right >= x1 - 1) { // still running past the threshold: a marker at "now"
        g.fillStyle = colors.bad;
        g.beginPath();
        g.moveTo(x1 + 1, top + h / 2);
        g.lineTo(x1 + RIGHT - 2, top + h / 2 - 4);
        g.lineTo(x1 + RIGHT - 2, top + h / 2 + 4);
        g.fill();
      }
    }
  }

  // -- per-process cards -------------------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function meanPeak(mean, peak, format) {
    return mean === null ? fmt.DASH : `${format(mean)} (${format(peak)})`;
  }

  function renderCards(lay) {
    panel.querySelector("#cap-cards").hidden = !lay.bands.length;
    cardsSpan.textContent = `· last ${seconds(span)}, mean (peak tick)`;
    const trs = [];
    for (const band of lay.bands) {
      if (!band.row) continue;
      const { row, stats, runCount } = band;
      const tr = document.createElement("tr");
      tr.dataset.key = row.key;
      tr.dataset.flag = row.flag.flag;
      const flagCell = cell("", "cap-flag");
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.dataset.flag = row.flag.flag;
      chip.textContent = row.flag.label;
      flagCell.append(chip);
      if (row.flag.reasons.length) {
        const why = document.createElement("span");
        why.className = "cap-reasons";
        why.textContent = row.flag.reasons.join("; ");
        flagCell.append(why);
      }
      flagCell.title = [...row.flag.reasons, row.flag.lean].filter(Boolean).join("\n");
      tr.append(
        cell(String(row.pid), "num"), cell(fmt.groupName(row.group)), flagCell,
        cell(meanPeak(stats.busyMean, stats.busyPeak, fmt.percent), "num"),
        cell(meanPeak(stats.cpuMean, stats.cpuPeak, fmt.cores), "num"),
        cell(meanPeak(stats.queueMean, stats.queuePeak, fmt.duration), "num"),
        cell(meanPeak(stats.daemonMean, stats.daemonPeak, fmt.duration), "num"),
        cell(fmt.count(stats.rpm), "num"), cell(String(runCount), "num"),
      );
      trs.push(tr);
    }
    cardsBody.replaceChildren(...trs);
  }

  // -- hover and click -------------------------------------------------------------------------------

  /** What is under (x, y): a run, a cell, or a gutter entry. */
  function hit(x, y) {
    if (!layout) return null;
    const band = layout.bands.find((b) => b.row && y >= b.y && y < b.y + b.h);
    if (!band) return null;
    if (x < layout.x0) return { band, kind: "gutter" };
    if (x > layout.x1) return null;
    const slot = Math.floor((y - band.y) / band.lane);
    if (slot < 0 || slot >= band.row.slots) return null;
    const t = layout.t0 + ((x - layout.x0) / (layout.x1 - layout.x0)) * span;
    const slack = (3 / (layout.x1 - layout.x0)) * span; // 3 px
    const run = band.runs.find((r) => r.slot === slot && t >= r.start - slack && t <= r.end + slack);
    if (run) return { band, kind: "run", run, slot, t };
    const c = band.row.cols;
    for (let i = c.t.length - 1; i >= 0; i -= 1) {
      if (t <= c.t[i] && t > c.t[i] - (c.period[i] ?? 0)) return { band, kind: "cell", i, slot, t };
    }
    return null;
  }

  function missingNote(row, run) {
    if (!(row.threshold > 0)) {
      return `Slow-request logging is off for pid ${row.pid} (WSGISlowRequests is not set: threshold 0), so ` +
        "mod_wsgi sends no record of this request: no URL, status or timing breakdown. The run was " +
        "detected from the worker slot's timings only.";
    }
    if (run.active || ctx.serverNow() - run.end < RECENT) {
      return "The slow-request record has not been received yet: mod_wsgi reports a request once it has " +
        `run for ${fmt.duration(row.threshold)} and the agent forwards it within a second or two. Try again in a moment.`;
    }
    if (run.age < row.threshold) {
      return `This request ran under the process's slow threshold (${fmt.duration(row.threshold)}), ` +
        "so mod_wsgi kept no record of it.";
    }
    return "No record of this request is held: it was dropped on the way (datagram loss, or more than 16 " +
      "requests slow at once in the process) or has aged out of the console's slow-request store. The " +
      "run was detected from the worker slot's timings only.";
  }

  /** The record covering slot `slot` of column `i`, if a slow request ran there. */
  function cellRecord(band, i, slot) {
    const c = band.row.cols;
    const from = c.t[i] - (c.period[i] ?? 0);
    for (const record of band.byThread.get(band.row.key + ":" + (slot + 1)) || []) {
      const start = num(record.start);
      if (start !== null && start <= c.t[i] && recordEnd(record, layout.now) >= from) return record;
    }
    return null;
  }

  function urlLine(record) {
    return cut(`${record.method || ""} ${record.url || "(no URL)"}`.trim(), 90);
  }

  function tipLines(found) {
    const { band } = found;
    const row = band.row;
    if (found.kind === "gutter") {
      const flag = row.flag || { label: "", reasons: [], lean: "" };
      return [["title", `pid ${row.pid} · ${fmt.groupName(row.group)}`], ["", `incarnation ${row.incarnation} · ${row.slots} slots · slow threshold ${row.threshold > 0 ? fmt.duration(row.threshold) : "off"}`],
        ["", flag.label], ...flag.reasons.map((r) => ["note", r]), ...(flag.lean ? [["note", flag.lean]] : [])];
    }
    if (found.kind === "run") {
      const { run } = found;
      const duration = run.end - run.start;
      const lines = [["title", `slow request · ${fmt.duration(duration)}${run.active ? " (active)" : ""}`],
        ["", `pid ${row.pid} · slot ${run.slot + 1} · started ${fmt.clock(run.start)}`]];
      if (run.record) {
        const r = run.record;
        const f = r.fields || {};
        lines.push(["url", urlLine(r)]);
        const cpu = (num(f.slow_cpu_user_time) ?? 0) + (num(f.slow_cpu_system_time) ?? 0);
        lines.push(["", [r.status ? `status ${r.status}` : "", r.log_id ? `log id ${r.log_id}` : "",
          r.state === "completed" && duration > 0 ? `cpu ${fmt.percent(cpu / duration)}` : "cpu known at completion"]
          .filter(Boolean).join(" · ")]);
      } else {
        lines.push(["note", "no record: heuristic detection from slot timings only"]);
      }
      lines.push(["note", "click: open details"]);
      return lines;
    }
    const c = row.cols;
    const i = found.i;
    const j = found.slot;
    const p = c.period[i] ?? 0;
    const busy = p ? at(c.busy[i], j) / p : 0;
    const e = at(c.elapsed[i], j);
    const m = at(c.longest[i], j);
    const done = at(c.completed[i], j);
    const lines = [["title", `pid ${row.pid} · slot ${j + 1}`],
      ["", `${fmt.clock(c.t[i])} · ${fmt.age(layout.now - c.t[i])} ago`],
      ["", `busy ${fmt.percent(clamp(busy, 0, 1))} · cpu ${fmt.percent(p ? clamp(at(c.slot_cpu[i], j) / p, 0, 1) : null)}`]];
    const detail = [done ? `completed ${done}` : "", e ? `running ${fmt.duration(e)}` : "", m ? `longest ${fmt.duration(m)}` : ""];
    if (detail.some(Boolean)) lines.push(["", detail.filter(Boolean).join(" · ")]);
    const record = cellRecord(band, i, j);
    if (record) lines.push(["url", urlLine(record)], ["note", "click: open details"]);
    else if (e > 0 || busy >= IDLE) {
      const longest = Math.max(e, m);
      lines.push(["note", !(row.threshold > 0) ? "slow-request logging is off: no URL reported"
        : longest < row.threshold ? "under the slow threshold, no URL reported"
          : "slow, but its record has not arrived or has aged out"]);
    } else lines.push(["note", "idle"]);
    return lines;
  }

  function refreshTip() {
    const found = pointer && hit(pointer.x, pointer.y);
    canvas.dataset.hover = found ? found.kind : "";
    if (!found) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(...tipLines(found).map(([kind, text]) => {
      const div = document.createElement("div");
      if (kind) div.className = "cap-tip-" + kind;
      div.textContent = text;
      return div;
    }));
    tip.hidden = false;
    const box = canvas.parentElement.getBoundingClientRect();
    const left = pointer.x + canvas.offsetLeft + 14;
    tip.style.left = Math.min(left, box.width - tip.offsetWidth - 4) + "px";
    tip.style.top = pointer.y + canvas.offsetTop + 14 + "px";
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
    const found = hit(event.offsetX, event.offsetY);
    if (!found) return;
    const threads = found.band.row.slots;
    if (found.kind === "run") {
      const { record } = found.run;
      openRequest(record || null, { threads, note: record ? null : missingNote(found.band.row, found.run) });
    } else if (found.kind === "cell") {
      const record = cellRecord(found.band, found.i, found.slot);
      if (record) openRequest(record, { threads });
    }
  });

  // -- the tab module interface ------------------------------------------------------------------------

  return {
    options() {
      span = spanParam();
      spanSelect.value = String(span);
      return { span };
    },
    reset() {
      if (pausedAt !== null) setPaused(false); // a new view: start live
      rows = new Map();
      records = new Map();
      loaded = false;
      loadedSince = null;
      ladderFloor = null;
    },
    snapshot(message) {
      const s = num(message.span);
      if (s !== null && s > 0) span = s;
      loadedSince = num(message.loaded_since);
      for (const p of Array.isArray(message.processes) ? message.processes : []) {
        if (!p || typeof p !== "object" || num(p.pid) === null) continue;
        const row = rowFor(p.pid, p.incarnation, p.group);
        setProcessInfo(row, p.slots, p.threshold);
        const cols = p.columns && typeof p.columns === "object" ? p.columns : {};
        const n = Array.isArray(cols.t) ? cols.t.length : 0;
        for (let i = 0; i < n; i += 1) pushColumn(row, (key) => (Array.isArray(cols[key]) ? cols[key][i] : null));
        if (!row.lastTick) row.lastTick = num(message.now) ?? 0;
      }
      for (const record of Array.isArray(message.slow) ? message.slow : []) addRecord(record);
      loaded = true;
      const newest = Math.max(0, ...Array.from(rows.values(), (r) => r.lastTick));
      if (newest) ctx.setDataTime(newest);
    },
    frame(message) {
      const ticks = message.ticks && typeof message.ticks === "object" ? message.ticks : {};
      const n = Array.isArray(ticks.t) && Array.isArray(ticks.pid) ? ticks.t.length : 0;
      for (let i = 0; i < n; i += 1) {
        const get = (key) => (Array.isArray(ticks[key]) ? ticks[key][i] : null);
        if (num(get("pid")) === null) continue;
        const row = rowFor(get("pid"), get("incarnation"), get("group"));
        setProcessInfo(row, get("slots"), get("threshold"));
        pushColumn(row, get);
      }
      for (const record of Array.isArray(message.slow) ? message.slow : []) addRecord(record);
      for (const key of Array.isArray(message.stopped) ? message.stopped : []) {
        if (Array.isArray(key)) rows.delete(key[0] + ":" + key[1]);
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
      colors = readColors();
    },
  };
}
