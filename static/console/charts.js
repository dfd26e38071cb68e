// Time-series charts on uPlot (static/vendor/uplot, MIT): a time axis,
// legend and tooltip values, drag-to-zoom shared by every chart of a group,
// double-click to go back to live.
//
// Charts only draw when told to (`flush`), so a hidden tab costs nothing but
// keeping its arrays; the arrays are trimmed to the window by the caller, so
// memory stays flat however long a wall screen runs.

import { linearRange, linearTicks, logLabel, logRange, positiveOnly, tickLabel, timeSplits, UNITS } from "./chart_axes.js";
import { logTicks, timeLabel } from "./ticks.js";
import { readColors } from "./util.js";

const uPlot = window.uPlot;
const HEIGHT = 190;
const PALETTE = { axis: ["--muted", "#888"], grid: ["--grid", "rgba(128,128,128,.2)"], bad: ["--bad", "#f85149"] };

let colors = readColors(PALETTE);

// -- marks: seconds with loss, seconds without data ---------------------------------
// `marks` = {holes: [[from, to], ...], loss: [[t, count, step], ...]} in epoch seconds.
// Drawn over the series in uPlot's draw hook, one pass, clipped to the plot area: a
// hole is hatched grey ("no data", never a line drawn across), a second with loss a
// thin red band. The over element keeps where the loss marks are (CSS px) for tests
// and the tooltip.

let hatch = null; // one pattern tile for every chart, redrawn when the theme changes

function hatchTile() {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const c = tile.getContext("2d");
  c.fillStyle = colors.grid;
  c.fillRect(0, 0, 8, 8);
  c.strokeStyle = colors.axis;
  c.globalAlpha = 0.45;
  c.beginPath();
  c.moveTo(0, 8);
  c.lineTo(8, 0);
  c.stroke();
  return tile;
}

function drawMarks(u, marks) {
  const holes = marks ? marks.holes : [];
  const losses = marks ? marks.loss : [];
  const { ctx, bbox } = u;
  const xs = [];
  const holeXs = [];
  if (holes.length || losses.length) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    if (holes.length) {
      hatch = hatch || hatchTile();
      ctx.fillStyle = ctx.createPattern(hatch, "repeat");
      for (const [from, to] of holes) {
        const x0 = u.valToPos(from, "x", true);
        const x1 = u.valToPos(to, "x", true);
        if (x1 <= bbox.left || x0 >= bbox.left + bbox.width) continue;
        ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 1), bbox.height);
        holeXs.push(Math.round(u.valToPos((from + to) / 2, "x")));
      }
    }
    ctx.fillStyle = colors.bad;
    ctx.globalAlpha = 0.55;
    const least = 2 * (window.devicePixelRatio || 1); // a second is under a pixel on long windows
    for (const [t, , step] of losses) {
      const x0 = u.valToPos(t, "x", true);
      const w = Math.max(u.valToPos(t + step, "x", true) - x0, least);
      if (x0 + w < bbox.left || x0 > bbox.left + bbox.width) continue;
      ctx.fillRect(x0, bbox.top, w, bbox.height);
      xs.push(Math.round(u.valToPos(t + step / 2, "x")));
    }
    ctx.restore();
  }
  u.over.dataset.lossX = xs.join(",");
  u.over.dataset.holeX = holeXs.join(",");
}

/** What the marks say at time `t` (x `left` in CSS px): "no data" or the second's loss. */
function marksAt(u, marks, t, left) {
  if (!marks) return [];
  const lines = [];
  for (const [t0, count, step] of marks.loss) {
    if ((t >= t0 && t < t0 + step) || Math.abs(u.valToPos(t0 + step / 2, "x") - left) <= 3) {
      lines.push(`loss: ${count.toLocaleString()} datagram${count === 1 ? "" : "s"} (sequence gaps counted here)`);
      break;
    }
  }
  if (marks.holes.some(([from, to]) => t >= from && t < to)) {
    lines.push("no data: no process reported (Apache or the agent stopped, or a full spool dropped it)");
  }
  return lines;
}

document.addEventListener("themechange", () => {
  colors = readColors(PALETTE);
  hatch = null;
});

// Room for the longest tick label (about 7 px a character at the axis font).
function labelRoom(u, values) {
  const longest = Math.max(1, ...(values || []).map((v) => String(v).length));
  return Math.ceil(longest * 7 + 18);
}

function axis() {
  return {
    stroke: () => colors.axis,
    grid: { stroke: () => colors.grid, width: 1 },
    ticks: { stroke: () => colors.grid, width: 1 },
  };
}

