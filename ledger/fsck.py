"""Full verification of a ledger file, from the first entry.

:func:`verify_ledger` streams the database (memory does not grow with the
ledger) and recomputes everything: entry decoding, derived columns, body
commitments, every stored tile, every block root, the hash links between
block headers, every block signature, and that block times never go
backwards. It never trusts a stored hash it
can recompute. It reports the first fault of each kind, naming the entry
index or block height, so one tampered row does not hide another kind of
tampering further on.

Invariants: read-only (the file is opened with ``mode=ro``); never raises for
a fault in the data, only for a file that is not a ledger at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.entries import (
    CorrectionEntry,
    ReceiptEntry,
    RecordEntry,
    RevocationEntry,
    check_time,
    entry_subject,
    parse_entry,
)
from ledger.errors import (
    DecodeError,
    InvalidRecordError,
    LedgerError,
    SignatureError,
    StoreError,
)
from ledger.log import BlockHeader
from ledger.merkle import CompactRange, Hasher, hasher
from ledger.note import (
    Checkpoint,
    NoteVerifier,
    Sm2NoteVerifier,
    note_verifier_from_key_string,
    open_note,
)
from ledger.store import TILE_HEIGHT, TILE_WIDTH

__all__ = ["Fault", "VerifyReport", "verify_ledger"]

CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Fault:
    """One thing found wrong. ``index`` names an entry, ``height`` a block."""

    kind: str
    detail: str
    index: int | None = None
    height: int | None = None

    def __str__(self) -> str:
        where = (
            f"entry {self.index}"
            if self.index is not None
            else f"block {self.height}"
            if self.height is not None
            else "ledger"
        )
        return f"{self.kind} at {where}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    """What verification saw, and the first fault of each kind."""

    path: str
    origin: str = ""
    entries: int = 0
    blocks: int = 0
    bodies: int = 0
    tiles: int = 0
    size: int = 0
    faults: list[Fault] = field(default_factory=list)
    _kinds: set[str] = field(default_factory=set, repr=False)
    # A stored leaf hash that differs from the recomputed one means either the
    # entry or the tile was changed; the signed block roots decide which.
    _suspects: list[tuple[Fault, str]] = field(default_factory=list, repr=False)
    _bad_root_sizes: list[int] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.faults

    def add(self, fault: Fault) -> None:
        if fault.kind not in self._kinds:
            self._kinds.add(fault.kind)
            self.faults.append(fault)

    def suspect(self, fault: Fault, tile: str) -> None:
        """Hold an entry fault that a changed ``tile`` could explain, until the roots decide."""
        self._suspects.append((fault, tile))

    def bad_root(self, size: int) -> None:
        """Note that the recomputed root of tree size ``size`` differs from the signed one."""
        self._bad_root_sizes.append(size)

    def settle_suspects(self) -> None:
        """Blame each suspect on its entry if a later signed root disagrees, else on the tile."""
        for fault, tile in self._suspects:
            assert fault.index is not None
            if any(n > fault.index for n in self._bad_root_sizes):
                self.add(fault)
            else:  # the signed roots agree with the entries: the stored tile was changed
                self.add(
                    Fault(
                        "tile-mismatch",
                        f"{tile} differs from the entries, which match the signed roots",
                        index=fault.index,
                    )
                )
        self._suspects.clear()


def _rows(db: sqlite3.Connection, sql: str, last: int) -> Iterator[tuple[Any, ...]]:
    start = 0
    while start <= last:
        batch = db.execute(sql, (start, start + CHUNK)).fetchall()
        yield from batch
        start += CHUNK


def verify_ledger(path: str | Path, *, verifier_key: str | None = None) -> VerifyReport:
    """Recompute and check everything in the ledger at ``path``.

    Args:
        path: the ledger database.
        verifier_key: the node's note verifier key (``name+id+key``). Without
            it, the key stored in the file is used, which proves integrity
            but not authorship.

    Raises:
        StoreError: the file cannot be opened as a ledger at all.
    """
    report = VerifyReport(path=str(path))
    if not Path(path).exists():
        raise StoreError(f"{path} does not exist")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a ledger database: {exc}") from exc
    try:
        report.origin = meta["origin"]
        h = hasher(meta["algorithm"])
        stored_key = meta["verifier"]
    except (KeyError, ValueError) as exc:
        raise StoreError(f"{path}: ledger metadata is incomplete ({exc})") from exc
    if verifier_key is not None and verifier_key != stored_key:
        report.add(
            Fault(
                "wrong-key", f"the file names key {stored_key.split('+')[0]!r}, not the given key"
            )
        )
    verifier = note_verifier_from_key_string(verifier_key or stored_key)
    try:
        _verify(db, report, h, verifier)
    except sqlite3.Error as exc:
        report.add(Fault("unreadable", f"database error: {exc}"))
    finally:
        db.close()
    return report


def _verify(
    db: sqlite3.Connection,
    report: VerifyReport,
    h: Hasher,
    verifier: NoteVerifier | Sm2NoteVerifier,
) -> None:
    blocks = db.execute(
        "SELECT height, size, root, time, prev, note FROM blocks ORDER BY height"
    ).fetchall()
    report.blocks = len(blocks)
    last_idx = db.execute("SELECT max(idx) FROM entries").fetchone()[0]
    last_idx = -1 if last_idx is None else int(last_idx)
    report.entries = int(db.execute("SELECT count(*) FROM entries").fetchone()[0])

    # Blocks: hash links and signatures (independent of the entries).
    prev_hash = bytes(32)
    sizes: dict[int, list[tuple[int, bytes]]] = {}
    expected_height = 0
    last_size = 0
    last_time: tuple[int, str] | None = None  # (height, time) of the previous block
    for height, size, root, time, prev, note in blocks:
        height, size = int(height), int(size)
        last_time = _check_time(report, height, str(time), last_time)
        if height != expected_height:
            report.add(
                Fault(
                    "missing-block",
                    f"blocks {expected_height}..{height - 1} are missing (next found: {height})",
                    height=expected_height,
                )
            )
        expected_height = height + 1
        header = BlockHeader(report.origin, height, size, bytes(root), str(time), bytes(prev))
        if bytes(prev) != prev_hash:
            report.add(
                Fault(
                    "broken-hash-link",
                    "prev does not match the hash of the previous block header",
                    height=height,
                )
            )
        prev_hash = header.hash()
        if size < last_size:
            report.add(
                Fault(
                    "shrinking-tree",
                    f"size {size} is below the previous block's {last_size}",
                    height=height,
                )
            )
        last_size = size
        _check_note(report, bytes(note), header.text(), verifier, height)
        sizes.setdefault(size, []).append((height, bytes(root)))
    report.size = last_size
    if report.entries != last_size or last_idx != last_size - 1:
        report.add(
            Fault(
                "entry-count",
                f"the last block covers {last_size} entries, the table holds {report.entries} "
                f"(highest index {last_idx})",
            )
        )

    # Entries: stream, decode, check columns, bodies, tiles and roots.
    stored_tiles: dict[tuple[int, int], list[bytes]] = {}
    for level, idx, _width, hashes in db.execute(
        "SELECT level, idx, width, hashes FROM tiles WHERE width < ?", (TILE_WIDTH,)
    ):
        stored_tiles.setdefault((int(level), int(idx)), []).append(bytes(hashes))
    compact = CompactRange(h)
    edge: list[list[bytes]] = []
    expected = 0
    body_seen = 0
    revoked: set[str] = set()  # authorization ids revoked so far, in ledger order
    sql = (
        "SELECT e.idx, e.kind, e.subject, e.data, b.salt, b.body FROM entries e "
        "LEFT JOIN bodies b ON b.idx = e.idx WHERE e.idx >= ? AND e.idx < ? ORDER BY e.idx"
    )
    for idx, kind, subject, data, salt, body in _rows(db, sql, last_idx):
        idx = int(idx)
        if idx != expected:
            report.add(
                Fault(
                    "missing-entry",
                    f"entries {expected}..{idx - 1} are missing (deleted rows)",
                    index=expected,
                )
            )
            expected = idx
        data = bytes(data)
        leaf = h.leaf(data)
        try:
            entry = parse_entry(data)
        except DecodeError as exc:
            report.add(Fault("edited-entry", f"not a valid canonical entry: {exc}", index=idx))
            entry = None
        if entry is not None:
            if kind != entry.kind or subject != entry_subject(entry):
                report.add(
                    Fault("edited-index", "kind/subject columns do not match the entry", index=idx)
                )
            if isinstance(entry, RecordEntry | CorrectionEntry):
                if salt is None:
                    report.add(Fault("missing-body", "record has no stored body", index=idx))
                else:
                    body_seen += 1
                    if h.digest(bytes(salt) + bytes(body)).hex() != entry.commitment:
                        report.add(
                            Fault(
                                "edited-body",
                                "body does not match the record's commitment",
                                index=idx,
                            )
                        )
            elif salt is not None:
                report.add(
                    Fault("stray-body", f"a {entry.kind} entry has a stored body", index=idx)
                )
            if isinstance(entry, RevocationEntry):
                revoked.add(entry.authorization_id)
            elif (
                isinstance(entry, ReceiptEntry)
                and entry.role == "home"
                and entry.outcome == "granted"
                and entry.authorization_id in revoked
            ):
                report.add(
                    Fault(
                        "grant-after-revocation",
                        f"query {entry.query_id} was granted under authorization "
                        f"{entry.authorization_id} after its revocation",
                        index=idx,
                    )
                )
        _push_tile(db, report, h, edge, 0, leaf, idx, stored_tiles)
        compact.append(leaf)
        expected = idx + 1
        for height, root in sizes.get(compact.size, ()):
            if compact.root() != root:
                report.bad_root(compact.size)
                report.add(
                    Fault(
                        "root-mismatch",
                        f"recomputed root of size {compact.size} differs from the block's",
                        height=height,
                    )
                )
    report.bodies = body_seen
    for height, root in sizes.get(0, ()):
        if root != h.empty():
            report.add(Fault("root-mismatch", "the empty tree's root is wrong", height=height))
    n_bodies = int(db.execute("SELECT count(*) FROM bodies").fetchone()[0])
    if n_bodies != body_seen:
        report.add(
            Fault("stray-body", f"{n_bodies - body_seen} stored bodies belong to no record entry")
        )
    # Partial tiles of the right edge must be prefixes of what we recomputed.
    size = compact.size
    for level, hashes in enumerate(edge):
        if not hashes:
            continue
        count = size >> (TILE_HEIGHT * level)
        index = count >> TILE_HEIGHT
        for blob in stored_tiles.get((level, index), []):
            if blob != b"".join(hashes)[: len(blob)]:
                if level == 0:
                    _suspect_entry(report, blob, hashes, index, f"partial tile 0/{index}")
                else:
                    report.add(
                        Fault(
                            "tile-mismatch",
                            f"partial tile {level}/{index} differs from the recomputed tree",
                        )
                    )
        report.tiles += 1
    report.settle_suspects()


def _suspect_entry(
    report: VerifyReport, stored: bytes, tile: list[bytes], index: int, desc: str
) -> None:
    n = min(len(stored) // 32, len(tile))
    first = next((i for i in range(n) if stored[32 * i : 32 * i + 32] != tile[i]), 0)
    moved = any(stored[32 * j : 32 * j + 32] == tile[first] for j in range(n) if j != first)
    kind = "reordered-entries" if moved else "edited-entry"
    report.suspect(
        Fault(kind, "entry does not match the stored tree", index=index * TILE_WIDTH + first), desc
    )


def _push_tile(
    db: sqlite3.Connection,
    report: VerifyReport,
    h: Hasher,
    edge: list[list[bytes]],
    level: int,
    node: bytes,
    position: int,
    partial: dict[tuple[int, int], list[bytes]],
) -> None:
    while len(edge) <= level:
        edge.append([])
    edge[level].append(node)
    if len(edge[level]) < TILE_WIDTH:
        return
    tile = edge[level]
    edge[level] = []
    index = position >> TILE_HEIGHT
    report.tiles += 1
    blob = b"".join(tile)
    row = db.execute(
        "SELECT hashes FROM tiles WHERE level = ? AND idx = ? AND width = ?",
        (level, index, TILE_WIDTH),
    ).fetchone()
    if row is None:
        report.add(Fault("missing-tile", f"full tile {level}/{index} is not stored"))
    elif bytes(row[0]) != blob:
        stored = bytes(row[0])
        first = next((i for i in range(TILE_WIDTH) if stored[32 * i : 32 * i + 32] != tile[i]), 0)
        if level == 0:
            _suspect_entry(report, stored, tile, index, f"tile 0/{index}")
        else:
            report.add(Fault("tile-mismatch", f"tile {level}/{index} differs at position {first}"))
    for p in partial.get((level, index), []):
        if p != blob[: len(p)]:
            report.add(
                Fault(
                    "tile-mismatch",
                    f"partial tile {level}/{index} differs from the recomputed tree",
                )
            )
    level_root = tile
    while len(level_root) > 1:
        level_root = [
            h.node(level_root[i], level_root[i + 1]) for i in range(0, len(level_root), 2)
        ]
    _push_tile(db, report, h, edge, level + 1, level_root[0], index, partial)


def _check_time(
    report: VerifyReport, height: int, time: str, last: tuple[int, str] | None
) -> tuple[int, str] | None:
    """Fault a block time that is not RFC 3339 UTC, or earlier than the block before it.

    Returns the (height, time) the next block is compared with.
    """
    try:
        check_time("block time", time)
    except InvalidRecordError as exc:
        report.add(Fault("bad-time", str(exc), height=height))
        return last
    # RFC 3339 UTC to the second is fixed width: string order is time order.
    if last is not None and time < last[1]:
        report.add(
            Fault(
                "time-regression",
                f"block {height} has time {time}, earlier than block {last[0]}'s time {last[1]}",
                height=height,
            )
        )
    return (height, time) if last is None or time >= last[1] else last


def _check_note(
    report: VerifyReport,
    note: bytes,
    text: str,
    verifier: NoteVerifier | Sm2NoteVerifier,
    height: int,
) -> None:
    body, sep, sigs = note.decode("utf-8", "replace").partition("\n\n")
    if not sep or not sigs.strip():
        report.add(Fault("missing-signature", "block note carries no signature", height=height))
        return
    if body + "\n" != text:
        report.add(
            Fault(
                "edited-block", "the signed note does not match the block's columns", height=height
            )
        )
    try:
        opened = open_note(note, [verifier])
        Checkpoint.from_text(opened.text)
    except SignatureError as exc:
        report.add(
            Fault("bad-signature", f"block note signature does not verify: {exc}", height=height)
        )
    except LedgerError as exc:
        report.add(Fault("bad-note", f"block note is malformed: {exc}", height=height))
