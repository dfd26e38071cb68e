// Small helpers every page module shares: a number off the wire, a new element,
// the theme's colours. Nothing runs at import (the DOM is touched only inside
// el() and readColors()), so the pure modules node's tests import can use num().

/**
 * `value` when it is a finite number, else null (missing, null, NaN, Infinity, a
 * string). A caller that wants 0 for those says so where it reads: `num(x) ?? 0`.
 */
export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A new `tag` element with a class and text: a falsy class sets none, undefined or null text none. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/**
 * The theme's colours by name: `palette` maps each name to [CSS custom property,
 * fallback], read from `root`'s computed style (the page's root element unless
 * given). Callers read them again on "themechange" (theme.js switches the theme).
 */
export function readColors(palette, root = document.documentElement) {
  const style = getComputedStyle(root);
  const colors = {};
  for (const [name, [property, fallback]] of Object.entries(palette)) {
    colors[name] = style.getPropertyValue(property).trim() || fallback;
  }
  return colors;
}
