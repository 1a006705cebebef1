"""The report's 29 items: catalogue shape, body schemas at ingest, and old ledgers."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from ledger import (
    ITEMS,
    RECORD_TYPES,
    SECTIONS,
    SOURCES,
    InvalidRecordError,
    Ledger,
    RecordEntry,
    check_record,
    item_for,
    source_for,
    verify_ledger,
)
from ledger.items import LEGACY_RECORD_TYPES

GOLDEN = Path(__file__).parents[1] / "vectors" / "ledgers" / "eight-types-v1.db"


def test_the_catalogue_has_29_items_in_seven_sections_each_with_known_sources():
    assert len(ITEMS) == 29
    assert [i.number for i in ITEMS] == list(range(1, 30))
    assert len({i.record_type for i in ITEMS}) == 29
    keys = [s.key for s in SECTIONS]
    assert {i.section for i in ITEMS} == set(keys)
    # items come section by section, in the sections' order
    assert [keys.index(i.section) for i in ITEMS] == sorted(keys.index(i.section) for i in ITEMS)
    known = {s.key for s in SOURCES}
    for i in ITEMS:
        assert i.sources and set(i.sources) <= known, i.record_type


def test_record_types_derive_from_the_items_and_keep_the_first_eight_first():
    assert set(RECORD_TYPES) == {i.record_type for i in ITEMS}
    assert RECORD_TYPES[:8] == LEGACY_RECORD_TYPES
    assert {item_for(t).section for t in LEGACY_RECORD_TYPES} == {
        "registration",
        "operations",
        "tax",
        "public_credit",
        "judicial",
    }


def test_unknown_record_type_is_refused_with_the_count():
    with pytest.raises(InvalidRecordError, match="one of the report's 29 items, got 'loans'"):
        check_record("loans", "hz-amr", {})


@pytest.mark.parametrize(
    ("record_type", "source", "body", "message"),
    [
        ("tax_rating", "hz-tax", {"rating": "Z"}, r"body\.rating: \"Z\" is not one of"),
        ("admin_penalty", "hf-amr", {"amount_minor": -5}, "less than the minimum of 0"),
        ("registration", "sh-amr", {"name": ""}, r"body\.name"),
        ("balance_sheet", "sh-tax", {"year": 2020}, "is a required property"),
        (
            "shareholders",
            "sh-amr",
            {"as_of": "2021-01-01", "shareholders": [{"name": "x"}]},
            r"body\.shareholders\[0\]",
        ),
        (
            "honour",
            "hz-gov",
            {"title": "t", "grantor": "g", "year": 2020, "extra": 1},
            "Additional properties are not allowed",
        ),
        ("water_payment", "hz-water", [1, 2], 'is not of type "object"'),
    ],
)
def test_malformed_bodies_are_refused_naming_item_and_field(record_type, source, body, message):
    with pytest.raises(InvalidRecordError, match=message) as caught:
        check_record(record_type, source, body, "records[3]")
    text = str(caught.value)
    assert text.startswith("records[3]: the body of a " + record_type)
    assert f"item {item_for(record_type).number}" in text


def test_new_items_need_a_source_of_their_own_kind():
    body = {"title": "守合同重信用企业", "grantor": "杭州市人民政府", "year": 2020}
    check_record("honour", "hz-gov", body)
    with pytest.raises(InvalidRecordError, match=r"<place>-gov \(people's government\)"):
        check_record("honour", "hz-court", body)
    assert source_for("hz-court") is not None and source_for("hz-court").name == "people's court"
    assert source_for("nowhere") is None


def test_first_format_bodies_written_before_the_catalogue_still_ingest():
    # the shapes tests and scenario files used for the eight first-format types
    check_record("admin_penalty", "hf-amr", {"amount_minor": 100_000})
    check_record("registration", "tz-amr", {"name": "a"})
    check_record("tax_rating", "anything", {"rating": "A", "note": "extra fields are kept"})


def test_bodies_are_bounded():
    with pytest.raises(InvalidRecordError, match="longer than 100"):
        check_record("registration", "sh-amr", {"name": "x" * 101})
    members = [{"name": "a", "role": "director"}] * 51
    with pytest.raises(InvalidRecordError, match="has more than 50 items"):
        check_record("executives", "sh-amr", {"as_of": "2021-01-01", "members": members})


def test_an_eight_type_ledger_written_before_the_catalogue_still_verifies(tmp_path):
    # Written by the generator of the eight-type format (commit a3e448d); never regenerate it.
    assert hashlib.sha256(GOLDEN.read_bytes()).hexdigest() == (
        "11aba9bf7e219d50895dc06840d0dab7d6f3e979d9b54129c1f1873185f75a53"
    )
    path = tmp_path / "ledger.db"
    shutil.copy(GOLDEN, path)
    report = verify_ledger(path)
    assert report.ok, report.faults
    ledger = Ledger.open(path, readonly=True)
    try:
        assert (ledger.size, ledger.height) == (120, 3)
        assert ledger.head.header.root.hex().startswith("8a74bbeb")
        types = set()
        for i in range(ledger.size):
            entry = ledger.entry(i)
            if isinstance(entry, RecordEntry):
                types.add(entry.record_type)
                item_for(entry.record_type)  # every old type has its item and section
                ledger.body(i)  # the body still matches its commitment
        assert types == set(LEGACY_RECORD_TYPES)
    finally:
        ledger.close()
