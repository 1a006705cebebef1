"""ledger.log.Ledger over a real SQLite file: tiles, proofs, blocks, bodies,
append-only triggers and refused batches.

Store-backed proofs and roots are checked against the pure functions of
ledger.merkle over the leaf hashes (recomputed from the stored entry bytes),
before and after the file is reopened.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ledger import (
    AlarmEntry,
    Block,
    CommitmentError,
    CorrectionDraft,
    CorrectionEntry,
    Entry,
    InstitutionEntry,
    InvalidRecordError,
    Ledger,
    LedgerError,
    NoteSigner,
    RecordDraft,
    RecordEntry,
    SignatureError,
    StoreError,
    canonical_bytes,
    entry_bytes,
    merkle,
    open_note,
    parse_entry,
)
from ledger.fsck import verify_ledger
from ledger.log import BlockHeader
from ledger.note import Checkpoint
from ledger.store import LEDGER_TABLES, TILE_WIDTH

BATCHES = (1, 7, 255, 256, 257, 1000)  # 1776 entries; crosses tiles 0/0..0/6 and 1/0
PURE_SAMPLE = 0.25  # share of proofs also compared byte for byte with the pure functions


def grow(
    ledger: Ledger, items: Sequence[object], batches: Sequence[int], start: int = 0
) -> list[Block]:
    blocks = []
    pos = start
    for n in batches:
        batch = items[pos : pos + n]
        assert len(batch) == n, "not enough drafts for the batches"
        blocks.append(ledger.append(batch))  # type: ignore[arg-type]
        pos += n
    return blocks


def leaves_of(ledger: Ledger) -> list[bytes]:
    """Leaf hashes recomputed from the stored entry bytes (not from tiles)."""
    algorithm = ledger.algorithm
    return [merkle.leaf_hash(ledger.entry_data(i), algorithm) for i in range(ledger.size)]


def bodyless(entries: Sequence[Entry]) -> list[Entry]:
    """Entries that carry no body. A bare RecordEntry/CorrectionEntry appended
    directly has no stored body, and verify_ledger then reports missing-body."""
    return [e for e in entries if not isinstance(e, RecordEntry | CorrectionEntry)]


def alarms(n: int, start: int = 0) -> list[Entry]:
    """``n`` distinct entries without bodies or refs."""
    return [
        AlarmEntry("sz-1", "equivocation", f"case {i}", (f"note-{i}",), "2021-10-31T08:00:00Z")
        for i in range(start, start + n)
    ]


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def count_rows(path: Path, table: str) -> int:
    db = raw(path)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def interesting_sizes(n: int) -> list[int]:
    around = [k * TILE_WIDTH + d for k in range(1, n // TILE_WIDTH + 1) for d in (-1, 0, 1)]
    return sorted(
        {s for s in [1, 2, 3, 7, 8, 9, 63, 64, 65, 128, *around, n - 1, n] if 1 <= s <= n}
    )


def check_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], algorithm: str
) -> None:
    if old == 0:  # every tree extends the empty one: nothing to prove
        assert proof == []
    else:
        merkle.verify_consistency(old, new, old_root, new_root, proof, algorithm)


def check_against_pure(
    ledger: Ledger, leaves: list[bytes], blocks: Sequence[Block], seed: int
) -> None:
    """Store-backed roots and proofs equal the pure ones and verify against block roots."""
    algorithm = ledger.algorithm
    n = ledger.size
    assert n == len(leaves)
    rng = random.Random(seed)

    # Every leaf and every root size, against a compact range folded from the leaves.
    compact = merkle.CompactRange(merkle.hasher(algorithm))
    roots = [compact.root()]  # roots[s]: the pure root of the first s leaves
    for leaf in leaves:
        compact.append(leaf)
        roots.append(compact.root())
    for size in range(n + 1):
        assert ledger.root_at(size) == roots[size], f"root_at({size})"
    for index, leaf in enumerate(leaves):
        assert ledger.leaf_hash(index) == leaf
    assert ledger.root_at(n) == merkle.root(leaves, algorithm) == ledger.head.root

    # Block roots are the roots of their sizes.
    for block in blocks:
        assert ledger.root_at(block.size) == block.root == roots[block.size]

    # Inclusion: random pairs plus every tile boundary, current size and block sizes.
    sizes = interesting_sizes(n) + [b.size for b in blocks if b.size]
    pairs = [(rng.randrange(s), s) for s in sizes for _ in range(3)]
    pairs += [(s - 1, s) for s in sizes] + [(0, s) for s in sizes]
    for _ in range(150):
        size = rng.randint(1, n)
        pairs.append((rng.randrange(size), size))
    for index, size in pairs:
        proof = ledger.inclusion_proof(index, size)
        if rng.random() < PURE_SAMPLE:  # the pure function rebuilds the tree: sample it
            assert proof == merkle.inclusion_proof(leaves[:size], index, algorithm), (index, size)
        merkle.verify_inclusion(leaves[index], index, size, proof, roots[size], algorithm)
    for block in (b for b in blocks if b.size):
        for index in {0, block.size - 1, rng.randrange(block.size)}:
            proof = ledger.inclusion_proof(index, block.size)
            merkle.verify_inclusion(leaves[index], index, block.size, proof, block.root, algorithm)
    assert ledger.inclusion_proof(n - 1) == merkle.inclusion_proof(leaves, n - 1, algorithm)

    # Consistency: random pairs, tile boundaries, and between every two blocks.
    cpairs = [tuple(sorted((rng.randint(0, n), rng.randint(0, n)))) for _ in range(150)]
    cpairs += [(a, b) for a in sizes for b in (a, a + 1, n) if b <= n]
    for old, new in cpairs:
        proof = ledger.consistency_proof(old, new)
        if rng.random() < PURE_SAMPLE:
            assert proof == merkle.consistency_proof(leaves[:new], old, algorithm), (old, new)
        check_consistency(old, new, roots[old], roots[new], proof, algorithm)
    for i, older in enumerate(blocks):
        for newer in blocks[i:]:
            proof = ledger.consistency_proof(older.size, newer.size)
            check_consistency(older.size, newer.size, older.root, newer.root, proof, algorithm)
    assert ledger.consistency_proof(1) == merkle.consistency_proof(leaves, 1, algorithm)


def test_proofs_match_pure_functions_across_tile_boundaries(
    tmp_ledger: Ledger,
    drafts: list[RecordDraft | CorrectionDraft],
    signer: NoteSigner,
    ledger_path: Path,
) -> None:
    blocks = [tmp_ledger.block(0)] + grow(tmp_ledger, drafts, BATCHES)
    assert [b.size for b in blocks] == [0, 1, 8, 263, 519, 776, 1776]
    assert [b.height for b in blocks] == list(range(7))
    leaves = leaves_of(tmp_ledger)
    check_against_pure(tmp_ledger, leaves, blocks, seed=1)

    # Reopen: the right edge reloads from the partial tiles, the same proofs follow.
    tmp_ledger.close()
    reopened = Ledger.open(ledger_path, signer=signer)
    try:
        assert reopened.head == blocks[-1]
        check_against_pure(reopened, leaves, blocks, seed=2)
        # Appending after the reload continues the same tree.
        more = grow(reopened, drafts, (3, 253), start=sum(BATCHES))
        leaves = leaves_of(reopened)
        assert reopened.size == 2032
        assert reopened.head.root == merkle.root(leaves)
        check_against_pure(reopened, leaves, blocks + more, seed=3)
    finally:
        reopened.close()
    assert verify_ledger(ledger_path).ok


def test_proofs_survive_tile_cache_eviction(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two tiles, every proof still matches the pure functions:
    evicted and narrower cached tiles are read again from the store."""
    import itertools

    import ledger.log

    monkeypatch.setattr(ledger.log, "TILE_CACHE_TILES", 2)
    blocks = [tmp_ledger.block(0)] + grow(tmp_ledger, drafts, BATCHES)
    check_against_pure(tmp_ledger, leaves_of(tmp_ledger), blocks, seed=4)
    cache = tmp_ledger._tile_cache
    assert 0 < len(cache) <= 2
    for rows in cache.values():  # compact rows: one bytes object of 32-byte hashes per level
        widths = [len(r) // 32 for r in rows]
        assert all(isinstance(r, bytes) and len(r) % 32 == 0 for r in rows)
        assert widths[-1] == 1 and all(w == prev // 2 for prev, w in itertools.pairwise(widths))


@pytest.mark.parametrize(
    "split", [(256,), (255, 1), (1, 255), (256, 256), (511, 1, 1), (300, 212, 1)]
)
def test_reopen_at_every_kind_of_edge(
    make_ledger: Callable[..., Ledger],
    drafts: list[RecordDraft | CorrectionDraft],
    signer: NoteSigner,
    split: tuple[int, ...],
) -> None:
    """Reopen after each batch, so the edge is reloaded at full, partial and empty tiles."""
    ledger = make_ledger()
    path = ledger.store.path
    blocks = [ledger.block(0)]
    pos = 0
    for n in split:
        blocks.append(ledger.append(drafts[pos : pos + n]))
        pos += n
        ledger.close()
        ledger = Ledger.open(path, signer=signer)
    try:
        leaves = leaves_of(ledger)
        assert ledger.head.root == merkle.root(leaves)
        check_against_pure(ledger, leaves, blocks, seed=sum(split))
    finally:
        ledger.close()


def test_read_only_open_serves_proofs(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft], ledger_path: Path
) -> None:
    blocks = grow(tmp_ledger, drafts, (300, 10))
    reader = Ledger.open(ledger_path, readonly=True)
    try:
        assert reader.head == blocks[-1]
        proof = reader.inclusion_proof(299, 300)
        merkle.verify_inclusion(reader.leaf_hash(299), 299, 300, proof, blocks[0].root)
        with pytest.raises(LedgerError, match="signing key"):
            reader.append(drafts[310:311])
    finally:
        reader.close()


def test_block_hash_links_and_notes(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft], signer: NoteSigner
) -> None:
    grow(tmp_ledger, drafts, (5, 1, 300, 2))
    assert tmp_ledger.height == 4
    genesis = tmp_ledger.block(0)
    assert genesis.header.prev == bytes(32)
    assert genesis.size == 0 and genesis.root == merkle.hasher().empty()
    for height in range(tmp_ledger.height + 1):
        block = tmp_ledger.block(height)
        assert block.height == height
        if height:
            assert block.header.prev == tmp_ledger.block(height - 1).header.hash()
            assert block.size > tmp_ledger.block(height - 1).size
        assert tmp_ledger.open_note(block.note) == block.header
        opened = open_note(block.note, [signer.verifier()])
        assert opened.text == block.header.text()
        cp = Checkpoint.from_text(opened.text)
        assert (cp.origin, cp.size, cp.root) == (tmp_ledger.origin, block.size, block.root)
        assert BlockHeader.from_checkpoint(cp) == block.header
    assert tmp_ledger.block() == tmp_ledger.head == tmp_ledger.block(4)
    assert tmp_ledger.block_for_size(6).height == 2
    assert tmp_ledger.block_for_size(7).height == 3
    assert tmp_ledger.block_for_size(308).height == 4
    with pytest.raises(InvalidRecordError, match="no block at height 5"):
        tmp_ledger.block(5)
    with pytest.raises(InvalidRecordError, match="no block reaches size 309"):
        tmp_ledger.block_for_size(309)


