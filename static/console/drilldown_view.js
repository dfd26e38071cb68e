// The request drill-down's contents (../drilldown.js keeps the dialog, its state and
// its place in the browser history): the parts of one record in the shape of
// `tabs.base.slow_record`, built as DOM. Every value may come from an attacker
// (URL, User-Agent, log id): it only ever enters the page through textContent.

import * as fmt from "./format.js";
import { stamp } from "./stamps.js";
import { el, num } from "./util.js";

const PHASES = [
  ["server", "slow_server_time", "Apache before hand-off"],
  ["queue", "slow_queue_time", "waiting for a daemon thread"],
  ["daemon", "slow_daemon_time", "daemon before the application"],
  ["application", "slow_application_time", "in the application"],
];
// Below this average chunk size, and with this many calls, a body is streamed in
// tiny pieces (a per-call overhead worth a look); a small response written once is not.
const SMALL_CHUNK = 64;
const MANY_CALLS = 16;
const AT_COMPLETION = "(reported at completion)";

function text(value) {
  return value === null || value === undefined || value === "" ? fmt.DASH : String(value);
}

/** A moment of the request: with the date (a record can be older than a day) and milliseconds. */
function stampText(epoch) {
  const t = num(epoch);
  return t === null || t <= 0 ? fmt.DASH : stamp(t, { date: true, ms: true });
}

/** The dialog's title line and its Close button, which calls `onClose`. */
export function header(record, onClose) {
  const head = el("header", "req-head");
  const title = el("h2", null);
  title.id = "request-drilldown-title";
  if (record) {
    const pill = el("span", "req-state", text(record.state));
    pill.dataset.state = String(record.state ?? "");
    const elapsed = el("span", "req-elapsed", fmt.duration(num(record.duration)));
    title.append(pill, " ", `pid ${text(record.pid)} · thread ${text(record.thread)} · `, elapsed);
  } else {
    title.textContent = "Slow request";
  }
  const close = el("button", "req-close", "Close");
  close.type = "button";
  close.addEventListener("click", () => onClose());
  head.append(title, close);
  return head;
}

