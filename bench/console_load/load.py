"""Load agents (a child process: ``python -m bench.console_load _load --spec FILE``): hosts that
speak docs/agent-protocol.md as ``ingest.pipeline.uplink`` does, as fast as the acks let them."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import json
import random
import secrets
import time
from array import array
from typing import Any

from bench.console_load.common import _STAMP, CAPTURES

# -- load agents (child process) ----------------------------------------------------


def as_agent_sends(sample: dict[str, Any]) -> dict[str, Any]:
    """Count arrays back as the decoder's array("i") (``replay`` made them lists), so that
    ``spool.encode`` sends them sparse as a real agent does (docs/agent-protocol.md)."""
    fields = sample["f"]
    for name, value in fields.items():
        if isinstance(value, list) and (name.endswith("_buckets") or name == "request_threads_completed"):
            fields[name] = array("i", value)
    return sample


def _pool_sim(procs: int, groups: int, count: int) -> list[dict[str, Any]]:
    from ingest.commands import simulate
    from ingest.pipeline.samples import replay

    samples = list(replay(simulate.busy_ticks(procs, count, threads=4, seed=0)))
    first = min(s["p"] for s in samples)
    for s in samples:
        group = f"app{(s['p'] - first) % groups}"
        s["g"] = group
        s["f"]["process_group"] = group
    return samples


def _pool_capture() -> list[dict[str, Any]]:
    from ingest.pipeline import capture
    from ingest.pipeline.samples import replay

    out = []
    for path in sorted(glob.glob(str(CAPTURES / "*.dgrams.gz"))):
        samples = list(replay(capture.read(path)))
        shift = time.time() - max(s["t"] for s in samples)  # the capture ends now
        for s in samples:
            s["t"] += shift
            for name in ("gc_event_start_stamp", "slow_start_stamp"):
                if isinstance(s["f"].get(name), float):
                    s["f"][name] += shift
        out += samples
    return out


def build_templates(workload: str, batch: int, procs: int,
                    groups: int) -> tuple[list[tuple[bytes, list[int]]], int]:
    """Batches of encoded samples (msgpack array) and, for sim, where each stamp's 8 bytes are."""
    import msgpack

    from ingest.pipeline.spool import encode

    if workload == "sim":
        samples = _pool_sim(procs, groups, max(procs * 2, batch * 8))
    elif workload == "capture":
        samples = _pool_capture()
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    encoded = encode([as_agent_sends(s) for s in samples])
    header = msgpack.Packer().pack_array_header
    templates = []
    for start in range(0, len(encoded) - batch + 1, batch):
        chunk = encoded[start:start + batch]
        head = header(len(chunk))
        body, offsets, pos = [head], [], len(head)
        for blob in chunk:
            if workload == "sim":
                at = blob.find(b"\xa1t\xcb")
                if not 0 < at < 48:
                    raise RuntimeError("sample stamp not found where expected")
                offsets.append(pos + at + 3)
            body.append(blob)
            pos += len(blob)
        templates.append((b"".join(body), offsets))
    return templates, sum(map(len, encoded)) // len(encoded)


