import json
from pathlib import Path

from support.paths import VECTORS

from ingest.model import fields

ROOT = Path(__file__).resolve().parents[2]


def test_docs_field_reference_is_generated_from_the_table():
    assert (ROOT / "docs" / "wire-fields.md").read_text() == fields.markdown_table()


def test_every_field_seen_in_real_traffic_has_its_tag_and_kind_in_the_table():
    for line in (VECTORS / "vectors.jsonl").read_text().splitlines():
        vector = json.loads(line)
        for fid, tag, _ in vector["wire"]:
            field = fields.BY_ID[fid]
            assert field.tag == tag, (fid, vector["file"])
            assert vector["kind"] in field.kinds, (field.name, vector["file"])


def test_ids_and_names_are_unique():
    assert len(fields.BY_ID) == len(fields.FIELDS) == len(fields.BY_NAME)


def test_unknown_ids_get_a_stable_name():
    assert fields.field_name(999) == "id999"
    assert fields.kind_name(42) == "kind42"
    assert fields.kind_name(2) == "request_metrics"
