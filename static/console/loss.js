// Each kind of loss an agent's counters report, in words: what it is, why it
// happens and what fixes it. Shared by the top bar's loss popover (live.js),
// the fleet row's tooltip (fleet.js) and the charts' marks (tabs/overview.js).
//
// The counters are the store's totals per host over every agent run
// (docs/live-protocol.md, fleet entry `agent`), so they only grow. One
// datagram is one sample, so the kinds add up to one number; refused and bad
// samples are one loss seen from both ends (the agent counts what the
// console's acks say it dropped, the console counts what it dropped), so
// the larger of the two counts, never their sum.

import * as fmt from "./format.js";
import { el, num } from "./util.js";

const n = (agent, key) => Math.max(0, num(agent ? agent[key] : 0) ?? 0);

const plural = (count, one, many) => `${fmt.count(count)} ${count === 1 ? one : many}`;

/** The kernel's default datagram queue per unix socket (net.unix.max_dgram_qlen). */
export const KERNEL_DEFAULT_QLEN = 10;
export const QLEN_FIX = "sysctl -w net.unix.max_dgram_qlen=512";

/** The kernel queue length an agent's socket got (`kernel_qlen`, reported by the agent), when it
 * is the kernel's short default: a burst of more datagrams than that is dropped. 0 otherwise. */
function shortQlen(agent) {
  const qlen = n(agent, "kernel_qlen");
  return qlen > 0 && qlen <= KERNEL_DEFAULT_QLEN ? qlen : 0;
}

/** Why sequence loss happens on this host, in words with the fix; "" when the queue is not short. */
export function shortQueue(agent) {
  const qlen = shortQlen(agent);
  return qlen ? `the kernel queues only ${qlen} datagrams for the agent's socket: run ${QLEN_FIX}, then `
    + "restart the agent" : "";
}

/** The same, short enough for the top bar beside the loss counter. */
export function shortQueueHint(agent) {
  const qlen = shortQlen(agent);
  return qlen ? `kernel queue ${qlen}: ${QLEN_FIX}` : "";
}

const KINDS = [
  {
    key: "lost",
    label: "sequence gaps",
    count: (a) => n(a, "lost"),
    unit: "datagrams",
    cause: "mod_wsgi numbered these datagrams but they never reached the agent: the kernel's socket "
      + "queue was full (a burst of requests), or no agent was bound to the socket (stopped or restarting). "
      + "Counted from the gaps in each process's sequence numbers.",
    fix: "Raise net.unix.max_dgram_qlen (sysctl net.unix.max_dgram_qlen=512; the agent warns at start "
      + "while it is the kernel default) and keep the agent running (e.g. systemd Restart=always).",
    detail: (a) => shortQueue(a),
  },
  {
    key: "queue_drops",
    label: "agent queue full",
    count: (a) => n(a, "queue_drops"),
    unit: "datagrams",
    cause: "The agent's own receive queue was full: it decodes slower than the datagrams arrive.",
    fix: "Give the agent CPU (its host is busy), or a longer queue: agent serve --queue / --queue-bytes.",
  },
  {
    key: "spool",
    label: "spool full",
    count: (a) => n(a, "dropped_samples"),
    unit: "samples",
    detail: (a) => plural(n(a, "dropped"), "batch", "batches") + ", "
      + plural(n(a, "dropped_seconds"), "second", "seconds") + " of data",
    shown: (a) => n(a, "dropped_samples") + n(a, "dropped") + n(a, "dropped_seconds") > 0,
    cause: "While the console was unreachable the agent's spool filled up (or its batches grew older "
      + "than the spool's age limit), so it discarded the oldest: those seconds are holes in the charts.",
    fix: "A larger spool (agent serve --spool-dir with a bigger --spool-max-bytes or --spool-max-age), "
      + "or keep the console reachable.",
  },
  {
    key: "refused",
    label: "refused by the console",
    count: (a) => Math.max(n(a, "refused_samples"), n(a, "bad_samples")),
    unit: "samples",
    cause: "The console's checks dropped these samples (a field of the wrong type or out of range): "
      + "a bug, or a sender that is not the wsgi-fleet agent.",
    fix: "Run an agent version that matches this console; the reasons below name the sample and field.",
  },
  {
    key: "malformed",
    label: "undecodable datagrams",
    count: (a) => n(a, "malformed"),
    unit: "datagrams",
    cause: "Datagrams reached the agent but could not be decoded: a mod_wsgi whose telemetry format "
      + "this agent does not know, or another program writing to its socket.",
    fix: "Run an agent version that matches mod_wsgi's; let only Apache write to the socket "
      + "(--socket-mode, --socket-group).",
  },
];

