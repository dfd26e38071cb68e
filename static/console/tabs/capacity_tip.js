// Capacity tab: what is under the mouse. Hit-testing a drawn layout (run,
// cell or gutter entry), the tooltip's lines for each, the record behind a
// cell, and the note shown in the drill-down when a run has no record.
// Separate because it only reads the layout the last draw left; the tab keeps
// the pointer and wires the mouse events (capacity.js).

import * as fmt from "../format.js";
import { timeLabel } from "../ticks.js";
import { num } from "../util.js";
import { IDLE, at, clamp, cut, recordEnd } from "./capacity_model.js";
import { endedLabel } from "./capacity_paint.js";

const RECENT = 3; // s: a run this fresh may still be waiting for its record

/** What is under (x, y) in `layout` (drawn over the last `span` s): a run, a cell, a gutter entry, or the
 * greyed part of an ended process's band. */
export function hit(layout, span, x, y) {
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
  const ended = band.row.ended;
  if (ended && t >= ended.t - slack) return { band, kind: "ended", slot, t };
  return null;
}

/** Why a run has no record, for the drill-down; `now` is the server's time. */
export function missingNote(row, run, now) {
  if (!(row.threshold > 0)) {
    return `Slow-request logging is off for pid ${row.pid} (WSGISlowRequests is not set: threshold 0), so ` +
      "mod_wsgi sends no record of this request: no URL, status or timing breakdown. The run was " +
      "detected from the worker slot's timings only.";
  }
  if (run.active || now - run.end < RECENT) {
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

/** The record covering slot `slot` of column `i`, if a slow request ran there (`now`: the layout's). */
export function cellRecord(band, i, slot, now) {
  const c = band.row.cols;
  const from = c.t[i] - (c.period[i] ?? 0);
  for (const record of band.byThread.get(band.row.key + ":" + (slot + 1)) || []) {
    const start = num(record.start);
    if (start !== null && start <= c.t[i] && recordEnd(record, now) >= from) return record;
  }
  return null;
}

function urlLine(record) {
  return cut(`${record.method || ""} ${record.url || "(no URL)"}`.trim(), 90);
}

/** How an ended process ended, in words: when, and why (or that it fell silent). */
function endedLines(ended, span) {
  if (ended.state === "gone") {
    return [["", `gone: silent since ${timeLabel(ended.t, span)}, no STOPPED received`]];
  }
  return [["", `stopped ${timeLabel(ended.t, span)} · reason ${ended.reason || "none given"}`]];
}

const KEPT = "ended: its band stays until its end leaves the span";

/** The tooltip's [kind, text] lines for what `hit` found, drawn in layout `lay`. */
function tipLines(found, lay) {
  const { now, span } = lay;
  const { band } = found;
  const row = band.row;
  if (found.kind === "gutter") {
    const flag = row.flag || { label: "", reasons: [], lean: "" };
    return [["title", `pid ${row.pid} · ${fmt.groupName(row.group)}`], ["", `incarnation ${row.incarnation} · ${row.slots} slots · slow threshold ${row.threshold > 0 ? fmt.duration(row.threshold) : "off"}`],
      ...(row.ended ? [...endedLines(row.ended, span), ["note", KEPT]] : []),
      ["", flag.label], ...flag.reasons.map((r) => ["note", r]), ...(flag.lean ? [["note", flag.lean]] : [])];
  }
  if (found.kind === "ended") {
    return [["title", `${endedLabel(row.ended, span)} · pid ${row.pid}`], ...endedLines(row.ended, span),
      ["note", "no ticks after its end; " + KEPT]];
  }
  if (found.kind === "run") {
    const { run } = found;
    const duration = run.end - run.start;
    const lines = [["title", `slow request · ${fmt.duration(duration)}${run.active ? " (active)" : ""}`],
      ["", `pid ${row.pid} · slot ${run.slot + 1} · started ${timeLabel(run.start, span)}`]];
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
    ["", `${timeLabel(c.t[i], span)} · ${fmt.age(now - c.t[i])} ago`],
    ["", `busy ${fmt.percent(clamp(busy, 0, 1))} · cpu ${fmt.percent(p ? clamp(at(c.slot_cpu[i], j) / p, 0, 1) : null)}`]];
  const detail = [done ? `completed ${done}` : "", e ? `running ${fmt.duration(e)}` : "", m ? `longest ${fmt.duration(m)}` : ""];
  if (detail.some(Boolean)) lines.push(["", detail.filter(Boolean).join(" · ")]);
  const record = cellRecord(band, i, j, now);
  if (record) lines.push(["url", urlLine(record)], ["note", "click: open details"]);
  else if (e > 0 || busy >= IDLE) {
    const longest = Math.max(e, m);
    lines.push(["note", !(row.threshold > 0) ? "slow-request logging is off: no URL reported"
      : longest < row.threshold ? "under the slow threshold, no URL reported"
        : "slow, but its record has not arrived or has aged out"]);
  } else lines.push(["note", "idle"]);
  if (row.ended) lines.push(["note", `process ${endedLabel(row.ended, span)}`]);
  return lines;
}

/** Show the tooltip for `found` (from `hit` on layout `lay`, or null: hide it) next to `pointer` over `canvas`. */
export function showTip(tip, canvas, pointer, found, lay) {
  canvas.dataset.hover = found ? found.kind : "";
  if (!found) {
    tip.hidden = true;
    return;
  }
  tip.replaceChildren(...tipLines(found, lay).map(([kind, text]) => {
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
