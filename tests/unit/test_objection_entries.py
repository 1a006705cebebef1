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
