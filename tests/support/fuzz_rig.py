"""What the whole-path fuzz watches while hostile traffic flows (bench/fuzz_pipeline.py).

- ``Watcher``: a live connection subscribed once (the fleet, or one tab of
  one host) for the whole run. Its messages are checked as they are drained
  rather than kept: a million-datagram run sends far more frames than a test
  should hold. It counts what a page would choke on (``NaN``/``Infinity``
  in JSON, ``error`` messages) and keeps, per second, the complete frame of
  its host, which is how the clean host's exactness is read off the live path.
- ``CleanFeed``: the clean host's simulated mod_wsgi fleet, sent in real time
  on a blocking socket (nothing is lost on the way), with every request it
  reports counted.
- ``AgentLog``: the agent's status lines (``--log-interval``), which tell the
  sender how far the agent's decoding is behind it.
- ``tracebacks``, ``close_codes``, ``peak_rss``: what the logs and /proc say.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ingest.commands.simulate import Fleet
from ingest.model.fields import Kind
from ingest.pipeline import wire
from support.console import ConsoleSite, LiveClient
from support.hostile import DECODE_LOCK

STATUS = ("1xx", "2xx", "3xx", "4xx", "5xx")
TRACEBACK = "Traceback (most recent call last):"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JSON")


def non_finite(text: str) -> bool:
    """True when a JSON text holds NaN or Infinity as a number (not inside a string)."""
    if "NaN" not in text and "Infinity" not in text:
        return False
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return True
    return False


class Watcher(LiveClient):
    """One live connection with one subscribe, checked message by message as it is drained."""

    def __init__(self, url: str, token: str, name: str, subscribe: dict[str, Any]):
        super().__init__(url, token, name)
        self.subscribe = subscribe
        self.host = subscribe.get("host")
        self.types: Counter[str] = Counter()
        self.bytes = self.largest = 0
        self.non_finite: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.complete: dict[int, dict[str, Any]] = {}  # t -> metrics of group "*" (own host)
        self.rows: dict[int, dict[str, Any]] = {}  # fleet: host id -> newest row
        self.agent: dict[int, dict[str, Any]] = {}  # host id -> newest agent counters seen
        self.closed_early: int | None = None

    def start(self, timeout: float = 20.0) -> Watcher:
        self.connect()
        self.wait_for(lambda m: m["type"] == "hello", timeout)
        want = "fleet.snapshot" if self.subscribe.get("scope") == "fleet" else "tab.snapshot"
        self.request(self.subscribe, lambda m: m["type"] in (want, "error"), timeout)
        self.drain()
        return self

    def drain(self) -> None:
        """Check and tally every message received since the last drain, then forget them."""
        with self._lock:
            messages, self.messages = self.messages, []
            texts, self.texts = self.texts, []
        for message, text in zip(messages, texts, strict=True):
            kind = message.get("type", "?")
            self.types[kind] += 1
            self.bytes += len(text)
            self.largest = max(self.largest, len(text))
            if non_finite(text) and len(self.non_finite) < 5:
                self.non_finite.append(text[:300])
            if kind == "error":
                self.errors.append({k: v for k, v in message.items() if k != "_at"})
            elif kind == "host.frame" and message.get("host") == self.host:
                if not message.get("partial"):
                    self.complete[message["t"]] = (message.get("groups") or {}).get("*") or {}
                if isinstance(message.get("agent"), dict):
                    self.agent[self.host] = message["agent"]
            elif kind in ("fleet.snapshot", "fleet.update"):
                for row in message.get("hosts") or []:
                    self.rows[row.get("id")] = row
                    if isinstance(row.get("agent"), dict):
                        self.agent[row.get("id")] = row["agent"]
        if self.closed is not None and self.closed_early is None:
            self.closed_early = self.closed

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "messages": sum(self.types.values()), "types": dict(self.types),
                "bytes": self.bytes, "largest": self.largest, "non_finite": len(self.non_finite),
                "errors": self.errors[:5], "error_count": len(self.errors), "closed": self.closed_early}


def frame_requests(complete: dict[int, dict[str, Any]]) -> tuple[int, Counter[str]]:
    """Requests and status counts summed over complete frames (one per second)."""
    status: Counter[str] = Counter()
    requests = 0
    for metrics in complete.values():
        requests += int(metrics.get("requests") or 0)
        for name in STATUS:
            status[name] += int(metrics.get(f"status_{name}") or 0)
    return requests, status


class CleanFeed(threading.Thread):
    """A small simulated fleet for the clean host, in real time, on a blocking socket."""

    def __init__(self, sock: Path, hostname: str, *, seed: int, first_pid: int = 40000):
        super().__init__(name="clean-feed", daemon=True)
        self.sock_path = sock
        self.fleet = Fleet(groups=2, processes=2, threads=4, seed=seed, restart_probability=0.0,
                           slow_probability=0.2, interpreters=2, hostname=hostname, first_pid=first_pid)
        self.sent = self.requests = 0
        self.status: Counter[str] = Counter()
        self.seconds: set[int] = set()  # seconds its ticks are stamped in
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(str(self.sock_path))
                begin = float(int(time.time()) + 1)
                i = 0
                while not self._halt.is_set():  # whole intervals only: the totals stay exact
                    round_start = begin + i
                    for offset, batch in sorted(self.fleet.batches(round_start), key=lambda b: b[0]):
                        delay = round_start + offset - time.time()
                        if delay > 0:
                            time.sleep(delay)
                        for data in batch:
                            sock.send(data)
                            self._count(data)
                    i += 1
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _count(self, data: bytes) -> None:
        self.sent += 1
        if data[5] != Kind.REQUEST_METRICS:
            return
        with DECODE_LOCK:
            d = wire.decode(data)
        self.requests += int(d.fields.get("request_count", 0))
        self.seconds.add(int(d.stamp))
        for c, name in enumerate(STATUS, 1):
            self.status[name] += int(d.fields.get(f"status_{c}xx_total", 0))

    def wait_seconds(self, seconds: int, timeout: float = 60.0) -> None:
        """Until ticks of ``seconds`` distinct seconds are sent (a slow machine starts late)."""
        deadline = time.monotonic() + timeout
        while len(self.seconds) < seconds and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)

    def halt(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self.join(timeout)


STATUS_LINE = re.compile(r"received (\d+) \([^)]*\), decoded (\d+), malformed (\d+)")


class AgentLog:
    """Follows an agent's log for its status lines: (received, decoded, malformed)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.latest: tuple[int, int, int] = (0, 0, 0)

    def poll(self) -> tuple[int, int, int]:
        with contextlib.suppress(OSError), open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
            end = chunk.rfind(b"\n") + 1
            self.offset += end
            found = STATUS_LINE.findall(chunk[:end].decode(errors="replace"))
            if found:
                self.latest = tuple(int(x) for x in found[-1])  # type: ignore[assignment]
        return self.latest

    @property
    def handled(self) -> int:
        return self.latest[1] + self.latest[2]


