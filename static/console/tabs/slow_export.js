// Slow requests tab, the export: the rows that match the filter as CSV or JSON,
// downloaded. Separate because it is file output only (./slow.js decides the rows).

import { num } from "../util.js";

export function str(value) {
  return value === null || value === undefined ? "" : String(value);
}

/** Text for a cell: safe from formula injection once in a spreadsheet. */
function csvCell(value) {
  let text = str(value);
  if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

function download(name, type, content) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Download `list` (records with their `elapsed`) as `kind` ("csv" or "json"), named after
 * the host and the console time `now`. Times in a file are UTC ISO stamps: files travel.
 */
export function exportRows(list, kind, now) {
  const host = (document.getElementById("main")?.dataset.hostName || "host").replace(/[^\w.-]+/g, "_");
  const stamp = new Date(now * 1000).toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const name = `slow-${host}-${stamp}.${kind}`;
  if (kind === "json") {
    download(name, "application/json", JSON.stringify(list, null, 1));
    return;
  }
  const head = ["state", "duration_s", "method", "status", "url", "pid", "incarnation", "thread", "group",
    "started_utc", "log_id", "peer_ip", "protocol", "user_agent", "server_pid"];
  const lines = [head.join(",")];
  for (const r of list) {
    const f = r.fields || {};
    const start = num(r.start);
    lines.push([r.state, r.elapsed, r.method, r.status, r.url, r.pid, r.incarnation, r.thread, r.group,
      start ? new Date(start * 1000).toISOString() : "", r.log_id, f.slow_peer_ip, f.slow_protocol,
      f.slow_user_agent, f.slow_server_pid].map(csvCell).join(","));
  }
  download(name, "text/csv", lines.join("\r\n") + "\r\n");
}
