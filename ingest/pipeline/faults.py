"""Faults inside the agent: caught at the datagram, counted, logged sparingly, kept.

The decode thread is the agent: if it ends, the process keeps receiving,
decodes nothing, and the console still shows the host online. So whatever
goes wrong while one datagram is handled (a bug in a handler, a listener
that raises) is caught at that datagram and the work goes on with the next.
A hostile sender can make the same fault happen thousands of times a
second, so the log gets the first one with its traceback and then one line
a minute per kind of fault with the count held back, and the datagrams
themselves go to a bounded quarantine capture that ``python -m ingest dump
--input`` reads like any other capture.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from . import capture
from .wire import Datagram

log = logging.getLogger("ingest.agent")

#: Distinct keys a Throttle keeps; kinds of fault are bounded by the code,
#: this only guards against a key that happens to carry data.
MAX_KEYS = 256
QUARANTINE_BYTES = 1 << 20
QUARANTINE_NAME = "quarantine.dgrams"
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` safe for a log line: a message may quote a sender's bytes."""
    text = f"{type(exc).__name__}: {exc}".translate(_CONTROL)
    return text if len(text) <= limit else text[:limit] + "..."


class Throttle:
    """Log at once the first time, then at most once per ``interval`` per key.

    What is held back is counted and reported with the next line of that
    key, or by ``flush`` once the interval is over, so a count is never lost.
    """

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.level = level
        self.interval = interval
        self.clock = clock
        self._keys: dict[str, list] = {}  # key -> [next line due, held back, latest message]

    def __call__(self, key: str, message: str, exc: BaseException | None = None) -> None:
        now = self.clock()
        entry = self._keys.get(key)
        if entry is None and len(self._keys) >= MAX_KEYS:
            key = "(other)"
            entry = self._keys.get(key)
        if entry is None:
            self._keys[key] = [now + self.interval, 0, message]
            self.logger.log(self.level, "%s; more like this at most once a minute", message,
                            exc_info=exc)
            return
        entry[1] += 1
        entry[2] = message
        if now >= entry[0]:
            self._emit(entry, now)

    def flush(self, force: bool = False) -> None:
        """Report the counts held back whose interval is over (all of them with ``force``)."""
        now = self.clock()
        for entry in self._keys.values():
            if entry[1] and (force or now >= entry[0]):
                self._emit(entry, now)

    def _emit(self, entry: list, now: float) -> None:
        self.logger.log(self.level, "%s (%d like this since the last line)", entry[2], entry[1])
        entry[0] = now + self.interval
        entry[1] = 0


class QuarantineError(RuntimeError):
    """The quarantine file cannot be written; the message says why."""


class Quarantine:
    """The latest datagrams that broke something: a ring bounded in bytes.

    With a path it is kept as a capture file, rewritten whole under a
    temporary name and renamed (at most once a second, and at stop), so the
    file never holds more than ``max_bytes`` nor half a record. What an
    earlier run left there is read back first: after a crash and a restart
    the datagram of the run that died is the one that matters.
    """

    def __init__(self, path: str | None, max_bytes: int = QUARANTINE_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self.ring: deque[bytes] = deque()
        self.bytes = 0  # the file's size: a u32 length before every datagram
        self.kept = 0  # datagrams added by this run
        self._dirty = False
        self._lock = threading.Lock()  # the decode thread adds, stop() may save

    def open(self) -> None:
        """Read back what is there and prove the file can be written, or raise QuarantineError."""
        if self.path is None:
            return
        if os.path.exists(self.path):
            try:
                for data in capture.read(self.path):
                    self._push(data)
            except (OSError, capture.CaptureError) as exc:
                log.warning("quarantine %s unreadable (%s): starting it afresh", self.path, exc)
        self._dirty = True
        try:
            self.save()
        except OSError as exc:
            reason = exc.strerror or exc
            raise QuarantineError(f"cannot write quarantine file {self.path}: {reason}") from None

    def add(self, data: bytes) -> None:
        with self._lock:
            self._push(data)
            self.kept += 1
            self._dirty = True

    def _push(self, data: bytes) -> None:
        size = 4 + len(data)
        if size > self.max_bytes:
            return
        self.ring.append(data)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self.bytes -= 4 + len(self.ring.popleft())

    def save(self) -> None:
        """Write the file if something was added since the last save; OSError goes to the caller."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            records = list(self.ring)
            self._dirty = False
        tmp = self.path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold URLs
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"".join(capture.record(data) for data in records))
            os.replace(tmp, self.path)
        except OSError:
            self._dirty = True
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class Faults:
    """The agent's internal errors: counted, logged through a Throttle, datagrams quarantined."""

    def __init__(self, quarantine: Quarantine, logger: logging.Logger = log):
        self.quarantine = quarantine
        self.count = 0
        self.by_kind: Counter[str] = Counter()
        self.throttle = Throttle(logger, logging.ERROR)
        self._last: bytes | None = None

    def __call__(self, unit: str, exc: Exception, raw: bytes | None = None,
                 datagram: Datagram | None = None) -> None:
        """Account for ``exc`` raised by ``unit`` while it handled ``raw`` (if a datagram)."""
        kind = f"{unit}: {type(exc).__name__}"
        self.count += 1
        if kind in self.by_kind or len(self.by_kind) < MAX_KEYS:
            self.by_kind[kind] += 1
        where = ""
        if datagram is not None:
            where = f" on a {datagram.kind_name} datagram of pid {datagram.pid} seq {datagram.seq}"
        elif raw is not None:
            where = f" on a datagram of {len(raw)} bytes"
        if raw is not None and raw is not self._last:  # two listeners failing on it keep it once
            self._last = raw
            self.quarantine.add(raw)
            where += f", kept in the quarantine {self.quarantine.path}" if self.quarantine.path else \
                ", not kept (no quarantine file)"
        self.throttle(kind, f"internal error in {unit}{where}: {describe(exc)}", exc)

    def flush(self, force: bool = False) -> None:
        self.throttle.flush(force)
