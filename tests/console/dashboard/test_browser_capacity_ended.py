"""A process that ends while the Capacity tab is open keeps its band, in a real browser.

Three processes tick; one sends STOPPED, one falls silent (the registry calls it gone
after 3 intervals), one goes on. The ended ones keep their lanes with every column
they had, marked "stopped 15:32:07" / "gone 15:32:07" on the band, in its tooltip and
on its card, until their end leaves the span; a reload shows them the same way, and
the Processes tab keeps their bars. The agent is a raw WebSocket client on a host of
its own team and user, fed from a thread, so the other browser tests' fleets do not
change and the stop comes exactly when the test says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from browser_support import wait_message
from raw_agent import TICK_FIELDS, agent_token, raw_agent

from ingest.model.kinds import STARTED, STOPPED, TICK

pytestmark = pytest.mark.browser

HOST, USER = "ended-1", "erin"
PATH = f"/hosts/{HOST}/?tab=capacity"
RUNS, STOPS, FALLS_SILENT = 5001, 5002, 5003
BAND = 30 + 8  # px: two 12 px lanes make a band of the 30 px minimum, then the gap (capacity.js)


@pytest.fixture(scope="module")
def token(console) -> str:
    return agent_token(console, HOST, USER, "endings")


class Feeder(threading.Thread):
    """One tick a second of each process in ``ticking``, and what the test asks for between."""

    def __init__(self, raw) -> None:
        super().__init__(daemon=True)
        self.raw, self.seq = raw, 0
        self.ticking = {RUNS, STOPS, FALLS_SILENT}
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.send([self.sample(STARTED, pid, {"process_parent_pid": 1}) for pid in sorted(self.ticking)])

    def sample(self, kind: int, pid: int, fields: dict) -> dict:
        self.seq += 1
        return {"k": kind, "p": pid, "i": 1, "s": self.seq, "t": time.time(), "g": "app", "n": None,
                "f": fields}

    def send(self, samples: list[dict]) -> None:
        with self.lock:
            self.raw.batch(samples)

    def stop_process(self, pid: int) -> float:
        """STOPPED of ``pid`` (it ticks no more); its stamp."""
        self.ticking.discard(pid)
        stopped = self.sample(STOPPED, pid, {"shutdown_reason": "maximum_requests", "graceful_drain": 1,
                                             "process_uptime": 30.0, "lifetime_request_count": 90})
        self.send([stopped])
        return stopped["t"]

    def run(self) -> None:
        beats = 0
        try:
            while not self.halt.wait(1.0):
                self.send([self.sample(TICK, pid, TICK_FIELDS) for pid in sorted(self.ticking)])
                beats += 1
                counters = {"received": 10 * beats, "decoded": 10 * beats, "malformed": 0, "lost": 0}
                with self.lock:
                    self.raw.heartbeat(counters)
        except BaseException as exc:  # the test reports it: a thread's exception is otherwise lost
            self.error = exc


@pytest.fixture
def feeder(console, token) -> Iterator[Feeder]:
    with raw_agent(console, token, "ended-1") as raw:
        fed = Feeder(raw)
        fed.start()
        try:
            yield fed
        finally:
            fed.halt.set()
            fed.join(10)
        assert fed.error is None, fed.error


def cards(page) -> dict[str, dict]:
    """Per pid: how its card says it ended (``data-ended``, the chip's text), or Nones."""
    return page.evaluate("""() => Object.fromEntries(
        Array.from(document.querySelectorAll('#cap-cards tbody tr')).map(tr => [tr.cells[0].textContent,
          {ended: tr.dataset.ended || null, chip: tr.querySelector('.cap-ended')?.textContent || null}]))""")


def local_time(page, t: float) -> str:
    """``t`` as the page's clock shows it (24-hour, seconds: the span is 1 minute)."""
    return page.evaluate("t => new Date(t * 1000).toTimeString().slice(0, 8)", t)


HOVER = """([pid, x]) => {
  // Hover the band of `pid` at x (from the canvas's left; negative: from its right), lane by
  // lane (synthetic events: fast); the tooltip's lines of the first spot that names the pid.
  const canvas = document.getElementById('cap-canvas');
  const tip = document.getElementById('cap-tip');
  const box = canvas.getBoundingClientRect();
  for (let y = 4; y < box.height - 22; y += 3) {
    const at = {clientX: box.left + (x < 0 ? box.width + x : x), clientY: box.top + y, bubbles: true};
    canvas.dispatchEvent(new MouseEvent('mousemove', at));
    if (!tip.hidden && tip.textContent.includes('pid ' + pid)) {
      return Array.from(tip.children).map(d => d.textContent);
    }
  }
  return null;
}"""


def hover(page, pid: int, x: float) -> list[str] | None:
    return page.evaluate(HOVER, [pid, x])


def history(page, pid: int) -> list[str] | None:
    """The tooltip of the first cell of ``pid``'s band, scanning from the left edge of the lanes."""
    for x in range(140, 1200, 8):
        lines = hover(page, pid, x)
        if lines and " · slot " in lines[0]:
            return lines
    return None


def test_a_process_that_stops_keeps_its_band_marked_ended_and_a_reload_shows_it(tab, feeder):
    tab.login(USER, PATH)
    page = tab.page
    page.wait_for_function("() => document.querySelectorAll('#cap-cards tbody tr').length === 3")
    height = page.locator("#cap-canvas").evaluate("c => c.getBoundingClientRect().height")
    assert height == 4 + 3 * BAND + 22
    page.wait_for_timeout(3000)  # a few columns of history for each
    stamp = feeder.stop_process(STOPS)
    feeder.ticking.discard(FALLS_SILENT)  # no STOPPED: gone once the registry says so (every 5 s)
    label = f"stopped {local_time(page, stamp)}"
    frame = wait_message(tab, lambda m: m.get("type") == "tab.frame" and m.get("tab") == "capacity"
                         and m.get("stopped"), 0, 10, "the STOPPED in a capacity frame")
    assert frame["stopped"] == [[STOPS, 1, pytest.approx(stamp, abs=1e-3), "maximum_requests"]]
    page.wait_for_function("pid => document.querySelector(`#cap-cards tr[data-key='${pid}:1']`)"
                           "?.dataset.ended === 'stopped'", arg=STOPS)
    assert cards(page)[str(STOPS)] == {"ended": "stopped", "chip": label}
    # the band stays, with the lanes and columns it had
    assert page.locator("#cap-canvas").evaluate("c => c.getBoundingClientRect().height") == height
    before = history(page, STOPS)
    assert before is not None and before[0].startswith(f"pid {STOPS} · slot ")
    assert before[-1] == f"process {label}"
    gutter = hover(page, STOPS, 40)
    assert gutter[0] == f"pid {STOPS} · app" and f"{label} · reason maximum_requests" in gutter
    # after its end, the greyed part of the band says what happened (once the page has drawn a
    # few seconds past the end: it draws every second)
    page.wait_for_timeout(max(0.0, stamp + 3 - time.time()) * 1000)
    greyed = hover(page, STOPS, -20)
    assert greyed[0] == f"{label} · pid {STOPS}"
    # the silent one is gone at the next process list
    page.wait_for_function("pid => document.querySelector(`#cap-cards tr[data-key='${pid}:1']`)"
                           "?.dataset.ended === 'gone'", arg=FALLS_SILENT, timeout=20_000)
    silent = hover(page, FALLS_SILENT, 40)
    assert any(line.startswith("gone: silent since ") and "no STOPPED received" in line for line in silent)
    assert cards(page)[str(RUNS)] == {"ended": None, "chip": None}
    assert page.locator("#cap-canvas").evaluate("c => c.getBoundingClientRect().height") == height

    # a reload: the snapshot has them with their columns, and the page marks them the same way
    since = len(tab.frames)
    page.reload()
    snapshot = wait_message(tab, lambda m: m.get("type") == "tab.snapshot" and m.get("tab") == "capacity",
                            since, 15, "the capacity snapshot after the reload")
    listed = {p["pid"]: p for p in snapshot["processes"]}
    assert set(listed) == {RUNS, STOPS, FALLS_SILENT} and snapshot["ended_total"] == 2
    assert listed[STOPS]["state"] == "stopped" and listed[STOPS]["ended"] == pytest.approx(stamp, abs=1e-3)
    assert listed[STOPS]["reason"] == "maximum_requests" and listed[FALLS_SILENT]["state"] == "gone"
    assert all(len(listed[pid]["columns"]["t"]) >= 3 for pid in (STOPS, FALLS_SILENT))
    assert all(t <= stamp for t in listed[STOPS]["columns"]["t"])
    page.wait_for_function("() => document.querySelectorAll('#cap-cards tbody tr[data-ended]').length === 2")
    assert cards(page)[str(STOPS)] == {"ended": "stopped", "chip": label}
    assert page.locator("#cap-canvas").evaluate("c => c.getBoundingClientRect().height") == height
    again = history(page, STOPS)
    assert again is not None and again[-1] == f"process {label}"

    # the Processes tab keeps their bars too
    page.click("#tab-processes")
    page.wait_for_function("() => Number(document.querySelector('#proc-gantt').dataset.rows) === 3")
    states = page.locator("#processes tbody tr").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.key, r.cells[2].textContent]))")
    assert states == {f"{RUNS}:1": "running", f"{STOPS}:1": "stopped", f"{FALLS_SILENT}:1": "gone"}
