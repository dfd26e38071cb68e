// Host page shell: the top bar's view state (tab, group, window and each
// tab's own options, all in the URL), one live subscription, and the tab
// modules in ./tabs/ that draw. Only the visible tab draws; a tab switch
// subscribes again, so the console sends only what that tab shows
// (docs/live-protocol.md, "Tabs").
//
// A tab module exports `createTab(ctx)` returning any of:
//   hostSnapshot(msg)  host.snapshot: groups, processes, totals (+ series on Overview)
//   hostFrame(msg)     host.frame, every second
//   snapshot(msg)      tab.snapshot for this tab
//   frame(msg)         tab.frame for this tab, every second while it has news
//   draw()             paint; called only while the tab is visible
//   reset()            drop held data: a new subscription is on its way
//   options()          extra subscribe options, e.g. from ctx.param()
//   tick()             once a second (time moves even without data)
//   resize(), theme()  layout or colours changed
// `ctx` is described at `makeContext` below.
//
// Which tabs there are, their labels, shortcuts, own URL parameters and
// option bounds, and the view-state bounds, come from the server's tab
// registry (console/live/tabs/registry.py) in the page's `host-config`
// JSON. The one table here is FACTORIES, key -> imported tab module: a
// module can only import what its source names. Checked against the
// registry by tests/console/dashboard/test_tab_registry.py.

import * as fmt from "./format.js";
import { clearNotice, everySecond, onlineWithin, serverNow, setDataTime, setLoss, startLive } from "./live.js";
import { createTab as capacityTab } from "./tabs/capacity.js";
import { createTab as gcTab } from "./tabs/gc.js";
import { createTab as overviewTab } from "./tabs/overview.js";
import { createTab as processesTab } from "./tabs/processes.js";
import { createTab as slowTab } from "./tabs/slow.js";

const FACTORIES = { overview: overviewTab, capacity: capacityTab, processes: processesTab, gc: gcTab, slow: slowTab };
const CONFIG = JSON.parse(document.getElementById("host-config").textContent);
const SPECS = CONFIG.tabs; // in nav order
const BOUNDS = CONFIG.bounds;
const SHELL_PARAMS = new Set(["tab", "group", "window"]);

const main = document.getElementById("main");
const hostId = Number(main.dataset.hostId);
const groupSelect = document.getElementById("group");
const windowSelect = document.getElementById("window");
const tabLinks = Array.from(document.querySelectorAll('.tabs [role="tab"]'));

const state = {
  tab: main.dataset.tab,
  group: main.dataset.group,
  window: Number(main.dataset.window),
  groups: ["*"],
  processes: [],
};

// -- drawing only what is on screen ----------------------------------------------------

let pending = false;
let lastDraw = 0;
// A second arrives several times (partial, then complete): drawing more often
// than this shows nothing new to the eye and costs the page's CPU.
const MIN_DRAW_INTERVAL = 100; // ms

function draw() {
  pending = false;
  lastDraw = performance.now();
  if (document.hidden) return; // drawn again on visibilitychange
  const tab = tabs[state.tab];
  if (tab && tab.draw) tab.draw();
}

function scheduleDraw() {
  if (pending) return;
  pending = true;
  const wait = lastDraw + MIN_DRAW_INTERVAL - performance.now();
  if (wait > 0) window.setTimeout(() => window.requestAnimationFrame(draw), wait);
  else window.requestAnimationFrame(draw);
}

// -- the URL ------------------------------------------------------------------------------

function query(tab = state.tab) {
  const q = new URLSearchParams(window.location.search);
  if (tab !== state.tab) {
    // A tab's own options stay with it: links to other tabs drop them.
    for (const key of Array.from(q.keys())) if (!SHELL_PARAMS.has(key)) q.delete(key);
  }
  q.set("tab", tab);
  q.set("group", state.group);
  q.set("window", String(state.window));
  return "?" + q.toString();
}

