"""The live layer's small parts on their own: strict bounded JSON, token buckets, heartbeat
counters, and the "agent not decoding" bookkeeping."""

from __future__ import annotations

import json
import math
from array import array

import pytest

from console.live import jsontext
from console.live.health import not_decoding, with_decoding
from console.live.limits import RateLimit
from console.live.protocol import ProtocolError, validate_heartbeat


def strict(text: str):
    def refuse(token):
        raise AssertionError(f"{token}: JSON.parse would refuse the message")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_become_null_anywhere(value):
    message = {"type": "tab.frame", "a": value, "b": [1.0, value], "c": {"d": (value, 2)},
               "e": array("d", [value])}
    assert strict(jsontext.dumps(message)) == {"type": "tab.frame", "a": None, "b": [1.0, None],
                                               "c": {"d": [None, 2]}, "e": [None]}


def test_what_json_has_no_word_for_becomes_text():
    message = {"type": "x", "bytes": b"caf\xc3\xa9 \xff", 3: "int key", (1, "a"): 1, 1.5: "float key",
               math.nan: "nan key", "set": frozenset({2}), "obj": object}
    out = strict(jsontext.dumps(message))
    assert out["bytes"] == "café \\xff" and out["3"] == "int key" and out["(1, 'a')"] == 1
    assert out["1.5"] == "float key" and out["nan"] == "nan key" and out["set"] == [2]
    assert out["obj"].startswith("<class")


def test_a_message_deeper_than_any_real_one_is_cut_not_recursed():
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    node.append(math.nan)
    text = jsontext.dumps({"type": "x", "deep": deep})
    strict(text)
    assert text.count("[") <= jsontext.MAX_DEPTH + 1


def test_common_messages_are_encoded_compact_and_unchanged():
    message = {"type": "host.frame", "t": 5, "groups": {"*": {"request_p95": 0.25, "status": {"2xx": 3}}}}
    assert jsontext.dumps(message) == json.dumps(message, separators=(",", ":"))


def test_a_host_message_too_long_loses_processes_not_its_metrics():
    processes = [{"pid": n, "incarnation": 1, "identity": {"hostname": "h" * 2000}} for n in range(1000)]
    message = {"type": "host.frame", "host": 3, "t": 9, "groups": {"*": {"request_p95": 0.1}},
               "processes": processes, "processes_total": 1000}
    text = jsontext.dumps(message)
    assert len(text) <= jsontext.MAX_TEXT
    out = strict(text)
    assert out["groups"] == {"*": {"request_p95": 0.1}} and out["processes_total"] == 1000
    assert 0 < len(out["processes"]) < 1000 and out["processes"][0]["pid"] == 0


def test_slow_records_too_long_are_cut_and_counted():
    records = [{"key": str(n), "fields": {"slow_user_agent": "u" * 5000}} for n in range(400)]
    out = strict(jsontext.dumps({"type": "tab.frame", "tab": "slow", "host": 1, "records": records,
                                 "omitted": 7}))
    assert len(out["records"]) + out["omitted"] == 407


def test_any_other_message_too_long_is_an_error_about_its_host_and_tab():
    message = {"type": "tab.frame", "tab": "capacity", "host": 4, "t": 12, "ticks": {"t": [0.5] * 400_000}}
    text = jsontext.dumps(message)
    assert len(text) < 1000
    out = strict(text)
    assert out["type"] == "error" and out["host"] == 4 and out["tab"] == "capacity" and out["t"] == 12
    assert "limit" in out["reason"] and out["about"] == "tab.frame"


def test_fleet_messages_are_bounded_by_the_hosts_not_by_bytes():
    hosts = [{"id": n, "name": f"web-{n}", "labels": {"note": "x" * 500}} for n in range(3000)]
    out = strict(jsontext.dumps({"type": "fleet.snapshot", "hosts": hosts}))
    assert len(out["hosts"]) == 3000


def test_rate_limit_refills_at_its_rate_up_to_its_burst():
    clock = [0.0]
    bucket = RateLimit(2, 3, clock=lambda: clock[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock[0] += 1.0  # two more
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock[0] += 100.0  # saved up to the burst, no more
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(10)
    assert RateLimit(0, 0).take(10**9)  # rate 0: no limit


def test_heartbeat_counters_are_clamped_into_the_database_range():
    counters = validate_heartbeat({"counters": {
        "received": 2**64 - 1, "lost": -5, "decoded": 7, "spooled": 1.5, "flag": True, "x" * 65: 1,
        "dropped": 2**200}})
    assert counters == {"received": 2**63 - 1, "lost": 0, "decoded": 7, "dropped": 2**63 - 1}
    many = validate_heartbeat({"counters": {f"c{n}": n for n in range(1000)}})
    assert len(many) == 64
    with pytest.raises(ProtocolError):
        validate_heartbeat({"counters": [1, 2]})


def beats(*pairs: tuple[int, int]) -> list[dict]:
    """The stored counters after heartbeats with these (received, decoded)."""
    stored: dict = {}
    out = []
    for n, (received, decoded) in enumerate(pairs):
        stored = with_decoding(stored, {"received": received, "decoded": decoded}, 1000.0 + 5 * n)
        out.append(stored)
    return out


def test_received_climbing_while_decoded_does_not_is_not_decoding_after_two_intervals():
    history = beats((100, 100), (150, 100), (200, 100), (260, 100))
    assert [not_decoding(c) for c in history[:2]] == [None, None]
    assert not_decoding(history[2]) == {"received": 100, "decoded": 0, "since": 1000}
    assert not_decoding(history[3]) == {"received": 160, "decoded": 0, "since": 1000}


@pytest.mark.parametrize("pairs", [
    [(100, 100), (150, 140), (200, 190), (260, 250)],  # decoding, behind by a little
    [(100, 100), (100, 100), (100, 100)],  # idle: nothing received, nothing to decode
    [(100, 100), (150, 100), (200, 100), (10, 5), (20, 5)],  # the agent restarted: counting anew
    [(100, 100), (150, 100), (200, 150), (250, 150)],  # decoding came back
])
def test_an_agent_that_decodes_or_idles_or_restarted_is_not_flagged(pairs):
    assert not_decoding(beats(*pairs)[-1]) is None


def test_an_agent_cannot_set_the_consoles_own_counters():
    stored = with_decoding({}, {"received": 1, "decoded": 1, "console_stall_beats": 99}, 1000.0)
    assert stored["console_stall_beats"] == 0
