// A moment as the pages write it where a chart's tick format does not apply (a table
// cell, a tooltip, a note): ../ticks.js's one 24-hour format with seconds, with
// milliseconds or the date where they help. Pure: node's tests import it.

import { DASH } from "./format.js";
import { DATE_AFTER, timeLabel } from "./ticks.js";

/**
 * `epoch` (seconds) as "15:32:07", "15:32:07.123" with `ms`, "Nov 26 15:32:07" with
 * `date` (where a record can be older than a day); a dash when it is not a time.
 */
export function stamp(epoch, { ms = false, date = false } = {}) {
  if (typeof epoch !== "number" || !Number.isFinite(epoch)) return DASH;
  let out = timeLabel(epoch, 0);
  if (ms) out += "." + String(new Date(epoch * 1000).getMilliseconds()).padStart(3, "0");
  if (date) {
    // The date as the charts write it past a day ("Nov 26 15:32"), without its time of day.
    const long = timeLabel(epoch, DATE_AFTER + 1);
    const short = timeLabel(epoch, DATE_AFTER);
    out = (long.endsWith(short) ? long.slice(0, long.length - short.length) : long + " ") + out;
  }
  return out;
}
