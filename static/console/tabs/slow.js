// Slow requests tab: a live table of the host's active, completed and expired
// slow requests (tab.snapshot, then tab.frame each second with that second's
// records), sortable, filtered by state and URL, exportable, with the shared
// request drill-down (../drilldown.js).
//
// URL: sort=<column> (a leading "-" sorts descending), state=active|completed|expired,
// q=<URL substring>, per=<rows per method and URL>, since=<console time of a Clear:
// requests that ended before it are hidden>; req=<key of the open request> is the
// drill-down's own (it keeps it, with a history entry).
//
// The table's rows are drawn by ./slow_rows.js, the export is ./slow_export.js.

import { openKey, openRequest, pendingKey, updateRequest } from "../drilldown.js";
import * as fmt from "../format.js";
import { stamp } from "../stamps.js";
import { DATE_AFTER } from "../ticks.js";
import { num } from "../util.js";
import { exportRows, str } from "./slow_export.js";
import { fillRow, makeRow } from "./slow_rows.js";

const STATES = ["all", "active", "completed", "expired"];
const PER_URL = ["1", "3", "10"];
const DEFAULT_SORT = "-duration";
// Rows drawn at most; the rest stay held (and exported) and the note says how to narrow.
const MAX_DRAWN = 500;
// Rows held at most, newest kept: a week-long page stays flat.
const MAX_HELD = 2000;
// An active request the agent stops repeating for this many intervals (+1 s) is expired,
// the rule the console's store applies (ingest.model.sample.SILENT_INTERVALS).
const SILENT_INTERVALS = 3;
const STATE_ORDER = { active: 0, expired: 1, completed: 2 };

