import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import capture
from ingest.pipeline.faults import Quarantine, QuarantineError, Throttle, describe

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_logs_the_first_at_once_then_one_line_a_minute_with_the_count(caplog):
    clock = Clock()
    throttle = Throttle(logging.getLogger("t"), logging.ERROR, clock=clock)
    caplog.set_level(logging.ERROR, logger="t")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        throttle("a", "fault a", exc)
    for _ in range(99):
        throttle("a", "fault a again")
    throttle("b", "fault b")
    assert [r.getMessage() for r in caplog.records] == [
        "fault a; more like this at most once a minute", "fault b; more like this at most once a minute"]
    assert caplog.records[0].exc_info is not None
    clock.now += 61
    throttle.flush()
    assert caplog.records[-1].getMessage() == "fault a again (99 like this since the last line)"
    throttle("a", "fault a later")
    throttle.flush()
    assert len(caplog.records) == 3  # within the new minute: held back
    throttle.flush(force=True)
    assert caplog.records[-1].getMessage() == "fault a later (1 like this since the last line)"


def test_describe_escapes_and_shortens_what_a_sender_wrote():
    text = describe(KeyError("\x1b[31m" + "x" * 1000))
    assert "\x1b" not in text and text.startswith("KeyError: '\\x1b[31m")
    assert len(text) <= 303


def test_quarantine_keeps_the_latest_whole_records_within_its_bytes(tmp_path):
    path = str(tmp_path / "q.dgrams")
    q = Quarantine(path, max_bytes=102)  # three records of 4 + 30 bytes
    q.open()
    assert list(capture.read(path)) == []
    for n in range(10):
        q.add(bytes([n]) * 30)
    q.add(b"z" * 200)  # larger than the whole bound: not kept
    q.save()
    assert list(capture.read(path)) == [bytes([n]) * 30 for n in (7, 8, 9)]
    assert os.path.getsize(path) == 102 and q.kept == 11
    again = Quarantine(path, max_bytes=102)
    again.open()
    assert list(again.ring) == [bytes([n]) * 30 for n in (7, 8, 9)]


def test_quarantine_that_cannot_be_written_is_refused_at_open(tmp_path):
    with pytest.raises(QuarantineError, match="cannot write quarantine file"):
        Quarantine(str(tmp_path / "missing" / "q.dgrams")).open()


def test_serve_refuses_an_unwritable_quarantine_clearly(sockdir):
    result = subprocess.run([sys.executable, "-m", "ingest", "serve", "--socket", str(sockdir / "a.sock"),
                             "--quarantine", str(sockdir / "missing" / "q.dgrams")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot write quarantine file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (sockdir / "a.sock").exists()


def test_serve_help_documents_the_bounds_and_the_quarantine():
    result = subprocess.run([sys.executable, "-m", "ingest", "serve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    for option in ("--quarantine", "--queue-bytes", "--max-processes"):
        assert option in result.stdout


def test_quarantine_defaults_to_the_spool_directory_when_forwarding():
    from ingest.commands.cli import _config, build_parser

    def quarantine(*argv: str) -> str | None:
        return _config(build_parser().parse_args(["serve", *argv]), 60.0).quarantine

    assert quarantine() is None
    assert quarantine("--spool-dir", "/var/spool/wf") is None  # no --console: no spool either
    assert quarantine("--console", "wss://c/", "--spool-dir", "/sp") == "/sp/quarantine.dgrams"
    assert quarantine("--console", "wss://c/", "--spool-dir", "/s", "--quarantine", "/q") == "/q"