/**
 * What a tab gets to work with. `state` is read-only for tabs; they change
 * the shared view with `navigate` and keep their own options in the URL
 * with `param` / `setParam`.
 */
function makeContext(spec) {
  const key = spec.key;
  return {
    key,
    spec, // the registry's entry: label, shortcut, params, options with their default and choices
    panel: document.getElementById("panel-" + key),
    hostId,
    state,
    fmt,
    serverNow,
    setDataTime,
    scheduleDraw,
    visible: () => state.tab === key && !document.hidden,
    param: (name) => new URLSearchParams(window.location.search).get(name),
    /** Keep a tab option in the URL; `resubscribe` when the console must send other data. */
    setParam(name, value, { resubscribe = false } = {}) {
      const q = new URLSearchParams(window.location.search);
      if (value === null || value === undefined || value === "") q.delete(name);
      else q.set(name, String(value));
      window.history.replaceState(null, "", "?" + q.toString());
      refreshLinks();
      if (resubscribe) subscribe();
    },
    /** Change tab, group or window (and tab options), as a new history entry. */
    navigate(changes, params = {}) {
      const q = new URLSearchParams(query(changes.tab ?? state.tab));
      for (const [name, value] of Object.entries(params)) {
        if (value === null || value === undefined || value === "") q.delete(name);
        else q.set(name, String(value));
      }
      window.history.pushState(null, "", "?" + q.toString());
      changeView(changes, false);
    },
    /** Open another tab's drill-down (e.g. Capacity → the Slow tab's request panel). */
    tab: (name) => tabs[name],
  };
}

const tabs = {};
for (const spec of SPECS) {
  const key = spec.key;
  const factory = FACTORIES[key];
  if (typeof factory !== "function") {
    console.error("tab " + key + " is registered but host.js has no factory for it");
    tabs[key] = {};
    continue;
  }
  try {
    tabs[key] = factory(makeContext(spec));
  } catch (err) {
    console.error("tab " + key + " failed to start", err);
    tabs[key] = {};
  }
}

function each(method, ...args) {
  for (const [key, tab] of Object.entries(tabs)) {
    if (typeof tab[method] !== "function") continue;
    try {
      tab[method](...args);
    } catch (err) {
      console.error("tab " + key + ": " + method + " failed", err);
    }
  }
}

function call(key, method, ...args) {
  const tab = tabs[key];
  if (!tab || typeof tab[method] !== "function") return undefined;
  try {
    return tab[method](...args);
  } catch (err) {
    console.error("tab " + key + ": " + method + " failed", err);
    return undefined;
  }
}

function refreshLinks() {
  for (const link of tabLinks) link.href = query(link.dataset.tab);
}

function showTab(tab) {
  state.tab = tab;
  for (const link of tabLinks) {
    const selected = link.dataset.tab === tab;
    link.setAttribute("aria-selected", selected ? "true" : "false");
    link.tabIndex = selected ? 0 : -1;
    const panel = document.getElementById(link.getAttribute("aria-controls"));
    if (panel) panel.hidden = !selected;
  }
  refreshLinks();
  document.querySelector('#view-form input[name="tab"]').value = tab;
  call(tab, "resize");
  scheduleDraw();
}

function ensureGroupOption(group) {
  if (!Array.from(groupSelect.options).some((o) => o.value === group)) {
    groupSelect.append(new Option(fmt.groupName(group), group));
  }
  groupSelect.value = group;
}

const groupProblem = document.getElementById("group-problem");

/** A group the URL names that the host does not have is said, not shown as empty charts. */
function renderGroupProblem(known) {
  if (!groupProblem) return;
  const missing = !known.includes(state.group);
  groupProblem.hidden = !missing;
  if (!missing) return;
  const others = known.filter((g) => g !== "*").map(fmt.groupName);
  groupProblem.replaceChildren(`This host has no process group “${fmt.groupName(state.group)}” in this window`
    + (others.length ? ` (its groups: ${others.join(", ")}).` : " (it has reported no groups)."), " ");
  const all = document.createElement("button");
  all.type = "button";
  all.textContent = "Show all groups";
  all.addEventListener("click", () => changeView({ group: "*" }, true));
  groupProblem.append(all);
}

