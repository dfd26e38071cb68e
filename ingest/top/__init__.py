"""``python -m ingest top``: the terminal monitor, against a console or the agent on this box.

Every view of the console in a terminal (docs/top.md): ``--console URL``
with a user API token (``--token-file``, or ``WSGI_FLEET_TOKEN``), for
one host (``--host``) or the fleet, or ``--local`` against the agent's
own socket, with no console at all. ``--once`` prints one snapshot (and
``--json`` as JSON) for scripts; its exit codes are in ``once.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

from .client import Target
from .once import USAGE

EPILOG = """exit codes of --once: 0 data came; 2 nothing answered within --timeout;
3 the console refused the token; 4 no such host (or not one of your teams');
5 the host sent no data in its last 10 s; 64 bad command line"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    def usage_error(message: str) -> None:  # 2 means "nothing answered" here: a bad line is 64
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: {message}", file=sys.stderr)
        sys.exit(USAGE)

    p.error = usage_error  # type: ignore[method-assign,assignment]
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    where = p.add_mutually_exclusive_group()
    where.add_argument("--console", metavar="URL", default=os.environ.get("WSGI_FLEET_CONSOLE"),
                       help="the console's address, e.g. https://console.example (env WSGI_FLEET_CONSOLE)")
    where.add_argument("--local", nargs="?", const="", metavar="SOCKET",
                       help="the agent running on this box, on its local socket (default: the one of an "
                            "agent on the default --socket, /run/wsgi-fleet/telemetry.top.sock)")
    p.add_argument("--token-file", metavar="FILE",
                   help="a file holding a user API token (manage.py createtoken USER); "
                        "else env WSGI_FLEET_TOKEN")
    p.add_argument("--ca-file", metavar="PATH", help="CA certificates for a console with a private CA")
    p.add_argument("--host", metavar="NAME", help="the host to show; without it, the fleet")
    p.add_argument("--group", default="*", metavar="GROUP",
                   help="one process group (default: the whole host; '' for embedded mode)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit (see the exit codes)")
    p.add_argument("--json", action="store_true", help="with --once: the snapshot as JSON (docs/top.md)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="with --once: seconds to wait for data (default %(default)s)")
    p.add_argument("--no-color", action="store_true", help="no colours (also when NO_COLOR is set)")


def target_of(args: argparse.Namespace) -> Target | str:
    """Where to connect, or why the command line cannot say."""
    if args.local is not None:
        from ..pipeline import localserve

        return Target(local=args.local or localserve.default_path(None))
    if not args.console:
        return "say where: --console URL (with --token-file), or --local for the agent on this box"
    token = os.environ.get("WSGI_FLEET_TOKEN")
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            return f"cannot read --token-file: {exc.strerror}: {args.token_file}"
    if not token:
        return "a console needs a user API token: --token-file FILE, or WSGI_FLEET_TOKEN"
    return Target(console=args.console, token=token, ca_file=args.ca_file)


def main(args: argparse.Namespace) -> int:
    target = target_of(args)
    if isinstance(target, str):
        print(f"wsgi-fleet top: {target}", file=sys.stderr)
        return USAGE
    host = args.host if args.host or target.local is None else "local"
    if args.once:
        from . import once

        return once.main(target, host, args.group, args.timeout, args.json, target.describe())
    if args.json:
        print("wsgi-fleet top: --json goes with --once", file=sys.stderr)
        return USAGE
    from . import app

    return app.main(target, host, args.group, color=not args.no_color)