/** The loss of a host (or the sum over hosts): `{total, kinds}` with each non-zero kind in words. */
export function breakdown(agent) {
  const kinds = [];
  let total = 0;
  for (const kind of KINDS) {
    const count = kind.count(agent);
    total += count;
    if (count > 0 || (kind.shown && kind.shown(agent))) {
      kinds.push({
        key: kind.key, label: kind.label, count, unit: kind.unit, cause: kind.cause, fix: kind.fix,
        detail: kind.detail ? kind.detail(agent) : "",
      });
    }
  }
  return { total, kinds };
}

/** Counters summed over hosts, kind by kind (the fleet's top bar). */
export function sumCounters(list) {
  const out = {};
  for (const agent of list) {
    if (!agent || typeof agent !== "object") continue;
    for (const [key, value] of Object.entries(agent)) {
      if (typeof value === "number" && Number.isFinite(value)) out[key] = (out[key] || 0) + value;
    }
  }
  return out;
}

/** "no loss", or "loss 1,234". */
export function label(total) {
  return total > 0 ? "loss " + fmt.count(total) : "no loss";
}

/** "1 datagram", "7 datagrams". */
function counted(kind) {
  return plural(kind.count, kind.unit.slice(0, -1), kind.unit);
}

function kindLine(kind) {
  return `${kind.label}: ${counted(kind)}` + (kind.detail ? ` (${kind.detail})` : "");
}

/** One line per kind: the text of a tooltip (`title`), e.g. the fleet row's. */
export function summaryText(result, { causes = false } = {}) {
  if (!result.kinds.length) return "No loss: every datagram the agent was sent reached the console.";
  return result.kinds.map((kind) => kindLine(kind)
    + (causes ? `\n  why: ${kind.cause}\n  fix: ${kind.fix}` : "")).join("\n");
}

/**
 * The popover's content: the total, then per kind its number, cause and fix,
 * and (host pages) the console's latest reasons for refused samples.
 * `scope` says whose loss it is ("this host", "the 12 hosts you can see").
 */
export function renderDetail(container, result, { scope = "this host", reasons = [], charts = false } = {}) {
  const parts = [el("h2", "", result.total > 0
    ? `Loss on ${scope}: ${fmt.count(result.total)} datagrams or samples`
    : `No loss on ${scope}`)];
  if (!result.kinds.length) {
    parts.push(el("p", "muted", "Every datagram mod_wsgi sent reached the console, counted across agent restarts."));
  }
  const list = el("dl", "loss-kinds");
  for (const kind of result.kinds) {
    const term = el("dt");
    term.dataset.kind = kind.key;
    const [number, ...unit] = counted(kind).split(" ");
    term.append(el("span", "loss-count", number), ` ${unit.join(" ")} · ${kind.label}`);
    if (kind.detail) term.append(el("span", "muted", ` (${kind.detail})`));
    const what = el("dd");
    what.dataset.kind = kind.key;
    what.append(el("p", "loss-cause", kind.cause), el("p", "loss-fix", "Fix: " + kind.fix));
    if (kind.key === "refused" && reasons.length) {
      const ul = el("ul", "loss-reasons");
      for (const r of reasons) ul.append(el("li", "", String(r && r.reason ? r.reason : "")));
      what.append(el("p", "muted", "Latest reasons:"), ul);
    }
    list.append(term, what);
  }
  if (result.kinds.length) parts.push(list);
  parts.push(el("p", "muted small", "Totals over every run of the agent."
    + (charts ? " The charts mark the seconds with sequence loss in red, and the seconds without data "
      + "as hatched holes." : "")));
  container.replaceChildren(...parts);
}

/** Keep a top-layer popover under its button, inside the viewport, and its button's aria-expanded. */
export function bindPopover(button, popover) {
  if (!button || !popover) return;
  // beforetoggle runs before the popover shows or hides, so the attribute is never behind what is seen.
  popover.addEventListener("beforetoggle", (event) => {
    button.setAttribute("aria-expanded", event.newState === "open" ? "true" : "false");
  });
  popover.addEventListener("toggle", (event) => {
    if (event.newState !== "open") return;
    const r = button.getBoundingClientRect();
    popover.style.top = r.bottom + 6 + "px";
    popover.style.left = Math.max(8, Math.min(r.left, window.innerWidth - popover.offsetWidth - 8)) + "px";
  });
}
