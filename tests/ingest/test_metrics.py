"""The metric table: the generated references are fresh, every name is the table's, and
the subsets the console sends compute what the full ``derive`` does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.commands.cli import main
from ingest.model import frames, metrics
from ingest.model.kinds import STARTED, TICK

ROOT = Path(__file__).resolve().parents[2]


def test_docs_metric_reference_is_generated_from_the_table():
    assert (ROOT / "docs" / "metrics.md").read_text() == metrics.markdown_table()


def test_the_pages_metric_module_is_generated_from_the_table():
    assert (ROOT / "static" / "console" / "metrics.js").read_text() == metrics.js_module()


def test_the_command_prints_both(capsys):
    assert main(["metrics"]) == 0
    assert capsys.readouterr().out == metrics.markdown_table()
    assert main(["metrics", "--js"]) == 0
    assert capsys.readouterr().out == metrics.js_module()


def test_names_are_unique_and_every_fold_is_known():
    assert len(metrics.BY_NAME) == len(metrics.METRICS)
    for m in metrics.METRICS:
        assert {m.seconds, m.groups, m.hosts} <= metrics.FOLDS, m.name
        assert m.unit and m.description and m.formula, m.name


def test_every_set_the_console_sends_names_metrics_of_the_table():
    for names in (metrics.HOST_FRAME, metrics.SERIES, metrics.FLEET, [n for n, _ in metrics.TICK_FIELDS]):
        assert set(names) <= set(metrics.BY_NAME)
    # every metric the console sends is computed from frame sums, except the two the registry and
    # the lifecycle events give (the Processes tab's restarts and processes alive)
    assert [m.name for m in metrics.METRICS if m.compute is None] == ["restarts", "processes_live"]


def test_restarts_mean_one_thing():
    """The fleet row and the Processes tab both count processes that stopped (restarts); a
    new host's first processes are ``started``, which no page calls restarts."""
    assert "restarts" in metrics.FLEET and "started" not in metrics.FLEET
    assert metrics.BY_NAME["started"].formula == "up"
    assert metrics.BY_NAME["restarts"].label == "Restarts"
    assert not metrics.BY_NAME["started"].label.startswith("R")


def _tick_second(t: int, period: float, requests: int, rss: float = 1e8) -> frames.Frame:
    frame: frames.Frame = {}
    frames.frame_add(frame, {"k": TICK, "f": {
        "sample_period": period, "request_threads_maximum": 4, "request_count": requests,
        "status_2xx_total": requests, "memory_rss": rss, "request_time": 0.01 * requests,
        "request_time_buckets": {12: requests}}})
    return frame


def test_a_headline_is_the_complete_seconds_merged_not_the_newest_one():
    """Ten seconds of two processes, one of whose ticks drifts so that one second holds two of
    them and the next none: the headline's rates and process count are the span's, steady."""
    seconds = []
    for t in range(100, 110):
        frame = frames.merge([_tick_second(t, 1.0, 30), _tick_second(t, 1.0, 20)])
        seconds.append((t, frame))
    # process B's ticks of 106 and 107 both land in 106
    seconds[6] = (106, frames.merge([_tick_second(106, 1.0, 30), _tick_second(106, 1.0, 20),
                                     _tick_second(107, 1.0, 20)]))
    seconds[7] = (107, _tick_second(107, 1.0, 30))
    head = frames.headline(seconds, 110)
    assert head is not None
    assert head["throughput"] == pytest.approx(50.0) and head["requests"] == 500
    assert head["processes"] == pytest.approx(2.0)
    assert head["memory_rss"] == pytest.approx(2e8)
    # the one second alone reads half again as much: what the fleet row used to show
    assert frames.derive(seconds[6][1], 1.0)["processes"] == pytest.approx(3.0)
    # exact percentiles of the merged histograms, not a fold of per-second ones
    merged = frames.merge(frame for _, frame in seconds)
    assert head["request_p95"] == frames.derive(merged, 10.0)["request_p95"]


def test_a_headline_counts_from_the_first_second_with_data_and_only_complete_seconds():
    seconds = [(t, _tick_second(t, 1.0, 10)) for t in range(105, 111)]
    head = frames.headline(seconds, 110)  # 110 is not complete: left out
    assert head is not None and head["requests"] == 50 and head["throughput"] == pytest.approx(10.0)
    assert frames.headline(seconds, 100) is None


def _frame() -> frames.Frame:
    frame: frames.Frame = {}
    tick = {"sample_period": 1.0, "request_threads_maximum": 4, "request_count": 10, "status_2xx_total": 9,
            "status_5xx_total": 1, "capacity_utilization": 0.5, "cpu_utilization": 0.25, "memory_rss": 1e8,
            "request_time": 0.02, "request_time_min": 0.001, "request_time_max": 0.3,
            "request_time_buckets": {20: 8, 40: 2, -1: 65}}
    frames.frame_add(frame, {"k": TICK, "f": tick})
    frames.frame_add(frame, {"k": STARTED, "f": {}})
    return frame


FROM_SUMS = tuple(n for n in metrics.FLEET if metrics.BY_NAME[n].compute)


@pytest.mark.parametrize("names", [metrics.HOST_FRAME, FROM_SUMS, metrics.SERIES])
def test_a_subset_computes_what_the_whole_table_does(names):
    frame = _frame()
    assert frames.derive(frame, 2.0, names) == {n: frames.derive(frame, 2.0)[n] for n in names}


def test_the_old_hop_names_are_gone():
    derived = frames.derive(_frame(), 1.0)
    for old in ("rss", "p50", "p95", "p99", "restarts", "rate_2xx", "rss_per_process"):
        assert old not in derived
    assert derived["memory_rss"] == 1e8 and derived["started"] == 1 and derived["status_2xx_rate"] == 9


def test_the_pages_read_metrics_by_the_tables_names():
    """The Overview's chart columns and the fleet page's marked cells name metrics of the table
    (the rest of the names the pages use come from static/console/metrics.js itself)."""
    console = ROOT / "static" / "console"
    overview = (console / "tabs" / "overview.js").read_text()
    charted = {name for columns in re.findall(r"columns: \[([^\]]*)\]", overview)
               for name in re.findall(r'"([a-z0-9_]+)"', columns)}
    assert charted and charted <= set(metrics.SERIES), charted - set(metrics.SERIES)
    fleet = (console / "fleet.js").read_text()
    marks = fleet[fleet.index("const MARKS = {"):]
    marked = set(re.findall(r"^  ([a-z0-9_]+): ", marks[:marks.index("};")], re.M))
    assert marked and marked <= set(metrics.FLEET), marked - set(metrics.FLEET)
