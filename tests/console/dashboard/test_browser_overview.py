"""The Overview's phase panels in a real browser: weighted means, the latency histogram
with percentiles inside the observed min/max, hover, and the phase in the URL."""

from __future__ import annotations

import re

import pytest
from browser_support import number, query_of

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