def test_note_of_another_key_is_refused(
    tmp_ledger: Ledger, other_signer: NoteSigner, entries: list[Entry]
) -> None:
    tmp_ledger.append(bodyless(entries))
    forged = Ledger.create(
        tmp_ledger.store.path.with_name("forged.db"), origin=tmp_ledger.origin, signer=other_signer
    )
    try:
        forged.append(bodyless(entries))
        with pytest.raises(SignatureError):
            tmp_ledger.open_note(forged.head.note)
    finally:
        forged.close()


def test_sm3_ledger_works_and_differs(
    make_ledger: Callable[..., Ledger], entries: list[Entry]
) -> None:
    sha = make_ledger("sha.db")
    sm3 = make_ledger("sm3.db", algorithm="sm3")
    assert (sha.algorithm, sm3.algorithm) == ("sha256", "sm3")
    assert sm3.block(0).root == merkle.hasher("sm3").empty() != sha.block(0).root
    items = [*bodyless(entries), *alarms(555)]  # 560 entries: two full tiles and a partial one
    blocks = [sm3.block(0)]
    for ledger in (sha, sm3):
        for chunk in (items[:1], items[1:300], items[300:]):
            block = ledger.append(chunk)
            if ledger is sm3:
                blocks.append(block)
    data = [entry_bytes(e) for e in items]
    assert (
        [sm3.entry_data(i) for i in range(sm3.size)]
        == data
        == [sha.entry_data(i) for i in range(sha.size)]
    )
    sm3_leaves = [merkle.leaf_hash(d, "sm3") for d in data]
    assert sm3.head.root == merkle.root(sm3_leaves, "sm3")
    assert sha.head.root == merkle.root([merkle.leaf_hash(d) for d in data])
    assert sm3.head.root != sha.head.root
    check_against_pure(sm3, sm3_leaves, blocks, seed=4)
    assert verify_ledger(sm3.store.path).ok