def tracebacks(path: Path, keep: int = 5) -> tuple[int, list[str]]:
    """How many tracebacks a log holds, and the first ``keep`` of them with their exception line."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    count, kept, i = 0, [], 0
    while i < len(lines):
        if TRACEBACK not in lines[i]:
            i += 1
            continue
        count += 1
        block = lines[max(0, i - 1):i + 1]  # the log line that carried it, then the traceback
        i += 1
        while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
            block.append(lines[i])
            i += 1
        if i < len(lines):
            block.append(lines[i])  # the exception itself
            i += 1
        if len(kept) < keep:
            kept.append("\n".join(block))
    return count, kept


AGENT_CLOSE = re.compile(r"console connection closed \((\d+)")
AGENT_DROP = re.compile(r"console connection dropped \((\d+)\)")


def close_codes(path: Path) -> Counter[str]:
    """Close codes the agent's console connection ended with, from its log."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return Counter()
    return Counter(AGENT_CLOSE.findall(text) + AGENT_DROP.findall(text))


def peak_rss(pid: int | None) -> int | None:
    """Peak resident set size of a live process (VmHWM), bytes."""
    if pid is None:
        return None
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def set_password(site: ConsoleSite, user: str, password: str) -> None:
    """Give a user made by ``ConsoleSite.setup`` a password, so a browser can log in."""
    code = ("from django.contrib.auth.models import User\n"
            f"u = User.objects.get(username={user!r}); u.set_password({password!r}); u.save()\n")
    site.manage("shell", "-c", code)


