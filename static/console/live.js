// The one live connection of a page (docs/live-protocol.md) and the top bar
// it feeds: connection pill, data age, the agent's clock, store status (and
// what its Redis keeps), loss counter with its breakdown (loss.js), notices.
//
// Every string in a message may come from an agent, so it is only ever put
// into the page with textContent / new Option(): never innerHTML.

import * as fmt from "./format.js";
import * as loss from "./loss.js";

const BASE_DELAY = 500; // ms before the first retry
const MAX_DELAY = 30000; // cap of the exponential backoff
const STABLE_AFTER = 10000; // a connection that lived this long resets the backoff

const $ = (id) => document.getElementById(id);

// -- the console's clock -----------------------------------------------------
// Ages are measured on the console's clock: every message with `now` tells
// us how far the browser's clock is off, so a skewed laptop still shows the
// right age.
let clockOffset = 0;

export function serverNow() {
  return Date.now() / 1000 + clockOffset;
}

// Seconds within which a host's agent was heard from for the host to be online (`hello`):
// a page ages what its last message said, since a dead agent's host sends no more.
let onlineFor = 15;

export function onlineWithin() {
  return onlineFor;
}

function syncClock(now) {
  if (typeof now === "number" && Number.isFinite(now)) clockOffset = now - Date.now() / 1000;
}

// -- top bar -------------------------------------------------------------------
let newestData = null;

/** Record the console time of the newest data the page shows. */
export function setDataTime(t) {
  if (typeof t !== "number" || !Number.isFinite(t) || (newestData !== null && t <= newestData)) return;
  const first = newestData === null;
  newestData = t;
  if (first) renderAge(); // not "no data yet" beside charts that show data, until the next second
}

let lossReasons = [];
let lossShown = "";

/**
 * The loss counter: every kind of loss in `agent` (a host's counters, or the sum over
 * hosts) added up, and its popover listing each kind with cause and fix. `reasons`
 * (host snapshots) says why the console refused samples; frames keep the last ones.
 */
export function setLoss(agent, { scope = "this host", reasons = null, charts = false } = {}) {
  const button = $("loss");
  if (!button || !agent || typeof agent !== "object") return;
  if (Array.isArray(reasons)) lossReasons = reasons;
  const result = loss.breakdown(agent);
  const text = loss.label(result.total);
  if (button.textContent !== text) button.textContent = text;
  button.dataset.lost = String(result.total);
  button.classList.toggle("bad", result.total > 0);
  button.title = loss.summaryText(result) + (result.kinds.length ? "\nClick for causes and fixes." : "");
  // The likely cause of sequence loss, said beside the counter with its one-line fix.
  const hint = $("loss-hint");
  if (hint) {
    const lost = result.kinds.some((k) => k.key === "lost") && scope === "this host";
    const why = lost ? loss.shortQueueHint(agent) : "";
    if (hint.textContent !== why) hint.textContent = why;
    hint.title = lost ? loss.shortQueue(agent) : "";
    hint.hidden = !why;
  }
  const detail = $("loss-detail");
  // Frames come every second with the same totals: rebuild the popover only when they change.
  const shown = JSON.stringify([scope, result.kinds.map((k) => [k.key, k.count, k.detail]), lossReasons]);
  if (detail && shown !== lossShown) {
    lossShown = shown;
    loss.renderDetail(detail, result, { scope, reasons: lossReasons, charts });
  }
}

loss.bindPopover($("loss"), $("loss-detail"));

export function setTotals(text) {
  const el = $("fleet-totals");
  if (el) el.textContent = text;
}

/** Show a message under the top bar; `action` adds one button. */
export function showNotice(text, { kind = "info", action = null } = {}) {
  const el = $("notice");
  if (!el) return;
  el.replaceChildren();
  el.dataset.kind = kind;
  el.append(document.createTextNode(text));
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = action.label;
    button.addEventListener("click", action.onClick);
    el.append(" ", button);
  }
  el.hidden = false;
}

export function clearNotice() {
  const el = $("notice");
  if (el) {
    el.hidden = true;
    el.replaceChildren();
  }
}

let storeInfo = { single: false, ok: true, reason: "", durability: null, dataSince: null, lostAt: null };

