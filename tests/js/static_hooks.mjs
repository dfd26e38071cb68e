// Module hooks for the node tests: the page's scripts under static/ are ES
// modules in .js files with no package.json "type" beside them (the browser
// needs none). Node 20.19+ detects that by itself; Debian's node 18 reads them
// as CommonJS unless told, so this hook says "module" for every .js there.

const STATIC = new URL("../../static/", import.meta.url).href;

export async function load(url, context, nextLoad) {
  if (url.startsWith(STATIC) && url.endsWith(".js")) return nextLoad(url, { ...context, format: "module" });
  return nextLoad(url, context);
}