/**
 * The x axis: ticks.js's round times, as many on a half-width chart as on a full one,
 * labelled in the one format of the span. The labels are kept in the plot's dataset
 * (xTicks, xLabels): the canvas says nothing to a test or a screen reader.
 */
function timeAxis(plot) {
  return {
    ...axis(),
    splits: (u, i, min, max) => timeSplits(min, max),
    values: (u, splits) => {
      const labels = splits.map((t) => timeLabel(t, spanOf(u)));
      plot.dataset.xTicks = splits.join(",");
      plot.dataset.xLabels = labels.join("|");
      return labels;
    },
  };
}

/** The y axis: round ticks in the unit shown (or a log axis' decades); dataset yTicks, yLabels. */
function valueAxis(chart) {
  return {
    ...axis(),
    splits: (u, i, min, max) => (chart.log ? logTicks(min, max) : linearTicks(min, max, chart.unitOf)),
    // every split is labelled: uPlot's log filter would blank 2 and 5 between the decades
    filter: (u, splits) => splits,
    values: (u, splits) => {
      const labels = splits.map((v) => chart.tickText(v, u));
      chart.plot.dataset.yTicks = splits.join(",");
      chart.plot.dataset.yLabels = labels.join("|");
      return labels;
    },
    size: labelRoom,
  };
}

/** The x axis' span in seconds: what timeLabel's format depends on. */
const spanOf = (u) => u.scales.x.max - u.scales.x.min;

/** A small tooltip next to the cursor: time, then each visible series (or why there is none). */
function tooltipPlugin(format, marksOf) {
  let box;
  let hovered = false; // the cursor is synced to every chart; the tooltip shows on this one only
  return {
    hooks: {
      init: (u) => {
        box = document.createElement("div");
        box.className = "chart-tooltip";
        box.hidden = true;
        u.over.append(box);
        u.over.addEventListener("mouseenter", () => { hovered = true; });
        u.over.addEventListener("mouseleave", () => {
          hovered = false;
          box.hidden = true;
        });
      },
      setCursor: (u) => {
        const idx = u.cursor.idx;
        if (!hovered || u.cursor.left < 0) {
          box.hidden = true;
          return;
        }
        const t = u.posToVal(u.cursor.left, "x");
        const marked = marksAt(u, marksOf(), t, u.cursor.left);
        const hole = marked.length && marked[marked.length - 1].startsWith("no data");
        const hasPoint = idx !== null && idx !== undefined && !hole;
        if (!hasPoint && !marked.length) {
          box.hidden = true;
          return;
        }
        // In a hole the nearest point is another second's: say "no data", not its values.
        const lines = [timeLabel(hasPoint ? u.data[0][idx] : t, spanOf(u))];
        for (let i = 1; hasPoint && i < u.series.length; i += 1) {
          if (u.series[i].show) lines.push(u.series[i].label + ": " + format(u.data[i][idx]));
        }
        lines.push(...marked);
        box.replaceChildren(...lines.map((text) => {
          const line = document.createElement("div");
          line.textContent = text;
          return line;
        }));
        box.hidden = false;
        const left = u.cursor.left + 12;
        const flip = left + box.offsetWidth > u.over.clientWidth;
        box.style.left = (flip ? u.cursor.left - box.offsetWidth - 12 : left) + "px";
        box.style.top = Math.max(0, u.cursor.top - box.offsetHeight - 8) + "px";
      },
    },
  };
}

/** The newest point drawn, [t, value, ...] (null: none), for the tests that read the chart. */
function lastPoint(data) {
  for (let i = data[0].length - 1; i >= 0; i -= 1) {
    const values = data.slice(1).map((column) => column[i] ?? null);
    if (values.some((v) => v !== null)) return [data[0][i], ...values];
  }
  return null;
}

/** Charts that zoom together and follow the live end of the window together. */
export class ChartGroup {
  constructor(onZoom) {
    this.charts = [];
    this.zoom = null; // {min, max} in epoch seconds while the user has zoomed in
    this.onZoom = onZoom;
    this.syncKey = "g" + Math.random().toString(36).slice(2);
  }

  add(chart) {
    chart.group = this;
    this.charts.push(chart);
  }

  setZoom(range) {
    this.zoom = range;
    for (const chart of this.charts) chart.applyRange();
    if (this.onZoom) this.onZoom(range);
  }
}

