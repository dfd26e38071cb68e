"""Run only the ingest half of the reference ingester, for bench/agent/ (``python -m bench.agent``).

Run with the reference venv's interpreter::

    .venv-reference/bin/python bench/reference_harness.py --socket PATH [--out FILE]

It drives the reference's own ingester object (bind, receive, decode,
per-process window) exactly as its ``serve`` command does, minus the web
UI: with no browser connected that server only idles, so leaving it out
compares the two receive paths and nothing else. Logging is set up the way
``serve`` sets it up (INFO to stderr). On SIGTERM or SIGINT the receive
task is cancelled and the counters are printed (and written to ``--out``)
as JSON: ``{"received", "decode_errors", "seq_drops", "processes"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys

from mod_wsgi.telemetry.ingest import Ingester


def _octal(text: str) -> int:
    return int(text, 8)


async def _serve(args: argparse.Namespace) -> dict:
    ingester = Ingester(f"unix:{args.socket}", socket_mode=args.socket_mode)
    task = asyncio.create_task(ingester.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    processes = getattr(ingester, "processes", {})
    return {
        "received": ingester.total_received,
        "decode_errors": ingester.decode_errors,
        "seq_drops": sum(getattr(p, "drops", 0) for p in processes.values()),
        "processes": len(processes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="path of the UNIX datagram socket to bind")
    parser.add_argument("--socket-mode", type=_octal, default=0o666)
    parser.add_argument("--out", help="also write the JSON counters to this file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        result = asyncio.run(_serve(args))
    finally:
        with contextlib.suppress(FileNotFoundError):  # the reference leaves its socket file behind
            os.unlink(args.socket)
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