function setGroups(groups) {
  const names = Array.isArray(groups) ? groups.filter((g) => typeof g === "string") : [];
  if (!names.includes("*")) names.unshift("*");
  renderGroupProblem(names);
  if (!names.includes(state.group)) names.push(state.group);
  state.groups = names;
  groupSelect.replaceChildren(...names.map((g) => new Option(fmt.groupName(g), g)));
  groupSelect.value = state.group;
}

function pointsWanted() {
  const panel = document.getElementById("panel-" + state.tab);
  const width = panel ? panel.clientWidth : 0;
  return Math.max(BOUNDS.points.page_min, Math.min(BOUNDS.points.max, Math.round(width || main.clientWidth || 600)));
}

function subscribe() {
  each("reset");
  const options = call(state.tab, "options") || {};
  live.subscribe({
    scope: "host", host: hostId, tab: state.tab, group: state.group, window: state.window,
    points: pointsWanted(), options,
  });
}

function changeView(changes, push) {
  const before = { tab: state.tab, group: state.group, window: state.window };
  Object.assign(state, changes);
  ensureGroupOption(state.group);
  windowSelect.value = String(state.window);
  if (push) window.history.pushState(null, "", query());
  showTab(state.tab);
  if (before.tab !== state.tab || before.group !== state.group || before.window !== state.window) {
    clearNotice();
    subscribe();
  }
}

for (const link of tabLinks) {
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (link.dataset.tab !== state.tab) {
      window.history.pushState(null, "", query(link.dataset.tab));
      changeView({ tab: link.dataset.tab }, false);
    }
  });
}
groupSelect.addEventListener("change", () => changeView({ group: groupSelect.value }, true));
const hostSwitch = document.getElementById("host-switch");
if (hostSwitch) {
  hostSwitch.addEventListener("change", () => {
    // The same view of another host; the host name may hold anything, so it is URL-encoded.
    const url = hostSwitch.dataset.url.replace("HOST-NAME", encodeURIComponent(hostSwitch.value));
    window.location.assign(url + query());
  });
}

// -- the agent's state and the process count, in the toolbar -------------------------------

const hostState = document.getElementById("host-state");
const processNote = document.getElementById("host-processes");

// The newest agent_state: re-read every second, since a host whose agent died sends no more.
let lastAgentState = null;
// Below this age (s) "online" says no more: the agent reports every second or two.
const SEEN_SAID_AFTER = 5;

/**
 * "online", "offline" or "agent not decoding: ... received, ... decoded", as of now on the
 * console's clock, with when the agent was last heard from (and the agent's version).
 */
function renderHostState(agentState) {
  if (agentState && typeof agentState === "object") lastAgentState = agentState;
  if (!hostState || !lastAgentState) return;
  const now = serverNow();
  const s = fmt.hostState(lastAgentState, now, onlineWithin());
  const seen = lastAgentState.last_seen;
  const age = typeof seen === "number" ? now - seen : null;
  const version = hostState.dataset.version;
  const text = s.text + (age === null ? " · never seen" : age >= SEEN_SAID_AFTER || s.kind === "offline"
    ? ` · last seen ${fmt.age(age)} ago` : "") + (version ? " · " + version : "");
  if (hostState.textContent !== text) hostState.textContent = text;
  hostState.dataset.kind = s.kind;
  hostState.title = s.title;
}

/** A host with more processes than one message lists (a flood of fake pids) says how many more. */
function renderProcessCount(message) {
  if (!processNote || typeof message.processes_total !== "number") return;
  const more = message.processes_total - state.processes.length;
  processNote.hidden = more <= 0;
  processNote.textContent = more > 0
    ? `${fmt.count(state.processes.length)} processes listed, and ${fmt.count(more)} more processes` : "";
}

