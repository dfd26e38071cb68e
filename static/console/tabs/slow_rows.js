// Slow requests tab, one table row: its cells made once and filled on every draw
// (./slow.js keeps them by key, so a row under the pointer or in focus stays put).

import * as fmt from "../format.js";
import { stamp } from "../stamps.js";
import { num } from "../util.js";
import { str } from "./slow_export.js";

const COLUMNS = ["state", "duration", "method", "status", "url", "pid", "thread", "group", "start", "log_id"];
const NUMERIC = new Set(["duration", "status", "pid", "thread"]);

export function makeRow(key) {
  const tr = document.createElement("tr");
  tr.tabIndex = 0;
  tr.dataset.key = key;
  const cells = {};
  for (const name of COLUMNS) {
    const td = document.createElement("td");
    td.dataset.field = name;
    if (NUMERIC.has(name)) td.className = "num";
    cells[name] = td;
    tr.append(td);
  }
  const chip = document.createElement("span");
  chip.className = "chip slow-state";
  cells.state.append(chip);
  cells.chip = chip;
  return { tr, cells };
}

function set(td, text, title) {
  if (td.textContent !== text) td.textContent = text;
  if (title !== undefined && td.title !== title) td.title = title;
}

/**
 * Fill a row from `row.record`: `elapsed` is its duration so far, `rank` its "k/N"
 * among the rows of its method and URL (or undefined), `dated` whether the window
 * is long enough for a start to be on another day (then the cell says which).
 */
export function fillRow({ cells, tr }, record, { elapsed, rank, dated }) {
  const r = record;
  const status = num(r.status);
  cells.chip.dataset.state = str(r.state);
  set(cells.chip, str(r.state) || fmt.DASH);
  tr.dataset.state = str(r.state);
  set(cells.duration, (r.state === "expired" ? "≥ " : "") + fmt.duration(elapsed));
  set(cells.method, str(r.method) || fmt.DASH);
  set(cells.status, status ? String(status) : r.state === "active" ? "…" : fmt.DASH);
  cells.status.dataset.kind = status >= 500 ? "bad" : status >= 400 ? "warn" : "";
  set(cells.url, str(r.url) || fmt.DASH, str(r.url));
  if (rank) cells.url.dataset.rank = rank;
  else delete cells.url.dataset.rank;
  set(cells.pid, str(r.pid));
  set(cells.thread, str(r.thread));
  set(cells.group, r.group === null || r.group === undefined ? fmt.groupName("") : fmt.groupName(str(r.group)));
  const start = num(r.start);
  set(cells.start, stamp(start, { date: dated }), start ? stamp(start, { date: true, ms: true }) : "");
  set(cells.log_id, str(r.log_id) || fmt.DASH);
}
