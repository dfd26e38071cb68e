"""Samples in the agent's forwarded form, held to the same field table the decoder uses."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import VECTORS

from ingest.model import contract
from ingest.model.fields import BY_NAME, FIELDS, Field, Tag
from ingest.pipeline import capture, state, wire
from ingest.pipeline.samples import sample_from
from ingest.pipeline.spool import encode


def forwarded_samples() -> list[dict[str, Any]]:
    """Every real capture's samples exactly as an agent puts them on the wire to the console."""
    table, samples = state.ProcessTable(), []
    for path in sorted((VECTORS / "raw").glob("*.dgrams.gz")):
        for raw in capture.read(str(path)):
            try:
                d = wire.decode(raw)
            except wire.DecodeError:
                continue
            samples.append(sample_from(d, table.add(d)))
    return [msgpack.unpackb(blob, strict_map_key=False) for blob in encode(samples)]


SAMPLES = forwarded_samples()
TICK = next(s for s in SAMPLES if s["k"] == 2 and s["f"].get("request_count"))


def test_every_real_sample_keeps_to_the_table() -> None:
    assert len(SAMPLES) > 6000
    for sample in SAMPLES:
        contract.check_fields(sample["f"])  # twice: compiled the second time
        contract.check_fields(sample["f"])


def hostile(field: Field) -> list[Any]:
    common = [None, {"a": 1}, True if field.tag != Tag.U64 else "1"]
    if field.tag == Tag.U64:
        return [*common, -1, 2**64 - 1, 1.5, math.nan, "7", b"7"]
    if field.tag == Tag.F64:
        return [*common, math.nan, math.inf, -math.inf, 1e300, "1.0", [1.0]]
    if field.tag == Tag.BYTES:
        return [*common, 5, "x" * 5000, [b"x"]] + ([b"caf\xc3\xa9\xff"] if field.text else [])
    if field.tag == Tag.I32_ARRAY:
        return [*common, 7, [], [-1] * 65, [1.5] * 65, [2**40] * 65, {-1: 65, 99: 1}, {-1: 65, 3: -2},
                {3: 1}, {-1: 10**6}]
    return [*common, 7, [], [math.nan] * 4, [math.inf] * 4, ["x"] * 4, [0.0] * 129]


CASES = [(f, v) for f in FIELDS for v in hostile(f)]


@pytest.mark.parametrize(("field", "value"), CASES, ids=lambda x: getattr(x, "name", None) or "")
def test_a_hostile_value_is_a_breach_naming_its_field(field: Field, value: Any) -> None:
    fields = dict(TICK["f"])
    fields[field.name] = value
    for _ in range(2):
        with pytest.raises(contract.Breach) as caught:
            contract.check_fields(fields)
        assert caught.value.field in (field.name, "request_threads_completed", "request_threads_maximum")


def test_slot_arrays_must_agree_with_the_thread_maximum() -> None:
    fields = dict(TICK["f"], request_threads_maximum=TICK["f"]["request_threads_maximum"] + 1)
    with pytest.raises(contract.Breach, match="threads but slot arrays"):
        contract.check_fields(fields)


def test_unknown_fields_pass_within_their_bounds() -> None:
    contract.check_fields(dict(TICK["f"], id999=5, id1000=b"x" * 100, id1001=[1.0, 2.0]))
    with pytest.raises(contract.Breach, match="id999"):
        contract.check_fields(dict(TICK["f"], id999=math.nan))
    many = {f"id{1000 + n}": n for n in range(40)}
    with pytest.raises(contract.Breach, match="unknown fields"):
        contract.check_fields(dict(TICK["f"], **many))


values = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                   st.binary(max_size=8),
                   st.lists(st.one_of(st.integers(-5, 2**33), st.floats()), max_size=70),
                   st.dictionaries(st.integers(-3, 140), st.integers(-5, 10), max_size=5))


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([f.name for f in FIELDS]), values), min_size=1, max_size=6))
def test_the_compiled_check_and_the_precise_one_always_agree(changes: list[tuple[str, Any]]) -> None:
    fields = dict(TICK["f"])
    fields.update(changes)
    precise = contract.fields_problem(fields)
    try:
        contract.check_fields(fields)
    except contract.Breach as breach:
        assert precise is not None and str(breach) == str(precise)
    else:
        assert precise is None, precise
    assert BY_NAME  # the table is what both read


@pytest.mark.parametrize("name", ["id70", "foo", "id", "id65536", "id٣"])
def test_an_unknown_field_is_named_by_an_id_no_known_field_has(name: str) -> None:
    with pytest.raises(contract.Breach, match="not a field of the table"):
        contract.check_fields(dict(TICK["f"], **{name: 1}))
