"""bench/fuzz_pipeline.py, small and seeded: hostile telemetry through real agents into a real console.

One run per store kind (the in-process store; a Redis of its own), each with
every field of the table re-encoded with every wrong wire type and every
forbidden or extreme value, plus mutants of the real captures (20,000 on the
in-process store, 5,000 on Redis: the same code path, kept short), sent to
the hostile host's real agent while a clean host is fed alongside. Each test
checks one property of the run (tests/support/fuzz_verdict.py lists them);
a failure names what broke, and the run's figures say the rest. The browser
test then loads every tab of the hostile host, the fleet page and the clean
host's page in headless Chromium against the same console.

No assertion is on wall or CPU time: a busy machine only makes the run slower.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.fuzz_pages import CHROMIUM, launch
from support.fuzz_rig import tracebacks
from support.hostile import VALUE_OF_TAG
from support.required import missing

from bench import fuzz_pipeline as fp
from ingest.model.fields import FIELDS

RUNS = {"memory": {"count": 20_000, "seed": 7, "redis": False},
        "redis": {"count": 5_000, "seed": 8, "redis": True}}
WINDOWS = (300, 1_209_600)


@pytest.fixture(scope="module", params=sorted(RUNS))
def run(request: pytest.FixtureRequest) -> Iterator[tuple[Any, dict[str, Any]]]:
    """One finished run: the hostile agent stopped (its stats read), the console and the clean
    agent still up for the browser test."""
    work = Path(tempfile.mkdtemp(prefix="wf-fz-", dir="/tmp"))  # short: AF_UNIX paths
    options = fp.Options(windows=WINDOWS, progress=0, browser=request.param == "memory",
                         **RUNS[request.param])
    pipeline = fp.Pipeline(work, options)
    keep = bool(os.environ.get("WF_E2E_KEEP"))
    try:
        pipeline.start()
        pipeline.traffic()
        pipeline.settle()
        pipeline.stop_agent(fp.HOSTILE)
        report = pipeline.report()
        keep = keep or bool(report["problems"])
        print(f"\nfuzz-pipeline {request.param}: {json.dumps(summary(report))}\nlogs in {work}")
        yield pipeline, report
    finally:
        pipeline.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("sent", "accepted", "rejected", "tracebacks", "closes", "agent", "console_counters", "problems",
            "wall_seconds")
    return {k: report[k] for k in keys}


def context(report: dict[str, Any]) -> str:
    """What to read when an assertion fails: every problem of the run, and its tracebacks."""
    texts = "\n\n".join(t for texts in report["traceback_texts"].values() for t in texts[:2])
    return "problems:\n- " + "\n- ".join(report["problems"]) + ("\n\n" + texts if texts else "")


def test_the_run_sent_every_kind_of_hostile_datagram(run) -> None:
    _, report = run
    wrong_types = len(FIELDS) * (len(VALUE_OF_TAG) - 1) * 2  # each alone and in a real datagram
    assert report["sent"]["crafted"] > wrong_types
    assert report["sent"]["hostile"] == report["sent"]["crafted"] + report["count"] + 1  # + the final tick
    assert report["sent"]["unsendable"] == 0
    assert report["rejected_by_breach"]["wrong wire type"] >= wrong_types  # mutants add their own
    for breach in ("float not finite or out of bounds", "integer out of bounds", "text not UTF-8", "too long",
                   "wrong array length", "count array item negative or huge", "slot arrays disagree"):
        assert report["rejected_by_breach"].get(breach), breach
    assert report["accepted"] > report["count"] // 10  # mutants that still decode reach the console
    assert report["decoder_crashes"] == []


def test_no_traceback_in_any_log(run) -> None:
    _, report = run
    assert report["tracebacks"] == {"agent fuzz-hostile": 0, "agent fuzz-clean": 0, "console": 0}, \
        context(report)


def test_no_live_or_agent_connection_was_closed_under_the_traffic(run) -> None:
    _, report = run
    assert report["closes"]["live"] == {}, context(report)
    for codes in report["closes"]["agent"].values():
        assert not set(codes) & {"1011", "4400", "4503"}, context(report)
    assert report["views"]["reader"]["closed"] is None


def test_the_hostile_agent_counted_every_datagram_and_kept_decoding(run) -> None:
    _, report = run
    counters = report["agent"]["fuzz-hostile"]
    assert report["agent_exit"]["fuzz-hostile"] == 0, context(report)
    assert counters["received"] == report["sent"]["hostile"], context(report)
    assert counters["received"] == counters["decoded"] + counters["malformed"], context(report)
    assert (counters["decoded"], counters["malformed"]) == (report["accepted"], report["rejected"]), \
        context(report)
    assert counters["queue_drops"] == counters["internal_errors"] == 0, context(report)
    assert report["aborted"] is None


def test_the_consoles_counters_for_the_host_match_the_agents(run) -> None:
    _, report = run
    console = report["console_counters"]["fuzz-hostile"]
    agent = report["agent"]["fuzz-hostile"]
    assert {k: console.get(k) for k in ("received", "decoded", "malformed")} == \
        {k: agent[k] for k in ("received", "decoded", "malformed")}, context(report)


def test_a_valid_tick_sent_after_the_hostile_ones_reaches_the_console(run) -> None:
    _, report = run
    assert report["final_tick_requests"] == report["final_tick_sent"], context(report)


def test_the_clean_host_stays_exact_in_the_store_and_on_the_live_path(run) -> None:
    _, report = run
    clean = report["clean"]
    assert clean["sent"]["requests"] > 0 and clean["seconds_sent"] >= 3
    assert clean["stored"] == clean["sent"], context(report)
    assert clean["live"] == clean["sent"], context(report)
    assert clean["seconds_missing"] == [], context(report)


def test_every_snapshot_and_live_message_is_finite_json_without_errors(run) -> None:
    _, report = run
    reader = report["views"]["reader"]
    assert reader["asked"] >= len(WINDOWS) * 5 * 2 + 1
    assert reader["failed"] == {} and reader["non_finite"] == [], context(report)
    assert not any(row.get("error") for row in report["views"]["fleet_rows"].values()), context(report)
    assert report["live"]["non_finite"] == 0 and report["live"]["errors"] == {}, context(report)
    assert report["live"]["connections"] == 11 and report["live"]["messages"] > 0


def test_the_run_found_no_other_problem(run) -> None:
    _, report = run
    assert report["problems"] == [], context(report)


@pytest.mark.browser
@pytest.mark.parametrize("run", ["memory"], indirect=True)  # one browser check, on the in-process store
def test_the_pages_render_after_the_hostile_traffic(run) -> None:
    """Every tab of the hostile host and the fleet page load without a JavaScript error, and
    the clean host's page still shows live data (its agent is fed again meanwhile)."""
    pipeline, _ = run
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is missing: run scripts/setup, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    pipeline.start_live_feed()
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            pages = pipeline.pages(browser)
        finally:
            browser.close()
    print(json.dumps(pages, indent=1))
    assert {name: issues for name, issues in pages["pages"].items() if issues} == {}
    assert pages["clean_readout"], "the clean host's page shows no live throughput"
    count, texts = tracebacks(pipeline.site.log)
    assert count == 0, "\n\n".join(texts)
