// Capacity tab: the per-process cards below the heatmap, one table row per
// shown process with its means, peaks, slow-run count and classifier flag, and
// when it ended if it did. Separate because it is plain DOM from a finished
// layout: the bands already carry each row's stats, run count and flag
// (capacity.js, buildLayout).

import * as fmt from "../format.js";
import { seconds } from "./capacity_model.js";
import { endedLabel } from "./capacity_paint.js";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function meanPeak(mean, peak, format) {
  return mean === null ? fmt.DASH : `${format(mean)} (${format(peak)})`;
}

/** Fill the cards: `cards` holds the table, its tbody and the span label; `span` is the view's, in seconds. */
export function renderCards(cards, lay, span) {
  cards.table.hidden = !lay.bands.length;
  cards.label.textContent = `· last ${seconds(span)}, mean (peak tick)`;
  const trs = [];
  for (const band of lay.bands) {
    if (!band.row) continue;
    const { row, stats, runCount } = band;
    const tr = document.createElement("tr");
    tr.dataset.key = row.key;
    tr.dataset.flag = row.flag.flag;
    const flagCell = cell("", "cap-flag");
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.flag = row.flag.flag;
    chip.textContent = row.flag.label;
    if (row.ended) { // the verdict is over its columns up to the end
      tr.dataset.ended = row.ended.state;
      const ended = document.createElement("span");
      ended.className = "chip cap-ended";
      ended.dataset.ended = row.ended.state;
      ended.textContent = endedLabel(row.ended, span);
      ended.title = row.ended.state === "gone" ? "silent since then, no STOPPED received"
        : "reason " + (row.ended.reason || "none given");
      flagCell.append(ended);
    }
    flagCell.append(chip);
    if (row.flag.reasons.length) {
      const why = document.createElement("span");
      why.className = "cap-reasons";
      why.textContent = row.flag.reasons.join("; ");
      flagCell.append(why);
    }
    flagCell.title = [...row.flag.reasons, row.flag.lean].filter(Boolean).join("\n");
    tr.append(
      cell(String(row.pid), "num"), cell(fmt.groupName(row.group)), flagCell,
      cell(meanPeak(stats.busyMean, stats.busyPeak, fmt.percent), "num"),
      cell(meanPeak(stats.cpuMean, stats.cpuPeak, fmt.cores), "num"),
      cell(meanPeak(stats.queueMean, stats.queuePeak, fmt.duration), "num"),
      cell(meanPeak(stats.daemonMean, stats.daemonPeak, fmt.duration), "num"),
      cell(fmt.count(stats.rpm), "num"), cell(String(runCount), "num"),
    );
    trs.push(tr);
  }
  cards.body.replaceChildren(...trs);
}
