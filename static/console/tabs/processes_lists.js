// Processes tab, the two tables: the lifecycle event log (#proc-log, oldest first,
// pinned to the newest) and the process table (#processes, one row per process with
// its newest tick), with the selection marked in both and a click on a row selecting
// it. Separate because they are DOM, not canvas: rebuilt only when their rows change
// (a signature), otherwise left alone so scrolling and text selection survive.
//
// `view` is the tab's shared state (see processes.js), read at render time.

import * as fmt from "../format.js";
import { el, num } from "../util.js";
import { MAX_EVENTS, byGroupStartPid, keyOf, rowEnd, text } from "./processes_model.js";
import { clockMs, windowLabel } from "./processes_ui.js";

export function createLists(view) {
  const { state, $ } = view;
  const logWrap = $("#proc-log-wrap");
  const logBody = $("#proc-log tbody");
  const tableBody = $("#processes tbody");
  let logSignature = "";
  let tableSignature = "";

  // -- the selection, as the rows show it ----------------------------------------------------

  function markSelection(flashNow) {
    for (const tr of [...logBody.rows, ...tableBody.rows]) {
      const on = tr.dataset.key === view.selected;
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
    if (tr) view.select(tr.dataset.key === view.selected ? null : tr.dataset.key, event.currentTarget === logBody ? "log" : "table");
  }
  logBody.addEventListener("click", rowClicked);
  tableBody.addEventListener("click", rowClicked);

  // -- the event log -----------------------------------------------------------------------

  function logEvents(t0, t1) {
    return Array.from(view.model.events.values())
      .filter((e) => e.t >= t0 && e.t <= t1 && view.inGroup(e.group) && (e.kind === "started" || view.shownCategory(e.category)))
      .sort((a, b) => a.t - b.t || a.pid - b.pid);
  }

  function logRow(e) {
    const key = keyOf(e.pid, e.inc);
    const row = view.model.rows.get(key);
    const tr = el("tr");
    tr.dataset.key = key;
    tr.dataset.kind = e.kind;
    const kind = el("td");
    const chip = el("span", "chip kind", e.kind);
    chip.dataset.kind = e.kind;
    kind.append(chip);
    const reason = el("td", "reason", e.kind === "started" ? "" : (e.reason || "none given"));
    if (e.kind !== "started") reason.dataset.category = e.category || "unplanned";
    const drained = e.kind !== "stopped" ? "" : e.drain === true ? "yes" : e.drain === false ? "no" : fmt.DASH;
    tr.append(el("td", "", clockMs(e.t)), kind, el("td", "num", String(e.pid)),
      el("td", "num", String(e.parent ?? row?.parent ?? fmt.DASH)), el("td", "", fmt.groupName(text(e.group))), reason,
      el("td", "num", e.kind === "stopped" ? fmt.age(e.uptime) : ""),
      el("td", "num", e.kind === "stopped" ? fmt.count(e.requests) : ""),
      el("td", "num", e.kind === "started" ? "" : fmt.count(e.in_flight)), el("td", "", drained));
    return tr;
  }

  function renderLog(t1) {
    const model = view.model;
    const hidden = view.hidden;
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
    const scrollTo = view.scrollTo;
    if (scrollTo && scrollTo.log) {
      const tr = Array.from(logBody.rows).find((r) => r.dataset.key === scrollTo.log);
      if (tr) logWrap.scrollTop += tr.getBoundingClientRect().top - logWrap.getBoundingClientRect().top - logWrap.clientHeight / 3;
      if (tr || model.loaded) scrollTo.log = null;
    }
  }

  function logNote(shown) {
    const model = view.model;
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
    const chip = el("span", "chip state", "");
    const stateCell = el("td");
    stateCell.append(chip);
    tr.append(el("td", "num", String(row.pid)), el("td", "", fmt.groupName(text(row.group))), stateCell,
      el("td", "num", fmt.count(row.inc)), el("td"), el("td", "num", ""), el("td", "num", ""),
      el("td", "num", ""), el("td", "num", ""));
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
      live ? fmt.bytes(num(row.memory_rss)) : fmt.DASH,
      live && num(row.throughput) !== null ? fmt.number(row.throughput) + "/s" : fmt.DASH];
    values.forEach((value, i) => {
      const cell = tr.cells[4 + i];
      if (cell.textContent !== value) cell.textContent = value;
    });
  }

  function renderTable(t1) {
    const model = view.model;
    const t0 = t1 - state.window;
    const rows = Array.from(model.rows.values()).filter((r) => view.inGroup(r.group)
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

  return {
    markSelection,
    draw(t1) {
      renderLog(t1);
      renderTable(t1);
    },
    reset() {
      logSignature = "";
      tableSignature = "";
    },
  };
}