def test_body_round_trips_and_detects_tampering(
    tmp_ledger: Ledger,
    drafts: list[RecordDraft | CorrectionDraft],
    ledger_path: Path,
    entries: list[Entry],
) -> None:
    batch = drafts[:20]
    tmp_ledger.append(batch)
    tmp_ledger.append([next(e for e in entries if isinstance(e, InstitutionEntry))])
    for index, draft in enumerate(batch):
        salt, body = tmp_ledger.body(index)
        assert body == draft.body
        assert len(salt) == 16
        entry = tmp_ledger.entry(index)
        assert isinstance(entry, RecordEntry | CorrectionEntry)
        assert merkle.hasher().digest(salt + canonical_bytes(body)).hex() == entry.commitment
    with pytest.raises(InvalidRecordError, match="institution"):
        tmp_ledger.body(20)

    db = raw(ledger_path)
    try:
        db.execute("DROP TRIGGER bodies_no_update")
        db.execute("UPDATE bodies SET body = ? WHERE idx = 3", (canonical_bytes({"forged": True}),))
        db.execute("UPDATE bodies SET salt = ? WHERE idx = 5", (bytes(16),))
    finally:
        db.close()
    with pytest.raises(CommitmentError) as caught:
        tmp_ledger.body(3)
    assert caught.value.index == 3
    with pytest.raises(CommitmentError) as caught:
        tmp_ledger.body(5)
    assert caught.value.index == 5
    assert tmp_ledger.body(4)[1] == batch[4].body