/** What `hello` and `status` say of the store's Redis; a message without it keeps what was said. */
function takeDurability(message) {
  if (message.durability && typeof message.durability === "object") {
    const d = message.durability;
    storeInfo.durability = { state: String(d.state || ""), text: String(d.text || ""), fix: String(d.fix || "") };
  }
  if ("data_since" in message) storeInfo.dataSince = typeof message.data_since === "number" ? message.data_since : null;
  if ("history_lost_at" in message) {
    storeInfo.lostAt = typeof message.history_lost_at === "number" ? message.history_lost_at : null;
  }
}

function storeWords() {
  if (!storeInfo.ok) {
    return [["store unavailable", storeInfo.reason || "The window store does not answer.", "bad"]];
  }
  const out = [];
  if (storeInfo.single) {
    out.push(["single process: in-memory store", "REDIS_URL is unset: data lives in this console process only "
      + "and is lost on restart; run one console process only.", "warn"]);
  }
  const d = storeInfo.durability;
  if (d && d.state === "at risk") {
    out.push(["Redis would lose acknowledged data", d.text + ". Fix: " + d.fix + " (README: Redis configuration).",
      "warn"]);
  } else if (d && d.state === "unknown") {
    out.push(["Redis durability unknown", d.text + ". Check: " + d.fix + ".", "warn"]);
  }
  if (storeInfo.lostAt !== null) {
    const since = storeInfo.dataSince ?? storeInfo.lostAt;
    const when = serverNow() - since < 43200 ? fmt.clock(since) : new Date(since * 1000).toLocaleString();
    out.push(["history from " + when, "Redis lost its data (restarted without it, or flushed): the console has data "
      + "again from " + new Date(since * 1000).toLocaleString() + "; nothing before then can be shown.", "warn"]);
  }
  return out;
}

function renderStore() {
  const el = $("store-status");
  if (!el) return;
  const words = storeWords();
  el.hidden = words.length === 0;
  el.textContent = words.map((w) => w[0]).join(" · ");
  el.title = words.map((w) => w[1]).join("\n");
  el.dataset.kind = words.some((w) => w[2] === "bad") ? "bad" : words.length ? "warn" : "";
}

// -- the agent's clock (host pages) ---------------------------------------------------
// Host messages carry `agent_state.clock`: how far the agent's clock is from the
// console's, and the correction made to its samples. Said past the console's threshold.
function renderClock(clock) {
  const el = $("clock-skew");
  if (!el) return;
  const shown = Boolean(clock && typeof clock === "object" && clock.shown);
  el.hidden = !shown;
  if (!shown) return;
  const correction = String(clock.correction || "");
  const text = String(clock.text || "") + (correction ? " · times corrected" : "");
  if (el.textContent !== text) el.textContent = text;
  el.dataset.kind = correction ? "corrected" : "warn";
  el.title = "The console measures the agent's clock at each heartbeat"
    + (correction ? ": " + correction + ", so charts, ages and process states are on the console's clock" : "")
    + ". Fix the agent host's clock (NTP).";
}

function renderAge() {
  const el = $("data-age");
  if (!el) return;
  if (newestData === null) {
    el.textContent = "no data yet";
    el.dataset.kind = "";
    return;
  }
  const age = serverNow() - newestData;
  if (age < -1) {
    // Never clamped to "0.0 s old": data from the future is an agent clock ahead of ours.
    el.textContent = "data stamped " + fmt.age(-age) + " ahead of the console's clock";
    el.dataset.kind = "skew";
    return;
  }
  el.textContent = "data " + fmt.age(Math.max(age, 0)) + " old";
  el.dataset.kind = age < 5 ? "fresh" : age < 30 ? "stale" : "old";
}

// -- the connection ------------------------------------------------------------------

