"""The Overview in a real browser: readouts over the last complete seconds that say their
span, charts that end at the newest complete second, axes on round values in one time
format, the latency chart's log/linear switch in the URL; the phase panels' weighted
means, the latency histogram with percentiles inside the observed min/max, hover, and
the phase in the URL."""

from __future__ import annotations

import itertools
import math
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from browser_support import messages, number, query_of, wait_readout

pytestmark = pytest.mark.browser

PHASES = ["server", "queue", "daemon", "application", "request", "gil_wait", "input_read", "output_write"]


def seconds(text: str) -> float | None:
    """"12 ms" / "1.5 s" / "0.42 ms" as seconds."""
    match = re.match(r"\s*([0-9.]+)\s*(ms|s)\b", text)
    if not match:
        return None
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def test_phase_breakdown_and_histogram_show_the_windows_requests(tab):
    tab.login("ann", "/hosts/web-3/?tab=overview&window=300")
    page = tab.page
    page.wait_for_function(
        "() => /^n [0-9]/.test(document.querySelector('#hist-readout').textContent)", timeout=20_000)
    rows = page.locator("#phase-table tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.phase)") == PHASES
    request = page.locator('#phase-table tr[data-phase="request"] td')
    mean, p50, p95, p99, low, high = (seconds(request.nth(i).text_content()) for i in range(1, 7))
    assert None not in (mean, p50, p95, p99, low, high)
    # percentiles are ordered and never outside what was observed (the reference's fault W-B4)
    assert low <= p50 <= p95 <= p99 <= high
    assert low <= mean <= high
    assert number(request.nth(7).text_content()) > 0
    # the simulator runs daemon mode: every phase of the path has a mean, and the bar shows them
    for phase in ("server", "queue", "daemon", "application"):
        cells = page.locator(f'#phase-table tr[data-phase="{phase}"] td')
        assert seconds(cells.nth(1).text_content()) is not None
    assert page.locator("#phase-bar span").count() == 4
    readout = page.locator("#hist-readout").text_content()
    assert f"p99 {request.nth(4).text_content()}" in readout
    # hovering a bar tells its range, count and cumulative share
    canvas = page.locator("#latency-hist canvas")
    box = canvas.bounding_box()
    tooltip = page.locator("#latency-hist .chart-tooltip")
    for x in range(50, int(box["width"]) - 10, 8):
        canvas.hover(position={"x": x, "y": box["height"] - 40})
        if tooltip.is_visible() and not tooltip.text_content().split("\n")[0].startswith("0 requests"):
            break
    assert tooltip.is_visible() and "≤ this bucket" in tooltip.text_content()
    assert page.locator('figure[data-chart="phases"] canvas').count() >= 1
    if tab.shooting():  # the picture with its readouts, which come with the first complete second
        wait_readout(page)
    tab.shot("tab-overview.png", history=20)


def test_the_histogram_phase_lives_in_the_url(tab):
    tab.login("ann", "/hosts/web-3/?tab=overview")
    page = tab.page
    page.wait_for_function("() => document.querySelector('#hist-phase').options.length === 8")
    page.select_option("#hist-phase", "application")
    page.wait_for_function("() => new URLSearchParams(location.search).get('phase') === 'application'")
    assert query_of(page.url)["tab"] == "overview"
    page.reload()
    assert page.locator("#hist-phase").input_value() == "application"
    page.wait_for_function(
        "() => document.querySelector('#phase-table tr.selected')?.dataset.phase === 'application'")
    # clicking a row of the table picks that phase too
    page.locator('#phase-table tr[data-phase="server"]').click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('phase') === 'server'")


#: The console sends second t complete once its clock reads t + PUBLISH_DELAY (tabs/base.py).
PUBLISH_DELAY = 2
CHARTS = ("throughput", "latency", "capacity", "cpu", "rss", "phases")


