"""A ledger signed with SM2 over an SM3 tree: the GM suite at the ledger's level.

Every block head is an SM2-signed checkpoint, the file verifies, a reopened
ledger reads its key type from the file, and a forged or re-keyed head is
caught as with Ed25519.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger import (
    AlarmEntry,
    Ledger,
    LedgerError,
    NoteSigner,
    Sm2NoteSigner,
    Sm2NoteVerifier,
    Sm2PrivateKey,
    open_note,
    verify_ledger,
)

ORIGIN = "yrd.example/hf-1"


def _alarms(n: int) -> list[AlarmEntry]:
    return [
        AlarmEntry("sz-1", "equivocation", f"case {i}", (f"note-{i}",), "2021-10-31T08:00:00Z")
        for i in range(n)
    ]


@pytest.fixture
def sm2_signer() -> Sm2NoteSigner:
    return Sm2NoteSigner(ORIGIN, Sm2PrivateKey.generate())


def test_an_sm2_sm3_ledger_signs_every_block_and_verifies(
    tmp_path: Path, sm2_signer: Sm2NoteSigner
) -> None:
    path = tmp_path / "gm.db"
    ledger = Ledger.create(path, origin=ORIGIN, signer=sm2_signer, algorithm="sm3")
    for chunk in (1, 40, 300):
        ledger.append(_alarms(chunk))
    heights = ledger.head.height
    notes = [ledger.block(h).note for h in range(heights + 1)]
    ledger.close()
    for note in notes:
        assert open_note(note, [sm2_signer.verifier()]).verified_by == (ORIGIN,)
    report = verify_ledger(path)
    assert report.ok, report
    reopened = Ledger.open(path, signer=sm2_signer)
    assert isinstance(reopened.verifier, Sm2NoteVerifier)
    assert reopened.algorithm == "sm3" and reopened.size == 341
    reopened.append(_alarms(1))
    reopened.close()
    assert verify_ledger(path, verifier_key=sm2_signer.verifier().key_string()).ok


def test_another_sm2_key_is_refused_and_a_forged_head_is_a_fault(
    tmp_path: Path, sm2_signer: Sm2NoteSigner
) -> None:
    path = tmp_path / "gm.db"
    Ledger.create(path, origin=ORIGIN, signer=sm2_signer, algorithm="sm3").close()
    thief = Sm2NoteSigner(ORIGIN, Sm2PrivateKey.generate())
    with pytest.raises(LedgerError, match="signing key does not match"):
        Ledger.open(path, signer=thief)
    report = verify_ledger(path, verifier_key=thief.verifier().key_string())
    assert not report.ok
    assert {f.kind for f in report.faults} >= {"wrong-key"}


def test_sm2_with_sha256_is_refused(tmp_path: Path, sm2_signer: Sm2NoteSigner) -> None:
    with pytest.raises(LedgerError, match="hashes with sm3"):
        Ledger.create(tmp_path / "mixed.db", origin=ORIGIN, signer=sm2_signer)
    assert not (tmp_path / "mixed.db").exists()


def test_an_ed25519_key_cannot_append_to_an_sm2_ledger(
    tmp_path: Path, sm2_signer: Sm2NoteSigner, signer: NoteSigner
) -> None:
    path = tmp_path / "gm.db"
    Ledger.create(path, origin=ORIGIN, signer=sm2_signer, algorithm="sm3").close()
    with pytest.raises(LedgerError, match="signing key does not match"):
        Ledger.open(path, signer=signer)
    db = sqlite3.connect(path)
    try:
        (count,) = db.execute("SELECT count(*) FROM blocks").fetchone()
    finally:
        db.close()
    assert count == 1
