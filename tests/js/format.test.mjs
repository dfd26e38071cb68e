// static/console/format.js: the figures a row of numbers shows read alike, and a mean
// below one is never shown as a "0" that is not nothing.

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const fmt = await importStatic("format.js");

test("rates: a tenth in every row (a 10 s headline is a count / 10: exact)", () => {
  assert.deepEqual([5, 9.7, 13.5, 262.6, 0, 3.6].map(fmt.rate), ["5.0", "9.7", "13.5", "262.6", "0.0", "3.6"]);
  assert.equal(fmt.rate(0.05), "0.05");
  assert.equal(fmt.rate(12345), "12.3k");
  assert.equal(fmt.rate(null), fmt.DASH);
});

test("amounts: means of counts keep a tenth, whole ones none", () => {
  assert.deepEqual([0.3, 4.0000572, 3.5, 0, 1234.4].map(fmt.amount), ["0.3", "4", "3.5", "0", "1,234"]);
  assert.equal(fmt.amount(0.02), "< 0.1");
  assert.equal(fmt.amount(undefined), fmt.DASH);
});

test("a host's state ages on the console's clock", () => {
  const entry = { online: true, last_seen: 1000 };
  assert.equal(fmt.isOnline(entry, 1010, 15), true);
  assert.equal(fmt.isOnline(entry, 1015, 15), false);
  assert.equal(fmt.hostState(entry, 1020, 15).kind, "offline");
  assert.equal(fmt.hostState({ online: false, last_seen: 1000 }, 1001, 15).kind, "offline");
  assert.equal(fmt.hostState(entry).kind, "online", "without a clock, as the message said");
});
