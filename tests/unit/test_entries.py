"""ledger.entries: every kind round-trips through its canonical bytes, bad
values are refused naming the field, and parse_entry refuses anything that is
not exactly the canonical form of a valid entry."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import (
    PURPOSES,
    RECORD_TYPES,
    CorrectionEntry,
    DecodeError,
    Entry,
    InvalidRecordError,
    RecordEntry,
    canonical_bytes,
    check_time,
    commitment,
    entry_bytes,
    entry_from_dict,
    entry_to_dict,
    make_uscc,
    parse_entry,
)
from ledger.uscc import SERIAL_LIMIT

T0 = "2021-10-31T08:00:00Z"
KINDS = ("record", "correction", "institution", "authorization", "revocation", "receipt", "alarm")


def by_kind(entries: list[Entry]) -> dict[str, Entry]:
    return {e.kind: e for e in entries}


# --- round trips ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips(entries: list[Entry], kind: str) -> None:
    entry = by_kind(entries)[kind]
    data = entry_bytes(entry)
    assert parse_entry(data) == entry
    assert entry_bytes(parse_entry(data)) == data
    d = entry_to_dict(entry)
    assert d["kind"] == kind and d["v"] == 1
    assert canonical_bytes(d) == data
    assert entry_from_dict(d) == entry
    assert json.loads(data) == d
    # tuple fields travel as JSON lists
    for value in d.values():
        assert type(value) is not tuple


def test_all_kinds_are_covered(entries: list[Entry]) -> None:
    assert sorted(by_kind(entries)) == sorted(KINDS)


def test_commitment_is_salted_hash_of_canonical_body() -> None:
    body = {"rating": "A", "year": 2021}
    salt = bytes(range(16))
    c = commitment(salt, body)
    assert c == commitment(salt, {"year": 2021, "rating": "A"})
    assert c != commitment(bytes(16), body)
    assert c != commitment(salt, body, "sm3")
    with pytest.raises(InvalidRecordError, match="salt"):
        commitment(b"short", body)


# --- bad values -------------------------------------------------------------------


def replace(entry: Entry, **changes: object) -> Entry:
    return dataclasses.replace(entry, **changes)  # type: ignore[type-var]


BAD_VALUES = [
    # (kind, field, value, what the message must name)
    ("record", "observed_at", "2021-10-31 08:00:00", "observed_at"),
    ("record", "observed_at", "2021-10-31T08:00:00+08:00", "observed_at"),
    ("record", "observed_at", "2021-13-01T00:00:00Z", "observed_at"),
    ("record", "observed_at", "2021-10-31T08:00:00.5Z", "observed_at"),
    ("record", "observed_at", 1635667200, "observed_at"),
    ("record", "uscc", "91330100MA27XXXXX", "uscc"),  # 17 characters
    ("record", "uscc", "91330100ma27xxxxxx", "uscc"),  # lower case
    ("record", "uscc", "91330100MA27XXXXXI", "uscc"),  # I is not in the alphabet
    ("record", "record_type", "gossip", "record_type"),
    ("record", "record_id", "", "record_id"),
    ("record", "record_id", "has space", "record_id"),
    ("record", "source", "-leading-dash", "source"),
    ("record", "commitment", "AB" * 32, "commitment"),
    ("record", "commitment", "ab" * 31, "commitment"),
    ("correction", "supersedes", "hz-1:tax:1:c1", "supersede"),  # its own record_id
    ("correction", "outcome", "deleted", "outcome"),
    ("correction", "uscc", "x" * 18, "uscc"),
    ("institution", "purposes", ("pre_loan", "marketing"), "purposes"),
    ("institution", "purposes", (), "purposes"),
    ("institution", "purposes", ("pre_loan", "pre_loan"), "purposes"),
    ("institution", "name", "", "name"),
    ("institution", "registered_at", "2021-10-31", "registered_at"),
    ("authorization", "purposes", ("advertising",), "purposes"),
    ("authorization", "not_after", T0, "not_after"),  # equal to not_before
    ("authorization", "not_after", "2020-01-01T00:00:00Z", "not_after"),  # before not_before
    ("authorization", "document_digest", "zz" * 32, "document_digest"),
    ("revocation", "reason", "", "reason"),
    ("revocation", "revoked_at", "yesterday", "revoked_at"),
    ("receipt", "role", "witness", "role"),
    ("receipt", "outcome", "maybe", "outcome"),
    ("receipt", "records", -1, "records"),
    ("receipt", "records", True, "records"),
    ("receipt", "at", "2021-10-31T24:00:00Z", "at"),
    ("alarm", "evidence", ("ok", 3), "evidence"),
    ("alarm", "peer", "", "peer"),
]


@pytest.mark.parametrize(
    ("kind", "field", "value", "named"),
    BAD_VALUES,
    ids=[f"{k}-{f}-{i}" for i, (k, f, _, _) in enumerate(BAD_VALUES)],
)
def test_bad_value_is_refused_naming_the_field(
    entries: list[Entry], kind: str, field: str, value: object, named: str
) -> None:
    good = by_kind(entries)[kind]
    with pytest.raises(InvalidRecordError, match=named):
        replace(good, **{field: value})
    # ... and the same value in a decoded dictionary is refused by parse_entry
    d = entry_to_dict(good)
    d[field] = list(value) if isinstance(value, tuple) else value  # type: ignore[assignment]
    with pytest.raises(DecodeError, match=named):
        parse_entry(canonical_bytes(d))


def test_unknown_record_type_lists_the_known_ones(entries: list[Entry]) -> None:
    with pytest.raises(InvalidRecordError, match="record_type must be one of") as caught:
        replace(by_kind(entries)["record"], record_type="credit_score")
    for known in RECORD_TYPES:
        assert known in str(caught.value)


def test_unknown_purpose_lists_the_known_ones(entries: list[Entry]) -> None:
    with pytest.raises(InvalidRecordError, match="purposes") as caught:
        replace(by_kind(entries)["authorization"], purposes=("pre_loan", "marketing"))
    assert "marketing" in str(caught.value)
    for known in PURPOSES:
        assert known in str(caught.value)


def test_self_superseding_correction(entries: list[Entry]) -> None:
    fix = by_kind(entries)["correction"]
    assert isinstance(fix, CorrectionEntry)
    with pytest.raises(InvalidRecordError, match="cannot supersede itself"):
        replace(fix, supersedes=fix.record_id)


@pytest.mark.parametrize("field", ["uscc", "record_id", "observed_at", "commitment"])
def test_trailing_newline_is_refused(entries: list[Entry], field: str) -> None:
    good = by_kind(entries)["record"]
    with pytest.raises(InvalidRecordError, match=field):
        replace(good, **{field: getattr(good, field) + "\n"})


def test_non_ascii_digits_in_time_are_refused() -> None:
    with pytest.raises(InvalidRecordError, match="observed_at"):
        check_time("observed_at", "٢٠٢١-10-31T08:00:00Z")


def test_impossible_date_is_refused() -> None:
    with pytest.raises(InvalidRecordError, match="observed_at"):
        check_time("observed_at", "2021-02-31T08:00:00Z")


def test_alarm_evidence_must_be_a_list(entries: list[Entry]) -> None:
    with pytest.raises(InvalidRecordError, match="evidence"):
        replace(by_kind(entries)["alarm"], evidence="note-a")


def test_check_time_accepts_the_canonical_form() -> None:
    for value in ("2021-10-31T08:00:00Z", "1999-12-31T23:59:59Z", "2020-02-29T00:00:00Z"):
        check_time("at", value)


# --- parse_entry refuses anything but canonical bytes of a valid entry ------------


def non_canonical_variants(data: bytes) -> dict[str, bytes]:
    d = json.loads(data)
    return {
        "spaces": json.dumps(d, sort_keys=True, ensure_ascii=False).encode(),
        "unsorted": json.dumps(
            dict(reversed(list(d.items()))), separators=(",", ":"), ensure_ascii=False
        ).encode(),
        "ascii-escapes": json.dumps(
            d, sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode(),
        "trailing-newline": data + b"\n",
        "leading-space": b" " + data,
        "bom": b"\xef\xbb\xbf" + data,
        "escaped-letter": data.replace(b'"kind"', b'"\\u006bind"'),
        "float-version": data.replace(b'"v":1', b'"v":1.0'),
        "duplicate-key": data[:-1] + b',"v":1}',
        "utf-16": data.decode().encode("utf-16"),
    }


@pytest.mark.parametrize("variant", list(non_canonical_variants(b'{"a":1}')))
def test_parse_entry_refuses_non_canonical_bytes(entries: list[Entry], variant: str) -> None:
    changed = 0
    for entry in entries:
        data = entry_bytes(entry)
        bad = non_canonical_variants(data)[variant]
        if bad == data:  # e.g. ASCII escapes of an all-ASCII entry
            continue
        changed += 1
        with pytest.raises(DecodeError):
            parse_entry(bad)
    assert changed >= 1


def test_parse_entry_refuses_unknown_kind_version_and_shape(entries: list[Entry]) -> None:
    record = entry_to_dict(by_kind(entries)["record"])
    cases: dict[str, object] = {
        "unknown kind": {**record, "kind": "rumour"},
        "no kind": {k: v for k, v in record.items() if k != "kind"},
        "kind not a string": {**record, "kind": 1},
        "future version": {**record, "v": 2},
        "no version": {k: v for k, v in record.items() if k != "v"},
        "extra field": {**record, "score": 700},
        "missing field": {k: v for k, v in record.items() if k != "source"},
        "field of another kind": {
            **{k: v for k, v in record.items() if k != "source"},
            "reason": "x",
        },
        "list": [record],
        "string": "record",
        "null": None,
    }
    for value in cases.values():
        with pytest.raises(DecodeError, match="entry"):
            parse_entry(canonical_bytes(value))  # type: ignore[arg-type]
        if isinstance(value, dict):
            with pytest.raises(InvalidRecordError):
                entry_from_dict(value)
    with pytest.raises(DecodeError, match="missing fields \\['source'\\]"):
        parse_entry(canonical_bytes(cases["missing field"]))  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="unexpected fields \\['score'\\]"):
        parse_entry(canonical_bytes(cases["extra field"]))  # type: ignore[arg-type]
    for junk in (b"", b"{", b"\xff\xfe", b"[]", b"1"):
        with pytest.raises(DecodeError):
            parse_entry(junk)


def test_parse_entry_refuses_wrong_types_from_json(entries: list[Entry]) -> None:
    institution = entry_to_dict(by_kind(entries)["institution"])
    for field, value in (
        ("purposes", "pre_loan"),
        ("name", ["x"]),
        ("registered_at", None),
        ("public_key", 5),
    ):
        with pytest.raises(DecodeError, match=field):
            parse_entry(canonical_bytes({**institution, field: value}))


# --- property: RecordEntry round trip ----------------------------------------------

ADMIN_CODES = ("310000", "320100", "320500", "320400", "321300", "330100", "331000", "340100")
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True).filter(
    lambda s: "\n" not in s
)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
usccs = st.builds(
    lambda a, s: make_uscc(a, s).code,
    st.sampled_from(ADMIN_CODES),
    st.integers(0, SERIAL_LIMIT - 1),
)
records = st.builds(
    RecordEntry,
    uscc=usccs,
    record_type=st.sampled_from(RECORD_TYPES),
    record_id=ids,
    source=ids,
    observed_at=times,
    commitment=st.binary(min_size=32, max_size=32).map(bytes.hex),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_record_entry_round_trips(entry: RecordEntry) -> None:
    data = entry_bytes(entry)
    assert parse_entry(data) == entry
    assert entry_bytes(parse_entry(data)) == data
    assert entry_from_dict(entry_to_dict(entry)) == entry
    assert data.startswith(b'{"commitment":"')


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.data())
def test_changed_record_bytes_never_parse_to_the_same_entry(
    entry: RecordEntry, data: st.DataObject
) -> None:
    raw = bytearray(entry_bytes(entry))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[pos]))
    try:
        parsed = parse_entry(bytes(raw))
    except DecodeError:
        return
    assert parsed != entry
