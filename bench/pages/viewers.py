"""Light WebSocket viewers in a child process (``python -m bench.pages.viewers --viewers SPEC``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from typing import Any

from bench.console_load import common as bc
from bench.pages.rig import Rig

# -- light viewers (a child process: python -m bench.pages.viewers --viewers FILE) -----------------


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
        self.proc = rig.spawn([bc.PY, "-m", "bench.pages.viewers", "--viewers", str(path)],
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
        raise SystemExit("usage: python -m bench.pages.viewers --viewers SPEC.json (started by bench.pages)")
    sys.exit(clients_main(sys.argv[2]))
