// Fleet page: the server-rendered table, kept live by fleet.snapshot /
// fleet.update, with filter and sort kept in the URL (?q=...&sort=-request_p95).

import * as fmt from "./format.js";
import * as loss from "./loss.js";
import { everySecond, onlineWithin, serverNow, setDataTime, setLoss, setTotals, startLive } from "./live.js";
import { FLEET, metric } from "./metrics.js";

const table = document.getElementById("fleet");
const tbody = table.tBodies[0];
const empty = document.getElementById("fleet-empty");
const filterInput = document.getElementById("fleet-filter");
const shown = document.getElementById("fleet-shown");

// Column order of the template; `num` columns are right-aligned numbers. The metric columns
// are the fleet row's metrics (metrics.js FLEET), by the metric table's names.
const COLUMNS = [
  ["name"], ["team"], ["labels"], ["online"], ...FLEET.map((name) => [name, "num"]), ["lost", "num"], ["age"],
];
// A metric cell's text, by the metric's unit (docs/metrics.md).
// Requests and processes are means over the row's span (0.3 slow requests in flight).
const BY_UNIT = { "req/s": fmt.rate, ratio: fmt.percent, s: fmt.duration, requests: fmt.amount, processes: fmt.amount };
const formatted = (name, value) => (BY_UNIT[metric(name).unit] || fmt.number)(value);
// How a metric's cell is marked ("warn", "bad", "" for neither); unmarked metrics have none.
const MARKS = {
  capacity: (v) => (v >= 0.9 ? "bad" : v >= 0.7 ? "warn" : ""),
  status_4xx_rate: (v) => (v > 0 ? "warn" : ""),
  status_5xx_rate: (v) => (v > 0 ? "bad" : ""),
  slow_active: (v) => (v > 0 ? "warn" : ""),
};

const hosts = new Map(); // id -> latest host entry from the console
const params = new URLSearchParams(window.location.search);
let sortKey = params.get("sort") || "name";
let dirty = false;

function labelList(labels) {
  if (!labels || typeof labels !== "object" || Array.isArray(labels)) return [];
  return Object.keys(labels).sort().map((key) => {
    const value = labels[key];
    return key + "=" + (typeof value === "object" && value !== null ? JSON.stringify(value) : String(value));
  });
}

function hostUrl(name) {
  return table.dataset.hostUrl.replace("HOST-NAME", encodeURIComponent(name));
}

function buildRow(entry) {
  const tr = document.createElement("tr");
  tr.dataset.hostId = String(entry.id);
  for (const [field, kind] of COLUMNS) {
    const td = document.createElement("td");
    td.dataset.field = field;
    if (kind === "num") td.className = "num";
    tr.append(td);
  }
  const link = document.createElement("a");
  tr.querySelector('[data-field="name"]').append(link);
  const state = tr.querySelector('[data-field="online"]');
  const dot = document.createElement("span");
  dot.className = "dot";
  const text = document.createElement("span");
  text.className = "state";
  const skew = document.createElement("span");
  skew.className = "skew";
  skew.hidden = true;
  state.append(dot, text, skew);
  return tr;
}

function rowFor(entry) {
  let tr = tbody.querySelector(`tr[data-host-id="${Number(entry.id)}"]`);
  if (!tr) {
    tr = buildRow(entry);
    tbody.append(tr);
  }
  return tr;
}

function setCell(tr, field, text, kind) {
  const td = tr.querySelector(`[data-field="${field}"]`);
  if (!td) return;
  if (td.textContent !== text) td.textContent = text;
  if (kind !== undefined) td.dataset.kind = kind;
}

