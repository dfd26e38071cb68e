// GC tab, the panel's DOM apart from the charts: the process and interpreter
// selectors, the empty state, the configuration chips, the notes and window
// totals line, and the per process and interpreter table with its pressure bars.
// Separate because it is plain DOM text from a view (./gc_model.js): no canvas,
// no live data handling. Each function takes `$`, the panel's querySelector.

import * as fmt from "../format.js";
import { stamp } from "../stamps.js";
import { num } from "../util.js";
import { CURRENT, GEN_COLORS, GENS, interpName, triple } from "./gc_model.js";

// -- selectors and empty state ---------------------------------------------------------------

function setOptions(select, values, label, current, allLabel) {
  const wantedValues = ["", ...values.map(String)];
  if (current !== "" && !wantedValues.includes(current)) wantedValues.push(current);
  const have = Array.from(select.options).map((o) => o.value);
  if (have.join("\n") !== wantedValues.join("\n")) {
    select.replaceChildren(...wantedValues.map((v) => new Option(v === "" ? allLabel : label(v), v)));
  }
  select.value = current;
}

/** The selectors' options from the view; `sel` ({pid, interp}, null: all) is chosen. */
export function renderSelectors($, v, sel) {
  setOptions($("#gc-pid"), v.pids, (p) => "pid " + p, sel.pid === null ? "" : String(sel.pid), "All processes");
  const interps = v.interps.map(interpName);
  setOptions($("#gc-interp"), interps, (n) => n, sel.interp === null ? "" : interpName(sel.interp), "All interpreters");
  // One interpreter everywhere: the selector says nothing (unless a link chose one).
  $("#gc-interp-label").hidden = interps.length <= 1 && sel.interp === null;
}

/** Shows the empty state instead of #gc-body when the view holds nothing. */
export function renderEmpty($, v, sel, span, group) {
  const empty = !v.series.length && !v.events.length && !v.buckets.length;
  $("#gc-empty").hidden = !empty;
  $("#gc-body").hidden = empty;
  if (!empty) return;
  const filtered = sel.pid !== null || sel.interp !== null;
  const what = [sel.pid !== null ? "pid " + sel.pid : null, sel.interp !== null ? "interpreter " + interpName(sel.interp) : null]
    .filter(Boolean).join(", ");
  $("#gc-empty-text").textContent = `No garbage-collector data${filtered ? " for " + what : ""} `
    + `in the last ${fmt.age(span)}${group === "*" ? "" : " of group " + fmt.groupName(group)}.`;
  const hint = $("#gc-empty-hint");
  hint.hidden = false;
  hint.textContent = filtered
    ? "That process may have restarted or stopped: pick another one, or show them all."
    : "mod_wsgi reports GC for each daemon process once WSGITelemetryService is set and the process has "
      + "served requests. Check that the agent on this host is running and receiving (Fleet page), "
      + "or choose another group or a longer window.";
  $("#gc-show-all").hidden = !filtered;
}

// -- configuration chips and notes -----------------------------------------------------------

function chip(label, value, kind) {
  const span = document.createElement("span");
  span.className = "chip gc-chip";
  if (kind) span.dataset.kind = kind;
  const b = document.createElement("b");
  b.textContent = label + " ";
  span.append(b, value);
  return span;
}

export function renderConfig($, v, total) {
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

/** The capped/limited/later-start notes and the whole-window totals line of the data's snapshot. */
export function renderNotes($, data, windowSeconds, v) {
  const notes = [];
  if (data.capped) notes.push(`GC shows the last ${fmt.age(data.span)} of the ${fmt.age(windowSeconds)} window.`);
  if (data.limited) notes.push(`Busy host: raw GC data from ${stamp(data.since)} only.`);
  else if (v.start > v.from) {
    notes.push(`GC data starts at ${stamp(v.start)} (none earlier in the last ${fmt.age(data.span)}): `
      + "the charts begin there; a gap after it is time without a collection.");
  }
  if (data.omitted > 0) notes.push(`And ${fmt.count(data.omitted)} more series (processes × interpreters) not listed.`);
  $("#gc-note").textContent = notes.join(" ");
  const line = $("#gc-window-totals");
  const t = data.totals;
  line.hidden = !t;
  if (t) {
    const c = triple(t.collections);
    line.textContent = `Whole ${fmt.age(num(t.span) ?? 0)} window (all processes of the group): `
      + `${fmt.count(num(t.gc_collections) ?? 0)} collections (gen 0 · 1 · 2: ${c.map(fmt.count).join(" · ")}), `
      + `paused ${fmt.duration(num(t.gc_pause_total) ?? 0)}, p50 ${fmt.duration(t.gc_pause_p50)}, `
      + `p95 ${fmt.duration(t.gc_pause_p95)}, p99 ${fmt.duration(t.gc_pause_p99)}, `
      + `max ${fmt.duration(t.gc_pause_max)}, dropped events ${fmt.count(num(t.gc_dropped) ?? 0)}.`;
  }
}

// -- the table ---------------------------------------------------------------------------------

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

/** The ended chip's text and the row's title for a series' end (./gc_model.js seriesEnd), or null. */
export function endMark(end) {
  if (!end) return null;
  const at = stamp(end.at);
  if (end.kind === "stopped") return { text: "ended", title: `process stopped at ${at}; its row stays for the window shown` };
  if (end.kind === "gone") return { text: "ended", title: `process gone: silent since ${at} without a STOPPED; its row stays for the window shown` };
  return { text: "silent", title: `no GC report since ${at}` };
}

function pidCell(s, mark) {
  const wrap = document.createElement("span");
  wrap.textContent = String(s.p) + (s.i > 1 ? ` #${s.i}` : "");
  if (mark) {
    const chip = document.createElement("span");
    chip.className = "chip gc-end";
    chip.textContent = mark.text;
    chip.title = mark.title;
    wrap.append(" ", chip);
  }
  return wrap;
}

export function renderTable($, v) {
  const rows = v.seriesTotal.map(({ s, stats, end }) => {
    const tr = document.createElement("tr");
    tr.dataset.pid = String(s.p);
    tr.dataset.interp = interpName(s.n);
    tr.tabIndex = 0;
    const mark = endMark(end);
    if (end) {
      tr.className = "offline gc-ended";
      tr.dataset.ended = end.kind;
      tr.title = mark.title;
    }
    const on = document.createElement("span");
    on.className = "chip";
    on.dataset.kind = s.last.on ? "ok" : "warn";
    on.textContent = s.last.on ? "on" : "off";
    tr.append(
      cell(pidCell(s, mark), "num"), cell(fmt.groupName(s.g)), cell(interpName(s.n)), cell(on),
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
