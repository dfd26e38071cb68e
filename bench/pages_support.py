"""Pieces of bench/pages.py: the two consoles under test, the page probe, light WebSocket viewers.

Ours is bench/console.py's ``Env`` (a private redis-server, a migrated SQLite
database with hosts, agent tokens and a user API token, daphne workers with
production settings) plus real agents (``python -m ingest serve --console``)
fed by ``python -m ingest simulate`` or by bench/console.py's logging sender
(``_sim``). The reference is ``mod_wsgi-telemetry serve`` from
.venv-reference, fed by its own ``simulate`` (or by the same logging sender).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REF_BIN = REPO / ".venv-reference" / "bin" / "mod_wsgi-telemetry"
PASSWORD = "bench pages password 1"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: bench/console.py (named so that it does not shadow the ``console`` Django package)
bc = _load("bench_console", REPO / "bench" / "console.py")
#: the browser tests' Chromium and its flags
browser_support = _load("bench_browser_support",
                        REPO / "tests" / "console" / "dashboard" / "browser_support.py")


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


# -- the two consoles ---------------------------------------------------------------------------


class Rig:
    """Every process of the run, stopped in ``close`` whatever happened."""

    def __init__(self, tmp: Path, hosts: int):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.env = bc.Env(tmp, hosts)  # redis + migrate + seed
        self.seed = self.env.seed
        code = ("from django.contrib.auth import get_user_model\n"
                f"u = get_user_model().objects.get(username={self.seed['user']!r})\n"
                f"u.set_password({PASSWORD!r}); u.save()\n")
        subprocess.run([bc.PY, "manage.py", "shell", "-c", code], cwd=REPO, env=self.env.env, check=True,
                       capture_output=True)
        self.port = self.env.start_workers(1)[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.agents: dict[int, subprocess.Popen] = {}
        self.ref: subprocess.Popen | None = None
        self.ref_port = 0
        self.ref_sock = tmp / "reference.sock"
        self.fed_at = time.monotonic()  # when the simulators started

    @property
    def daphne_pid(self) -> int:
        return self.env.workers[0][1].pid

    def spawn(self, cmd: list[str], log: str, **kwargs: Any) -> subprocess.Popen:
        proc = bc.spawn(cmd, self.tmp / log, cwd=REPO, **kwargs)
        self.procs.append(proc)
        return proc

    def start_agent(self, index: int) -> Path:
        """The agent of seed host ``index``, forwarding to the console; returns its socket."""
        host = self.seed["hosts"][index]
        sock, token = self.tmp / f"agent{index}.sock", self.tmp / f"token{index}"
        token.write_text(host["token"] + "\n")
        proc = self.spawn([bc.PY, "-m", "ingest", "--log-level", "WARNING", "serve", "--socket", str(sock),
                           "--console", f"ws://127.0.0.1:{self.port}/", "--token-file", str(token),
                           "--log-interval", "0", "--hostname", host["name"]], f"agent{index}.log")
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent {index} did not bind its socket")
            time.sleep(0.05)
        self.agents[index] = proc
        return sock

    def start_reference(self) -> None:
        """A fresh reference ``serve`` (empty state) on the same socket path and a new port."""
        self.stop(self.ref)
        self.ref_port = bc.free_port()
        self.ref = self.spawn([str(REF_BIN), "serve", "--listen", f"unix:{self.ref_sock}", "--socket-mode",
                               "0666", "--http-port", str(self.ref_port), "--log-level", "WARNING"],
                              f"reference-{self.ref_port}.log")
        bc.wait_port(self.ref_port, self.ref)
        deadline = time.monotonic() + 10
        while not self.ref_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def reference_sim(self, processes: int) -> subprocess.Popen:
        return self.spawn([str(REF_BIN), "simulate", "--target", f"unix:{self.ref_sock}",
                           "--processes", str(processes)], "reference-sim.log")

    def logging_sim(self, sock: Path, groups: int, per_group: int, duration: float, out: Path,
                    hostname: str) -> subprocess.Popen:
        """bench/console.py's sender: logs each datagram's send time and second."""
        return self.spawn([bc.PY, str(REPO / "bench" / "console.py"), "_sim", "--socket", str(sock),
                           "--groups", str(groups), "--processes", str(per_group),
                           "--duration", str(duration), "--hostname", hostname, "--out", str(out)],
                          f"sim-{out.stem}.log")

    def stop(self, proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
        if proc is not None:
            bc.stop_proc(proc, sig)

    def close(self) -> None:
        for proc in reversed(self.procs):  # senders and agents, then the reference
            with contextlib.suppress(Exception):
                self.stop(proc, signal.SIGINT if "serve" in proc.args and "ingest" in proc.args else
                          signal.SIGTERM)
        with contextlib.suppress(Exception):
            self.env.close()


# -- CPU of the Chromium process tree -----------------------------------------------------------


def chromium_cpu() -> tuple[float, int]:
    """CPU seconds of every chromium process below this one, and how many renderers there are."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as fh:
                text = fh.read()
            names[int(entry)] = text[text.index("(") + 1:text.rindex(")")]
            parents[int(entry)] = int(text.rpartition(")")[2].split()[1])
    mine, total, renderers = {os.getpid()}, 0.0, 0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    for pid in mine:
        if names.get(pid, "").startswith("chrom"):
            cpu = bc.proc_cpu(pid)
            if cpu == cpu:
                total += cpu
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as fh:
                renderers += b"--type=renderer" in fh.read()
    return total, renderers


