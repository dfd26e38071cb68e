// Number and time formatting shared by the pages. `null` and `undefined`
// mean "no data" (docs/live-protocol.md) and show as a dash, never as 0.

export const DASH = "—";

function missing(value) {
  return value === null || value === undefined || Number.isNaN(value);
}

export function number(value, digits = 1) {
  if (missing(value)) return DASH;
  const abs = Math.abs(value);
  if (abs >= 1e6) return (value / 1e6).toFixed(digits) + "M";
  if (abs >= 1e4) return (value / 1e3).toFixed(digits) + "k";
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(abs < 10 ? digits + 1 : digits);
}

/**
 * A rate per second, to a tenth (a headline over 10 s is a count divided by 10, so a
 * tenth is exact), the same number of decimals in every row: "5.0", "13.5", "262.6",
 * "0.05" below a tenth, "12.3k" from 10,000.
 */
export function rate(value) {
  if (missing(value)) return DASH;
  const abs = Math.abs(value);
  if (abs >= 1e4) return number(value);
  if (abs > 0 && abs < 0.1) return value.toFixed(2);
  return value.toFixed(1);
}

export function count(value) {
  return missing(value) ? DASH : Math.round(value).toLocaleString("en");
}

/**
 * A count that may be a mean over seconds (slow requests in flight, processes reporting):
 * to a tenth below 100, so 0.3 reads "0.3" and never a "0" that is not nothing.
 */
export function amount(value) {
  if (missing(value)) return DASH;
  const tenths = Math.round(value * 10) / 10;
  if (tenths === 0 && value > 0) return "< 0.1";
  if (Math.abs(value) >= 100 || Number.isInteger(tenths)) return count(value);
  return tenths.toFixed(1);
}

/** A 0..1 fraction as a percentage. */
export function percent(value) {
  if (missing(value)) return DASH;
  return (value * 100).toFixed(value > 0 && value < 0.1 ? 1 : 0) + " %";
}

/** Seconds (as the protocol sends times) as milliseconds or seconds. */
export function duration(seconds) {
  if (missing(seconds)) return DASH;
  const ms = seconds * 1000;
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 10) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
}

export function bytes(value) {
  if (missing(value)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
}

/** CPU as the protocol sends it: cores in use (1.0 = one core busy). */
export function cores(value) {
  if (missing(value)) return DASH;
  return value < 1 ? (value * 100).toFixed(0) + " % core" : value.toFixed(2) + " cores";
}

/** An age in seconds, short: "0.4 s", "12 s", "3 min", "5 h", "2 d". */
export function age(seconds) {
  if (missing(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

/** Epoch seconds as local wall-clock time. */
export function clock(epoch) {
  if (missing(epoch)) return DASH;
  return new Date(epoch * 1000).toLocaleTimeString([], { hour12: false });
}

/** The group names as people read them: "*" is every group, "" is embedded mode. */
export function groupName(group) {
  if (group === "*") return "All groups";
  if (group === "") return "(embedded)";
  return String(group);
}

/**
 * Whether a host (`agent_state`, or a fleet entry) is online at `now` (console clock):
 * its message said so and its agent was heard from within `within` seconds. A message
 * ages: a host whose agent died sends none that says "offline".
 */
export function isOnline(s, now, within) {
  if (!s || typeof s !== "object" || !s.online) return false;
  if (typeof s.last_seen !== "number" || typeof now !== "number" || typeof within !== "number") return true;
  return now - s.last_seen < within;
}

/**
 * A host's agent state (`agent_state` of host messages, or a fleet entry) in words, as of
 * `now` (see isOnline; without `now`, as the message said): `{kind, text, title}`; kind is
 * online, offline or stalled ("agent not decoding": datagrams keep arriving at the agent
 * and none are decoded, so the charts stay empty).
 */
export function hostState(s, now, within = 15) {
  const state = s && typeof s === "object" ? s : {};
  const stall = state.not_decoding && typeof state.not_decoding === "object" ? state.not_decoding : null;
  if (state.state === "not decoding" && stall && isOnline(state, now, within)) {
    const since = typeof stall.since === "number" ? " since " + clock(stall.since) : "";
    return {
      kind: "stalled",
      text: `agent not decoding: ${count(stall.received)} datagrams received, ${count(stall.decoded)} decoded${since}`,
      title: "The agent receives mod_wsgi's datagrams but decodes none: its decoder has stopped. "
        + "Restart the agent and look at its log.",
    };
  }
  if (isOnline(state, now, within)) return { kind: "online", text: "online", title: "" };
  return { kind: "offline", text: "offline", title: `The agent has not been heard from for ${within} s or more.` };
}
