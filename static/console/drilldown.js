// The slow-request drill-down: one modal <dialog> shared by the Slow requests
// and Capacity tabs. It shows one record in the shape of
// `tabs.base.slow_record` (key, state, pid, incarnation, group, stamp,
// start, duration, thread, method, url, status, log_id, fields); its
// contents are built by ./drilldown_view.js.
//
//   openRequest(record, { note, threads, onClose, key })  show it (record null: only `note`)
//   updateRequest(record)   a newer record arrived: redraw if it is the open one
//   closeRequest()          close it (Escape, the button and a backdrop click do too)
//   openKey()               the key of the request shown or asked for, or null
//   pendingKey()            the key a link asks for that no tab has shown yet, or null
//
// The dialog has its own browser-history entry, `req=<key>` in the URL: opening
// pushes it, Back closes the dialog and leaves the page as it was, closing goes
// back to the URL without it, and a link or reload with `req` opens it again:
// the dialog waits with a note until a tab has the record (the Slow tab looks it
// up after its snapshot; the Capacity tab subscribes with pendingKey() as its `req`
// option, so its snapshot carries that record however many newer ones there are,
// and its records reach updateRequest).
//
// Nothing here may throw on odd input: a broken drill-down must never take the
// page's redraws with it.

import { details, header } from "./drilldown_view.js";
import * as fmt from "./format.js";
import { serverNow } from "./live.js";
import { el, num } from "./util.js";

// Seconds an active request's elapsed time may run on without a newer record (3 intervals + 1 s).
const MAX_GUESS = 4;
const PARAM = "req";
const MARK = "wfRequest"; // in history.state: the entry is the drill-down's
// Milliseconds a link's request may take to arrive (the tab's snapshot) before the dialog says it did not.
const WAIT_FOR_RECORD = 10_000;
const CACHED = 20; // requests remembered for Forward, newest kept

let dialog = null;
let current = null; // { key, record, note, threads, onClose, anchor }
let timer = null; // advances an active request's elapsed time between its records
let entry = null; // { key, base } while the history entry shown is the drill-down's
let leaving = null; // the drill-down's entry closeRequest is going back from
let deferred = null; // { key }: opened again before that Back landed
let pending = null; // the key of a link (or Forward) that no tab has answered yet
let pendingTimer = null;
const cache = new Map(); // key -> { record, threads }: what Forward shows again

// -- the URL ---------------------------------------------------------------------------------

/** The page's query without the drill-down's parameter, as a comparable string. */
function baseQuery(search = window.location.search) {
  const q = new URLSearchParams(search);
  q.delete(PARAM);
  q.sort();
  return q.toString();
}

function urlWith(key) {
  const q = new URLSearchParams(window.location.search);
  if (key === null || key === undefined) q.delete(PARAM);
  else q.set(PARAM, key);
  const search = q.toString();
  return window.location.pathname + (search ? "?" + search : "") + window.location.hash;
}

/** The drill-down's entry: pushed over the page's, or, already on one, replaced. */
function enter(key) {
  const state = { [MARK]: true, key, base: entry ? entry.base : baseQuery() };
  if (entry) window.history.replaceState(state, "", urlWith(key));
  else window.history.pushState(state, "", urlWith(key));
  entry = { key, base: state.base };
}

// -- the dialog --------------------------------------------------------------------------------

function ensureDialog() {
  if (dialog && dialog.isConnected) return dialog;
  dialog = el("dialog", "req-dialog");
  dialog.id = "request-drilldown";
  dialog.setAttribute("aria-labelledby", "request-drilldown-title");
  // A click on the backdrop lands on the <dialog> itself, outside its box.
  dialog.addEventListener("click", (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right &&
      event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) closeRequest();
  });
  // Escape fires "cancel"; close through our path so onClose runs once.
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    closeRequest();
  });
  document.body.append(dialog);
  return dialog;
}

function render() {
  const box = ensureDialog();
  const { record, note, threads } = current;
  const parts = [header(record, closeRequest)];
  if (note) parts.push(el("p", "req-note", String(note)));
  if (record) parts.push(details(record, threads));
  else if (!note) parts.push(el("p", "req-note", "No slow-request record to show."));
  box.replaceChildren(...parts);
}

/** Console time at which the record's duration was current: its stamp, unless the host's
 * clock is visibly off, then the time it reached us. */
function anchorOf(record) {
  const now = serverNow();
  const stamp = record ? num(record.stamp) : null;
  return stamp !== null && Math.abs(now - stamp) < 5 ? Math.min(stamp, now) : now;
}

function tickElapsed() {
  const record = current && current.record;
  if (!record || record.state !== "active" || !dialog || !dialog.open) return;
  const duration = num(record.duration);
  if (duration === null) return;
  // Past the silence after which the console calls a request expired, stop guessing.
  const value = fmt.duration(duration + Math.min(Math.max(0, serverNow() - current.anchor), MAX_GUESS));
  for (const node of dialog.querySelectorAll(".req-elapsed")) node.textContent = value;
}

