"""What a viewer sees: a ``/ws/live/`` client recording every frame, the poller that sees when a
second is complete in Redis, and the logging sender (``_sim``) whose send times the latency is
measured from."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import struct
import time
from array import array
from typing import Any

from bench.console_load.common import GC_EVENT, KEY_PREFIX

# -- 4: latency ---------------------------------------------------------------------------


_HDR_KIND, _HDR_STAMP = 5, 16  # wire header "<4sBBHIId": kind at 5, stamp at 16


def sim_main(args: argparse.Namespace) -> int:
    """Real-time sender (paced as ``simulate.run``) logging each datagram's send time and second."""
    from ingest.commands import simulate
    from ingest.pipeline import wire

    fleet = simulate.Fleet(args.groups, args.processes, 4, seed=args.seed, restart_probability=0.01,
                           slow_probability=0.05, hostname=args.hostname)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    clock = time.monotonic
    begin, stamp0 = clock(), time.time()
    deadline = begin + args.duration
    seconds, sent_at, kinds = array("q"), array("d"), array("b")
    counts = {"sent": 0, "dropped": 0, "unreachable": 0, "max_late_s": 0.0}
    i = 0
    while clock() < deadline:
        for offset, batch in sorted(fleet.batches(stamp0 + i * fleet.interval), key=lambda b: b[0]):
            due = begin + i * fleet.interval + offset
            if due - clock() > 0.0005:
                time.sleep(min(due - clock(), max(0.0, deadline - clock())))
            if clock() >= deadline:
                break
            counts["max_late_s"] = max(counts["max_late_s"], clock() - due)
            for data in batch:
                try:
                    sock.sendto(data, socket.MSG_DONTWAIT, args.socket)
                except OSError as exc:
                    counts["dropped" if isinstance(exc, BlockingIOError) else "unreachable"] += 1
                    continue
                now = time.time()
                counts["sent"] += 1
                kind = data[_HDR_KIND]
                when = struct.unpack_from("<d", data, _HDR_STAMP)[0]
                if kind == GC_EVENT:  # sample_time: a GC event belongs to its own start
                    start = wire.decode(data).fields.get("gc_event_start_stamp")
                    if isinstance(start, float) and math.isfinite(start):
                        when = start
                seconds.append(math.floor(when))
                sent_at.append(now)
                kinds.append(kind)
        i += 1
    sock.close()
    with open(args.out, "w") as fh:
        json.dump({**counts, "seconds": list(seconds), "sent_at": list(sent_at), "kinds": list(kinds)}, fh)
    return 0


async def live_client(url: str, token: str, host_id: int, frames_out: list[dict[str, Any]],
                      info: dict[str, Any], stop: asyncio.Event) -> None:
    """Subscribe to one host and record every frame; reconnect (counted) when the console drops us."""
    from websockets.asyncio.client import connect

    while not stop.is_set():
        try:
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=1 << 24,
                               open_timeout=60) as ws:
                hello = json.loads(await ws.recv())
                info["hello"] = hello.get("type")
                asked = time.time()
                await ws.send(json.dumps({"type": "subscribe", "scope": "host", "host": host_id, "group": "*",
                                          "window": 300, "points": 300}))
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    now = time.time()
                    m = json.loads(raw)
                    kind = m.get("type")
                    if kind == "host.snapshot":
                        info.setdefault("snapshots", []).append({"seconds": round(now - asked, 3),
                                                                 "bytes": len(raw)})
                    elif kind == "host.frame":
                        star = (m.get("groups") or {}).get("*") or {}
                        frames_out.append({"host": host_id, "t": m["t"], "now": m.get("now"), "recv": now,
                                           "partial": bool(m.get("partial")), "ticks": star.get("ticks"),
                                           "processes": star.get("processes"),
                                           "requests": star.get("requests"),
                                           "groups": len(m.get("groups") or {}), "bytes": len(raw)})
                    elif kind in ("error", "status"):
                        info.setdefault("messages", []).append(m)
        except Exception as exc:
            if stop.is_set():
                return
            error = f"{type(exc).__name__}: {exc}"[:200]
            info.setdefault("drops", []).append({"at": time.time(), "error": error})
            await asyncio.sleep(0.2)


async def redis_poller(url: str, host_ids: list[int], seen: dict[tuple[int, int], list[float]],
                       stop: asyncio.Event, period: float = 0.05) -> None:
    """For each host and recent second: ticks in Redis and the last time that count changed."""
    from console.windows import get_store
    from ingest.model.kinds import HOST

    store = get_store(url, prefix=KEY_PREFIX)
    try:
        while not stop.is_set():
            now = time.time()
            second = math.floor(now)
            for host in host_ids:
                series = await store.aframes(host, HOST, second - 4, second + 1, 10, now=now)
                for start, frame in series:
                    key = (host, int(start))
                    ticks = frame.get("n", 0)
                    entry = seen.setdefault(key, [0, now, now])  # ticks, first seen, last change
                    if ticks != entry[0]:
                        entry[0], entry[2] = ticks, time.time()
            await asyncio.sleep(max(0.0, period - (time.time() - now)))
    finally:
        await store.aclose()