def rate_text(value: float) -> str:
    """format.js's rate(v) + "/s", for the rates the simulated hosts have (under 10k/s): a
    tenth, two places below 0.1; toFixed rounds the double's exact value half up, where
    Python's format rounds half even."""
    places = Decimal(1).scaleb(-(2 if 0 < abs(value) < 0.1 else 1))
    return f"{Decimal(value).quantize(places, rounding=ROUND_HALF_UP)}/s"


def plot_data(page, name: str, ready: str = "xTicks") -> dict:
    """What charts.js keeps in a chart's dataset (ticks, labels, scale, the last point drawn),
    read at once when its `ready` key is set: the page redraws meanwhile."""
    return page.wait_for_function(
        """([name, ready]) => {
             const data = {...document.querySelector(`figure[data-chart="${name}"] .plot`).dataset};
             return data[ready] ? data : null;
           }""", arg=[name, ready]).json_value()


def test_readouts_are_the_last_complete_seconds_and_say_so(tab):
    tab.login("ann", "/hosts/web-1/?tab=overview&window=300")
    page = tab.page
    wait_readout(page)
    samples = []
    for _ in range(24):  # every 150 ms for about 4 s, while partial and complete seconds arrive
        samples.append(page.evaluate("""() => ({
            rate: document.querySelector('[data-readout="throughput"]').textContent.split(' · ')[0],
            spans: Array.from(document.querySelectorAll('.readout-span')).map(s => s.textContent),
            last: JSON.parse(document.querySelector('figure[data-chart="throughput"] .plot').dataset.last),
        })"""))
        page.wait_for_timeout(150)
    page.wait_for_timeout(500)  # the frames the last sample saw have reached this side too
    frames = messages(tab, "host.frame")
    complete = [f for f in frames if not f.get("partial")]
    partial = [f for f in frames if f.get("partial")]
    assert partial and complete, "partial and complete seconds both arrived"
    # every readout says its span; the value is a complete frame's headline, never a partial second
    assert all(span == "last 10 s" for sample in samples for span in sample["spans"]), samples[-1]["spans"]
    headlines = {rate_text(f["recent"]["groups"]["*"]["throughput"]) for f in complete if f.get("recent")}
    shown = [sample["rate"] for sample in samples]
    assert set(shown) <= headlines, (shown, headlines)
    # it changes only when a complete second comes (about once a second, not at each batch)
    changes = sum(1 for a, b in itertools.pairwise(shown) if a != b)
    assert changes <= len(complete), (changes, len(complete))
    assert len(partial) > 2 * len(complete), "more partial seconds than complete ones came meanwhile"
    # the line ends at a complete second, with its complete value: no partial dip at the end
    snapshot = messages(tab, "host.snapshot")[-1]
    assert snapshot["step"] == 1
    by_t = {f["t"]: f["groups"]["*"]["throughput"] for f in complete}
    stored = dict(zip(snapshot["series"]["t"], snapshot["series"]["throughput"], strict=True))
    for sample in samples:
        t, value = sample["last"][0], sample["last"][1]
        if t in by_t:
            assert value == by_t[t], (t, value, by_t[t])
        else:
            assert t + PUBLISH_DELAY <= snapshot["now"] and value == stored[t], (t, value)


