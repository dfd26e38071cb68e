// GC tab: per process and interpreter, the collector's pressure, collections per
// second, pause timeline and pause histogram, and the configuration row
// (docs/live-protocol.md, "gc").
//
// Everything held is additive and keyed by time, so live seconds append and old
// ones fall off the window without the raw data: per-second buckets of the
// selection, per-series checkpoints of the cumulative counters (rates are
// differences), and the newest pause events. Pause freezes what is drawn (the
// view below) while frames keep filling the data; Resume draws the present.

import { ChartGroup, TimeChart } from "../charts.js";
import * as fmt from "../format.js";

const MAX_EVENTS = 2000; // as the console sends at most (console/live/tabs/gc.py)
const CHECKPOINT = 10; // seconds between a series' kept counter readings
const CURRENT = 15; // a series heard from within this many seconds is current (config row)
const MAIN = "(main)"; // the interp option's name for the main interpreter ("" on the wire)
const GEN_COLORS = ["#3b82f6", "#e8912d", "#d63b3b"];
const GENS = [0, 1, 2];
const BUCKETS = 65;

// -- helpers ------------------------------------------------------------------------------

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function text(value) {
  return typeof value === "string" ? value : "";
}

function triple(value) {
  return Array.isArray(value) ? GENS.map((g) => num(value[g])) : [0, 0, 0];
}

const interpName = (n) => (n === "" ? MAIN : n);
// A bucket edge exactly (1.25 ms, 2 ms, 1.5 s): rounding would blur neighbouring buckets.
const edge = (seconds) => (seconds < 1 ? +(seconds * 1000).toPrecision(4) + " ms" : +seconds.toPrecision(4) + " s");
const rate = (v) => fmt.number(v, 2) + "/s";

// The 65-bucket HDR layout of ingest/frames.py: bucket 0 holds [0, 1 ms).
function bucketBounds(index) {
  if (index >= BUCKETS - 1) return [65.536, Infinity];
  const octave = Math.floor(index / 4);
  const sub = index % 4;
  const lower = index === 0 ? 0 : 2 ** octave * (1 + sub / 4);
  return [lower / 1000, (2 ** octave * (1 + (sub + 1) / 4)) / 1000];
}

function bucketIndex(seconds) {
  const ms = seconds * 1000;
  if (!(ms >= 1)) return 0;
  if (ms >= 65536) return BUCKETS - 1;
  const octave = Math.floor(Math.log2(ms));
  return 4 * octave + Math.min(3, Math.floor((ms / 2 ** octave - 1) * 4));
}

/** Interpolated inside the bucket holding rank p x N, then clamped to the exact [lo, hi]. */
function percentile(counts, p, lo, hi) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = p * total;
  let below = 0;
  let value = 0;
  for (let b = 0; b < counts.length; b += 1) {
    const c = counts[b];
    if (c <= 0) continue;
    if (below + c >= rank) {
      const [lower, upper] = bucketBounds(b);
      value = upper === Infinity ? hi : lower + ((rank - below) / c) * (upper - lower);
      break;
    }
    below += c;
  }
  return Math.min(Math.max(value, lo), hi);
}

function newBucket(t) {
  return { t, c: [0, 0, 0], cd: 0, un: 0, dr: 0, n: 0, pause: 0, pmin: null, pmax: null, h: new Map() };
}

function parseRecord(r) {
  if (!r || typeof r !== "object") return null;
  return {
    p: num(r.p), i: num(r.i), s: num(r.s), t: num(r.t), g: text(r.g), n: text(r.n),
    on: r.on ? 1 : 0, fz: num(r.fz), dr: num(r.dr),
    th: triple(r.th), cnt: triple(r.cnt), col: triple(r.col), cd: triple(r.cd), un: triple(r.un),
  };
}

function parseEvent(e) {
  if (!Array.isArray(e) || e.length < 10) return null;
  return {
    t: num(e[0]), d: Math.max(0, num(e[1])), gen: Math.min(2, Math.max(0, num(e[2]))),
    cd: num(e[3]), un: num(e[4]), p: num(e[5]), i: num(e[6]), n: text(e[7]), g: text(e[8]), s: num(e[9]),
  };
}

const sum = (a) => a.reduce((x, y) => x + y, 0);