export class TimeChart {
  /**
   * `series`: [{label, color, width?, dash?}], one per data column after time;
   * `format`: value -> text (legend, tooltip); `unit`: the y axis' unit, a name of
   * chart_axes.js's UNITS (its ticks are round in it and labelled with it), or else
   * `axisFormat`: value -> short tick label (defaults to `format`); `yRange`: fixed
   * [min, max] or null; `log`: a log y axis (values not above 0 are then no data).
   */
  constructor(plot, { series, format, axisFormat = null, yRange = null, unit = null, log = false }) {
    this.plot = plot;
    this.series = series;
    this.format = format;
    this.axisFormat = axisFormat || format;
    this.unit = unit;
    this.unitOf = UNITS[unit] || UNITS.plain;
    this.yRange = yRange;
    this.log = log;
    this.u = null;
    this.data = null;
    this.range = null; // live x range [min, max]
    this.marks = null; // {holes, loss}: see drawMarks
    this.dirty = false;
    this.group = null;
    plot.dataset.scale = log ? "log" : "linear";
  }

  /** A y tick's label: in the chart's unit, each log tick in the unit of its own size. */
  tickText(value, u) {
    if (!this.unit) return this.axisFormat(value);
    if (this.log) return logLabel(value, this.unitOf);
    return tickLabel(value, this.unitOf(Math.max(Math.abs(u.scales.y.min), Math.abs(u.scales.y.max))));
  }

  /** Switch the y axis between log and linear: uPlot fixes a scale's kind when it is made. */
  setLog(log) {
    if (log === this.log) return;
    this.log = log;
    this.plot.dataset.scale = log ? "log" : "linear";
    if (this.u) this.u.destroy();
    this.u = null;
    this.dirty = true;
  }

  options(width) {
    const format = this.format;
    const group = this.group;
    const y = this.log
      ? { distr: 3, log: 10, range: (u, min, max) => logRange(min, max) }
      : { range: (u, min, max) => linearRange(min, max, this.unitOf, this.yRange) };
    return {
      width,
      height: HEIGHT,
      scales: { x: { time: true }, y },
      axes: [timeAxis(this.plot), valueAxis(this)],
      series: [
        // the legend's time in the axis' format, not uPlot's own date format
        { value: (u, t) => (t === null || t === undefined ? "--" : timeLabel(t, spanOf(u))) },
        ...this.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width || 1.5,
          dash: s.dash,
          points: { show: false },
          value: (u, v) => format(v),
        })),
      ],
      legend: { live: true },
      cursor: {
        sync: { key: group ? group.syncKey : undefined },
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => null }, // our own handler below: back to live
      },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width > 4 && group) {
            const min = u.posToVal(u.select.left, "x");
            const max = u.posToVal(u.select.left + u.select.width, "x");
            group.setZoom({ min, max });
          }
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        }],
        ready: [(u) => {
          u.over.addEventListener("dblclick", () => group && group.setZoom(null));
        }],
        draw: [(u) => drawMarks(u, this.marks)],
      },
      plugins: [tooltipPlugin(format, () => this.marks)],
    };
  }

  /** New arrays [t, col1, ...], the live x range and the marks; drawn at the next flush. */
  setData(data, range, marks = null) {
    this.data = data;
    this.range = range;
    this.marks = marks;
    this.dirty = true;
  }

  /** Draw pending data; call only while the chart is on screen. */
  flush() {
    if (!this.data) return;
    const width = this.plot.clientWidth;
    if (width === 0) return; // hidden: keep it dirty
    const data = this.log ? [this.data[0], ...this.data.slice(1).map(positiveOnly)] : this.data;
    if (!this.u) {
      this.u = new uPlot(this.options(width), data, this.plot);
      this.dirty = true;
    }
    if (width !== this.u.width) this.u.setSize({ width, height: HEIGHT }); // resized while hidden
    if (!this.dirty) return;
    this.dirty = false;
    this.u.setData(data, false);
    this.applyRange();
    this.plot.dataset.last = JSON.stringify(lastPoint(data));
  }

  applyRange() {
    if (!this.u) return;
    const zoom = this.group && this.group.zoom;
    const range = zoom || (this.range ? { min: this.range[0], max: this.range[1] } : null);
    if (range) this.u.setScale("x", range);
  }

  resize() {
    if (!this.u) return;
    const width = this.plot.clientWidth;
    if (width > 0 && width !== this.u.width) this.u.setSize({ width, height: HEIGHT });
  }

  redraw() {
    if (this.u && this.plot.clientWidth > 0) this.u.redraw(false);
  }

  /** Width in CSS pixels, for asking the console for that many points. */
  width() {
    return this.plot.clientWidth;
  }
}