def test_axes_read_at_a_glance(tab):
    tab.login("ann", "/hosts/web-1/?tab=overview&window=300")
    page = tab.page
    wait_readout(page)
    page.wait_for_function("() => document.querySelector('#latency-hist canvas')?.dataset.markers")
    data = {name: plot_data(page, name, "yTicks") for name in CHARTS}
    # one time format (a 5 min window: 24-hour with seconds), on round minutes, the same ticks on every chart
    ticks = {name: d["xTicks"] for name, d in data.items()}
    assert len(set(ticks.values())) == 1, ticks
    times = [float(t) for t in data["throughput"]["xTicks"].split(",")]
    assert 4 <= len(times) <= 6 and all(t % 60 == 0 for t in times), times
    for name, d in data.items():
        labels = d["xLabels"].split("|")
        assert len(labels) == len(times), (name, labels)
        assert all(re.fullmatch(r"\d\d:\d\d:00", label) for label in labels), (name, labels)
    # the cursor's time, in the tooltip and the legend, reads as the axis does
    over = page.locator('figure[data-chart="latency"] .u-over')
    box = over.bounding_box()
    over.hover(position={"x": box["width"] - 40, "y": 30})
    tooltip = page.locator('figure[data-chart="latency"] .chart-tooltip')
    tooltip.wait_for(state="visible")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", tooltip.locator("div").first.text_content())
    legend = page.locator('figure[data-chart="latency"] .u-legend .u-series').first.locator(".u-value")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", legend.text_content()), legend.text_content()
    # RSS ticks on round MiB (or GiB): 1, 2, 2.5 or 5 times a power of ten in the unit shown
    labels = data["rss"]["yLabels"].split("|")
    assert labels[0] == "0" and len(labels) >= 3, labels
    values = [re.fullmatch(r"([0-9.]+) (KiB|MiB|GiB)", label) for label in labels[1:]]
    assert all(values) and len({m.group(2) for m in values}) == 1, labels
    numbers = [float(m.group(1)) for m in values]
    step = numbers[0]
    assert all(math.isclose(n, step * (i + 1)) for i, n in enumerate(numbers)), numbers
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), numbers
    # the latency histogram's axis starts at its first bucket's lower edge, labelled; every marker is drawn
    canvas = page.locator("#latency-hist canvas")
    hist = canvas.evaluate("c => ({...c.dataset})")
    first = hist["ticks"].split("|")[0]
    low = seconds(page.locator('#phase-table tr[data-phase="request"] td').nth(5).text_content())
    # that edge is at most the exact min, and within its bucket (a quarter octave: 1.25x) below it
    edge = 0.0 if first == "0" else seconds(first)
    assert edge is not None and edge <= low * 1.001 and (edge > low / 1.3 or low < 0.00125), (first, low)
    markers = dict(m.split(":") for m in hist["markers"].split(","))
    assert set(markers) == {"p50", "p95", "p99"}
    assert all(int(x) >= int(hist["plotLeft"]) for x in markers.values()), markers


def test_latency_axis_is_log_by_default_linear_on_request_and_kept_in_the_url(tab):
    tab.login("ann", "/hosts/web-2/?tab=overview")
    page = tab.page
    wait_readout(page)
    latency = 'figure[data-chart="latency"] .plot'
    assert page.locator("#latency-scale").input_value() == "log"
    log = plot_data(page, "latency", "yTicks")
    assert log["scale"] == "log"
    # decades (and 2, 5 between them): each tick a 1-2-5 value, none at 0
    ticks = [float(v) for v in log["yTicks"].split(",")]
    assert ticks and all(v > 0 for v in ticks), ticks
    assert all(f"{v:.0e}"[0] in "125" for v in ticks), ticks
    page.select_option("#latency-scale", "linear")
    page.wait_for_function("() => new URLSearchParams(location.search).get('scale') === 'linear'")
    page.wait_for_function(f"() => document.querySelector('{latency}').dataset.yLabels.startsWith('0|')")
    assert plot_data(page, "latency")["scale"] == "linear"
    page.reload()
    assert page.locator("#latency-scale").input_value() == "linear"
    page.wait_for_function(f"() => document.querySelector('{latency}').dataset.yLabels?.startsWith('0|')")
    assert plot_data(page, "latency")["scale"] == "linear"
    assert query_of(page.url)["scale"] == "linear"
    # back to log: the URL drops the option (log is the default)
    page.select_option("#latency-scale", "log")
    page.wait_for_function("() => !new URLSearchParams(location.search).has('scale')")
    page.wait_for_function(f"() => /^[1-9]/.test(document.querySelector('{latency}').dataset.yLabels)")
    assert plot_data(page, "latency", "yTicks")["scale"] == "log"