/** A <dl> row; `value` is text or a node. */
function row(list, label, value, kind) {
  const dd = el("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = text(value);
  if (kind) dd.dataset.kind = kind;
  list.append(el("dt", null, label), dd);
}

function section(body, title) {
  const part = el("section", "req-part");
  part.append(el("h3", null, title));
  const list = el("dl", "req-rows");
  part.append(list);
  body.append(part);
  return list;
}

function share(part, whole) {
  return part !== null && whole ? ` (${fmt.percent(part / whole)} of duration)` : "";
}

function phaseBar(record, active) {
  const f = record.fields || {};
  const values = PHASES.map(([, field]) => Math.max(0, num(f[field]) ?? 0));
  const total = values.reduce((a, b) => a + b, 0);
  // The phase still running is the last one with time in it (the application, usually).
  let running = -1;
  if (active) values.forEach((v, i) => { if (v > 0) running = i; });
  const wrap = el("div", "req-phases");
  const bar = el("div", "req-bar");
  bar.setAttribute("role", "img");
  const legend = el("ul", "req-legend");
  const labels = [];
  PHASES.forEach(([name, , help], i) => {
    const value = values[i];
    const label = `${name} ${fmt.duration(value)}` + (i === running ? " (running)" : "");
    labels.push(label);
    if (value > 0 && total > 0) {
      const seg = el("span", "req-seg");
      seg.dataset.phase = name;
      seg.style.flexGrow = String(value / total);
      seg.title = `${label}: ${help}`;
      if (i === running) seg.classList.add("running");
      bar.append(seg);
    }
    const item = el("li", null);
    const swatch = el("span", "req-swatch");
    swatch.dataset.phase = name;
    item.append(swatch, label);
    if (i === running) item.classList.add("running");
    legend.append(item);
  });
  bar.setAttribute("aria-label", "phases: " + labels.join(", "));
  if (total <= 0) bar.append(el("span", "req-bar-empty", "no phase times reported"));
  wrap.append(bar, legend);
  return wrap;
}

function body(kind, bytes, calls, active) {
  if (active) return [AT_COMPLETION, null];
  const b = num(bytes);
  const n = num(calls);
  if (!b && !n) return [`(no body ${kind})`, null];
  const avg = b !== null && n ? b / n : null;
  const small = avg !== null && avg < SMALL_CHUNK && n >= MANY_CALLS;
  return [`${fmt.bytes(b)} in ${fmt.count(n)} call${n === 1 ? "" : "s"}` +
    (avg !== null ? ` · ${fmt.bytes(avg)} per call` : "") + (small ? " (many small chunks)" : ""),
  small ? "warn" : null];
}

function timed(seconds, duration, active) {
  const s = num(seconds);
  if (active && !s) return AT_COMPLETION;
  return fmt.duration(s) + share(s, duration);
}

function cpu(f, duration, active) {
  const user = num(f.slow_cpu_user_time);
  const system = num(f.slow_cpu_system_time);
  if (active && !user && !system) return [AT_COMPLETION, null];
  if (user === null && system === null) return [fmt.DASH, null];
  const total = (user ?? 0) + (system ?? 0);
  const wall = duration ? total / duration : null;
  let note = "";
  if (wall !== null && wall >= 1) note = " · more than one core (threads or subprocesses)";
  return [`${fmt.duration(total)}` + (wall !== null ? ` · ${fmt.percent(wall)} of wall` : "") +
    ` · user ${fmt.duration(user)} / system ${fmt.duration(system)}` + note,
  wall !== null && wall >= 0.8 ? "warn" : null];
}

function concurrency(f, threads, active) {
  const of = num(threads) ? ` / ${fmt.count(threads)}` : "";
  const start = num(f.slow_active_at_start);
  const end = num(f.slow_active_at_completion);
  const first = start === null ? fmt.DASH : `${fmt.count(start)}${of} at start`;
  return first + " → " + (active && !end ? AT_COMPLETION : end === null ? fmt.DASH : `${fmt.count(end)}${of} at completion`);
}

/** The record's sections: request, process, timing, body. */
export function details(record, threads) {
  const f = record.fields && typeof record.fields === "object" ? record.fields : {};
  const active = record.state === "active";
  const duration = num(record.duration);
  const start = num(record.start);
  const out = el("div", "req-body");

  if (record.state === "expired") {
    out.append(el("p", "req-note", "No longer reported and never completed: its process stopped, " +
      "or the completion record was lost. Values are as last reported."));
  }

  const request = section(out, "Request");
  const url = el("code", "req-url", text(record.url));
  row(request, "URL", url);
  row(request, "Method", record.method);
  const status = num(record.status);
  row(request, "Status", active && !status ? AT_COMPLETION : status,
    status !== null && status >= 500 ? "bad" : null);
  const client = [f.slow_peer_ip, f.slow_protocol].filter((v) => v).map(String).join(" · ");
  row(request, "Client", client || fmt.DASH);
  if (f.slow_user_agent) row(request, "User-Agent", String(f.slow_user_agent));
  row(request, "Log id", record.log_id);

  const where = section(out, "Process");
  row(where, "PID · thread", `${text(record.pid)} · ${text(record.thread)}` +
    (num(record.incarnation) > 1 ? ` (incarnation ${record.incarnation})` : ""));
  row(where, "Group", record.group === null || record.group === undefined ? fmt.DASH : fmt.groupName(record.group));
  row(where, "Apache child", num(f.slow_server_pid) ? String(f.slow_server_pid) : fmt.DASH);
  row(where, "Started", stampText(start));
  const ended = record.state === "completed" && start !== null && duration !== null ? start + duration : null;
  row(where, "Ended", ended !== null ? stampText(ended)
    : active ? "(still running)" : "(never reported)");

  const timing = section(out, active ? "Timing so far" : "Timing");
  const shown = el("span", null);
  shown.append(el("span", "req-elapsed", fmt.duration(duration)), active ? " (still running)" : "");
  row(timing, active ? "Elapsed" : "Duration", shown);
  const phases = el("div");
  phases.append(phaseBar(record, active));
  row(timing, "Phases", phases);
  const gil = num(f.slow_gil_wait_time);
  row(timing, "GIL wait", `${fmt.duration(gil)} · ${fmt.count(num(f.slow_gil_wait_count))} waits` + share(gil, duration));
  row(timing, "Concurrency", concurrency(f, threads, active));
  const [cpuText, cpuKind] = cpu(f, duration, active);
  row(timing, "CPU", cpuText, cpuKind);

  const io = section(out, "Body");
  const [inText, inKind] = body("in", f.slow_input_bytes, f.slow_input_reads, active);
  row(io, "Body in", inText, inKind);
  const [outText, outKind] = body("out", f.slow_output_bytes, f.slow_output_writes, active);
  row(io, "Body out", outText, outKind);
  row(io, "Input read", timed(f.slow_input_read_time, duration, active));
  row(io, "Output write", timed(f.slow_output_write_time, duration, active));
  return out;
}