/** A series' counters at one moment, with its running sums of per-tick values. */
function checkpoint(rec, acc) {
  return { t: rec.t, col: rec.col.slice(), cd: sum(rec.cd), un: sum(rec.un), dr: acc.dr, pause: acc.pause, n: acc.n };
}

function emptyData() {
  return {
    loaded: false, span: 300, since: null, capped: false, limited: false, totals: null,
    // pids and interpreters map to when they were last seen: a week of restarts must not pile up
    buckets: new Map(), series: new Map(), events: [], seqs: new Map(), pids: new Map(), interps: new Map(),
  };
}

// -- the tab --------------------------------------------------------------------------------

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
  let colors = readColors();

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
  const timeline = canvasChart(figure("timeline"), drawTimeline, hoverTimeline);
  const histogram = canvasChart(figure("histogram"), drawHistogram, hoverHistogram);

  function readColors() {
    const style = getComputedStyle(document.documentElement);
    const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return { fg: get("--fg", "#222"), muted: get("--muted", "#888"), grid: get("--grid", "rgba(128,128,128,.2)"),
      ok: get("--ok", "#3fb950"), warn: get("--warn", "#d29922"), accent: get("--accent", "#58a6ff") };
  }

  // -- data in ------------------------------------------------------------------------------

  function wanted(g, p, n) {
    return (state.group === "*" || g === state.group) && (sel.pid === null || p === sel.pid)
      && (sel.interp === null || n === sel.interp);
  }

  function bucketAt(t) {
    const second = Math.floor(t);
    if (data.since !== null && second < Math.floor(data.since)) return null;
    let b = data.buckets.get(second);
    if (!b) {
      b = newBucket(second);
      data.buckets.set(second, b);
    }
    return b;
  }

  function addEventToBucket(b, d) {
    b.n += 1;
    b.pause += d;
    b.pmin = b.pmin === null ? d : Math.min(b.pmin, d);
    b.pmax = b.pmax === null ? d : Math.max(b.pmax, d);
    const k = bucketIndex(d);
    b.h.set(k, (b.h.get(k) || 0) + 1);
  }

  function seriesKey(x) {
    return `${x.p}:${x.i}:${x.n}`;
  }

  function addRecord(rec) {
    const key = seriesKey(rec);
    const s = data.series.get(key);
    if (!s) {
      const acc = { dr: 0, pause: 0, n: 0 };
      data.series.set(key, { key, p: rec.p, i: rec.i, n: rec.n, g: rec.g, last: rec, acc, cps: [checkpoint(rec, acc)] });
      return;
    }
    if (rec.t <= s.last.t) return; // already counted
    const b = bucketAt(rec.t);
    if (b) {
      GENS.forEach((g) => { b.c[g] += Math.max(0, rec.col[g] - s.last.col[g]); });
      b.cd += Math.max(0, sum(rec.cd) - sum(s.last.cd));
      b.un += Math.max(0, sum(rec.un) - sum(s.last.un));
      b.dr += rec.dr;
    }
    s.acc.dr += rec.dr;
    s.last = rec;
    s.g = rec.g;
    // The last checkpoint follows the present; a new one starts every CHECKPOINT seconds.
    const cps = s.cps;
    if (cps.length < 2 || cps[cps.length - 1].t - cps[cps.length - 2].t >= CHECKPOINT) cps.push(checkpoint(rec, s.acc));
    else cps[cps.length - 1] = checkpoint(rec, s.acc);
  }

  function addEvent(ev) {
    const b = bucketAt(ev.t);
    if (b) addEventToBucket(b, ev.d);
    data.events.push(ev);
    const s = data.series.get(seriesKey(ev));
    if (s) {
      s.acc.pause += ev.d;
      s.acc.n += 1;
      s.cps[s.cps.length - 1] = { ...s.cps[s.cps.length - 1], pause: s.acc.pause, n: s.acc.n };
    }
  }

  function loadSnapshot(msg) {
    const d = emptyData();
    d.loaded = true;
    d.span = num(msg.span) || 300;
    d.since = num(msg.since) || null;
    d.capped = Boolean(msg.capped);
    d.limited = Boolean(msg.limited);
    d.totals = msg.window_totals && typeof msg.window_totals === "object" ? msg.window_totals : null;
    const seen = num(msg.now) || ctx.serverNow();
    for (const p of Array.isArray(msg.pids) ? msg.pids : []) d.pids.set(num(p), seen);
    for (const n of Array.isArray(msg.interps) ? msg.interps : []) d.interps.set(text(n), seen);
    if (msg.seqs && typeof msg.seqs === "object") for (const [k, v] of Object.entries(msg.seqs)) d.seqs.set(k, num(v));
    const cols = msg.buckets && typeof msg.buckets === "object" ? msg.buckets : {};
    const col = (name, i) => (Array.isArray(cols[name]) ? cols[name][i] : null);
    for (let i = 0; i < (Array.isArray(cols.t) ? cols.t.length : 0); i += 1) {
      const b = newBucket(num(col("t", i)));
      b.c = GENS.map((g) => num(col("c" + g, i)));
      b.cd = num(col("cd", i));
      b.un = num(col("un", i));
      b.dr = num(col("dr", i));
      b.n = num(col("n", i));
      b.pause = num(col("pause", i));
      b.pmin = typeof col("pmin", i) === "number" ? col("pmin", i) : null;
      b.pmax = typeof col("pmax", i) === "number" ? col("pmax", i) : null;
      const h = col("h", i);
      if (h && typeof h === "object") for (const [k, v] of Object.entries(h)) b.h.set(Number(k), num(v));
      d.buckets.set(b.t, b);
    }
    for (const entry of Array.isArray(msg.series) ? msg.series : []) {
      const first = parseRecord(entry && entry.first);
      const last = parseRecord(entry && entry.last);
      if (!first || !last) continue;
      const acc = { dr: num(entry.dropped), pause: num(entry.pause), n: num(entry.events) };
      const cps = [checkpoint(first, { dr: 0, pause: 0, n: 0 })];
      if (last.t > first.t) cps.push(checkpoint(last, acc));
      const key = seriesKey(last);
      d.series.set(key, { key, p: last.p, i: last.i, n: last.n, g: last.g, last, acc, cps });
    }
    d.events = (Array.isArray(msg.events) ? msg.events : []).map(parseEvent).filter(Boolean);
    data = d;
  }

  function isDuplicate(x) {
    const seen = data.seqs.get(`${x.p}:${x.i}`);
    return seen !== undefined && x.s <= seen;
  }

  function addFrame(msg) {
    if (!data.loaded) return; // the snapshot brings what came before
    for (const raw of Array.isArray(msg.records) ? msg.records : []) {
      const rec = parseRecord(raw);
      if (!rec || isDuplicate(rec) || !(state.group === "*" || rec.g === state.group)) continue;
      data.pids.set(rec.p, rec.t);
      data.interps.set(rec.n, rec.t);
      if (wanted(rec.g, rec.p, rec.n)) addRecord(rec);
    }
    for (const raw of Array.isArray(msg.events) ? msg.events : []) {
      const ev = parseEvent(raw);
      if (!ev || isDuplicate(ev) || !wanted(ev.g, ev.p, ev.n)) continue;
      addEvent(ev);
      if (paused) paused.events += 1;
    }
    trim();
  }

  /** Keep only the window: memory stays flat however long the page is open. */
  function trim() {
    const cutoff = ctx.serverNow() - data.span;
    for (const t of data.buckets.keys()) if (t < Math.floor(cutoff)) data.buckets.delete(t);
    if (data.events.length && (data.events[0].t < cutoff || data.events.length > MAX_EVENTS)) {
      data.events = data.events.filter((e) => e.t >= cutoff);
      if (data.events.length > MAX_EVENTS) {
        data.events.sort((a, b) => a.t - b.t);
        data.events.splice(0, data.events.length - MAX_EVENTS);
      }
    }
    for (const choices of [data.pids, data.interps]) {
      for (const [value, t] of choices) if (t < cutoff) choices.delete(value);
    }
    for (const [key, s] of data.series) {
      if (s.last.t < cutoff) data.series.delete(key);
      else while (s.cps.length > 2 && s.cps[1].t <= cutoff) s.cps.shift();
    }
  }

  // -- the view: what is drawn --------------------------------------------------------------

  function computeView() {
    const now = ctx.serverNow();
    const from = Math.max(now - data.span, data.since ?? -Infinity);
    const seconds = Array.from(data.buckets.keys()).sort((a, b) => a - b);
    const columns = { t: [], c: [[], [], []], pause: [], pmax: [] };
    const first = seconds.length ? seconds[0] : 0;
    const last = seconds.length ? seconds[seconds.length - 1] : -1;
    for (let t = first; t <= last; t += 1) { // dense: a second without a tick counts none
      const b = data.buckets.get(t);
      columns.t.push(t);
      GENS.forEach((g) => columns.c[g].push(b ? b.c[g] : 0));
      columns.pause.push(b ? b.pause : 0);
      columns.pmax.push(b && b.pmax !== null ? b.pmax : null);
    }
    // Live series first; those of stopped processes (restarts) after them, dimmed, until they age out.
    const stale = (s) => (s.last.t < now - CURRENT ? 1 : 0);
    const series = Array.from(data.series.values()).sort((a, b) => stale(a) - stale(b) || a.g.localeCompare(b.g)
      || a.p - b.p || a.i - b.i || a.n.localeCompare(b.n));
    return {
      now, from, range: [now - data.span, now], columns,
      buckets: seconds.map((t) => data.buckets.get(t)),
      events: data.events.slice(), series,
      seriesTotal: series.map((s) => ({ s, stats: seriesStats(s) })),
      pids: Array.from(data.pids.keys()).sort((a, b) => a - b), interps: Array.from(data.interps.keys()).sort(),
    };
  }

  function seriesStats(s) {
    const a = s.cps[0];
    const b = s.cps[s.cps.length - 1];
    const dt = b.t - a.t;
    const per = (x) => (dt > 0 ? x / dt : null);
    return {
      rates: GENS.map((g) => per(Math.max(0, b.col[g] - a.col[g]))),
      collected: per(Math.max(0, b.cd - a.cd)), uncollectable: Math.max(0, b.un - a.un),
      dropped: b.dr - a.dr, pause: b.pause - a.pause, share: per(b.pause - a.pause),
    };
  }

  /** Totals over the buckets in [lo, hi) (the window, or the zoomed range). */
  function summarize(buckets, lo, hi) {
    const out = { c: [0, 0, 0], cd: 0, un: 0, dr: 0, n: 0, pause: 0, min: null, max: null, h: new Array(BUCKETS).fill(0) };
    for (const b of buckets) {
      if (b.t < Math.floor(lo) || b.t >= hi) continue;
      GENS.forEach((g) => { out.c[g] += b.c[g]; });
      out.cd += b.cd;
      out.un += b.un;
      out.dr += b.dr;
      out.n += b.n;
      out.pause += b.pause;
      if (b.pmin !== null) out.min = out.min === null ? b.pmin : Math.min(out.min, b.pmin);
      if (b.pmax !== null) out.max = out.max === null ? b.pmax : Math.max(out.max, b.pmax);
      for (const [k, v] of b.h) if (k >= 0 && k < BUCKETS) out.h[k] += v;
    }
    return out;
  }

  // -- rendering ------------------------------------------------------------------------------

  function setOptions(select, values, label, current, allLabel) {
    const wantedValues = ["", ...values.map(String)];
    if (current !== "" && !wantedValues.includes(current)) wantedValues.push(current);
    const have = Array.from(select.options).map((o) => o.value);
    if (have.join("\n") !== wantedValues.join("\n")) {
      select.replaceChildren(...wantedValues.map((v) => new Option(v === "" ? allLabel : label(v), v)));
    }
    select.value = current;
  }

  function renderSelectors(v) {
    setOptions(pidSelect, v.pids, (p) => "pid " + p, sel.pid === null ? "" : String(sel.pid), "All processes");
    const interps = v.interps.map(interpName);
    setOptions(interpSelect, interps, (n) => n, sel.interp === null ? "" : interpName(sel.interp), "All interpreters");
    // One interpreter everywhere: the selector says nothing (unless a link chose one).
    $("#gc-interp-label").hidden = interps.length <= 1 && sel.interp === null;
  }

  function renderEmpty(v) {
    const empty = !v.series.length && !v.events.length && !v.buckets.length;
    $("#gc-empty").hidden = !empty;
    $("#gc-body").hidden = empty;
    if (!empty) return;
    const filtered = sel.pid !== null || sel.interp !== null;
    const what = [sel.pid !== null ? "pid " + sel.pid : null, sel.interp !== null ? "interpreter " + interpName(sel.interp) : null]
      .filter(Boolean).join(", ");
    $("#gc-empty-text").textContent = `No garbage-collector data${filtered ? " for " + what : ""} `
      + `in the last ${fmt.age(data.span)}${state.group === "*" ? "" : " of group " + fmt.groupName(state.group)}.`;
    const hint = $("#gc-empty-hint");
    hint.hidden = false;
    hint.textContent = filtered
      ? "That process may have restarted or stopped: pick another one, or show them all."
      : "mod_wsgi reports GC for each daemon process once WSGITelemetryService is set and the process has "
        + "served requests. Check that the agent on this host is running and receiving (Fleet page), "
        + "or choose another group or a longer window.";
    $("#gc-show-all").hidden = !filtered;
  }

  function chip(label, value, kind) {
    const span = document.createElement("span");
    span.className = "chip gc-chip";
    if (kind) span.dataset.kind = kind;
    const b = document.createElement("b");
    b.textContent = label + " ";
    span.append(b, value);
    return span;
  }

  function renderConfig(v, total) {
    let current = v.series.filter((s) => s.last.t >= v.now - CURRENT);
    if (!current.length) current = v.series;
    const off = current.filter((s) => !s.last.on).length;
    const same = (f) => new Set(current.map(f)).size <= 1;
    const thresholds = (s) => s.last.th.join(" / ");
    const chips = [];
    if (current.length) {
      chips.push(off === 0 ? chip("GC", "enabled", "ok")
        : chip("GC", off === current.length ? "disabled" : `disabled in ${off} of ${current.length}`, "warn"));
      chips.push(chip("thresholds", same(thresholds) ? thresholds(current[0])
        : "varies: " + Array.from(new Set(current.map(thresholds))).slice(0, 3).join(", ")));
      chips.push(chip("frozen objects", same((s) => s.last.fz) ? fmt.count(current[0].last.fz) : "varies"));
      chips.push(chip("series", fmt.count(current.length)));
    }
    chips.push(chip("collected", fmt.count(total.cd)));
    chips.push(chip("uncollectable", fmt.count(total.un), total.un > 0 ? "warn" : null));
    chips.push(chip("dropped events", fmt.count(total.dr), total.dr > 0 ? "warn" : null));
    $("#gc-config").replaceChildren(...chips);
  }

  function renderNotes() {
    const notes = [];
    const windowSeconds = state.window;
    if (data.capped) notes.push(`GC shows the last ${fmt.age(data.span)} of the ${fmt.age(windowSeconds)} window.`);
    if (data.limited) notes.push(`Busy host: raw GC data from ${fmt.clock(data.since)} only.`);
    $("#gc-note").textContent = notes.join(" ");
    const line = $("#gc-window-totals");
    const t = data.totals;
    line.hidden = !t;
    if (t) {
      const c = triple(t.collections);
      line.textContent = `Whole ${fmt.age(num(t.span))} window (all processes of the group): `
        + `${fmt.count(num(t.events))} collections (gen 0 · 1 · 2: ${c.map(fmt.count).join(" · ")}), `
        + `paused ${fmt.duration(num(t.pause))}, p50 ${fmt.duration(t.p50)}, p95 ${fmt.duration(t.p95)}, `
        + `p99 ${fmt.duration(t.p99)}, max ${fmt.duration(t.max)}, dropped events ${fmt.count(num(t.dropped))}.`;
    }
  }

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

  function cell(content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    if (className) td.className = className;
    return td;
  }

  function pressure(rec) {
    const wrap = document.createElement("span");
    wrap.className = "gc-pressure";
    for (const g of GENS) {
      const th = rec.th[g];
      const frac = th > 0 ? rec.cnt[g] / th : 0;
      const bar = document.createElement("span");
      bar.className = "gc-bar";
      bar.title = `gen ${g}: ${fmt.count(rec.cnt[g])} of ${fmt.count(th)} (${fmt.percent(frac)})`;
      const fill = document.createElement("span");
      fill.style.width = Math.min(100, frac * 100).toFixed(1) + "%";
      fill.style.background = GEN_COLORS[g];
      bar.append(fill);
      const label = document.createElement("span");
      label.className = "gc-bar-label";
      label.textContent = `${fmt.number(rec.cnt[g], 0)}/${fmt.number(th, 0)}`;
      bar.append(label);
      wrap.append(bar);
    }
    return wrap;
  }

  function renderTable(v) {
    const rows = v.seriesTotal.map(({ s, stats }) => {
      const tr = document.createElement("tr");
      tr.dataset.pid = String(s.p);
      tr.dataset.interp = interpName(s.n);
      tr.tabIndex = 0;
      if (s.last.t < v.now - CURRENT) {
        tr.className = "offline";
        tr.title = "last heard at " + fmt.clock(s.last.t);
      }
      const on = document.createElement("span");
      on.className = "chip";
      on.dataset.kind = s.last.on ? "ok" : "warn";
      on.textContent = s.last.on ? "on" : "off";
      tr.append(
        cell(String(s.p) + (s.i > 1 ? ` #${s.i}` : ""), "num"), cell(fmt.groupName(s.g)), cell(interpName(s.n)), cell(on),
        cell(pressure(s.last)), cell(stats.rates.map((r) => fmt.number(r, 2)).join(" · "), "num"),
        cell(`${fmt.duration(stats.pause)} (${fmt.percent(stats.share)})`, "num"),
        cell(fmt.number(stats.collected), "num"),
        cell(fmt.count(stats.uncollectable), stats.uncollectable > 0 ? "num warn" : "num"),
        cell(fmt.count(stats.dropped), stats.dropped > 0 ? "num warn" : "num"),
      );
      return tr;
    });
    $("#gc-series tbody").replaceChildren(...rows);
  }

  function renderView(v) {
    renderSelectors(v);
    renderEmpty(v);
    if ($("#gc-body").hidden) return;
    const [lo, hi] = zoom ? [zoom.min, zoom.max] : [v.from, v.now + 1];
    const total = summarize(v.buckets, lo, hi);
    // Rates over the time GC data covers: a host that just started has seconds, not the window.
    const start = v.buckets.length ? Math.max(v.from, v.buckets[0].t) : v.from;
    const span = zoom ? zoom.max - zoom.min : Math.min(data.span, v.now - start);
    renderConfig(v, total);
    renderNotes();
    renderCharts(v, total, span);
    timeline.paint(v, total);
    histogram.paint(v, total);
    renderTable(v);
  }

  // -- hand-drawn canvases: timeline and histogram -------------------------------------------

  function canvasChart(fig, paintFn, hoverFn) {
    const plot = fig.querySelector(".plot");
    const canvas = plot.querySelector("canvas");
    const tip = plot.querySelector(".chart-tooltip");
    const readout = fig.querySelector(".readout");
    const chart = { canvas, tip, readout, layout: null, last: null, pointer: null };
    chart.paint = (v, total) => {
      chart.last = [v, total];
      const width = plot.clientWidth;
      if (!width) return;
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(190 * ratio);
      canvas.style.width = width + "px";
      canvas.style.height = "190px";
      const g = canvas.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, 190);
      g.font = "11px system-ui, sans-serif";
      chart.layout = paintFn(g, width, 190, v, total, chart);
      if (chart.pointer) hoverFn(chart, chart.pointer.x, chart.pointer.y); // the tooltip follows new data
    };
    canvas.addEventListener("mousemove", (event) => {
      const box = canvas.getBoundingClientRect();
      chart.pointer = { x: event.clientX - box.left, y: event.clientY - box.top };
      hoverFn(chart, chart.pointer.x, chart.pointer.y);
    });
    canvas.addEventListener("mouseleave", () => {
      chart.pointer = null;
      tip.hidden = true;
    });
    return chart;
  }

  function showTip(chart, lines, x, y) {
    chart.tip.replaceChildren(...lines.map((line) => {
      const div = document.createElement("div");
      div.textContent = line;
      return div;
    }));
    chart.tip.hidden = false;
    const width = chart.canvas.clientWidth;
    const left = x + 12 + chart.tip.offsetWidth > width ? x - chart.tip.offsetWidth - 12 : x + 12;
    chart.tip.style.left = Math.max(0, left) + "px";
    chart.tip.style.top = Math.max(0, y - chart.tip.offsetHeight - 8) + "px";
  }

  const PAD = { left: 58, right: 10, top: 8, bottom: 22 };

  function axisText(g, label, x, y, align) {
    g.fillStyle = colors.muted;
    g.textAlign = align;
    g.fillText(label, x, y);
  }

  function drawTimeline(g, width, height, v, total, chart) {
    const [x0, x1] = zoom ? [zoom.min, zoom.max] : v.range;
    const events = v.events.filter((e) => e.t >= x0 && e.t <= x1);
    const maxD = Math.max(0.001, ...events.map((e) => e.d));
    const minD = Math.max(1e-6, Math.min(maxD / 10, ...events.map((e) => e.d || maxD)));
    const lo = Math.log10(minD) - 0.1;
    const hi = Math.log10(maxD) + 0.1;
    const w = width - PAD.left - PAD.right;
    const h = height - PAD.top - PAD.bottom;
    const xOf = (t) => PAD.left + ((t - x0) / (x1 - x0)) * w;
    const yOf = (d) => PAD.top + h - ((Math.log10(Math.max(d, minD)) - lo) / (hi - lo)) * h;
    g.strokeStyle = colors.grid;
    g.lineWidth = 1;
    for (let e = Math.ceil(lo); e <= Math.floor(hi); e += 1) { // a grid line per decade
      const y = Math.round(yOf(10 ** e)) + 0.5;
      g.beginPath(); g.moveTo(PAD.left, y); g.lineTo(width - PAD.right, y); g.stroke();
      axisText(g, fmt.duration(10 ** e), PAD.left - 6, y + 4, "right");
    }
    for (let i = 0; i <= 4; i += 1) {
      const t = x0 + ((x1 - x0) * i) / 4;
      axisText(g, fmt.clock(t), xOf(t), height - 6, i === 0 ? "left" : i === 4 ? "right" : "center");
    }
    const dots = [];
    for (const gen of GENS) { // gen 2 drawn last: the rare, long pauses stay on top
      g.fillStyle = GEN_COLORS[gen];
      const r = gen === 2 ? 4 : 2.5;
      for (const e of events) {
        if (e.gen !== gen) continue;
        const x = xOf(e.t);
        const y = yOf(e.d);
        g.globalAlpha = 0.8;
        g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fill();
        dots.push({ x, y, e });
      }
    }
    g.globalAlpha = 1;
    if (!events.length) axisText(g, "No pauses in this range", PAD.left + w / 2, PAD.top + h / 2, "center");
    chart.readout.textContent = `${fmt.count(total.n)} collections · paused ${fmt.duration(total.pause)}`
      + (v.events.length >= MAX_EVENTS ? ` · newest ${fmt.count(MAX_EVENTS)} drawn` : "");
    return { dots };
  }

  function hoverTimeline(chart, x, y) {
    const dots = chart.layout ? chart.layout.dots : [];
    let best = null;
    let bestDist = 64; // 8 px
    for (const dot of dots) {
      const dist = (dot.x - x) ** 2 + (dot.y - y) ** 2;
      if (dist <= bestDist) { best = dot; bestDist = dist; }
    }
    if (!best) { chart.tip.hidden = true; return; }
    const e = best.e;
    const when = new Date(e.t * 1000);
    showTip(chart, [
      `${when.toLocaleTimeString([], { hour12: false })}.${String(when.getMilliseconds()).padStart(3, "0")} · gen ${e.gen}`,
      `pause ${fmt.duration(e.d)}`,
      `pid ${e.p} · ${interpName(e.n)} · ${fmt.groupName(e.g)}`,
      `collected ${fmt.count(e.cd)} · uncollectable ${fmt.count(e.un)}`,
    ], best.x, best.y);
  }

  function drawHistogram(g, width, height, v, total, chart) {
    const counts = total.h;
    let top = 0;
    counts.forEach((c, i) => { if (c > 0) top = i; });
    const shown = Math.max(16, top + 2 > BUCKETS ? BUCKETS : top + 2);
    const w = width - PAD.left - PAD.right;
    const h = height - PAD.top - PAD.bottom;
    const bw = w / shown;
    const peak = Math.max(1, ...counts);
    g.strokeStyle = colors.grid;
    g.beginPath(); g.moveTo(PAD.left, PAD.top + h + 0.5); g.lineTo(width - PAD.right, PAD.top + h + 0.5); g.stroke();
    axisText(g, fmt.count(peak), PAD.left - 6, PAD.top + 10, "right");
    axisText(g, "0", PAD.left - 6, PAD.top + h, "right");
    g.fillStyle = colors.accent;
    for (let i = 0; i < shown; i += 1) {
      if (!counts[i]) continue;
      const bh = Math.max(1, (counts[i] / peak) * h);
      g.fillRect(PAD.left + i * bw + 1, PAD.top + h - bh, Math.max(1, bw - 2), bh);
    }
    for (let i = 0; i < shown; i += 4) axisText(g, i === 0 ? "0" : edge(bucketBounds(i)[0]), PAD.left + i * bw, height - 6, "center");
    const xOf = (value) => {
      const b = bucketIndex(value);
      const [lower, upper] = bucketBounds(b);
      const frac = upper === Infinity ? 0.5 : (value - lower) / (upper - lower);
      return PAD.left + (b + Math.min(1, Math.max(0, frac))) * bw;
    };
    const marks = [];
    if (total.n > 0) {
      for (const [name, p, color] of [["p50", 0.5, colors.ok], ["p95", 0.95, colors.warn], ["p99", 0.99, "#a371f7"]]) {
        const value = percentile(counts, p, total.min, total.max);
        marks.push([name, value]);
        const x = Math.round(xOf(value)) + 0.5;
        g.strokeStyle = color;
        g.setLineDash([4, 3]);
        g.beginPath(); g.moveTo(x, PAD.top); g.lineTo(x, PAD.top + h); g.stroke();
        g.setLineDash([]);
      }
    } else {
      axisText(g, "No pauses in this range", PAD.left + w / 2, PAD.top + h / 2, "center");
    }
    chart.readout.textContent = `n ${fmt.count(total.n)} · min ${fmt.duration(total.min)} · `
      + marks.map(([name, value]) => `${name} ${fmt.duration(value)}`).join(" · ")
      + ` · max ${fmt.duration(total.max)}`;
    return { bw, shown, counts, n: total.n };
  }

  function hoverHistogram(chart, x, y) {
    const layout = chart.layout;
    const b = layout ? Math.floor((x - PAD.left) / layout.bw) : -1;
    if (!layout || b < 0 || b >= layout.shown || layout.n === 0) { chart.tip.hidden = true; return; }
    const [lower, upper] = bucketBounds(b);
    const below = layout.counts.slice(0, b + 1).reduce((a, c) => a + c, 0);
    showTip(chart, [
      b === 0 ? `under ${edge(upper)}` : upper === Infinity ? `${edge(lower)} or more` : `${edge(lower)} – ${edge(upper)}`,
      `${fmt.count(layout.counts[b])} pauses (${fmt.percent(layout.counts[b] / layout.n)})`,
      `${fmt.percent(below / layout.n)} at or below ${upper === Infinity ? "this" : fmt.duration(upper)}`,
    ], x, y);
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
    if (paused) badge.textContent = `Paused at ${fmt.clock(paused.since)} · ${fmt.count(paused.events)} new event${paused.events === 1 ? "" : "s"}`;
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
      loadSnapshot(msg);
      trim();
      lastFrameAt = Date.now();
    },
    frame(msg) {
      addFrame(msg);
      lastFrameAt = Date.now();
    },
    tick() {
      if (Date.now() - lastFrameAt > 1500) { // no frames: still slide the window
        trim();
        ctx.scheduleDraw();
      }
    },
    draw() {
      if (!data.loaded) return;
      renderPaused();
      if (paused && view) return; // frozen: data keeps arriving, the picture does not move
      view = computeView();
      renderView(view);
    },
    resize() {
      collections.resize();
      pauses.resize();
      for (const chart of [timeline, histogram]) if (chart.last) chart.paint(...chart.last);
    },
    theme() {
      colors = readColors();
      collections.redraw();
      pauses.redraw();
      for (const chart of [timeline, histogram]) if (chart.last) chart.paint(...chart.last);
    },
  };
}
