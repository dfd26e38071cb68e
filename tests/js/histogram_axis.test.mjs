// static/console/histogram.js: the latency histogram's axis starts at its first
// non-empty bucket's lower edge and labels it, the other labels fall on bucket edges
// with room between them, and a percentile marker is drawn wherever it falls.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { HistogramChart, axisTicks } = await importStatic("histogram.js");
const { bounds, edgeText } = await importStatic("hdr.js");

test("the axis starts at the first bucket's lower edge, labelled with it, not 0", () => {
  // the first requests took 12 to 14 ms (bucket 14): the axis says 12 ms at its start
  const ticks = axisTicks(14, 30, 30);
  assert.deepEqual(ticks[0], [14, "12 ms"]);
  assert.ok(!ticks.some(([, label]) => label === "0"));
  // a histogram from bucket 0 starts at 0, and says so
  assert.deepEqual(axisTicks(0, 20, 30)[0], [0, "0"]);
});

test("the other labels are bucket edges, with room between them, on octaves once sparse", () => {
  for (const [first, last, barW] of [[29, 44, 30], [0, 64, 8], [10, 18, 60], [4, 40, 12]]) {
    const ticks = axisTicks(first, last, barW);
    for (let i = 1; i < ticks.length; i += 1) {
      const [edge, label] = ticks[i];
      assert.ok(edge > first && edge <= last + 1, `edge ${edge} inside ${first}..${last}`);
      assert.ok((edge - ticks[i - 1][0]) * barW >= 64, `${first}..${last} at ${barW} px: labels collide`);
      assert.equal(label, edgeText(bounds(edge)[0]));
    }
    const every = ticks.length > 2 ? ticks[2][0] - ticks[1][0] : 0;
    if (every >= 4) for (const [edge] of ticks.slice(1)) assert.equal(edge % 4, 0, "whole octaves: 2, 4, 8 ms ...");
  }
  assert.deepEqual(axisTicks(0, 64, 8).slice(1).map(([, label]) => label),
    ["4 ms", "16 ms", "64 ms", "256 ms", "1.02 s", "4.1 s", "16.38 s", "65.54 s"]);
});

test("a marker below or above the drawn buckets is drawn at that end", () => {
  const chart = { range: [14, 30] };
  const xOf = (s) => HistogramChart.prototype.xOf.call(chart, s, 14, 10);
  const left = xOf(bounds(14)[0]);
  assert.equal(xOf(0.001), left, "a p50 below the first bucket");
  assert.ok(xOf(0.013) > left);
  assert.ok(Math.abs(xOf(60) - xOf(bounds(30)[1] - 1e-9)) < 1e-3, "past the last bucket: at the right end");
  assert.equal(xOf(null), null);
});