# --- append-only triggers ----------------------------------------------------


@pytest.fixture
def full_ledger(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft], entries: list[Entry]
) -> Ledger:
    """A ledger with a row in every table (refs come from the institution and authorization)."""
    tmp_ledger.append(drafts[:300])
    tmp_ledger.append(bodyless(entries))
    return tmp_ledger


@pytest.mark.parametrize("table", LEDGER_TABLES)
@pytest.mark.parametrize("op", ["UPDATE", "DELETE"])
def test_triggers_refuse_update_and_delete(
    full_ledger: Ledger, ledger_path: Path, table: str, op: str
) -> None:
    assert set(LEDGER_TABLES) == {"entries", "bodies", "tiles", "blocks", "refs", "meta"}
    column = {
        "entries": "data",
        "bodies": "body",
        "tiles": "hashes",
        "blocks": "note",
        "refs": "ref",
        "meta": "value",
    }[table]
    before = count_rows(ledger_path, table)
    assert before > 0
    db = raw(ledger_path)
    try:
        dump = db.execute(f"SELECT * FROM {table}").fetchall()
        sql = (
            f"UPDATE {table} SET {column} = {column} || 'x'"
            if op == "UPDATE"
            else f"DELETE FROM {table}"
        )
        with pytest.raises(sqlite3.IntegrityError, match=f"append-only: {op} on {table} refused"):
            db.execute(sql)
        with pytest.raises(
            sqlite3.DatabaseError, match="append-only"
        ):  # one row in a transaction too
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"{sql} WHERE {column} = (SELECT max({column}) FROM {table})")
            finally:
                db.execute("ROLLBACK")
        assert db.execute(f"SELECT * FROM {table}").fetchall() == dump
    finally:
        db.close()
    assert verify_ledger(ledger_path).ok
    full_ledger.append(alarms(2))  # still appends after the refusal