# -- snapshots after the traffic ------------------------------------------------------------

TABS = ("overview", "capacity", "processes", "slow", "gc")
ANSWERS = ("tab.snapshot", "error")
#: Seconds between two subscribes of one reader: the console allows 20 a second per connection.
SUBSCRIBE_GAP = 0.06


class Reader:
    """One live connection asking for snapshots one after the other, every answer checked."""

    def __init__(self, url: str, token: str, name: str):
        self.client = LiveClient(url, token, name)
        self.asked: dict[str, str] = {}  # what was asked -> "ok" or the error's reason
        self.largest = 0
        self.non_finite: list[str] = []
        self.closed_early: int | None = None  # a close before ours
        self.slowest: tuple[float, str] = (0.0, "")  # seconds to answer, and what was asked
        self.exited = False

    def __enter__(self) -> Reader:
        self.client.connect()
        self.client.wait_for(lambda m: m["type"] == "hello", 20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed_early, self.exited = self.client.closed, True
        self.client.close()

    def ask(self, host: int, tab: str = "overview", window: int = 300, group: str = "*",
            timeout: float = 60.0) -> dict[str, Any]:
        """Subscribe to one tab of one host; returns the host.snapshot (or the error)."""
        what = f"host {host} {tab} window={window} group={group!r}"
        mark = len(self.client.snapshot())
        time.sleep(SUBSCRIBE_GAP)
        began = time.monotonic()
        try:
            answer = self.client.request({"type": "subscribe", "scope": "host", "host": host, "tab": tab,
                                          "window": window, "group": group, "points": 600},
                                         lambda m: m["type"] in ANSWERS, timeout)
        except AssertionError as exc:
            self.asked[what] = f"no answer: {exc}"[:300]
            return {}
        self.slowest = max(self.slowest, (round(time.monotonic() - began, 2), what))
        with self.client._lock:
            pairs = list(zip(self.client.messages[mark:], self.client.texts[mark:], strict=True))
        for _, text in pairs:
            self.largest = max(self.largest, len(text))
            if non_finite(text) and len(self.non_finite) < 5:
                self.non_finite.append(f"{what}: {text[:300]}")
        errors = [m for m, _ in pairs if m.get("type") == "error"]
        self.asked[what] = "ok" if answer["type"] == "tab.snapshot" and not errors else \
            "error: " + "; ".join(str(m.get("reason")) for m in errors)
        return next((m for m, _ in pairs if m.get("type") == "host.snapshot"), {})

    def every_tab(self, host: int, windows: tuple[int, ...], groups: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every tab at every window, and the overview of each of ``groups``."""
        first: dict[str, Any] = {}
        for tab in TABS:
            for window in windows:
                snapshot = self.ask(host, tab, window)
                first = first or snapshot
        for group in groups:
            self.ask(host, "overview", windows[0], group)
        return first

    def fleet(self, timeout: float = 60.0) -> dict[str, Any]:
        mark = len(self.client.snapshot())
        answer = self.client.request({"type": "subscribe", "scope": "fleet"},
                                     lambda m: m["type"] in ("fleet.snapshot", "error"), timeout)
        with self.client._lock:
            texts = self.client.texts[mark:]
        bad = [t[:300] for t in texts if non_finite(t)]
        self.non_finite += bad[:5]
        self.asked["fleet"] = "ok" if answer["type"] == "fleet.snapshot" else f"error: {answer.get('reason')}"
        return answer

    def summary(self) -> dict[str, Any]:
        failed = {k: v for k, v in self.asked.items() if v != "ok"}
        return {"asked": len(self.asked), "failed": failed, "largest": self.largest, "slowest": self.slowest,
                "non_finite": self.non_finite,
                "closed": self.closed_early if self.exited else self.client.closed}