function renderRow(tr, entry) {
  const m = entry.metrics || {};
  const agent = entry.agent || {};
  const name = String(entry.name);
  tr.dataset.name = name;
  tr.dataset.team = String(entry.team ?? "");
  const labels = labelList(entry.labels);
  tr.dataset.labels = labels.join(" ");

  const link = tr.querySelector('[data-field="name"] a');
  if (link.textContent !== name) {
    link.textContent = name;
    link.href = hostUrl(name);
  }
  setCell(tr, "team", tr.dataset.team);
  const labelCell = tr.querySelector('[data-field="labels"]');
  if (labelCell.dataset.value !== tr.dataset.labels) {
    labelCell.dataset.value = tr.dataset.labels;
    labelCell.replaceChildren(...labels.map((label) => {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = label;
      return chip;
    }));
  }
  const online = isOnline(entry);
  tr.dataset.live = String(online);
  const state = fmt.hostState(entry, serverNow(), onlineWithin());
  // A row the console could not build whole: the host is there, and says why its numbers are not.
  const error = typeof entry.error === "string" ? entry.error : "";
  tr.querySelector(".dot").dataset.state = error ? "error" : state.kind;
  const stateText = error ? state.text + " · console error" : state.text;
  if (tr.querySelector(".state").textContent !== stateText) tr.querySelector(".state").textContent = stateText;
  tr.querySelector('[data-field="online"]').title = error || state.title;
  tr.classList.toggle("offline", !online);
  tr.classList.toggle("stalled", state.kind === "stalled");
  renderClock(tr, entry.clock);

  // An offline host's last figures are not its present: they show as no data.
  for (const name of FLEET) {
    const value = online || name === "restarts" ? m[name] : null;
    setCell(tr, name, formatted(name, value), markOf(name, value));
  }
  // Every kind of loss in one number (loss.js); the tooltip says each kind, why and the fix.
  const lost = loss.breakdown(agent);
  setCell(tr, "lost", fmt.count(lost.total), lost.total > 0 ? "bad" : "");
  tr.querySelector('[data-field="lost"]').title = loss.summaryText(lost, { causes: true })
    + `\n(received ${fmt.count(agent.received)} · spooled ${fmt.count(agent.spooled)})`;
  renderAge(tr, entry);
}

function markOf(name, value) {
  if (typeof value !== "number") return MARKS[name] ? "" : undefined;
  return MARKS[name] ? MARKS[name](value) : undefined;
}

/** Online now, on the console's clock: what the row's last message said, aged. */
function isOnline(entry) {
  return fmt.isOnline(entry, serverNow(), onlineWithin());
}

/** The agent's clock under the state, in words, when it is off past the console's threshold. */
function renderClock(tr, clock) {
  const el = tr.querySelector(".skew");
  if (!el) return;
  const shown = Boolean(clock && typeof clock === "object" && clock.shown);
  el.hidden = !shown;
  const correction = shown ? String(clock.correction || "") : "";
  const text = shown ? String(clock.text || "") + (correction ? " · corrected" : "") : "";
  if (el.textContent !== text) el.textContent = text;
  el.title = correction ? correction + ". Fix the agent host's clock (NTP)." : "";
}

function renderAge(tr, entry) {
  let text;
  let kind = "";
  if (typeof entry.last_seen !== "number") {
    text = "never";
  } else {
    const age = serverNow() - entry.last_seen;
    text = isOnline(entry) ? fmt.age(age) + " ago" : "offline, " + fmt.age(age) + " ago";
    kind = age < 5 ? "" : age < 30 ? "warn" : "bad";
  }
  setCell(tr, "age", text, kind);
}

// -- sort and filter -------------------------------------------------------------

function sortValue(entry, key) {
  if (key === "name" || key === "team") return String(entry[key] ?? "").toLowerCase();
  if (key === "online") return isOnline(entry) ? 1 : 0;
  if (key === "lost") return entry.agent ? loss.breakdown(entry.agent).total : null;
  if (key === "age") return typeof entry.last_seen === "number" ? -entry.last_seen : null;
  const value = entry.metrics ? entry.metrics[key] : null;
  return typeof value === "number" ? value : null;
}

function compare(a, b, key, desc) {
  const va = sortValue(a, key);
  const vb = sortValue(b, key);
  if (va === vb) return String(a.name).localeCompare(String(b.name));
  if (va === null) return 1; // no data sorts last in both directions
  if (vb === null) return -1;
  const order = va < vb ? -1 : 1;
  return desc ? -order : order;
}

function applySort() {
  const desc = sortKey.startsWith("-");
  const key = desc ? sortKey.slice(1) : sortKey;
  const rows = Array.from(tbody.rows);
  const entryOf = (tr) => hosts.get(Number(tr.dataset.hostId)) || { name: tr.dataset.name, team: tr.dataset.team };
  const sorted = rows.slice().sort((a, b) => compare(entryOf(a), entryOf(b), key, desc));
  if (sorted.some((tr, i) => tr !== rows[i])) tbody.append(...sorted);
  for (const button of table.querySelectorAll("th button[data-sort]")) {
    const th = button.parentElement;
    th.setAttribute("aria-sort", button.dataset.sort === key ? (desc ? "descending" : "ascending") : "none");
  }
}

