"""Tampering with a ledger file behind the library's back is found, and named.

One ledger of 1,501 entries in five blocks is built per module. Each case
copies the file, drops the append-only triggers with raw sqlite3, changes one
thing, then runs both ``ledger.fsck.verify_ledger`` and the command line
``python -m scenarios.cli ledger verify PATH``: the exit code is non-zero and
the fault kind and the entry index or block height are named exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import (
    InstitutionEntry,
    Ledger,
    NoteSigner,
    RecordDraft,
    canonical_bytes,
    entry_bytes,
    parse_entry,
    sign_note,
)
from ledger.fsck import Fault, VerifyReport, verify_ledger
from ledger.log import BlockHeader
from ledger.store import LEDGER_TABLES

BATCHES = (300, 300, 300, 300, 300)  # + one institution in block 2: sizes 300, 601, 901, 1201, 1501
INSTITUTION = InstitutionEntry(
    "bank-001", "杭州银行", "A" * 43 + "=", ("pre_loan",), "2021-10-31T08:00:00Z"
)

Tamper = Callable[[sqlite3.Connection], None]


@pytest.fixture(scope="module")
def base(
    tmp_path_factory: pytest.TempPathFactory, signer: NoteSigner, drafts: list[RecordDraft]
) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "base.db"
    ledger = Ledger.create(path, origin="yrd.example/hz-1", signer=signer)
    pos = 0
    for i, n in enumerate(BATCHES):
        batch: list[object] = list(drafts[pos : pos + n])
        if i == 1:
            batch.append(INSTITUTION)
        ledger.append(batch)  # type: ignore[arg-type]
        pos += n
    assert [ledger.block(h).size for h in range(6)] == [0, 300, 601, 901, 1201, 1501]
    ledger.close()  # checkpoints and removes the WAL: the main file is the whole ledger
    assert not Path(f"{path}-wal").exists()
    assert verify_ledger(path).ok
    return path


def copy_and_tamper(base: Path, tmp_path: Path, tamper: Tamper) -> Path:
    path = tmp_path / "tampered.db"
    shutil.copyfile(base, path)
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        for table in LEDGER_TABLES:
            for op in ("update", "delete"):
                db.execute(f"DROP TRIGGER {table}_no_{op}")
        tamper(db)
    finally:
        db.close()
    return path


def cli_verify(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "ledger", "verify", str(path), *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fault_of(report: VerifyReport, kind: str) -> Fault:
    found = [f for f in report.faults if f.kind == kind]
    assert found, f"no {kind} fault; got {[str(f) for f in report.faults]}"
    return found[0]


def where(index: int | None, height: int | None) -> str:
    return (
        f"entry {index}"
        if index is not None
        else f"block {height}"
        if height is not None
        else "ledger"
    )


def assert_named(
    path: Path,
    kind: str,
    *,
    index: int | None = None,
    height: int | None = None,
    key: str | None = None,
) -> VerifyReport:
    """Both verify_ledger and the CLI report ``kind`` at exactly ``index``/``height``."""
    report = verify_ledger(path, verifier_key=key)
    assert not report.ok
    fault = fault_of(report, kind)
    assert (fault.index, fault.height) == (index, height), str(fault)

    result = cli_verify(path, *(["--key", key] if key else []))
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert f"FAULT {kind} at {where(index, height)}: {fault.detail}" in lines, result.stdout
    assert all(not line.startswith("ok") for line in lines)
    return report


def row(db: sqlite3.Connection, index: int) -> tuple[str, str | None, bytes]:
    kind, subject, data = db.execute(
        "SELECT kind, subject, data FROM entries WHERE idx = ?", (index,)
    ).fetchone()
    return kind, subject, bytes(data)


# --- the untampered ledger ------------------------------------------------------


def test_untampered_copy_passes(base: Path, tmp_path: Path, signer: NoteSigner) -> None:
    path = copy_and_tamper(base, tmp_path, lambda db: None)  # triggers dropped, nothing changed
    report = verify_ledger(path, verifier_key=signer.verifier().key_string())
    assert report.ok, [str(f) for f in report.faults]
    assert (report.entries, report.blocks, report.bodies, report.size) == (1501, 6, 1500, 1501)
    for options, last in (
        ((), "ok (signatures checked"),
        (("--key", signer.verifier().key_string()), "ok"),
    ):
        result = cli_verify(path, *options)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[-1].startswith(last)
        assert "1501 entries, 6 blocks, 1500 bodies" in result.stdout


# --- entries and bodies -----------------------------------------------------------


def test_edited_body(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base,
        tmp_path,
        lambda db: db.execute(
            "UPDATE bodies SET body = ? WHERE idx = 20", (canonical_bytes({"rating": "A"}),)
        ),
    )
    report = assert_named(path, "edited-body", index=20)
    assert [f.kind for f in report.faults] == ["edited-body"]  # the tree is untouched


def test_edited_salt(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base,
        tmp_path,
        lambda db: db.execute("UPDATE bodies SET salt = ? WHERE idx = 1234", (bytes(16),)),
    )
    assert_named(path, "edited-body", index=1234)


def test_deleted_body(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base, tmp_path, lambda db: db.execute("DELETE FROM bodies WHERE idx = 77")
    )
    assert_named(path, "missing-body", index=77)


def test_edited_entry_canonical(base: Path, tmp_path: Path) -> None:
    """A valid, canonical entry with one value changed (the bodies still match)."""
    index = 700

    def tamper(db: sqlite3.Connection) -> None:
        entry = parse_entry(row(db, index)[2])
        forged = dataclasses.replace(entry, observed_at="2000-01-01T00:00:00Z")  # type: ignore[type-var]
        db.execute("UPDATE entries SET data = ? WHERE idx = ?", (entry_bytes(forged), index))

    path = copy_and_tamper(base, tmp_path, tamper)
    report = assert_named(path, "edited-entry", index=index)
    assert (
        fault_of(report, "root-mismatch").height == 3
    )  # the first block whose tree holds entry 700


def test_edited_entry_in_the_newest_partial_tile(base: Path, tmp_path: Path) -> None:
    index = 1400  # tiles 0/0..0/4 are full (entries 0..1279); 1280..1500 are the partial tile 0/5

    def tamper(db: sqlite3.Connection) -> None:
        entry = parse_entry(row(db, index)[2])
        forged = dataclasses.replace(entry, observed_at="2000-01-01T00:00:00Z")  # type: ignore[type-var]
        db.execute("UPDATE entries SET data = ? WHERE idx = ?", (entry_bytes(forged), index))

    assert_named(copy_and_tamper(base, tmp_path, tamper), "edited-entry", index=index)


@pytest.mark.parametrize("index", [150, 1400])
def test_edited_entry_non_canonical(base: Path, tmp_path: Path, index: int) -> None:
    def tamper(db: sqlite3.Connection) -> None:
        data = row(db, index)[2]
        db.execute(
            "UPDATE entries SET data = ? WHERE idx = ?", (data.replace(b",", b", ", 1), index)
        )

    assert_named(copy_and_tamper(base, tmp_path, tamper), "edited-entry", index=index)


def test_edited_index_columns(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base, tmp_path, lambda db: db.execute("UPDATE entries SET subject = 'x' WHERE idx = 333")
    )
    report = assert_named(path, "edited-index", index=333)
    assert [f.kind for f in report.faults] == ["edited-index"]


@pytest.mark.parametrize("index", [0, 999, 1500])
def test_deleted_entry(base: Path, tmp_path: Path, index: int) -> None:
    path = copy_and_tamper(
        base, tmp_path, lambda db: db.execute("DELETE FROM entries WHERE idx = ?", (index,))
    )
    if index == 1500:  # the last entry: nothing follows it, the count shows the gap
        report = verify_ledger(path)
        assert fault_of(report, "entry-count").detail.endswith("(highest index 1499)")
        assert cli_verify(path).returncode != 0
    else:
        assert_named(path, "missing-entry", index=index)


@pytest.mark.parametrize(("a", "b"), [(400, 410), (100, 1000)])
def test_swapped_entry_rows(base: Path, tmp_path: Path, a: int, b: int) -> None:
    """Two whole rows (entry and body) trade places: every row is valid, the order is not."""

    def tamper(db: sqlite3.Connection) -> None:
        ra, rb = row(db, a), row(db, b)
        ba, bb = (
            db.execute("SELECT salt, body FROM bodies WHERE idx = ?", (i,)).fetchone()
            for i in (a, b)
        )
        db.execute("UPDATE entries SET kind = ?, subject = ?, data = ? WHERE idx = ?", (*rb, a))
        db.execute("UPDATE entries SET kind = ?, subject = ?, data = ? WHERE idx = ?", (*ra, b))
        db.execute("UPDATE bodies SET salt = ?, body = ? WHERE idx = ?", (*bb, a))
        db.execute("UPDATE bodies SET salt = ?, body = ? WHERE idx = ?", (*ba, b))

    path = copy_and_tamper(base, tmp_path, tamper)
    report = verify_ledger(path)
    named = [f for f in report.faults if f.kind in ("reordered-entries", "edited-entry")]
    assert named, [str(f) for f in report.faults]
    assert named[0].index == a
    assert "edited-body" not in {f.kind for f in report.faults}  # bodies moved with their entries
    assert_named(path, named[0].kind, index=a)
    if b - a < 256:  # both in tile 0/1: the moved leaf is found elsewhere in the tile
        assert named[0].kind == "reordered-entries"


# --- blocks ------------------------------------------------------------------------


def test_forged_block_signature(base: Path, tmp_path: Path) -> None:
    height = 3

    def tamper(db: sqlite3.Connection) -> None:
        note = bytes(
            db.execute("SELECT note FROM blocks WHERE height = ?", (height,)).fetchone()[0]
        )
        text, _, sig_line = note.decode().rpartition("\n\n")
        dash, name, b64 = sig_line.rstrip("\n").split(" ")
        raw = bytearray(base64.b64decode(b64))
        raw[10] ^= 0x01  # a bit of the Ed25519 signature (after the 4-byte key ID)
        forged = f"{text}\n\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
        db.execute("UPDATE blocks SET note = ? WHERE height = ?", (forged, height))

    report = assert_named(copy_and_tamper(base, tmp_path, tamper), "bad-signature", height=height)
    assert [f.kind for f in report.faults] == ["bad-signature"]


def test_missing_block_signature(base: Path, tmp_path: Path) -> None:
    height = 2

    def tamper(db: sqlite3.Connection) -> None:
        note = bytes(
            db.execute("SELECT note FROM blocks WHERE height = ?", (height,)).fetchone()[0]
        )
        text = note.split(b"\n\n")[0] + b"\n"
        db.execute("UPDATE blocks SET note = ? WHERE height = ?", (text + b"\n", height))

    report = assert_named(
        copy_and_tamper(base, tmp_path, tamper), "missing-signature", height=height
    )
    assert [f.kind for f in report.faults] == ["missing-signature"]


def test_broken_hash_link(base: Path, tmp_path: Path) -> None:
    height = 4
    path = copy_and_tamper(
        base,
        tmp_path,
        lambda db: db.execute("UPDATE blocks SET prev = ? WHERE height = ?", (bytes(32), height)),
    )
    report = assert_named(path, "broken-hash-link", height=height)
    assert fault_of(report, "edited-block").height == height  # the signed note no longer matches


def test_edited_block_root(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base,
        tmp_path,
        lambda db: db.execute("UPDATE blocks SET root = ? WHERE height = 5", (bytes(32),)),
    )
    report = assert_named(path, "edited-block", height=5)
    assert fault_of(report, "root-mismatch").height == 5


def resign_last_block(signer: NoteSigner, time: str) -> Tamper:
    """Rewrite block 5 (the last: no later hash link covers it) with ``time``, signed anew."""

    def tamper(db: sqlite3.Connection) -> None:
        height, size, root, prev = db.execute(
            "SELECT height, size, root, prev FROM blocks WHERE height = 5"
        ).fetchone()
        header = BlockHeader("yrd.example/hz-1", height, size, bytes(root), time, bytes(prev))
        note = sign_note(header.text(), [signer])
        db.execute("UPDATE blocks SET time = ?, note = ? WHERE height = 5", (time, note))

    return tamper


def test_block_time_earlier_than_the_block_before(
    base: Path, tmp_path: Path, signer: NoteSigner
) -> None:
    """A correctly signed block whose time goes backwards (a clock stepped back)."""
    path = copy_and_tamper(base, tmp_path, resign_last_block(signer, "2000-01-01T00:00:00Z"))
    report = assert_named(path, "time-regression", height=5)
    assert [f.kind for f in report.faults] == ["time-regression"]  # signature and links hold
    before = sqlite3.connect(str(base)).execute("SELECT time FROM blocks WHERE height = 4")
    detail = report.faults[0].detail
    assert f"block 4's time {before.fetchone()[0]}" in detail
    assert "block 5 has time 2000-01-01T00:00:00Z" in detail


def test_block_time_that_is_not_rfc_3339(base: Path, tmp_path: Path, signer: NoteSigner) -> None:
    path = copy_and_tamper(base, tmp_path, resign_last_block(signer, "yesterday"))
    report = assert_named(path, "bad-time", height=5)
    assert [f.kind for f in report.faults] == ["bad-time"]


def test_deleted_block(base: Path, tmp_path: Path) -> None:
    path = copy_and_tamper(
        base, tmp_path, lambda db: db.execute("DELETE FROM blocks WHERE height = 3")
    )
    report = verify_ledger(path)
    missing = fault_of(report, "missing-block")
    assert missing.height == 3
    assert "blocks 3..3 are missing" in missing.detail
    assert fault_of(report, "broken-hash-link").height == 4
    assert cli_verify(path).returncode != 0


def test_edited_tile(base: Path, tmp_path: Path) -> None:
    def tamper(db: sqlite3.Connection) -> None:
        blob = bytearray(
            db.execute(
                "SELECT hashes FROM tiles WHERE level = 0 AND idx = 1 AND width = 256"
            ).fetchone()[0]
        )
        blob[32 * 5] ^= 0xFF
        db.execute(
            "UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 1 AND width = 256",
            (bytes(blob),),
        )

    report = verify_ledger(copy_and_tamper(base, tmp_path, tamper))
    kinds = {f.kind for f in report.faults}
    # The entries still match the signed block roots, so the tile is to blame, not an entry.
    assert "tile-mismatch" in kinds
    assert "edited-entry" not in kinds
    assert fault_of(report, "tile-mismatch").index == 256 + 5


# --- keys ----------------------------------------------------------------------------


def test_wrong_key_given(base: Path, tmp_path: Path, other_signer: NoteSigner) -> None:
    path = copy_and_tamper(base, tmp_path, lambda db: None)
    key = other_signer.verifier().key_string()
    report = assert_named(path, "wrong-key", key=key)
    assert fault_of(report, "bad-signature").height == 0  # no block is signed by that key


def test_wrong_key_in_the_file(
    base: Path, tmp_path: Path, signer: NoteSigner, other_signer: NoteSigner
) -> None:
    """Replacing the stored key does not help: the notes are not signed by it."""
    other = other_signer.verifier().key_string()
    path = copy_and_tamper(
        base,
        tmp_path,
        lambda db: db.execute("UPDATE meta SET value = ? WHERE key = 'verifier'", (other,)),
    )
    assert_named(path, "bad-signature", height=0)
    assert_named(path, "wrong-key", key=signer.verifier().key_string())
