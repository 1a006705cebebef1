"""The rogue step's history rewrite, on a ledger file (no node process).

The rewritten ledger is signed with the node's own key and verifies on its
own; it is identical to the old one up to the first changed record, and its
checkpoints cannot be reconciled with the old ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import (
    Ledger,
    NoteSigner,
    ProofError,
    RecordDraft,
    make_uscc,
    verify_consistency,
    verify_ledger,
)
from scenarios import localnet as net
from scenarios.scenario.runner import StepFailedError, rewrite_history

USCC = make_uscc("331000", 4242).code
T = "2021-10-01T08:00:00Z"


@pytest.fixture()
def cons(tmp_path: Path) -> net.Consortium:
    c = net.init_consortium(
        tmp_path / "cc", "launch-2020", base_port=net.find_free_base_port(11), check_ports=False
    )
    info = c.manifest.node("tz-1")
    path = c.ledger_path("tz-1")
    path.parent.mkdir(parents=True)
    ledger = Ledger.create(
        path, origin=info.origin, signer=NoteSigner(info.origin, c.node_key("tz-1"))
    )
    ledger.append([RecordDraft(USCC, "registration", "reg", "tz-amr", T, {"name": "a"})])
    ledger.append(
        [
            RecordDraft(
                USCC, "admin_penalty", "pen", "tz-amr", T, {"status": "in_force", "amount_minor": 5}
            ),
            RecordDraft(USCC, "judicial_enforcement", "case", "tz-court", T, {"status": "pending"}),
            RecordDraft(USCC, "tax_rating", "tax", "tz-tax", T, {"rating": "A"}),
        ]
    )
    ledger.close()
    return c


def test_rewrite_keeps_the_key_and_changes_the_history(cons: net.Consortium) -> None:
    path = cons.ledger_path("tz-1")
    before = Ledger.open(path, readonly=True)
    old_size, old_root = before.size, before.head.root
    old_leaves = [before.leaf_hash(i) for i in range(old_size)]
    before.close()

    detail = rewrite_history(
        cons, "tz-1", {"pen": {"status": "resolved"}}, {"case"}, None, tag="t1"
    )
    assert detail["altered"] == ["pen"] and detail["removed"] == ["case"]
    assert detail["first_changed_index"] == 1
    assert (
        detail["new_size"] == old_size + 1
    )  # padded past the old size, as a node that keeps working
    assert Path(detail["backup"]).exists()

    verifier = cons.manifest.node("tz-1").note_verifier().key_string()
    report = verify_ledger(path, verifier_key=verifier)
    assert report.ok, report.faults  # a valid ledger, signed by the node's own key
    after = Ledger.open(path, readonly=True)
    try:
        assert after.leaf_hash(0) == old_leaves[0]  # unchanged prefix: same entry, same salt
        assert after.leaf_hash(1) != old_leaves[1]
        ids = [getattr(e, "record_id", None) for _, e in after.by_subject(USCC, ("record",))]
        assert "case" not in ids and "pen" in ids and "tax" in ids
        pen = next(
            i
            for i, e in after.by_subject(USCC, ("record",))
            if getattr(e, "record_id", "") == "pen"
        )
        assert after.body(pen)[1] == {"status": "resolved", "amount_minor": 5}
        with pytest.raises(ProofError):
            verify_consistency(
                old_size,
                after.size,
                old_root,
                after.head.root,
                after.consistency_proof(old_size, after.size),
                after.algorithm,
            )
    finally:
        after.close()


def test_rewrite_of_a_record_the_node_does_not_hold_changes_nothing(cons: net.Consortium) -> None:
    path = cons.ledger_path("tz-1")
    data = path.read_bytes()
    with pytest.raises(StepFailedError, match="holds no record nope"):
        rewrite_history(cons, "tz-1", {}, {"nope"}, 0)
    assert path.read_bytes() == data
    assert not path.with_name("ledger.db.rogue").exists()