def test_insert_or_replace_is_refused(full_ledger: Ledger, ledger_path: Path) -> None:
    db = raw(ledger_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(
                "INSERT OR REPLACE INTO entries (idx, kind, subject, data) VALUES (0, 'record', NULL, x'00')"
            )
    finally:
        db.close()


# --- refused batches ------------------------------------------------------------


def snapshot(ledger: Ledger) -> tuple[object, ...]:
    path = ledger.store.path
    return (ledger.size, ledger.height, ledger.head, *(count_rows(path, t) for t in LEDGER_TABLES))


def bad_batches(
    drafts: list[RecordDraft | CorrectionDraft], entries: list[Entry]
) -> dict[str, list[object]]:
    good = drafts[0]
    assert isinstance(good, RecordDraft)
    return {
        "bad-uscc": [
            good,
            RecordDraft("not-a-uscc", good.record_type, "r1", good.source, good.observed_at, {}),
        ],
        "bad-type": [
            *drafts[1:5],
            RecordDraft(good.uscc, "gossip", "r1", good.source, good.observed_at, {}),
        ],
        "bad-time": [
            RecordDraft(good.uscc, good.record_type, "r1", good.source, "2021-10-31 08:00:00", {})
        ],
        "float-body": [
            *bodyless(entries),
            RecordDraft(
                good.uscc, good.record_type, "r1", good.source, good.observed_at, {"x": 1.5}
            ),
        ],
        "self-superseding": [
            good,
            CorrectionDraft(good.uscc, "r1", "r1", "resolved", good.source, good.observed_at, {}),
        ],
    }


@pytest.mark.parametrize(
    "case", ["bad-uscc", "bad-type", "bad-time", "float-body", "self-superseding"]
)
def test_invalid_batch_writes_nothing(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft], entries: list[Entry], case: str
) -> None:
    tmp_ledger.append(drafts[100:110])
    before = snapshot(tmp_ledger)
    with pytest.raises(InvalidRecordError):
        tmp_ledger.append(bad_batches(drafts, entries)[case])  # type: ignore[arg-type]
    assert snapshot(tmp_ledger) == before
    # The next good batch continues exactly where the ledger was.
    block = tmp_ledger.append(drafts[110:112])
    assert (block.size, block.height) == (12, 2)
    assert verify_ledger(tmp_ledger.store.path).ok


def test_empty_batch_writes_nothing(tmp_ledger: Ledger) -> None:
    before = snapshot(tmp_ledger)
    with pytest.raises(InvalidRecordError, match="at least one"):
        tmp_ledger.append([])
    assert snapshot(tmp_ledger) == before


def test_duplicate_ref_is_refused_by_the_store(tmp_ledger: Ledger, entries: list[Entry]) -> None:
    institution, alarm = (
        next(e for e in entries if isinstance(e, t)) for t in (InstitutionEntry, AlarmEntry)
    )
    tmp_ledger.append([institution])
    before = snapshot(tmp_ledger)
    with pytest.raises(StoreError):
        tmp_ledger.append([alarm, institution])
    assert snapshot(tmp_ledger) == before
    assert tmp_ledger.by_ref("institution:bank-001") == (0, institution)
    block = tmp_ledger.append([alarm])
    assert block.size == 2
    assert tmp_ledger.head.root == merkle.root(leaves_of(tmp_ledger))
    assert verify_ledger(tmp_ledger.store.path).ok


