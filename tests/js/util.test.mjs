// static/console/util.js: num's null for what is not a finite number, el's one
// argument order, readColors reading a palette (with a stand-in for the DOM).

import assert from "node:assert/strict";
import { test } from "node:test";

import { importStatic } from "./static.mjs";

const { el, num, readColors } = await importStatic("util.js");

test("num: a finite number, else null", () => {
  for (const v of [0, -0, 1.5, -3, Number.MAX_VALUE]) assert.equal(num(v), v);
  for (const v of [null, undefined, NaN, Infinity, -Infinity, "1", "", true, [], {}, [1]]) assert.equal(num(v), null);
  assert.equal(num("x") ?? 0, 0, "a caller that wants 0 says so");
});

test("el(tag, className, text) and readColors(palette, root)", (t) => {
  const made = [];
  // a stand-in for the page: elements are plain objects, a computed style reads node.style
  globalThis.document = {
    documentElement: { style: { "--fg": " #123 ", "--muted": "" } },
    createElement: (tag) => {
      const node = { tag, className: "", textContent: "" };
      made.push(node);
      return node;
    },
  };
  globalThis.getComputedStyle = (node) => ({ getPropertyValue: (name) => node.style[name] ?? "" });
  t.after(() => {
    delete globalThis.document;
    delete globalThis.getComputedStyle;
  });
  assert.deepEqual(el("td", "num", "42"), { tag: "td", className: "num", textContent: "42" });
  assert.deepEqual(el("p", "", 0), { tag: "p", className: "", textContent: 0 });
  assert.deepEqual(el("span", null, null), { tag: "span", className: "", textContent: "" });
  assert.deepEqual(el("dd"), { tag: "dd", className: "", textContent: "" });
  assert.equal(made.length, 4);
  const palette = { fg: ["--fg", "#222"], muted: ["--muted", "#888"], bad: ["--bad", "#d00"] };
  assert.deepEqual(readColors(palette), { fg: "#123", muted: "#888", bad: "#d00" });
  assert.deepEqual(readColors(palette, { style: { "--bad": "red" } }), { fg: "#222", muted: "#888", bad: "red" });
});
