"""``top --once --json`` against real Apache + mod_wsgi, through a real agent and console: its
totals are the request mix Apache served, and its process rows add up to them."""

from __future__ import annotations

import pytest
from support.console import unique
from support.modwsgi import ModWsgiServer, send_mix, skip_unless_available, tally, work_dir
from top_helpers import http_url, token_file, top_json

from stack.procs import wait_until

pytestmark = pytest.mark.modwsgi

MIX = {"/": 24, "/nf": 6, "/err": 3}
CODES = {"/": 200, "/nf": 404, "/err": 500}
SPAN = 10  # the header's span, ingest.model.metrics.HEADLINE_SPAN


def test_once_json_totals_are_what_apache_served(deploy):
    skip_unless_available()
    tag = unique()
    host, user = f"{tag}-apache", f"{tag}-ann"
    dep = deploy({f"{tag}-t": {"hosts": [host], "users": [user]}})
    url, token = http_url(dep), token_file(dep, user)
    args = ("--console", url, "--token-file", token, "--host", host)
    with work_dir("wf-top-mw-") as mw:
        agent = dep.agent(host, sock=mw / "telemetry.sock")
        with ModWsgiServer(mw, telemetry_socket=agent.sock, processes=3, threads=4, interval=0.5) as server:
            def ticking_whole_span() -> bool:  # three processes, idle, for a whole span
                code, snap = top_json(*args)
                rows = snap["processes"] if code == 0 else []
                return len([r for r in rows if r["state"] == "running" and r["span"] >= SPAN]) == 3 \
                    and snap["metrics"]["requests"] == 0
            assert wait_until(ticking_whole_span, 60, step=1), dep.diagnostics()

            assert tally(send_mix(server.port, MIX)) == {(p, CODES[p]): n for p, n in MIX.items()}
            want = sum(MIX.values())
            seen: list[dict] = []

            def whole_mix() -> bool:
                code, snap = top_json(*args)
                seen.append(snap)
                # the whole mix in the header's 10 s, and rows over those very seconds
                return code == 0 and snap["metrics"]["requests"] == want and all(
                    r["span"] == SPAN for r in snap["processes"] if r["state"] == "running")
            assert wait_until(whole_mix, 30, step=0.5), [
                (s["span"]["until"], s["metrics"]["requests"], [r["span"] for r in s["processes"]])
                for s in seen[-5:] if isinstance(s, dict)]
            snap = seen[-1]
            m = snap["metrics"]
            assert round(m["throughput"] * SPAN, 6) == want
            assert round(m["status_4xx_rate"] * SPAN, 6) == MIX["/nf"]
            assert round(m["status_5xx_rate"] * SPAN, 6) == MIX["/err"]
            assert round(m["status_2xx_rate"] * SPAN, 6) == MIX["/"]
            assert m["processes"] == pytest.approx(3, abs=0.05)  # a time-weighted mean
            # never more than was served, whichever second a snapshot was taken at
            assert max(s["metrics"]["requests"] for s in seen if isinstance(s, dict)) == want
            rows = [r for r in snap["processes"] if r["state"] == "running"]
            assert len(rows) == 3 and all(r["threads"] == 4 for r in rows), rows
            # the rows' seconds are the header's: their requests add up to the mix, per status too
            assert sum(r["requests"] for r in rows) == want, rows
            assert round(sum(r["status_4xx_rate"] for r in rows) * SPAN, 6) == MIX["/nf"]
            assert round(sum(r["status_5xx_rate"] for r in rows) * SPAN, 6) == MIX["/err"]
