"""Every figure against what real Apache + mod_wsgi served: the fleet row, the host frame's
headline, the window's totals per status class and per process group, the process count
and the restarts, through the live protocol the pages receive and off the pages themselves.

Two Apache instances (two mod_wsgi process groups: two processes and one) feed one agent,
so the host apache-2 has two groups and three processes. A known request mix goes to each
at once; the fleet row's rates are the last 10 complete seconds, so while the whole mix
lies in them, rate x 10 is the mix's count, exactly. A graceful restart of one instance
replaces its two processes: two restarts, on the fleet row and on the Processes tab.
"""

from __future__ import annotations

import threading

import pytest
from browser_support import PYTHON, Tab, messages, row, wait_for, wait_message
from support.modwsgi import ModWsgiServer, send_mix, skip_unless_available, tally, work_dir

pytestmark = [pytest.mark.browser, pytest.mark.modwsgi]

HOST = "apache-2"
MIX_A = {"/": 20, "/nf": 5, "/err": 2}
MIX_B = {"/": 6, "/nf": 2, "/err": 1}
CODES = {"/": 200, "/nf": 404, "/err": 500}
SPAN = 10  # the fleet row's headline span (ingest.model.metrics.HEADLINE_SPAN)
TOTALS_SAY = "t => document.querySelector('#status-totals').textContent.includes(t)"
#: The fleet row's metrics that are its host's headline (restarts and processes_live are the registry's).
FLEET_FIELDS = ("throughput", "capacity", "request_p95", "status_4xx_rate", "status_5xx_rate", "slow_active")


def by_class(*mixes: dict[str, int]) -> dict[int, int]:
    out = {200: 0, 404: 0, 500: 0}
    for mix in mixes:
        for path, n in mix.items():
            out[CODES[path]] += n
    return out


def rows_of(tab: Tab, since: int = 0) -> list[dict]:
    """The fleet rows of HOST the fleet page was sent, oldest first."""
    return [entry for m in messages(tab, "fleet.update", "fleet.snapshot", since=since)
            for entry in m["hosts"] if entry["name"] == HOST]