# --- keys ------------------------------------------------------------------


def test_open_with_wrong_signer_is_refused(
    tmp_ledger: Ledger, ledger_path: Path, other_signer: NoteSigner
) -> None:
    with pytest.raises(LedgerError, match="signing key does not match"):
        Ledger.open(ledger_path, signer=other_signer)


def test_open_without_signer_cannot_append(
    tmp_ledger: Ledger, ledger_path: Path, drafts: list[RecordDraft | CorrectionDraft]
) -> None:
    tmp_ledger.append(drafts[:3])
    reader = Ledger.open(ledger_path)
    try:
        assert reader.head == tmp_ledger.head
        with pytest.raises(LedgerError, match="without its signing key"):
            reader.append(drafts[3:4])
        assert reader.size == 3
    finally:
        reader.close()


def test_create_refuses_existing_and_open_refuses_missing(
    tmp_ledger: Ledger, ledger_path: Path, signer: NoteSigner
) -> None:
    with pytest.raises(StoreError, match="already exists"):
        Ledger.create(ledger_path, origin="x", signer=signer)
    with pytest.raises(StoreError, match="does not exist"):
        Ledger.open(ledger_path.with_name("nope.db"))


# --- corrections ------------------------------------------------------------


def test_correction_is_stored_and_found_by_subject(
    tmp_ledger: Ledger, drafts: list[RecordDraft | CorrectionDraft]
) -> None:
    original = next(
        d for d in drafts if isinstance(d, RecordDraft) and d.record_type == "admin_penalty"
    )
    others = [d for d in drafts[:50] if d.uscc != original.uscc]
    fix = CorrectionDraft(
        original.uscc,
        f"{original.record_id}:c9",
        original.record_id,
        "amended",
        original.source,
        "2021-12-01T00:00:00Z",
        {"status": "amended"},
    )
    tmp_ledger.append([original, *others[:10]])
    tmp_ledger.append([*others[10:20], fix])

    history = tmp_ledger.by_subject(original.uscc)
    assert [i for i, _ in history] == [0, 21]
    first, correction = history[0][1], history[1][1]
    assert isinstance(first, RecordEntry) and first.record_id == original.record_id
    assert isinstance(correction, CorrectionEntry)
    assert correction.supersedes == original.record_id
    assert correction.outcome == "amended"
    assert tmp_ledger.by_subject(original.uscc, ["correction"]) == [(21, correction)]
    assert tmp_ledger.by_subject(original.uscc, ["record"]) == [(0, first)]
    assert tmp_ledger.body(21)[1] == {"status": "amended"}
    assert tmp_ledger.body(0)[1] == original.body  # the superseded record stays in history
    assert parse_entry(tmp_ledger.entry_data(21)) == correction
    assert verify_ledger(tmp_ledger.store.path).ok


def test_verify_finds_a_grant_after_its_authorizations_revocation(make_ledger) -> None:
    """A home receipt granting a query after the authorization's revocation is a fault."""
    from ledger import AuthorizationEntry, ReceiptEntry, RevocationEntry, make_uscc

    USCC, T0 = make_uscc("330100", 9).code, "2021-10-31T08:00:00Z"  # noqa: N806

    ledger = make_ledger("grant.db")
    auth = AuthorizationEntry(
        "auth-9", USCC, "bank-001", ("pre_loan",), T0, "2099-01-01T00:00:00Z", "ab" * 32
    )

    def receipt(query_id: str) -> ReceiptEntry:
        return ReceiptEntry(
            query_id, USCC, "bank-001", "hz-1", "hz-1", "home", "pre_loan", "auth-9",
            "granted", "complete", 0, T0,
        )  # fmt: skip

    ledger.append([auth, receipt("q-before")])
    ledger.append([RevocationEntry("auth-9", USCC, T0, "withdrawn"), receipt("q-after")])
    report = verify_ledger(ledger.store.path)
    assert [f.kind for f in report.faults] == ["grant-after-revocation"], report.faults
    assert report.faults[0].index == 3
    assert "q-after" in report.faults[0].detail
