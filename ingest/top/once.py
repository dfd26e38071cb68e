"""``top --once``: one snapshot as text or JSON, for scripts and health checks.

Exit codes (documented in ``top --help`` and docs/top.md):

== ==============================================================
0  data came: the snapshot is printed
2  nothing answered within ``--timeout`` (console or agent unreachable)
3  the console refused the token
4  no such host (or not one of the user's teams)
5  the host is known but sent no data in its last 10 s
64 bad command line
== ==============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from ..model.records import display
from . import fmt, views
from .client import Link, Target
from .model import Model

OK, TIMEOUT, REFUSED, UNKNOWN_HOST, NO_DATA, USAGE = 0, 2, 3, 4, 5, 64


class Once:
    """Waits for what one snapshot needs, or for the reason there will be none."""

    def __init__(self, target: Target, host: str | None, group: str) -> None:
        self.model = Model()
        self.host, self.group = host, group
        self.link = Link(target, self.received, self.state)
        self.done = asyncio.Event()
        self.code: int | None = None
        self.reason = ""
        self.last_state = ""
        self.local = target.local is not None
        if self.local and host is not None:  # the agent serves its own host: no name to look up
            self.link.wanted = self.host_subscribe(None)

    def state(self, state: str) -> None:
        self.last_state = state
        if self.link.refused:
            self.finish(REFUSED, self.link.refused)

    def finish(self, code: int, reason: str = "") -> None:
        if self.code is None:
            self.code, self.reason = code, reason
            self.done.set()

    def host_subscribe(self, host_id: Any) -> dict[str, Any]:
        return {"type": "subscribe", "scope": "host", "host": host_id, "tab": "top", "group": self.group,
                "window": 600, "points": 120}

    def received(self, message: dict[str, Any]) -> None:
        self.model.apply(message)
        kind = message.get("type")
        if kind == "fleet.snapshot" and not (self.local and self.host is not None):
            if self.host is None:
                self.finish(OK)
                return
            found = self.model.find_host(self.host)
            if found is None:
                self.finish(UNKNOWN_HOST, f"no host {self.host!r} among the {len(self.model.fleet)} "
                                          "hosts this token's user may see")
                return
            self.link.ask(self.host_subscribe(found["id"]))
        elif kind == "host.snapshot" and self.model.host is not None:
            state = self.model.host.agent_state
            if not state.get("online"):
                seen = state.get("last_seen")
                when = f"last heard from {fmt.clock(seen)}" if seen else "no agent has sent it anything"
                self.finish(NO_DATA, f"host {self.host!r} is offline: {when}")
        elif kind == "error" and message.get("reason") == "no such host":
            self.finish(UNKNOWN_HOST, f"no host {self.host!r}")
        elif kind == "tab.snapshot" and self.model.host is not None and self.code is None:
            # the snapshot's header and process rows are the same ten seconds
            figures, _ = self.model.headline()
            if figures is None:
                self.finish(NO_DATA, f"host {self.host!r} sent no data in its last 10 s")
            else:
                self.finish(OK)

    async def run(self, timeout: float) -> int:
        task = asyncio.ensure_future(self.link.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if self.code is None and self.model.host is not None:  # the console answered, the host did not
            self.finish(NO_DATA, f"host {self.host!r} sent no complete second within {timeout:g} s")
        if self.code is None:
            said = self.last_state or "no connection"
            self.finish(TIMEOUT, f"nothing answered within {timeout:g} s: {said}")
        assert self.code is not None
        return self.code


def snapshot_json(model: Model) -> dict[str, Any]:
    """The documented JSON of ``--once --json`` (docs/top.md)."""
    if model.host is None:
        return {"type": "fleet", "now": model.console_now(),
                "hosts": [views.fleet_row(model, e) for e in model.fleet.values()]}
    figures, span = model.headline()
    return {"type": "host", "now": model.console_now(), "host": model.host.name, "group": model.host.group,
            "span": span, "metrics": figures, "agent": model.host.agent,
            "processes": model.process_rows(model.host.until)}


def main(target: Target, host: str | None, group: str, timeout: float, as_json: bool, source: str) -> int:
    once = Once(target, host, group)
    started = time.monotonic()
    code = asyncio.run(once.run(timeout))
    model = once.model
    if code == OK:
        if as_json:
            # strict JSON: a figure that is not finite (0/0 of an agent's nonsense) is null
            print(json.dumps(display(snapshot_json(model)), allow_nan=False, default=str))
        else:
            lines = views.header(model, source, "once")
            lines += views.fleet(model, views.ViewState()) if model.host is None else \
                views.processes(model, views.ViewState(view="processes"), model.host.until)
            print("\n".join(text for text, _ in lines))
    else:
        print(f"wsgi-fleet top: {once.reason} (after {time.monotonic() - started:.1f} s)", file=sys.stderr)
    return code