def run_mixes(a: ModWsgiServer, b: ModWsgiServer) -> None:
    """Both mixes at once, so both land in one headline span; every response as asked."""
    results: dict[str, list] = {}
    threads = [threading.Thread(target=lambda s=s, m=m, k=k: results.__setitem__(k, send_mix(s.port, m)))
               for k, s, m in (("a", a, MIX_A), ("b", b, MIX_B))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert tally(results["a"]) == {(p, CODES[p]): n for p, n in MIX_A.items()}
    assert tally(results["b"]) == {(p, CODES[p]): n for p, n in MIX_B.items()}


def test_fleet_row_host_frames_and_tabs_agree_with_what_apache_served(tab, console):
    skip_unless_available()
    total = by_class(MIX_A, MIX_B)
    with work_dir("wf-br-ex-") as mw:
        token_file = mw / "agent.token"
        token_file.write_text(console.tokens[HOST] + "\n")
        token_file.chmod(0o600)
        sock = mw / "telemetry.sock"
        agent = console.spawn(
            [PYTHON, "-m", "ingest", "serve", "--socket", str(sock), "--socket-mode", "0666",
             "--console", console.url + "/", "--token-file", str(token_file),
             "--hostname", HOST, "--log-interval", "0"], "apache-2-agent.log")
        try:
            wait_for(sock.exists, 10, "the agent to bind its socket")
            shape = {"telemetry_socket": sock, "threads": 4, "interval": 0.5}
            with ModWsgiServer(mw, processes=2, name="a", **shape) as a, \
                    ModWsgiServer(mw, processes=1, name="b", **shape) as b:
                fleet = tab.page
                tab.login("bob", "/")
                # A host page open beside the fleet page, on the same login: its frames are recorded too.
                host = Tab(fleet.context.new_page(), console.url, console.fed_since)
                host.goto(f"/hosts/{HOST}/?tab=overview&window=300")
                # Three processes alive, and ticks for a whole headline span: the row's rates are
                # per 10 s from here on (before, per the seconds since the first tick).
                first = wait_message(tab, lambda m: m["type"] == "fleet.update" and any(
                    e["name"] == HOST and e["metrics"].get("processes_live") == 3
                    and e["metrics"].get("restarts") == 0 and e["metrics"].get("throughput") is not None
                    for e in m["hosts"]), 0, 40, "the fleet row to count three processes, ticking")
                wait_message(tab, lambda m: m["type"] == "fleet.update"
                             and m["now"] >= first["now"] + SPAN + 1, 0, 30, "a whole headline span of ticks")
                idle = [e["metrics"] for e in rows_of(tab)[-3:]]
                assert all(m["throughput"] == 0 for m in idle), idle
                since, host_since = len(tab.frames), len(host.frames)

                run_mixes(a, b)
                # The whole mix inside the row's 10 s: rate x 10 is its count, exactly.
                want = sum(total.values())
                whole = wait_message(tab, lambda m: m["type"] == "fleet.update" and any(
                    e["name"] == HOST and round((e["metrics"]["throughput"] or 0) * SPAN, 6) == want
                    for e in m["hosts"]), since, 30, f"the fleet row to read {want} requests over {SPAN} s")
                m = next(e for e in whole["hosts"] if e["name"] == HOST)["metrics"]
                assert round(m["status_4xx_rate"] * SPAN, 6) == total[404]
                assert round(m["status_5xx_rate"] * SPAN, 6) == total[500]
                assert m["processes_live"] == 3 and m["restarts"] == 0
                assert 0 < m["capacity"] < 1 and m["request_p95"] is not None and m["request_p95"] > 0
                # Never more than was served (the old row read 2-second points over 5: 2x).
                seen = [e["metrics"] for e in rows_of(tab, since)]
                assert max(round((r["throughput"] or 0) * SPAN, 6) for r in seen) == want
                assert {r["processes_live"] for r in seen} == {3}

                # The fleet page shows exactly that while it lasts.
                fleet.wait_for_function(
                    """([name, want]) => {
                         const tr = document.querySelector(`#fleet tbody tr[data-name="${name}"]`);
                         const cell = tr && tr.querySelector('[data-field="throughput"]');
                         return cell && Math.abs(parseFloat(cell.textContent) - want) < 1e-9;
                       }""", arg=[HOST, want / SPAN], timeout=10_000)
                cells = {f: row(fleet, HOST).locator(f'[data-field="{f}"]').text_content()
                         for f in ("status_4xx_rate", "status_5xx_rate", "processes_live", "restarts")}
                assert cells["processes_live"] == "3" and cells["restarts"] == "0", cells

                # The host page got the same numbers: each fleet row is the "*" headline of one
                # of its frames (one second's, both pages fed from it).
                frames = [f for f in messages(host, "host.frame", since=host_since) if f.get("recent")]
                headlines = [f["recent"]["groups"].get("*") for f in frames]
                for r in seen:
                    assert any(h and all(h[k] == r[k] for k in FLEET_FIELDS) for h in headlines), r
                # ... and per group: each instance's share, at the second that holds the whole mix.
                groups = sorted(g for g in frames[-1]["recent"]["groups"] if g != "*")
                assert len(groups) == 2, groups
                full = [f["recent"]["groups"] for f in frames
                        if round(f["recent"]["groups"]["*"]["requests"]) == want]
                assert full, "no host frame's headline held the whole mix"
                shares = sorted(round(full[0][g]["requests"]) for g in groups)
                assert shares == sorted([sum(MIX_A.values()), sum(MIX_B.values())])

                # The window's totals per status class, for the host and for one group.
                page = host.page
                totals = (f"2xx {total[200]} · 3xx 0 · 4xx {total[404]} · 5xx {total[500]}")
                page.wait_for_function(TOTALS_SAY, arg=totals, timeout=15_000)
                big = groups[0] if round(full[0][groups[0]]["requests"]) == sum(MIX_A.values()) else groups[1]
                host.goto(f"/hosts/{HOST}/?tab=overview&window=300&group={big}")
                share = by_class(MIX_A)
                page.wait_for_function(TOTALS_SAY, arg=f"2xx {share[200]} · 3xx 0 · 4xx {share[404]} · "
                                       f"5xx {share[500]}", timeout=15_000)

                # A graceful restart of instance a replaces its two processes: two restarts.
                before = len(tab.frames)
                graceful = a._run([str(a.apachectl), "graceful"], 20)
                assert graceful.returncode == 0, graceful.stdout + graceful.stderr
                wait_message(tab, lambda m: m["type"] == "fleet.update" and any(
                    e["name"] == HOST and e["metrics"].get("restarts") == 2 for e in m["hosts"]),
                    before, 40, "the fleet row to count two restarts")
                fleet.wait_for_function(
                    """name => parseFloat(document.querySelector(
                         `#fleet tbody tr[data-name="${name}"] [data-field="restarts"]`
                       ).textContent) === 2""",
                    arg=HOST, timeout=10_000)
                host.goto(f"/hosts/{HOST}/?tab=processes&window=3600")
                page.wait_for_function(
                    "() => document.querySelector('#proc-restarts').textContent.startsWith('2 in')",
                    timeout=15_000)
                assert host.errors == [], host.errors
        finally:
            agent.terminate()
            agent.wait(15)
