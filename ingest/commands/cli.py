"""``python -m ingest serve|dump|simulate|fields|metrics``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..model import fields, metrics
from ..pipeline.agent import Agent, AgentConfig, failure_line
from ..pipeline.faults import QUARANTINE_BYTES, QUARANTINE_NAME, QuarantineError
from ..pipeline.receiver import DEFAULT_QUEUE, DEFAULT_QUEUE_BYTES, DEFAULT_RCVBUF, SocketSetupError
from ..pipeline.state import MAX_PROCESSES
from . import dump

DEFAULT_SOCKET = "/run/wsgi-fleet/telemetry.sock"
#: Exit status when a thread of the agent ended unexpectedly (sysexits EX_SOFTWARE):
#: non-zero, so that systemd's Restart=on-failure starts a fresh agent.
EXIT_THREAD_ENDED = 70
log = logging.getLogger("ingest")


def _octal(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mode such as 0660") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not a permission mode")
    return mode


def _socket_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=DEFAULT_SOCKET,
                   help="path given to WSGITelemetryService unix:PATH (default %(default)s)")
    p.add_argument("--socket-mode", type=_octal, default=0o660, metavar="MODE",
                   help="permissions of the socket file (default 0660)")
    p.add_argument("--socket-group", metavar="GROUP",
                   help="group of the socket file: Apache's daemon user must be in it")
    p.add_argument("--local-senders", action="store_true",
                   help="the senders run as this agent's user (a simulator, a test): no warnings "
                        "about whether other users can reach the socket")
    p.add_argument("--rcvbuf", type=int, default=DEFAULT_RCVBUF, help=argparse.SUPPRESS)
    p.add_argument("--queue", type=int, default=DEFAULT_QUEUE, metavar="N",
                   help="datagrams held between the receive and decode threads (default %(default)s)")
    p.add_argument("--queue-bytes", type=int, default=DEFAULT_QUEUE_BYTES, metavar="N",
                   help="bytes of datagrams held there at most (default %(default)s): "
                        "what does not fit in either bound is dropped and counted as queue drops")
    p.add_argument("--max-processes", type=int, default=MAX_PROCESSES, metavar="N",
                   help="processes tracked at once (default %(default)s; as many ended ones are kept): "
                        "when full, the one silent the longest is forgotten and counted as evicted")
    p.add_argument("--capture", metavar="FILE",
                   help="also write every received datagram to FILE (.gz to compress)")


def _config(args: argparse.Namespace, log_interval: float) -> AgentConfig:
    return AgentConfig(socket=args.socket, socket_mode=args.socket_mode, socket_group=args.socket_group,
                       local_senders=args.local_senders, rcvbuf=args.rcvbuf, max_queue=args.queue,
                       max_queue_bytes=args.queue_bytes,
                       max_processes=args.max_processes, log_interval=log_interval,
                       capture=args.capture, stats_file=getattr(args, "stats_file", None),
                       quarantine=_quarantine_path(args))


def _quarantine_path(args: argparse.Namespace) -> str | None:
    """``--quarantine``, else a file in the spool directory when there is one."""
    path = getattr(args, "quarantine", None)
    if path is None and getattr(args, "console", None) and getattr(args, "spool_dir", None):
        path = os.path.join(args.spool_dir, QUARANTINE_NAME)
    return path or None


def run_agent(agent: Agent, done: threading.Event | None = None, forwarder: Any = None,
              drain_timeout: float = 10.0, spooling: bool = False, local: Any = None) -> int:
    """Start the agent and run until SIGTERM/SIGINT (or ``done``), then drain.

    The signal handlers go in before the socket exists, so a SIGTERM that
    arrives as soon as the socket appears still stops the agent cleanly.
    Should a thread of the agent end on its own, it returns
    EXIT_THREAD_ENDED after one log line saying which and why. ``local``: the
    local view's server (``localserve.LocalServer``), started after the agent.
    """
    stop = done or threading.Event()
    failure = None
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if forwarder is not None:
            forwarder.start()
        agent.start()
        if local is not None:
            local.start()
    except (SocketSetupError, QuarantineError) as exc:
        log.error("%s", exc)
        agent.stop()  # nothing when it did not start
        if forwarder is not None:
            forwarder.stop(0)
        return 2
    try:
        while not stop.wait(0.5):
            failure = agent.failure()
            if failure is not None:
                log.critical("%s; exiting with status %d so that the supervisor restarts the agent",
                             failure_line(failure), EXIT_THREAD_ENDED, exc_info=failure[1])
                break
    finally:
        agent.stop()  # first: its last datagrams still reach the forwarder
        if local is not None:
            local.stop()
        if forwarder is not None and not forwarder.stop(drain_timeout):
            log.warning("console did not take every batch before the deadline; the rest %s",
                        "stays in the spool" if spooling else "is lost (no --spool-dir)")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if failure is None else EXIT_THREAD_ENDED


def _forwarder(args: argparse.Namespace, agent: Agent) -> Any:
    """The console forwarder for ``--console``, or None when running standalone."""
    if not args.console:
        return None
    from ..pipeline.forwarder import Forwarder

    if not args.token_file:
        raise SystemExit("serve: --console needs --token-file (the host's agent token)")
    try:
        with open(args.token_file) as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise SystemExit(f"serve: cannot read --token-file {args.token_file}: {exc.strerror}") from None
    ssl_context = None
    if args.ca_file:
        import ssl

        ssl_context = ssl.create_default_context(cafile=args.ca_file)
    url = args.console.rstrip("/")
    for http, ws in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(http):  # the console's page address works too
            url = ws + url[len(http):]
    if not url.endswith("/ws/agent"):
        url += "/ws/agent"
    forwarder = Forwarder(url + "/", token, hostname=args.hostname, spool_dir=args.spool_dir,
                          spool_max_bytes=args.spool_max_bytes, spool_max_age=args.spool_max_age,
                          batch_interval=args.batch_interval, counters=agent.counters,
                          marks=agent.state.marks, ssl=ssl_context)
    agent.listeners.append(forwarder)
    agent.resume(forwarder.ledger)
    agent.more = forwarder.own_counters
    return forwarder


def _batch_interval(text: str) -> float:
    value = float(text)
    if not 0.01 <= value <= 0.25:
        raise argparse.ArgumentTypeError("must be between 0.01 and 0.25 seconds")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    agent = Agent(_config(args, args.log_interval))
    try:
        forwarder = _forwarder(args, agent)
    except Exception as exc:  # bad URL, unusable or locked spool directory
        log.error("cannot forward to the console: %s", exc)
        return 2
    local = None
    if not args.no_local_socket:
        from ..pipeline import localserve

        local = localserve.attach(agent, args.local_socket, args.local_socket_mode, args.hostname)
    return run_agent(agent, forwarder=forwarder, drain_timeout=args.drain_timeout,
                     spooling=bool(args.spool_dir), local=local)


def cmd_dump(args: argparse.Namespace) -> int:
    printer = dump.Printer(sys.stdout, as_json=args.json, verbose=args.verbose, count=args.count)
    if args.input:
        return dump.run_input(args.input, printer)
    agent = Agent(_config(args, log_interval=0))
    agent.listeners.append(printer)
    agent.error_listeners.append(
        lambda data, exc: print(dump.malformed_note(None, data, exc), file=sys.stderr, flush=True))
    status = run_agent(agent, printer.finished)
    if status == 0:
        print(dump.summary_line(agent.state), file=sys.stderr)
    return status


def cmd_simulate(args: argparse.Namespace) -> int:
    from . import simulate

    return simulate.main(args)


def cmd_fields(args: argparse.Namespace) -> int:
    sys.stdout.write(fields.markdown_table())
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    sys.stdout.write(metrics.js_module() if args.js else metrics.markdown_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wsgi-fleet agent {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="receive mod_wsgi telemetry on the socket and keep process state")
    _socket_options(serve)
    serve.add_argument("--log-interval", type=float, default=60.0, metavar="SECONDS",
                       help="seconds between status log lines; 0 turns them off (default %(default)s)")
    serve.add_argument("--console", metavar="URL",
                       help="forward samples to this console, e.g. wss://console.example/ "
                            "(/ws/agent/ is added)")
    serve.add_argument("--token-file", metavar="PATH", help="file holding this host's agent token")
    serve.add_argument("--spool-dir", metavar="DIR",
                       help="keep unacknowledged batches here too, the open one included, so they survive "
                            "an agent restart or kill; the loss counters and each process's place in its "
                            "sequence are kept here as well, and continued by the next run")
    serve.add_argument("--spool-max-bytes", type=int, default=64 << 20, metavar="N")
    serve.add_argument("--spool-max-age", type=float, default=3600.0, metavar="SECONDS")
    serve.add_argument("--batch-interval", type=_batch_interval, default=0.1, metavar="SECONDS",
                       help="seal and send a batch this often (default %(default)s; the protocol allows "
                            "up to 0.25): shorter is fresher on screen, longer is fewer messages")
    serve.add_argument("--hostname", help="this host's name as the agent reports it (default: gethostname())")
    serve.add_argument("--ca-file", metavar="PATH", help="CA bundle to verify a wss:// console with")
    serve.add_argument("--drain-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="on SIGTERM, how long to keep delivering to the console (default %(default)s)")
    serve.add_argument("--stats-file", metavar="FILE",
                       help="write the agent's counters and per-process state as JSON here on exit")
    serve.add_argument("--quarantine", metavar="FILE",
                       help="keep the datagrams that caused internal errors in this capture file, "
                            f"the latest {QUARANTINE_BYTES >> 20} MiB of them (read it with dump --input; "
                            f"default: {QUARANTINE_NAME} in --spool-dir when forwarding with one, else none)")
    serve.add_argument("--local-socket", metavar="PATH",
                       help="serve the agent's own view of this host (python -m ingest top --local) on this "
                            "UNIX socket (default: --socket's name with .top.sock, e.g. telemetry.top.sock; "
                            "skipped with a warning when something else holds it)")
    serve.add_argument("--no-local-socket", action="store_true", help="do not serve the local view")
    serve.add_argument("--local-socket-mode", type=_octal, default=0o600, metavar="MODE",
                       help="permissions of the local view's socket (default 0600: its owner only)")
    serve.set_defaults(func=cmd_serve)

    d = sub.add_parser("dump", help="print every datagram, from the socket or a capture file")
    _socket_options(d)
    d.add_argument("--input", metavar="FILE", help="read a capture file (u32 length + bytes, gzip allowed)")
    d.add_argument("--json", action="store_true", help="JSON lines instead of readable lines")
    d.add_argument("-v", "--verbose", action="store_true", help="print every field under each line")
    d.add_argument("--count", type=int, default=0, metavar="N", help="stop after N datagrams")
    d.set_defaults(func=cmd_dump)

    sim = sub.add_parser("simulate", help="send a synthetic mod_wsgi fleet's datagrams to a socket")
    from . import simulate

    simulate.add_arguments(sim)
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="the agent fed by a simulated fleet, with live output")
    from . import demo as demo_module

    demo_module.add_arguments(demo)
    demo.set_defaults(func=lambda args: demo_module.run(args))

    top = sub.add_parser("top", help="the terminal monitor: one host or the fleet, from a console or "
                                     "the agent on this box")
    from .. import top as top_module

    top_module.add_arguments(top)
    top.set_defaults(func=top_module.main, parser=top)

    f = sub.add_parser("fields", help="print the field table as Markdown")
    f.set_defaults(func=cmd_fields)

    m = sub.add_parser("metrics", help="print the metric table as Markdown (docs/metrics.md)")
    m.add_argument("--js", action="store_true",
                   help="as the pages' ES module instead (static/console/metrics.js)")
    m.set_defaults(func=cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser: ``top`` exits 64 on a bad line (2 means "no answer")
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        return args.func(args)
    except BrokenPipeError:  # dump | head
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
