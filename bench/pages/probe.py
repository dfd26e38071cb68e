"""The page probe, injected before any page script: what the page received, sent and drew, and when."""

from __future__ import annotations

# -- the page probe ---------------------------------------------------------------------------
# Injected before any page script. It wraps WebSocket (sizes and types of received messages,
# the messages the page sends, the negotiated extensions) and, on the reference page, the 500 ms
# redraw interval. "Drawn" = the end of the animation frame after the data arrived: a rAF
# callback posts a message, which runs once that frame's rendering is done.
INIT_JS = r"""
(() => {
  if (window.__bench) return;
  const MODE = "%MODE%";
  const B = window.__bench = {mode: MODE, msgs: [], bytes: 0, count: 0, byType: {}, sent: [], ext: null,
    wsOpen: null, snapAt: null, firstData: null, firstReadout: null, frames: [], samples: [],
    redraws: [], drawnRedraws: [], longtasks: [],
    clockSkewMs: Date.now() - (performance.timeOrigin + performance.now())};
  const epoch = () => performance.timeOrigin + performance.now();
  const nativeRaf = window.requestAnimationFrame.bind(window);
  B.rafCallbacks = 0;  // the page's own animation-frame callbacks (its draws), not ours
  window.requestAnimationFrame = (cb) => nativeRaf((t) => { B.rafCallbacks += 1; cb(t); });
  const afterFrame = (cb) => nativeRaf(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => cb();
    ch.port2.postMessage(null);
  });
  const setFirstData = () => afterFrame(() => { if (B.firstData === null) B.firstData = performance.now(); });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (B.longtasks.length < 2000) B.longtasks.push([Math.round(e.startTime), Math.round(e.duration)]);
      }
    }).observe({type: "longtask", buffered: true});
  } catch (err) { /* no long-task timing */ }
  const TYPE = /"type"\s*:\s*"([^"]+)"/;
  const STAMP = /"stamp"\s*:\s*([-0-9.eE+]+)/;
  function onMessage(ev) {
    const at = performance.now();
    const data = ev.data;
    const text = typeof data === "string";
    const size = text ? data.length : (data.byteLength || data.size || 0);
    const head = text ? data.slice(0, 300) : "";
    const m = TYPE.exec(head);
    const type = m ? m[1] : "?";
    B.bytes += size;
    B.count += 1;
    const bt = B.byType[type] || (B.byType[type] = [0, 0]);
    bt[0] += 1;
    bt[1] += size;
    if (B.firstData === null && B.msgs.length < 500) B.msgs.push([type, size, Math.round(at * 10) / 10]);
    if (B.snapAt === null && type === "tab.snapshot") { B.snapAt = at; setFirstData(); }
    if (B.snapAt === null && type === "snapshot") B.snapAt = at;  // the reference: drawn by its redraw
    if (MODE !== "lat") return;
    if (type === "host.frame") {
      const f = JSON.parse(data);
      const star = (f.groups || {})["*"] || {};
      const rec = {t: f.t, now: f.now ?? null, partial: !!f.partial, ticks: star.ticks ?? null,
                   processes: star.processes ?? null, arrival: epoch(), drawn: null};
      if (B.frames.length < 20000) B.frames.push(rec);
      afterFrame(() => { rec.drawn = epoch(); });
    } else if (type === "sample" && head.includes('"request_metrics"')) {
      const s = STAMP.exec(head);
      if (s && B.samples.length < 200000) B.samples.push([Number(s[1]) * 1000, epoch()]);
    }
  }
  const Native = window.WebSocket;
  class BenchWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => { B.wsOpen = performance.now(); B.ext = this.extensions; });
      this.addEventListener("message", onMessage);
    }
    send(data) {
      if (typeof data === "string" && B.sent.length < 20) B.sent.push(data);
      return super.send(data);
    }
  }
  window.WebSocket = BenchWebSocket;
  const nativeSetInterval = window.setInterval;
  window.setInterval = function (fn, ms, ...rest) {
    if (ms === 500 && typeof fn === "function") {
      const inner = fn;
      fn = function (...a) {
        const s = performance.now();
        try {
          return inner.apply(this, a);
        } finally {
          if (B.redraws.length < (MODE === "lat" ? 20000 : 200)) B.redraws.push([s, performance.now()]);
          if (B.snapAt !== null && B.firstData === null && s > B.snapAt) setFirstData();
          if (MODE === "lat") {
            const rec = [performance.timeOrigin + s, null];
            B.drawnRedraws.push(rec);
            afterFrame(() => { rec[1] = epoch(); });
          }
        }
      };
    }
    return nativeSetInterval.call(this, fn, ms, ...rest);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.querySelector('[data-readout="throughput"]');
    if (!el) return;
    new MutationObserver((_, obs) => {
      if (B.firstReadout === null && Number.isFinite(parseFloat(el.textContent))) {
        B.firstReadout = performance.now();
        obs.disconnect();
      }
    }).observe(el, {childList: true, characterData: true, subtree: true});
  });
})();
"""

#: What a page load measured (run once first data is drawn)
COLLECT_FIRST_JS = """() => {
  const B = window.__bench;
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const res = performance.getEntriesByType("resource").map((r) => ({
    name: r.name, type: r.initiatorType, transfer: r.transferSize, encoded: r.encodedBodySize,
    decoded: r.decodedBodySize}));
  return {firstData: B.firstData, firstReadout: B.firstReadout, snapAt: B.snapAt, wsOpen: B.wsOpen,
          ext: B.ext, msgs: B.msgs, sent: B.sent, longtasks: B.longtasks, redraws: B.redraws.slice(0, 20),
          visibility: document.visibilityState,
          nav: {transfer: nav.transferSize, encoded: nav.encodedBodySize, decoded: nav.decodedBodySize,
                ttfb: nav.responseStart, responseEnd: nav.responseEnd,
                dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd},
          resources: res};
}"""


def init_js(mode: str) -> str:
    return INIT_JS.replace("%MODE%", mode)
