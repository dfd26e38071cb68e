// Processes tab, the lifecycle bars (#proc-gantt): one bar per process from STARTED
// to STOPPED (or its last sample when it went silent), coloured by why it stopped,
// with the gutter (pid, group), the time axis, the hover tooltip and the selection
// by click or ↑/↓/Escape. Separate because it is the tab's largest drawing: a
// scrolling canvas that draws only the rows in view.
//
// `view` is the tab's shared state (see processes.js); it is read at draw time, so a
// new model or new colours reach the bars without telling them.

import * as fmt from "../format.js";
import { byGroupStartPid, rowEnd, rowStart, stoppedAt, text } from "./processes_model.js";
import { axisTicks, clockMs, fit, fitCanvas, lines, placeTooltip, windowLabel } from "./processes_ui.js";

const ROW_H = 22;
const AXIS_H = 24;
const PAD_RIGHT = 12; // room for the "still running" chevron at now

export function createGantt(view) {
  const { ctx, state, $ } = view;
  const gantt = $("#proc-gantt");
  const ganttCanvas = gantt.querySelector("canvas");
  const sizer = gantt.querySelector(".proc-gantt-sizer");
  const tooltip = $("#proc-tooltip");
  let ganttRows = []; // what the bars show, in order: hover and keys look rows up here
  let hoverGantt = null; // {x, y} of a resting cursor: its tooltip follows live data
  gantt.dataset.rowHeight = String(ROW_H);
  gantt.dataset.axisHeight = String(AXIS_H);

  function barRows(t0, t1) {
    const out = [];
    for (const row of view.model.rows.values()) {
      if (!view.inGroup(row.group)) continue;
      const end = rowEnd(row);
      const start = rowStart(row);
      if ((end !== null && end < t0) || (start !== null && start > t1)) continue;
      if (stoppedAt(row) !== null && row.category && !view.shownCategory(row.category)) continue;
      out.push(row);
    }
    return out.sort(byGroupStartPid);
  }

  function colorOf(row) {
    const colors = view.colors;
    if (row.state === "gone" && row.stopped == null) return colors.gone;
    if (stoppedAt(row) !== null && row.category) return colors[row.category] ?? colors.unplanned;
    return colors.running;
  }

  function gutterWidth(g, rows) {
    let pidWidth = 0;
    let groupWidth = 0;
    for (const row of rows) {
      pidWidth = Math.max(pidWidth, g.measureText(pidLabel(row)).width);
      if (state.group === "*") groupWidth = Math.max(groupWidth, g.measureText(fmt.groupName(row.group)).width);
    }
    return { pid: Math.ceil(pidWidth), total: Math.ceil(Math.min(pidWidth + 14 + Math.min(groupWidth, 150) + 10, 320)) };
  }

  function pidLabel(row) {
    return "pid " + row.pid + (row.inc > 1 ? " #" + row.inc : "");
  }

  function drawGantt(t1) {
    const t0 = t1 - state.window;
    ganttRows = barRows(t0, t1);
    gantt.dataset.rows = String(ganttRows.length);
    const empty = $("#proc-gantt-empty");
    gantt.parentElement.hidden = ganttRows.length === 0;
    empty.hidden = ganttRows.length > 0;
    if (!ganttRows.length) {
      empty.textContent = ganttEmptyText();
      tooltip.hidden = true;
      return;
    }
    const total = AXIS_H + ganttRows.length * ROW_H;
    const maxView = parseFloat(getComputedStyle(gantt).maxHeight) || 416;
    const viewH = Math.min(total, maxView);
    sizer.style.height = Math.max(0, total - viewH) + "px";
    const width = gantt.clientWidth;
    const g = fitCanvas(ganttCanvas, width, viewH);
    applyScroll(viewH);
    const top = gantt.scrollTop;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    const gutter = gutterWidth(g, ganttRows);
    const plot = Math.max(10, width - gutter.total - PAD_RIGHT);
    const x = (t) => gutter.total + ((t - t0) / (t1 - t0)) * plot;
    const ticks = axisTicks(t0, t1, Math.max(2, Math.min(6, Math.floor(plot / 80))));
    const first = Math.max(0, Math.floor(top / ROW_H));
    const last = Math.min(ganttRows.length - 1, Math.ceil((top + viewH - AXIS_H) / ROW_H));
    const { colors, flash, selected } = view;
    const flashing = flash.key && performance.now() < flash.until;
    for (let i = first; i <= last; i += 1) {
      const row = ganttRows[i];
      const y = AXIS_H + i * ROW_H - top;
      if (row.key === selected) {
        g.globalAlpha = flashing && flash.key === row.key ? 0.35 : 0.16;
        g.fillStyle = colors.accent;
        g.fillRect(0, y, width, ROW_H);
        g.globalAlpha = 1;
      } else if (i % 2) {
        g.fillStyle = colors.stripe;
        g.fillRect(0, y, width, ROW_H);
      }
      drawGutter(g, row, y, gutter);
      drawBar(g, row, y, x, t0, t1);
    }
    drawAxis(g, ticks, x, width, viewH, gutter.total);
    if (hoverGantt) showGanttTip(hoverGantt.x, hoverGantt.y);
  }

  function drawGutter(g, row, y, gutter) {
    const mid = y + ROW_H / 2;
    g.fillStyle = view.colors.fg;
    g.fillText(pidLabel(row), 6, mid);
    if (state.group !== "*") return;
    const left = 6 + gutter.pid + 8;
    g.fillStyle = view.colors.muted;
    g.fillText(fit(g, fmt.groupName(row.group), gutter.total - left - 8), left, mid);
  }

  function drawBar(g, row, y, x, t0, t1) {
    const colors = view.colors;
    const start = rowStart(row);
    const end = rowEnd(row);
    const x0 = x(Math.max(start ?? t0, t0));
    const x1 = x(Math.min(end ?? t1, t1));
    const top = y + 5;
    const h = ROW_H - 10;
    const color = colorOf(row);
    g.fillStyle = color;
    g.globalAlpha = row.state === "gone" && row.stopped == null ? 0.55 : 1;
    g.fillRect(x0, top, Math.max(2, x1 - x0), h);
    g.globalAlpha = 1;
    if (start === null || start < t0) {
      // a notch: this life began before the window (or before anything was seen)
      g.fillStyle = colors.panel;
      g.beginPath();
      g.moveTo(x0, top);
      g.lineTo(x0 + 4, top + h / 2);
      g.lineTo(x0, top + h);
      g.fill();
    }
    if (end === null) {
      // an open chevron at now: still running
      g.fillStyle = color;
      g.beginPath();
      g.moveTo(x1, top - 2);
      g.lineTo(x1 + 6, top + h / 2);
      g.lineTo(x1, top + h + 2);
      g.fill();
    } else if (row.state === "gone" && row.stopped == null) {
      g.strokeStyle = colors.fg;
      g.setLineDash([2, 2]);
      g.beginPath();
      g.moveTo(x1 + 0.5, top - 3);
      g.lineTo(x1 + 0.5, top + h + 3);
      g.stroke();
      g.setLineDash([]);
    }
    if (row.stopping != null && row.stopping >= t0 && row.stopping <= t1) {
      g.fillStyle = colors.fg; // the STOPPING tick
      g.fillRect(Math.round(x(row.stopping)) - 1, top - 3, 2, h + 6);
    }
  }

  function drawAxis(g, ticks, x, width, height, left) {
    const colors = view.colors;
    g.fillStyle = colors.panel;
    g.fillRect(0, 0, width, AXIS_H);
    g.strokeStyle = colors.grid;
    g.lineWidth = 1;
    g.fillStyle = colors.muted;
    g.textAlign = "center";
    for (const tick of ticks) {
      const px = Math.round(x(tick.t)) + 0.5;
      g.beginPath();
      g.moveTo(px, AXIS_H - 4);
      g.lineTo(px, height);
      g.stroke();
      const half = g.measureText(tick.label).width / 2; // a date label is wide: keep it whole
      g.fillText(tick.label, Math.min(Math.max(px, left + half + 2), width - half - 2), AXIS_H / 2);
    }
    g.beginPath();
    g.moveTo(left + 0.5, 0);
    g.lineTo(left + 0.5, height);
    g.moveTo(0, AXIS_H - 0.5);
    g.lineTo(width, AXIS_H - 0.5);
    g.stroke();
    g.textAlign = "start";
  }

  function applyScroll(viewH) {
    const scrollTo = view.scrollTo;
    if (!scrollTo || !scrollTo.gantt) return;
    const i = ganttRows.findIndex((r) => r.key === scrollTo.gantt);
    if (i >= 0) gantt.scrollTop = Math.max(0, AXIS_H + i * ROW_H - viewH / 2);
    if (i >= 0 || view.model.loaded) scrollTo.gantt = null;
  }

  function ganttEmptyText() {
    if (!view.model.loaded) return "Waiting for the first snapshot…";
    const where = state.group === "*" ? "" : " in " + fmt.groupName(state.group);
    const hiddenRows = Array.from(view.model.rows.values())
      .some((r) => view.inGroup(r.group) && r.category && !view.shownCategory(r.category));
    if (hiddenRows) return "Every process here stopped for a reason you have hidden: tick planned, tuning or unplanned above.";
    return "No process was alive" + where + " in the last " + windowLabel(state.window)
      + ". Check that this host's agent is running (the fleet page shows when it was last seen), or pick a longer window.";
  }

  function ganttNote() {
    const model = view.model;
    const shown = ganttRows.length;
    const parts = [];
    if (model.rowsTotal !== null && model.rowsTotal > model.rows.size) {
      parts.push("the console sent the " + fmt.count(model.rows.size) + " newest of " + fmt.count(model.rowsTotal) + " processes");
    }
    if (view.pausedAt !== null) parts.push("paused at " + clockMs(view.pausedAt, state.window));
    return [fmt.count(shown) + " process" + (shown === 1 ? "" : "es"), ...parts].join(" · ");
  }

  function rowAt(y) {
    if (y < AXIS_H) return null;
    return ganttRows[Math.floor((y - AXIS_H + gantt.scrollTop) / ROW_H)] ?? null;
  }

  function showGanttTip(x, y) {
    const row = rowAt(y);
    if (!row) {
      tooltip.hidden = true;
      return;
    }
    lines(tooltip, tipLines(row));
    placeTooltip(tooltip, gantt.parentElement, x, y);
  }

  function tipLines(row) {
    const at = (t) => clockMs(t, state.window);
    const out = ["pid " + row.pid + " · parent " + (row.parent ?? fmt.DASH) + (row.inc > 1 ? " · incarnation " + row.inc : ""),
      "group " + fmt.groupName(row.group),
      "started " + (row.started != null ? at(row.started) : "not seen (first sample " + at(row.first_seen) + ")")];
    if (row.stopping != null) out.push("stopping " + at(row.stopping) + " · " + fmt.count(row.at_decision) + " in flight at decision");
    if (row.stopped != null) out.push("stopped " + at(row.stopped));
    if (stoppedAt(row) !== null) out.push("reason " + (row.reason || "none given") + " (" + (row.category || "unplanned") + ")");
    if (row.stopped != null) {
      out.push("uptime " + fmt.age(row.uptime) + " · " + fmt.count(row.requests) + " requests");
      out.push(fmt.count(row.at_exit) + " in flight at exit · graceful drain " + (row.drain === true ? "yes" : row.drain === false ? "no" : fmt.DASH));
    } else if (row.state === "gone") {
      out.push("state gone: silent since " + at(row.last_seen) + ", no STOPPED received");
    } else {
      out.push("state " + text(row.state) + (row.started != null ? " · up " + fmt.age(view.now() - row.started) : ""));
    }
    return out;
  }

  ganttCanvas.addEventListener("mousemove", (event) => {
    hoverGantt = { x: event.offsetX, y: event.offsetY };
    showGanttTip(hoverGantt.x, hoverGantt.y);
  });
  ganttCanvas.addEventListener("mouseleave", () => {
    hoverGantt = null;
    tooltip.hidden = true;
  });
  ganttCanvas.addEventListener("click", (event) => {
    const row = rowAt(event.offsetY);
    if (row) view.select(row.key === view.selected ? null : row.key, "gantt");
  });
  gantt.addEventListener("scroll", () => ctx.scheduleDraw());
  gantt.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.selected) {
      view.select(null, "gantt");
      event.preventDefault();
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    const i = ganttRows.findIndex((r) => r.key === view.selected);
    const next = ganttRows[Math.min(ganttRows.length - 1, Math.max(0, i + (event.key === "ArrowDown" ? 1 : -1)))];
    if (next) view.select(next.key, "keys");
  });

  return {
    draw(t1) {
      drawGantt(t1);
      $("#proc-gantt-note").textContent = view.model.loaded ? ganttNote() : "";
    },
  };
}