export function createTab(ctx) {
  const { panel, state } = ctx;
  const $ = (sel) => panel.querySelector(sel);
  const tbody = $("#slow-table tbody");
  const search = $("#slow-search");
  // key -> { record, seen: console time the record was current, alive: last sign of life }
  const rows = new Map();
  const drawn = new Map(); // key -> { tr, cells } reused between draws
  let order = [];
  let loaded = false;
  let omitted = 0;
  let searchTimer = null;
  let paused = null; // { at: console time, rows: copy } while the table is frozen

  // -- the view's options (all in the URL) -------------------------------------------------

  const view = () => {
    const sort = ctx.param("sort") || DEFAULT_SORT;
    const st = ctx.param("state");
    const per = ctx.param("per");
    return {
      column: sort.replace(/^-/, ""), desc: sort.startsWith("-"),
      state: STATES.includes(st) ? st : "all", q: (ctx.param("q") || "").toLowerCase(),
      per: PER_URL.includes(per) ? Number(per) : 0, since: Number(ctx.param("since")) || 0,
    };
  };

  function interval(record) {
    const p = state.processes.find((x) => x && x.pid === record.pid && x.incarnation === record.incarnation);
    return (p && num(p.interval)) || 1;
  }

  function threads(record) {
    const p = state.processes.find((x) => x && x.pid === record.pid && x.incarnation === record.incarnation);
    return p ? num(p.threads) : null;
  }

  /** Elapsed time: an active request keeps running between its once-per-tick records.
   * It never runs backwards: the console clock estimate wobbles by the network's latency. */
  function elapsed(row) {
    const d = num(row.record.duration);
    if (row.record.state !== "active" || d === null) return d;
    row.peak = Math.max(row.peak, d + Math.max(0, (paused ? paused.at : ctx.serverNow()) - row.seen));
    return row.peak;
  }

  function wanted(record) {
    return state.group === "*" || (record.group ?? "") === state.group;
  }

  /** Hold a record; a late active record never undoes its request's completion. */
  function hold(record, messageNow) {
    if (!record || typeof record !== "object" || typeof record.key !== "string" || !wanted(record)) return;
    const old = rows.get(record.key);
    if (old && old.record.state === "completed" && record.state !== "completed") return;
    // The record's own stamp says when it was current, unless the host's clock is far off.
    const stamp = num(record.stamp);
    const seen = stamp !== null && Math.abs(messageNow - stamp) < 5 ? Math.min(stamp, messageNow) : messageNow;
    const peak = old && old.record.state === "active" ? old.peak : 0;
    rows.set(record.key, { record, seen, alive: seen, peak });
    if (openKey() === record.key) updateRequest(record);
  }

  /** Expire silent active rows, drop rows older than the window, bound what is held. */
  function age() {
    const now = ctx.serverNow();
    const since = now - state.window;
    for (const [key, row] of rows) {
      const r = row.record;
      if (r.state === "active" && now - row.alive > SILENT_INTERVALS * interval(r) + 1) {
        row.record = { ...r, state: "expired" };
        if (openKey() === key) updateRequest(row.record);
      } else if (r.state !== "active" && (num(r.stamp) ?? 0) < since) {
        rows.delete(key);
      }
    }
    if (rows.size > MAX_HELD) {
      const oldest = Array.from(rows.values()).filter((row) => row.record.state !== "active")
        .sort((a, b) => (num(a.record.stamp) ?? 0) - (num(b.record.stamp) ?? 0));
      for (const row of oldest.slice(0, rows.size - MAX_HELD)) rows.delete(row.record.key);
    }
  }

  // -- sorting and filtering -----------------------------------------------------------------

  const SORT_VALUE = {
    state: (row) => STATE_ORDER[row.record.state] ?? 3,
    duration: (row) => elapsed(row) ?? -1,
    status: (row) => num(row.record.status) ?? -1,
    pid: (row) => num(row.record.pid) ?? -1,
    thread: (row) => num(row.record.thread) ?? -1,
    start: (row) => num(row.record.start) ?? 0,
    method: (row) => str(row.record.method),
    url: (row) => str(row.record.url),
    group: (row) => str(row.record.group),
    log_id: (row) => str(row.record.log_id),
  };

  const cleared = (row, v) => v.since && row.record.state !== "active" && (num(row.record.stamp) ?? 0) <= v.since;
  const urlRanks = new Map(); // key -> "k/N" when rows per URL are limited

  /** The rows the filters let through, sorted; with `per`, the first `per` of each method and URL. */
  function visibleRows(v = view()) {
    const list = sortedRows(v);
    urlRanks.clear();
    if (!v.per) return list;
    const totals = new Map();
    const id = (row) => str(row.record.method) + " " + str(row.record.url);
    for (const row of list) totals.set(id(row), (totals.get(id(row)) || 0) + 1);
    const seen = new Map();
    return list.filter((row) => {
      const n = (seen.get(id(row)) || 0) + 1;
      seen.set(id(row), n);
      if (totals.get(id(row)) > 1) urlRanks.set(row.record.key, `${n}/${totals.get(id(row))}`);
      return n <= v.per;
    });
  }

  function sortedRows(v) {
    const value = SORT_VALUE[v.column] || SORT_VALUE.duration;
    const sign = v.desc ? -1 : 1;
    return Array.from((paused ? paused.rows : rows).values())
      .filter((row) => !cleared(row, v))
      .filter((row) => v.state === "all" || row.record.state === v.state)
      .filter((row) => !v.q || str(row.record.url).toLowerCase().includes(v.q))
      .map((row) => ({ row, key: value(row) }))
      .sort((a, b) => {
        const c = typeof a.key === "string" ? a.key.localeCompare(b.key) : a.key - b.key;
        return sign * c || (num(b.row.record.start) ?? 0) - (num(a.row.record.start) ?? 0) ||
          a.row.record.key.localeCompare(b.row.record.key);
      })
      .map((x) => x.row);
  }

  // -- drawing -------------------------------------------------------------------------------

  function drawHeader(v) {
    for (const th of panel.querySelectorAll("th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === v.column ? (v.desc ? "descending" : "ascending") : "none");
    }
    for (const button of panel.querySelectorAll(".slow-states button")) {
      const s = button.dataset.state;
      button.setAttribute("aria-checked", String(s === v.state));
      let n = 0;
      for (const row of (paused ? paused.rows : rows).values()) {
        if (!cleared(row, v) && (s === "all" || row.record.state === s)) n += 1;
      }
      button.querySelector(".n").textContent = fmt.count(n);
    }
    if (document.activeElement !== search && search.value.toLowerCase() !== v.q) search.value = ctx.param("q") || "";
    $("#slow-per").value = v.per ? String(v.per) : "";
    const pause = $("#slow-pause");
    pause.setAttribute("aria-pressed", String(Boolean(paused)));
    pause.textContent = paused ? "Resume" : "Pause";
  }

  function drawEmpty(v, shown) {
    const box = $("#slow-empty");
    box.hidden = shown > 0;
    const clear = $("#slow-clear-filters");
    const filtered = v.state !== "all" || v.q || v.per || v.since;
    clear.hidden = !filtered || rows.size === 0;
    let text;
    if (!loaded) text = "Waiting for the first snapshot…";
    else if (rows.size === 0) {
      text = `No slow requests on this host in the last ${fmt.age(state.window)}` +
        (state.group === "*" ? "" : ` in group ${fmt.groupName(state.group)}`) +
        ". mod_wsgi reports a request here once it runs longer than its WSGISlowRequests threshold " +
        "(set it on the daemon process, e.g. WSGISlowRequests 1.0). Pick a longer window to look further back.";
    } else {
      text = "No request matches the filter" + (v.state !== "all" ? ` (state: ${v.state})` : "") +
        (v.q ? ` (URL contains “${v.q}”)` : "") + (v.since ? ` (ended before ${stamp(v.since, { date: state.window > DATE_AFTER })}: cleared)` : "") + ".";
    }
    box.querySelector(".slow-empty-text").textContent = text;
  }

  function draw() {
    age();
    const v = view();
    const list = visibleRows(v);
    const shown = list.slice(0, MAX_DRAWN);
    const keys = shown.map((row) => row.record.key);
    const dated = state.window > DATE_AFTER; // a start may be on another day: the cells say which
    for (const key of drawn.keys()) if (!rows.has(key)) drawn.delete(key);
    for (const row of shown) {
      let item = drawn.get(row.record.key);
      if (!item) {
        item = makeRow(row.record.key);
        drawn.set(row.record.key, item);
      }
      fillRow(item, row.record, { elapsed: elapsed(row), rank: urlRanks.get(row.record.key), dated });
    }
    // Re-order only when the order changed, so a row under the pointer or in focus stays put.
    if (keys.length !== order.length || keys.some((k, i) => k !== order[i])) {
      tbody.replaceChildren(...keys.map((k) => drawn.get(k).tr));
      order = keys;
    }
    drawHeader(v);
    drawEmpty(v, shown.length);
    $("#slow-table").hidden = shown.length === 0;
    const active = list.filter((row) => row.record.state === "active").length;
    $("#slow-summary").textContent = loaded
      ? (paused ? `paused at ${stamp(paused.at)} · ` : "") +
        `${fmt.count(list.length)} shown · ${fmt.count(active)} running · last ${fmt.age(state.window)}` : "";
    const more = $("#slow-more");
    const notes = [];
    if (list.length > shown.length) {
      notes.push(`The first ${fmt.count(shown.length)} of ${fmt.count(list.length)} rows are drawn; ` +
        "narrow them with the state filter or the URL search (an export has them all).");
    }
    if (omitted > 0) notes.push(`${fmt.count(omitted)} older requests of this window were not sent; pick a shorter window to see them.`);
    more.hidden = notes.length === 0;
    more.textContent = notes.join(" ");
    $("#slow-cleared").hidden = !v.since;
    $("#slow-cleared-text").textContent = v.since
      ? `Requests that ended before ${stamp(v.since, { date: state.window > DATE_AFTER })} are cleared from this view (the link keeps it).` : "";
  }

  // -- interactions --------------------------------------------------------------------------

  function open(key) {
    const row = rows.get(key);
    if (row) openRequest(row.record, { threads: threads(row.record) });
    else {
      openRequest(null, {
        key, note: "No slow-request record with this key in the window shown: it may have aged out of the " +
          "window, belong to another group, or come from a link to another host.",
      });
    }
  }

  for (const th of panel.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const v = view();
      const column = th.dataset.sort;
      // A new column starts with its most useful direction: biggest numbers / newest first.
      const desc = column === v.column ? !v.desc : ["duration", "status", "start"].includes(column);
      const sort = (desc ? "-" : "") + column;
      ctx.setParam("sort", sort === DEFAULT_SORT ? null : sort);
      draw();
    });
  }
  for (const button of panel.querySelectorAll(".slow-states button")) {
    button.addEventListener("click", () => {
      ctx.setParam("state", button.dataset.state === "all" ? null : button.dataset.state);
      draw();
    });
  }
  search.value = ctx.param("q") || "";
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      ctx.setParam("q", search.value.trim() || null);
      draw();
    }, 150);
  });
  $("#slow-clear-filters").addEventListener("click", () => {
    search.value = "";
    for (const name of ["q", "state", "per", "since"]) ctx.setParam(name, null);
    draw();
  });
  $("#slow-per").addEventListener("change", (event) => {
    ctx.setParam("per", event.target.value || null);
    draw();
  });
  $("#slow-clear").addEventListener("click", () => {
    ctx.setParam("since", Math.floor(ctx.serverNow() * 1000) / 1000);
    draw();
  });
  $("#slow-unclear").addEventListener("click", () => {
    ctx.setParam("since", null);
    draw();
  });
  // Pause freezes what the table shows; records keep arriving and show on Resume.
  $("#slow-pause").addEventListener("click", () => {
    paused = paused ? null : { at: ctx.serverNow(), rows: new Map(Array.from(rows, ([k, row]) => [k, { ...row }])) };
    draw();
  });
  const exported = () => visibleRows().map((row) => ({ ...row.record, elapsed: elapsed(row) }));
  $("#slow-export-csv").addEventListener("click", () => exportRows(exported(), "csv", ctx.serverNow()));
  $("#slow-export-json").addEventListener("click", () => exportRows(exported(), "json", ctx.serverNow()));
  tbody.addEventListener("click", (event) => {
    const tr = event.target instanceof Element ? event.target.closest("tr[data-key]") : null;
    if (tr) open(tr.dataset.key);
  });
  tbody.addEventListener("keydown", (event) => {
    const tr = event.target instanceof Element ? event.target.closest("tr[data-key]") : null;
    if (tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      open(tr.dataset.key);
    }
  });

  return {
    reset() {
      rows.clear();
      paused = null;
      loaded = false;
      omitted = 0;
    },
    snapshot(message) {
      rows.clear();
      const now = num(message.now) ?? ctx.serverNow();
      const records = Array.isArray(message.records) ? message.records : [];
      // Oldest first, so a newer record of the same request wins.
      for (let i = records.length - 1; i >= 0; i -= 1) hold(records[i], now);
      omitted = num(message.omitted) ?? 0;
      loaded = true;
      const key = pendingKey(); // a link's request: the drill-down waits for it
      if (key && ctx.visible()) open(key);
    },
    frame(message) {
      if (!loaded || !Array.isArray(message.records)) return;
      const now = num(message.now) ?? ctx.serverNow();
      for (const record of message.records) hold(record, now);
      age(); // here too: frames keep coming while the browser tab is in the background
      // Records were left out of a crowded second: do not take their silence for an end.
      if (num(message.omitted) > 0) {
        for (const row of rows.values()) if (row.record.state === "active") row.alive = Math.max(row.alive, now);
      }
    },
    tick() {
      for (const row of rows.values()) {
        if (row.record.state === "active") {
          ctx.scheduleDraw();
          return;
        }
      }
    },
    draw,
  };
}