class LiveConnection {
  constructor(path, handlers) {
    const url = new URL(path, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.url = url.href;
    this.handlers = handlers;
    this.ws = null;
    this.subscription = null;
    this.attempt = 0;
    this.retryAt = null;
    this.timer = null;
    this.stopped = false;
    this.state = "connecting";
    this.detail = "";
    window.addEventListener("online", () => this.retryNow());
  }

  /** Ask for a scope; replaces the previous subscription and survives reconnects. */
  subscribe(message) {
    this.subscription = { type: "subscribe", ...message };
    this.send(this.subscription);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    this.timer = null;
    this.retryAt = null;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.setState("error", String(err));
      return;
    }
    this.ws = ws;
    let openedAt = null;
    ws.addEventListener("open", () => {
      openedAt = Date.now();
      this.setState("connected");
      if (this.subscription) this.send(this.subscription);
    });
    ws.addEventListener("message", (event) => this.dispatch(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (openedAt !== null && Date.now() - openedAt > STABLE_AFTER) this.attempt = 0;
      if (event.code >= 4400 && event.code < 4500) {
        // The console refused us for a reason retrying will not fix.
        this.stop("error", event.reason || "refused by the console (" + event.code + ")");
        return;
      }
      if (openedAt === null) this.checkSession();
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    // Exponential backoff with jitter, so a console restart is not met by
    // every wall screen at the same instant.
    const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.timer = window.setTimeout(() => this.connect(), delay);
    this.setState("reconnecting");
  }

  retryNow() {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.connect();
    }
  }

  stop(state, detail) {
    this.stopped = true;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
    this.retryAt = null;
    if (this.ws) this.ws.close();
    this.setState(state, detail);
  }

  /** A refused handshake is what an expired session looks like: ask the page itself. */
  async checkSession() {
    try {
      const response = await fetch(window.location.href, {
        method: "HEAD", redirect: "manual", credentials: "same-origin", cache: "no-store",
      });
      if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
        this.stop("error", "signed out");
        showNotice("Your session has ended.", {
          kind: "bad", action: { label: "Log in again", onClick: () => window.location.reload() },
        });
      }
    } catch (err) {
      // Network down: keep retrying.
    }
  }

  dispatch(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      console.warn("live: ignoring a frame that is not JSON");
      return;
    }
    if (!message || typeof message.type !== "string") return;
    syncClock(message.now);
    switch (message.type) {
      case "hello":
        if (typeof message.online_within === "number" && message.online_within > 0) onlineFor = message.online_within;
        storeInfo = { ...storeInfo, single: Boolean(message.single_process), ok: true };
        takeDurability(message);
        renderStore();
        break;
      case "status":
        storeInfo = { ...storeInfo, ok: message.store_ok !== false, reason: String(message.reason || "") };
        takeDurability(message);
        renderStore();
        break;
      case "host.snapshot":
      case "host.frame":
        if (message.agent_state && typeof message.agent_state === "object" && "clock" in message.agent_state) {
          renderClock(message.agent_state.clock);
        }
        break;
      case "error":
        showNotice("Console: " + String(message.reason || "error"), { kind: "bad" });
        break;
      default:
        break;
    }
    const handler = this.handlers[message.type];
    if (handler) {
      // One bad message must not stop the page from taking the next one.
      try {
        handler(message);
      } catch (err) {
        console.error("live: handler for " + message.type + " failed", err);
      }
    }
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    renderPill(this);
  }
}

function renderPill(conn) {
  const el = $("conn");
  if (!el) return;
  el.dataset.state = conn.state;
  if (conn.state === "reconnecting" && conn.retryAt !== null) {
    const seconds = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
    el.textContent = "reconnecting in " + seconds + " s";
    el.title = "Attempt " + conn.attempt + "; waits grow up to " + MAX_DELAY / 1000 + " s. Click to retry now.";
  } else if (conn.state === "error") {
    el.textContent = "error: " + (conn.detail || "disconnected");
    el.title = "Reload the page to try again.";
  } else {
    el.textContent = conn.state === "connected" ? "connected" : "connecting…";
    el.title = "";
  }
}

const tickers = [];

/** Run `fn` once a second (ages, countdowns); cheap text updates only. */
export function everySecond(fn) {
  tickers.push(fn);
}

/**
 * Open the page's live connection. `handlers` maps message types
 * (`fleet.snapshot`, `host.frame`, ...) to functions; `hello`, `status` and
 * `error` also update the top bar before reaching them.
 */
export function startLive(handlers) {
  const path = document.body.dataset.wsUrl || "/ws/live/";
  const conn = new LiveConnection(path, handlers);
  const pill = $("conn");
  if (pill) pill.addEventListener("click", () => conn.retryNow());
  window.setInterval(() => {
    renderPill(conn);
    renderAge();
    for (const fn of tickers) {
      try {
        fn();
      } catch (err) {
        console.error("live: ticker failed", err);
      }
    }
  }, 1000);
  conn.connect();
  return conn;
}