# -- light viewers (a child process: python bench/pages.py _clients --spec FILE) --------------------


async def _viewer(spec: dict[str, Any], stats: dict[str, Any], ready: asyncio.Event,
                  stop: asyncio.Event, gate: asyncio.Semaphore) -> None:
    from websockets.asyncio.client import connect

    async with gate:
        ws = await connect(spec["url"], additional_headers=spec.get("headers") or {}, max_size=None,
                           compression="deflate" if spec.get("deflate") else None, open_timeout=120,
                           ping_interval=None, close_timeout=2)
        if spec.get("subscribe"):
            await ws.recv()  # hello
            await ws.send(json.dumps(spec["subscribe"]))
        want = spec["ready_type"]
        while True:
            raw = await ws.recv()
            stats["bytes"] += len(raw)
            if f'"type": "{want}"' in raw[:200] or f'"type":"{want}"' in raw[:200]:
                break
    stats["ready"] += 1
    if stats["ready"] == spec["n"]:
        ready.set()
    try:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            stats["messages"] += 1
            stats["bytes"] += len(raw)
    except Exception as exc:
        stats["errors"].append(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


async def _viewers(spec: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = {"ready": 0, "messages": 0, "bytes": 0, "errors": []}
    ready, stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    gate = asyncio.Semaphore(spec.get("concurrency", 10))
    began = time.monotonic()
    tasks = [asyncio.create_task(_viewer(spec, stats, ready, stop, gate)) for _ in range(spec["n"])]
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([waiter, *tasks], timeout=spec.get("ready_timeout", 120),
                       return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in tasks if t.done() and t.exception() is not None]
    print(json.dumps({"ready": ready.is_set(), "connected_in_s": round(time.monotonic() - began, 2),
                      "failed": [repr(t.exception())[:200] for t in failed][:3]}), flush=True)
    if not ready.is_set():
        stop.set()
    counted_from = (stats["messages"], time.monotonic())
    await stop.wait()
    stats["messages_per_viewer_per_s"] = round((stats["messages"] - counted_from[0]) / spec["n"]
                                               / max(time.monotonic() - counted_from[1], 1e-6), 1)
    await asyncio.gather(*tasks, return_exceptions=True)
    stats["errors"] = stats["errors"][:5]
    return stats


def clients_main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    result = asyncio.run(_viewers(spec))
    print(json.dumps({"result": result}), flush=True)
    return 0


class Viewers:
    """N light viewers in a child process, all subscribed once ``start`` returns."""

    def __init__(self, rig: Rig, spec: dict[str, Any], name: str):
        path = rig.tmp / f"viewers-{name}.json"
        path.write_text(json.dumps(spec))
        self.proc = rig.spawn([bc.PY, str(Path(__file__).resolve()), "--viewers", str(path)],
                              f"viewers-{name}.log", stdout=subprocess.PIPE, text=True)

    def start(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"viewers did not start: {line!r}")
        info = json.loads(line)
        if not info["ready"]:
            self.finish()
            raise RuntimeError(f"viewers not all subscribed: {info}")
        return info

    def finish(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        lines = [x for x in (out or "").splitlines() if x.startswith('{"result"')]
        return json.loads(lines[-1])["result"] if lines else {}


if __name__ == "__main__":  # the viewers' child process
    if sys.argv[1:2] != ["--viewers"] or len(sys.argv) != 3:
        raise SystemExit("usage: pages_support.py --viewers SPEC.json (started by bench/pages.py)")
    sys.exit(clients_main(sys.argv[2]))