function applyFilter() {
  const terms = filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
  let visible = 0;
  for (const tr of tbody.rows) {
    // A term matches a name, team or label anywhere, or one field as "team=payments",
    // "name=web-0", "env=prod" (labels are key=value already).
    const { name, team, labels } = tr.dataset;
    const haystack = [name, "name=" + name, team, "team=" + team, labels].join(" ").toLowerCase();
    const match = terms.every((term) => haystack.includes(term));
    tr.hidden = !match;
    if (match) visible += 1;
  }
  const total = tbody.rows.length;
  shown.textContent = terms.length ? `${visible} of ${total} shown` : "";
  empty.hidden = total > 0;
}

function saveState() {
  const next = new URLSearchParams(window.location.search);
  const q = filterInput.value.trim();
  if (q) next.set("q", q); else next.delete("q");
  if (sortKey !== "name") next.set("sort", sortKey); else next.delete("sort");
  const query = next.toString();
  window.history.replaceState(null, "", query ? "?" + query : window.location.pathname);
}

// -- totals and live data -----------------------------------------------------------

function renderTotals() {
  let online = 0;
  let stalled = 0;
  let throughput = 0;
  let errors = 0;
  let newest = null;
  for (const entry of hosts.values()) {
    const m = entry.metrics || {};
    if (!isOnline(entry)) continue;
    online += 1;
    if (entry.state === "not decoding") stalled += 1;
    if (typeof m.throughput === "number") throughput += m.throughput;
    if (typeof m.status_5xx_rate === "number") errors += m.status_5xx_rate;
  }
  for (const entry of hosts.values()) {
    if (typeof entry.last_seen === "number" && (newest === null || entry.last_seen > newest)) newest = entry.last_seen;
  }
  const n = hosts.size;
  setTotals(`${n} host${n === 1 ? "" : "s"} · ${online} online`
    + (stalled ? ` · ${stalled} agent${stalled === 1 ? "" : "s"} not decoding` : "")
    + ` · ${fmt.rate(throughput)} req/s · ${fmt.rate(errors)} 5xx/s`);
  setLoss(loss.sumCounters(Array.from(hosts.values(), (entry) => entry.agent)),
    { scope: `the ${n} host${n === 1 ? "" : "s"} you can see` });
  if (newest !== null) setDataTime(newest);
}

function render() {
  dirty = false;
  for (const entry of hosts.values()) renderRow(rowFor(entry), entry);
  renderTotals();
  applySort();
  applyFilter();
}

function scheduleRender() {
  // requestAnimationFrame does not run in a background tab: updates pile up
  // in `hosts` and are drawn once when the tab is shown again.
  if (!dirty) {
    dirty = true;
    window.requestAnimationFrame(render);
  }
}

function accept(list) {
  for (const entry of Array.isArray(list) ? list : []) {
    if (entry && Number.isInteger(entry.id)) hosts.set(entry.id, entry);
  }
}

startLive({
  "fleet.snapshot": (message) => {
    hosts.clear();
    accept(message.hosts);
    // A host that is no longer in the snapshot was removed or moved out of our teams.
    for (const tr of Array.from(tbody.rows)) {
      if (!hosts.has(Number(tr.dataset.hostId))) tr.remove();
    }
    scheduleRender();
  },
  "fleet.update": (message) => {
    accept(message.hosts);
    scheduleRender();
  },
}).subscribe({ scope: "fleet" });

everySecond(() => {
  if (document.hidden) return;
  let changed = false;
  for (const tr of tbody.rows) {
    const entry = hosts.get(Number(tr.dataset.hostId));
    if (!entry) continue;
    // A host whose agent stopped sends no more updates: its row goes offline here.
    if (tr.dataset.live !== String(isOnline(entry))) {
      renderRow(tr, entry);
      changed = true;
    } else {
      renderAge(tr, entry);
    }
  }
  if (changed) {
    renderTotals();
    applySort();
  }
});

filterInput.addEventListener("input", () => {
  applyFilter();
  saveState();
});
for (const button of table.querySelectorAll("th button[data-sort]")) {
  // A metric column's header says what the metric is (the metric table's description).
  if (FLEET.includes(button.dataset.sort)) button.title = metric(button.dataset.sort).description;
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    // First click: names ascending, numbers descending (the worst first).
    const textual = key === "name" || key === "team";
    if (sortKey === key) sortKey = "-" + key;
    else if (sortKey === "-" + key) sortKey = key;
    else sortKey = textual ? key : "-" + key;
    applySort();
    saveState();
  });
}
applySort();
applyFilter();
