// Processes tab: the process table (host.snapshot, then host.frame's list every 5 s).

import * as fmt from "../format.js";

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export function createTab(ctx) {
  const { panel, state } = ctx;
  let dirty = true;

  return {
    hostSnapshot() {
      dirty = true;
    },
    hostFrame(message) {
      if (Array.isArray(message.processes)) dirty = true;
    },
    draw() {
      if (!dirty) return;
      dirty = false;
      const tbody = panel.querySelector("#processes tbody");
      const rows = state.processes
        .filter((p) => p && typeof p === "object")
        .filter((p) => state.group === "*" || (p.group ?? "") === state.group)
        .sort((a, b) => String(a.group ?? "").localeCompare(String(b.group ?? "")) || (a.pid - b.pid))
        .map((p) => {
          const tr = document.createElement("tr");
          const stateCell = cell("");
          const chip = document.createElement("span");
          chip.className = "chip state";
          chip.dataset.state = String(p.state ?? "");
          chip.textContent = String(p.state ?? fmt.DASH);
          stateCell.append(chip);
          tr.append(
            cell(fmt.count(p.pid), "num"),
            cell(fmt.groupName(p.group ?? "")),
            stateCell,
            cell(fmt.count(p.incarnation), "num"),
            cell(typeof p.started === "number" ? fmt.clock(p.started) : fmt.DASH),
            cell(fmt.percent(num(p.capacity)), "num"),
            cell(fmt.cores(num(p.cpu)), "num"),
            cell(fmt.bytes(num(p.rss)), "num"),
            cell(fmt.count(num(p.requests)), "num"),
          );
          return tr;
        });
      tbody.replaceChildren(...rows);
      const empty = panel.querySelector("#processes-empty");
      empty.hidden = rows.length > 0;
      empty.textContent = "No processes reported in this window.";
    },
  };
}
