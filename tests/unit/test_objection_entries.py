"""Objection entries round-trip canonically; the network clock only moves forward and persists."""

from __future__ import annotations

import pytest

from ledger import (
    InvalidRecordError,
    ObjectionEntry,
    ObjectionOutcomeEntry,
    entry_bytes,
    entry_to_dict,
    parse_entry,
)
from node.clock import NetworkClock
from node.disputes import dispute_marks

USCC = "913401000000000000"


def _objection(**kw):
    args = dict(
        objection_id="obj-1",
        uscc="913401000000000000",
        record_id="sh-1:j1",
        holder_node="sh-1",
        home_node="hf-1",
        reason="paid",
        filed_at="2021-10-01T00:00:00Z",
        due_at="2021-10-21T00:00:00Z",
        consent="c2ln",
    )
    args.update(kw)
    return ObjectionEntry(**args)


def test_objection_and_outcome_round_trip():
    o = _objection()
    assert parse_entry(entry_bytes(o)) == o
    done = ObjectionOutcomeEntry(
        "obj-1", o.uscc, o.record_id, "upheld", "checked", "2021-10-05T00:00:00Z"
    )
    assert "correction_id" not in entry_to_dict(done)  # absent when empty: one encoding
    assert parse_entry(entry_bytes(done)) == done
    fixed = ObjectionOutcomeEntry(
        "obj-1", o.uscc, o.record_id, "corrected", "wrong", "2021-10-05T00:00:00Z", "sh-1:j1c"
    )
    assert parse_entry(entry_bytes(fixed)) == fixed
    [mark] = dispute_marks([o, fixed])
    assert mark["status"] == "corrected" and mark["late"] is False


@pytest.mark.parametrize(
    "bad",
    [
        {"due_at": "2021-09-01T00:00:00Z"},
        {"reason": ""},
        {"consent": ""},
        {"record_id": "bad id"},
    ],
)
def test_bad_objections_are_refused(bad):
    with pytest.raises(InvalidRecordError):
        _objection(**bad)


def test_outcome_rules():
    with pytest.raises(InvalidRecordError):
        ObjectionOutcomeEntry("o", USCC, "r", "maybe", "v", "2021-10-05T00:00:00Z")
    with pytest.raises(InvalidRecordError):  # corrected needs its correction
        ObjectionOutcomeEntry(
            "o", "913401000000000000", "r", "corrected", "v", "2021-10-05T00:00:00Z"
        )
    with pytest.raises(InvalidRecordError):  # only corrected names one
        ObjectionOutcomeEntry(
            "o", "913401000000000000", "r", "upheld", "v", "2021-10-05T00:00:00Z", "x"
        )


def test_clock_offset_moves_forward_and_persists(tmp_path):
    path = tmp_path / "clock.json"
    clock = NetworkClock(path, wall=lambda: 1_600_000_000.0)
    assert clock.now() == "2020-09-13T12:26:40Z"
    clock.set_offset(86400)
    assert clock.now() == "2020-09-14T12:26:40Z"
    with pytest.raises(InvalidRecordError, match="only moves forward"):
        clock.set_offset(0)
    with pytest.raises(InvalidRecordError):
        clock.set_offset(-1)
    assert NetworkClock(path).offset_s == 86400  # a restarted node keeps the network's time


# sha256 of entry_bytes for one entry of every kind that existed before objections, as the
# code before them (commit a3e448d) encodes them: adding kinds must not change old bytes.
OLD_BYTES = {
    "record": "6d11bd903d98ae5d08dceace78a0062d299ce8e31926c7f28872b519aa9f0120",
    "correction": "c6aaf17cfcbf072532a01ed420a27211ced49c5b32fedc9c141cf4cbc5f3b919",
    "institution": "67a484531dce11aa1e877a40f1447d473b3cf994e609d658224d9b62b8199ced",
    "authorization": "2aaf3ba3358b39b0c85769b9c5cc4bd791722923ab3ed14796bd9036e609cd2c",
    "authorization+consent": "b3810ef06ebf44402db11068f64ae20096483ed77d578bb8b35f7b6b54e14eba",
    "revocation": "c7446ee7d27847c9b040e030629b6575018e13021071924ffa2bb7ba809c5585",
    "receipt": "7f4dee7ddacbf673a5a310ec00bb235fee99975c1e47d85821c9dc497eeb715f",
    "alarm": "f4d87869dbf78d1538198aef73d512681d5fe4656ee01403cb5fdbfc092b2955",
}


def test_entries_of_the_old_kinds_keep_their_bytes():
    import hashlib

    from ledger import (
        AlarmEntry,
        AuthorizationEntry,
        CorrectionEntry,
        InstitutionEntry,
        ReceiptEntry,
        RecordEntry,
        RevocationEntry,
    )

    u, t0, t1 = "913401000000000000", "2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"
    at = "2021-03-01T00:00:00Z"
    entries = {
        "record": RecordEntry(u, "admin_penalty", "r1", "hf-amr", t0, "a" * 64),
        "correction": CorrectionEntry(
            u, "r2", "r1", "resolved", "hf-amr", "2021-02-01T00:00:00Z", "b" * 64
        ),
        "institution": InstitutionEntry("bank-1", "Bank", "AAAA", ("post_loan",), t0),
        "authorization": AuthorizationEntry("a1", u, "bank-1", ("post_loan",), t0, t1, "c" * 64),
        "authorization+consent": AuthorizationEntry(
            "a2", u, "bank-1", ("post_loan",), t0, t1, "c" * 64, "c2ln"
        ),
        "revocation": RevocationEntry("a1", u, at, "withdrawn"),
        "receipt": ReceiptEntry(
            "q1",
            u,
            "bank-1",
            "hz-1",
            "hf-1",
            "holder",
            "post_loan",
            "a1",
            "granted",
            "complete",
            2,
            at,
        ),  # fmt: skip
        "alarm": AlarmEntry("sh-1", "equivocation", "forked", ("note",), at),
    }
    got = {k: hashlib.sha256(entry_bytes(e)).hexdigest() for k, e in entries.items()}
    assert got == OLD_BYTES