async def load_main_async(spec: dict[str, Any]) -> dict[str, Any]:
    import msgpack
    from websockets.asyncio.client import connect

    templates, sample_bytes = build_templates(spec["workload"], spec["batch"], spec["procs"], spec["groups"])
    packb, unpackb = msgpack.packb, msgpack.unpackb
    window_n, batch = spec["window"], spec["batch"]
    measure_from, measure_until, stop_at = spec["measure_from"], spec["measure_until"], spec["stop_at"]
    stats: dict[str, Any] = {"acked_samples": 0, "acked_batches": 0, "all_acked_samples": 0,
                             "sent_batches": 0,
                             "duplicates": 0, "errors": [], "closes": [], "welcomed": 0, "extensions": set(),
                             "reconnects": 0, "unacked_at_drop": 0,
                             "sample_bytes": sample_bytes, "message_bytes": 0, "templates": len(templates)}
    rtts: list[float] = []
    welcomed_at: list[float] = []
    pack_into = _STAMP.pack_into

    async def agent(index: int, url: str, token: str) -> None:
        """One agent: like ingest.pipeline.uplink, it reconnects when the console drops it (after 0-0.5 s
        rather than the uplink's 0.5-30 s backoff) and goes on above ``welcome.acked``; batches
        unacked at a drop are not resent (counted in ``unacked_at_drop``)."""
        instance = secrets.token_hex(8)
        prefix = (b"\x84" + packb("t") + packb("batch") + packb("instance") + packb(instance) + packb("id"))
        samples_key = packb("samples")
        next_id = 1
        first = True
        while time.time() < stop_at:
            if not first:
                stats["reconnects"] += 1
                await asyncio.sleep(random.uniform(0, 0.5))
            first = False
            try:
                next_id = await session(index, url, token, instance, prefix, samples_key, next_id)
            except Exception as exc:  # recorded, then reconnect like an agent
                stats["errors"].append(f"agent {index}: {type(exc).__name__}: {exc}"[:300])

    async def session(index: int, url: str, token: str, instance: str, prefix: bytes, samples_key: bytes,
                      next_id: int) -> int:
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           compression="deflate" if spec["deflate"] else None, max_size=1 << 22,
                           open_timeout=120, close_timeout=5) as ws:
            stats["extensions"].add(ws.response.headers.get("Sec-WebSocket-Extensions") or "none")
            await ws.send(packb({"t": "hello", "protocol": 1, "agent": "wsgi-fleet-bench 0",
                                 "instance": instance, "hostname": f"bench-{index}", "started": time.time()}))
            welcome = unpackb(await ws.recv(), raw=False)
            if welcome.get("t") != "welcome":
                raise RuntimeError(f"expected welcome, got {welcome!r}")
            welcomed_at.append(time.time())
            stats["welcomed"] += 1
            next_id = max(next_id, int(welcome.get("acked") or 0) + 1)

            def heartbeat() -> bytes:
                return packb({"t": "heartbeat", "instance": instance, "time": time.time(),
                              "counters": {"received": stats["sent_batches"] * batch, "decoded": 0,
                                           "malformed": 0, "lost": 0, "queue_drops": 0, "spooled": 0,
                                           "spool_bytes": 0, "dropped": 0, "processes": spec["procs"]}})

            await ws.send(heartbeat())
            window = asyncio.Semaphore(window_n)
            inflight: collections.deque[tuple[int, float, int]] = collections.deque()

            async def reader() -> None:
                async for raw in ws:
                    m = unpackb(raw, raw=False)
                    if m.get("t") == "ack":
                        now = time.time()
                        while inflight and inflight[0][0] <= m["id"]:
                            bid, sent, _count = inflight.popleft()
                            window.release()
                            if bid == m["id"]:
                                written = int(m.get("written", 0))
                                stats["all_acked_samples"] += written
                                stats["duplicates"] += bool(m.get("duplicate"))
                                if measure_from <= now < measure_until:
                                    stats["acked_samples"] += written
                                    stats["acked_batches"] += 1
                                    rtts.append(now - sent)
                    elif m.get("t") == "error":
                        stats["errors"].append(str(m.get("reason"))[:200])

            rtask = asyncio.create_task(reader())
            k = index * 7 + next_id
            next_beat = time.monotonic() + 5.0
            while time.time() < stop_at and not rtask.done():
                acquire = asyncio.ensure_future(window.acquire())
                await asyncio.wait({acquire, rtask}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                if not acquire.done():
                    acquire.cancel()
                    if not rtask.done():
                        stats["errors"].append(f"agent {index}: no ack for 60 s")
                    break
                body, offsets = templates[k % len(templates)]
                k += 1
                if offsets:
                    buf = bytearray(body)
                    base = time.time() - 0.25
                    step = 0.25 / len(offsets)
                    for j, off in enumerate(offsets):
                        pack_into(buf, off, base + j * step)
                    body = bytes(buf)
                message = prefix + packb(next_id) + samples_key + body
                inflight.append((next_id, time.time(), len(offsets) or batch))
                next_id += 1
                await ws.send(message)
                stats["sent_batches"] += 1
                stats["message_bytes"] += len(message)
                if time.monotonic() >= next_beat:
                    await ws.send(heartbeat())
                    next_beat = time.monotonic() + 5.0
            if rtask.done():  # the console closed the connection
                stats["closes"].append(ws.close_code)
                stats["unacked_at_drop"] += len(inflight)
                return next_id
            # the end: let the last acks come in, then close like an agent stopping
            deadline = time.monotonic() + 30
            while inflight and not rtask.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await ws.close(1000, "bench done")
            rtask.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await rtask
            return next_id

    print(json.dumps({"ready": True}), flush=True)
    tasks = [agent(i, url, token) for i, (url, token) in enumerate(spec["agents"])]
    c0 = time.process_time()
    await asyncio.gather(*tasks)
    stats["extensions"] = sorted(stats["extensions"])
    stats["errors"] = stats["errors"][:20]
    stats["rtts"] = [round(x, 4) for x in rtts]
    stats["all_welcomed_at"] = max(welcomed_at) if welcomed_at else None
    stats["cpu_s"] = time.process_time() - c0
    return stats


def load_main(args: argparse.Namespace) -> int:
    with open(args.spec) as fh:
        spec = json.load(fh)
    result = asyncio.run(load_main_async(spec))
    print(json.dumps({"result": result}), flush=True)
    return 0
