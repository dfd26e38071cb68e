// What the node tests share: importing the page's modules (static/console/...)
// and the vectors tests/js/test_node.py computes with the Python model.

import { readFileSync } from "node:fs";
import { register } from "node:module";

register("./static_hooks.mjs", import.meta.url);

/** A module of static/console/ by its path there ("hdr.js", "tabs/gc_model.js"). */
export function importStatic(path) {
  return import(new URL("../../static/console/" + path, import.meta.url).href);
}

/**
 * The vectors of tests/js/test_node.py (its WSGI_FLEET_VECTORS file), or null when
 * node runs by hand without them: the tests that compare with Python then skip.
 */
export function vectors() {
  const path = process.env.WSGI_FLEET_VECTORS;
  return path ? JSON.parse(readFileSync(path, "utf8")) : null;
}

export const NO_VECTORS = "no WSGI_FLEET_VECTORS: run .venv/bin/pytest tests/js/test_node.py";