function safeRender() {
  try {
    render();
  } catch (err) {
    // Never leave a half-built dialog that the page thinks is fine.
    console.error("request drill-down failed", err);
    dialog.replaceChildren(header(null, closeRequest), el("p", "req-note", "This record could not be shown."));
  }
}

/** Show what `current` holds, without touching the history. */
function show() {
  safeRender();
  if (!dialog.open) {
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
  }
  if (timer === null) timer = window.setInterval(tickElapsed, 250);
}

/** Close the dialog, without touching the history. */
function hide() {
  const was = current;
  current = null;
  clearPending();
  if (timer !== null) window.clearInterval(timer);
  timer = null;
  if (dialog && dialog.open) dialog.close();
  if (was && was.onClose) was.onClose();
}

function remember(key, record, threads) {
  if (key === null || !record) return;
  cache.delete(key);
  cache.set(key, { record, threads });
  while (cache.size > CACHED) cache.delete(cache.keys().next().value);
}

// -- waiting for a link's request ---------------------------------------------------------------

function clearPending() {
  pending = null;
  if (pendingTimer !== null) window.clearTimeout(pendingTimer);
  pendingTimer = null;
}

/** Open the dialog for `key` before any tab has its record: from a link, a reload or Forward. */
function awaitRecord(key) {
  const known = cache.get(key);
  const previous = current;
  current = { key, record: known ? known.record : null, threads: known ? known.threads : null, onClose: null,
    note: known ? null : "Looking for this request in the host's data…", anchor: anchorOf(known ? known.record : null) };
  if (previous && previous.onClose) previous.onClose();
  clearPending();
  pending = key;
  pendingTimer = window.setTimeout(() => {
    pendingTimer = null;
    if (pending !== key || !current || current.record) return;
    current.note = "No slow-request record with this key arrived: it may have aged out of the window " +
      "shown, belong to another group, or come from a link to another host.";
    safeRender();
  }, WAIT_FOR_RECORD);
  show();
}

// -- the module's interface -------------------------------------------------------------------------

/** Show `record` (or, when null, only `note`) in the modal, in its own history entry. */
export function openRequest(record, { note = null, threads = null, onClose = null, key = null } = {}) {
  const valid = record && typeof record === "object" ? record : null;
  const shownKey = valid && typeof valid.key === "string" ? valid.key : (typeof key === "string" ? key : null);
  const previous = current;
  current = { key: shownKey, record: valid, note, threads, onClose, anchor: anchorOf(valid) };
  if (previous && previous.onClose && previous.onClose !== onClose) previous.onClose();
  clearPending();
  remember(shownKey, valid, threads);
  if (leaving) deferred = { key: shownKey }; // a close's Back is on its way: push once it has landed
  else safeEnter(shownKey);
  show();
}

/** A newer record: redraw when it is the one shown or asked for (same key). */
export function updateRequest(record) {
  if (!current || !dialog || !dialog.open || current.key === null) return;
  if (!record || typeof record !== "object" || record.key !== current.key) return;
  if (!current.record) current.note = null; // the note said it was awaited, or missing: here it is
  if (pending === record.key) clearPending();
  current.record = record;
  current.anchor = anchorOf(record);
  remember(current.key, record, current.threads);
  safeRender();
  tickElapsed();
}

export function openKey() {
  return current && dialog && dialog.open ? current.key : null;
}

export function pendingKey() {
  return pending;
}

export function closeRequest() {
  const was = entry;
  hide();
  entry = null;
  if (deferred) deferred = null; // opened and closed while the previous close went back: nothing to push
  else if (was) {
    leaving = was;
    window.history.back(); // to the page's own entry; popstate below finishes
  }
}

// -- the browser history ------------------------------------------------------------------------------

function safeEnter(key) {
  try {
    enter(key);
  } catch (err) { // a history API that refuses (too many calls): the dialog still works
    console.error("request drill-down: history", err);
  }
}

// Registered when this module loads, before host.js's own listener (host.js imports
// the tabs, which import this): Back from the drill-down's entry to the same page is
// the dialog's business only, so the page keeps its data instead of subscribing again.
window.addEventListener("popstate", (event) => {
  const own = leaving; // this is closeRequest's Back landing
  const from = entry || own;
  leaving = null;
  const to = event.state && event.state[MARK] ? event.state : null;
  const samePage = from !== null && baseQuery() === from.base;
  if (to) { // Forward onto a drill-down entry: show it again
    entry = { key: to.key, base: to.base };
    deferred = null;
    if (typeof to.key === "string") awaitRecord(to.key);
  } else {
    entry = null;
    if (own && deferred) { // reopened meanwhile: its entry goes on top of the page's now
      const { key } = deferred;
      deferred = null;
      if (current) safeEnter(key);
    } else if (current) hide(); // Back while the dialog is open closes it
  }
  if (samePage) event.stopImmediatePropagation();
});

// A link or a reload with `req`: Back from it should close the dialog, not leave
// the page, so the page's own entry goes under the drill-down's.
const linked = new URLSearchParams(window.location.search).get(PARAM);
if (linked) {
  try {
    window.history.replaceState(null, "", urlWith(null));
  } catch (err) {
    console.error("request drill-down: history", err);
  }
  safeEnter(linked);
  awaitRecord(linked);
}
