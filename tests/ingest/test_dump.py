import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import RAW, VECTORS

from ingest.commands import dump
from ingest.pipeline import capture, wire

ROOT = Path(__file__).resolve().parents[2]


def run_dump(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "dump", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("scenario", ["B", "E"])
def test_dump_json_of_a_capture_matches_the_ground_truth(scenario):
    result = run_dump("--input", str(RAW / f"{scenario}.dgrams.gz"), "--json")
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    with gzip.open(RAW / f"{scenario}.jsonl.gz", "rt") as fh:
        expected = [json.loads(line) for line in fh]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert (g["kind"], g["pid"], g["seq"], g["stamp"]) == (e["kind"], e["pid"], e["seq"], e["stamp"])
        assert g["fields"] == e["fields"]


def test_dump_reports_malformed_datagrams_in_a_capture_and_decodes_the_rest(sockdir):
    good = list(capture.read(str(RAW / "D.dgrams.gz")))
    bad = [(VECTORS / "bad" / name).read_bytes() for name in ("bad-magic.bin", "truncated-inside-array.bin")]
    path = str(sockdir / "mixed.dgrams")
    capture.write_all(path, good[:10] + bad + good[10:])
    result = run_dump("--input", path)
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if not line.startswith("-- ")]
    assert len(lines) == len(good)
    assert result.stderr.count("malformed datagram") == 2
    assert "bad magic" in result.stderr and "field 90" in result.stderr
    assert f"{len(good) + 2} datagrams, {len(good)} decoded, 2 malformed" in result.stderr


def test_dump_of_a_truncated_capture_prints_what_it_can_and_fails(sockdir):
    path = sockdir / "cut.dgrams"
    capture.write_all(str(path), list(capture.read(str(RAW / "B.dgrams.gz")))[:5])
    path.write_bytes(path.read_bytes() + struct.pack("<I", 500) + b"short")
    result = run_dump("--input", str(path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) >= 5
    assert "cut short" in result.stderr


def test_dump_human_lines_escape_control_characters_from_requests():
    fields = {"slow_record_state": 0, "slow_duration": 2.0, "slow_method": "GET",
              "slow_script_name": "/x\x1b[31mred", "slow_path_info": b"/caf\xc3\xa9/\xff"}
    line = dump.format_line(wire.decode(wire.encode(4, 5, 1, time.time(), fields)))
    assert "\x1b" not in line
    assert "\\x1b[31mred" in line
    assert "/café/\\xff" in line


def test_dump_live_from_the_socket_with_count_and_capture(sockdir):
    path, cap = str(sockdir / "d.sock"), str(sockdir / "live.dgrams")
    command = [sys.executable, "-m", "ingest", "dump", "--socket", path, "--socket-mode", "0600",
               "--json", "--count", "20", "--capture", cap]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sent = list(capture.read(str(RAW / "D.dgrams.gz")))[:20]
        for data in sent:
            sender.sendto(data, path)
        sender.close()
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [wire.decode(d).seq for d in sent]
    assert list(capture.read(cap)) == sent
    assert not os.path.exists(path)