/** The setup note (no agent, no datagrams) goes once data flows. */
function dataArrived() {
  const note = document.getElementById("host-empty");
  if (note) note.remove();
}
windowSelect.addEventListener("change", () => changeView({ window: Number(windowSelect.value) }, true));
window.addEventListener("popstate", () => {
  const q = new URLSearchParams(window.location.search);
  const windowSeconds = Number(q.get("window"));
  changeView({
    tab: tabLinks.some((l) => l.dataset.tab === q.get("tab")) ? q.get("tab") : CONFIG.default_tab,
    group: q.get("group") ?? "*",
    window: Number.isInteger(windowSeconds) && windowSeconds >= BOUNDS.window.min ? windowSeconds : BOUNDS.window.default,
  }, false);
  subscribe(); // tab options may have changed too
});

// Keyboard: each tab's shortcut (1-5) shows it, g / w focus the group and window pickers, ? lists the keys.
const KEYS = Object.fromEntries(SPECS.map((spec) => [spec.shortcut, spec.key]));
document.addEventListener("keydown", (event) => {
  if (event.metaKey || event.ctrlKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))) return;
  if (document.querySelector("dialog[open]")) return;
  if (KEYS[event.key] && KEYS[event.key] !== state.tab) {
    event.preventDefault();
    window.history.pushState(null, "", query(KEYS[event.key]));
    changeView({ tab: KEYS[event.key] }, false);
  } else if (event.key === "g") {
    event.preventDefault();
    groupSelect.focus();
  } else if (event.key === "w") {
    event.preventDefault();
    windowSelect.focus();
  } else if (event.key === "?") {
    const help = document.getElementById("keys-help");
    if (help && typeof help.showModal === "function") help.showModal();
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) scheduleDraw();
});
document.addEventListener("themechange", () => {
  call(state.tab, "theme");
  scheduleDraw();
  each("theme");
});
new ResizeObserver(() => {
  call(state.tab, "resize");
  scheduleDraw();
}).observe(main);

// -- live data --------------------------------------------------------------------------------

const live = startLive({
  "host.snapshot": (message) => {
    if (message.host !== hostId || message.group !== state.group) return; // answer to an older subscribe
    setGroups(message.groups);
    state.processes = Array.isArray(message.processes) ? message.processes : [];
    if (state.processes.length) dataArrived();
    renderHostState(message.agent_state);
    renderProcessCount(message);
    if (message.agent) setLoss(message.agent, { reasons: message.bad_reasons || [], charts: true });
    each("hostSnapshot", message);
    scheduleDraw();
  },
  "host.frame": (message) => {
    if (message.host !== hostId || typeof message.t !== "number") return;
    const groups = message.groups && typeof message.groups === "object" ? message.groups : {};
    if (groups[state.group]) setDataTime(message.t);
    if (groups["*"] && groups["*"].ticks > 0) dataArrived();
    if (Array.isArray(message.processes)) {
      state.processes = message.processes;
      renderProcessCount(message);
    }
    if (message.agent) setLoss(message.agent, { charts: true }); // every kind, with its cause and fix
    renderHostState(message.agent_state);
    each("hostFrame", message);
    if (state.tab === "overview" || Array.isArray(message.processes)) scheduleDraw();
  },
  "tab.snapshot": (message) => {
    if (message.host !== hostId || message.tab !== state.tab || message.group !== state.group) return;
    call(message.tab, "snapshot", message);
    scheduleDraw();
  },
  "tab.frame": (message) => {
    if (message.host !== hostId || !tabs[message.tab]) return;
    call(message.tab, "frame", message);
    if (message.tab === state.tab) scheduleDraw();
  },
});

// Time moves without frames too (agent gone, connection lost): let the visible tab slide its
// window, and the host's state age.
everySecond(() => {
  renderHostState(null);
  call(state.tab, "tick");
});

showTab(state.tab);
ensureGroupOption(state.group);
subscribe();
