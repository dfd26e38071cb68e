// Capacity tab: the classifier. Sums a row's shown columns into means and
// peaks, and from them (plus the slow-run count) flags a process saturated or
// CPU/GIL-bound with the reasons why. Separate because it is pure policy:
// the thresholds live here, the cards and the gutter only show the result.

import * as fmt from "../format.js";
import { at } from "./capacity_model.js";

/** Means over the shown columns (period- or request-weighted) and single-tick peaks. */
export function rowStats(row, t0, t1) {
  const c = row.cols;
  const s = { period: 0, busy: 0, busyPeak: null, cpu: 0, cpuPeak: null, requests: 0, queue: 0, queueN: 0,
    queuePeak: null, daemon: 0, daemonN: 0, daemonPeak: null, gil: 0, app: 0, slotBusy: 0, slotCpu: 0 };
  const peak = (old, v) => (v === null ? old : old === null ? v : Math.max(old, v));
  for (let i = 0; i < c.t.length; i += 1) {
    if (c.t[i] < t0 || c.t[i] > t1) continue;
    const p = c.period[i] ?? 0;
    const req = c.requests[i] ?? 0;
    s.period += p;
    s.requests += req;
    s.busy += (c.capacity[i] ?? 0) * p;
    s.cpu += (c.cpu[i] ?? 0) * p;
    s.busyPeak = peak(s.busyPeak, c.capacity[i]);
    s.cpuPeak = peak(s.cpuPeak, c.cpu[i]);
    if (c.queue_mean[i] !== null && req) { s.queue += c.queue_mean[i] * req; s.queueN += req; }
    if (c.daemon_mean[i] !== null && req) { s.daemon += c.daemon_mean[i] * req; s.daemonN += req; }
    if (req) { s.queuePeak = peak(s.queuePeak, c.queue_mean[i]); s.daemonPeak = peak(s.daemonPeak, c.daemon_mean[i]); }
    s.gil += (c.gil_wait_mean[i] ?? 0) * req;
    s.app += (c.application_mean[i] ?? 0) * req;
    for (let j = 0; j < row.slots; j += 1) {
      s.slotBusy += at(c.busy[i], j);
      s.slotCpu += at(c.slot_cpu[i], j);
    }
  }
  const ratio = (a, b) => (b > 0 ? a / b : null);
  return { ...s, busyMean: ratio(s.busy, s.period), cpuMean: ratio(s.cpu, s.period),
    queueMean: ratio(s.queue, s.queueN), daemonMean: ratio(s.daemon, s.daemonN),
    rpm: s.period > 0 ? (s.requests / s.period) * 60 : null };
}

/** Saturated (out of slots) or CPU/GIL-bound (more threads will not help), with the reasons why. */
export function classify(stats, runs, threads) {
  const busy = stats.busyMean ?? 0;
  const cpu = stats.cpuMean ?? 0;
  if (stats.rpm === null || stats.rpm < 3) return { flag: "quiet", label: "quiet", reasons: ["under 3 requests/min: not classified"], lean: "" };
  let score = 0;
  const saturated = [];
  if (busy > 0.8) { score += 0.6 + (busy - 0.8) * 2; saturated.push(`slots busy ${fmt.percent(busy)} of the time`); }
  if ((stats.queueMean ?? 0) > 0.05) { score += 0.5; saturated.push(`requests queue ${fmt.duration(stats.queueMean)} on average`); }
  if (runs >= 3 && busy >= 0.7) { score += 0.5; saturated.push(`${runs} slow runs while ${fmt.percent(busy)} busy`); }
  if (score >= 1) {
    return { flag: "saturated", label: "saturated", reasons: saturated,
      lean: "Out of worker slots: add threads or processes, or find what holds the slow slots." };
  }
  const bound = [];
  const cpuShare = stats.slotBusy > 0 ? stats.slotCpu / stats.slotBusy : null;
  if (cpuShare !== null && cpuShare < 0.5 && busy > 0.5) bound.push(`busy slots get CPU only ${fmt.percent(cpuShare)} of their time`);
  if ((stats.daemonMean ?? 0) > 0.05) bound.push(`daemon hand-off ${fmt.duration(stats.daemonMean)} on average`);
  if (cpu > 0.9 && threads >= 2 && busy > 0.3) bound.push(`${fmt.cores(cpu)} with ${threads} threads`);
  if (stats.app > 0 && stats.gil / stats.app >= 0.15 && busy > 0.3) bound.push(`GIL wait ${fmt.percent(stats.gil / stats.app)} of application time`);
  if (bound.length && !(cpu > 1.2 && busy > 0.5)) {
    return { flag: "cpu", label: "CPU/GIL-bound", reasons: bound,
      lean: "More threads will not help: add processes, or move CPU work out of the request." };
  }
  return { flag: "normal", label: "normal", reasons: [], lean: "" };
}
