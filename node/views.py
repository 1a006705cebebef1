"""What this node knows of its peers: their latest verified checkpoints,
the catalogue (hashed USCC → holders), revoked authorizations, alarms and the
cosignatures witnesses gave our own checkpoints; and, for compact-catalogue
peers, the outbound catalogue of our own ledger (see :mod:`node.catalogue`).

Kept in ``state.db`` beside the ledger: it is derived, re-buildable state,
not ledger, so it may be updated. Every checkpoint it accepts has had its
signature checked and its consistency with the previous one proved.

It also keeps the largest tree size this node has signed (``counters``
``signed_size``, raised after each block commits, before its callers are
answered): with the cosignatures, the evidence the node checks its ledger
against when it starts (``node.state.refuse_if_behind``).

Invariants: a peer's stored view only moves forward along a proven-consistent
path; a peer with an open alarm is refused until the alarm is resolved; the
signed size never goes down.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import (
    BlockHeader,
    Checkpoint,
    NoteVerifier,
    ProofError,
    open_note,
    rollback_if_active,
    store_error,
    verify_consistency,
)

__all__ = ["Alarm", "PeerView", "PeerViews", "uscc_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    node_id TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, height INTEGER NOT NULL,
    note BLOB NOT NULL, mirrored INTEGER NOT NULL DEFAULT 0, peaks BLOB NOT NULL DEFAULT x'',
    updated REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS catalogue (key BLOB NOT NULL, node_id TEXT NOT NULL,
    PRIMARY KEY (key, node_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revoked (node_id TEXT NOT NULL, authorization_id TEXT NOT NULL,
    PRIMARY KEY (node_id, authorization_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, fault TEXT NOT NULL,
    detail TEXT NOT NULL, ledger_index INTEGER, raised_at TEXT NOT NULL, resolved_at TEXT);
CREATE TABLE IF NOT EXISTS cosignatures (size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (size, witness)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbound (idx INTEGER PRIMARY KEY, key BLOB, authorization_id TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


def uscc_key(uscc: str) -> bytes:
    """Catalogue key: SHA-256 of the USCC (the catalogue never lists codes in clear)."""
    return hashlib.sha256(b"yrd-credit-chain/catalogue/" + uscc.encode()).digest()[:16]


@dataclass(frozen=True, slots=True)
class PeerView:
    node_id: str
    size: int
    root: bytes
    height: int
    note: bytes
    mirrored: int  # entries pulled into the catalogue so far
    peaks: bytes  # compact range of the mirrored prefix (concatenated hashes)


@dataclass(frozen=True, slots=True)
class Alarm:
    id: int
    node_id: str
    fault: str
    detail: str
    ledger_index: int | None
    raised_at: str
    resolved_at: str | None


ConsistencyFetcher = Callable[[int, int], Awaitable[list[bytes]]]


class PeerViews:
    def __init__(self, path: Path, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._lock = threading.RLock()
        self._catalogue_rows: int | None = None
        self.path = path
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise store_error(exc, path) from exc

    def close(self) -> None:
        self._db.close()

    def _q(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise store_error(exc, self.path) from exc

    def _x(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                rollback_if_active(self._db, exc)
                raise store_error(exc, self.path) from exc

    # --- views --------------------------------------------------------------
    def view(self, node_id: str) -> PeerView | None:
        rows = self._q(
            "SELECT node_id, size, root, height, note, mirrored, peaks FROM peers WHERE node_id = ?",
            (node_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return PeerView(
            str(r[0]), int(r[1]), bytes(r[2]), int(r[3]), bytes(r[4]), int(r[5]), bytes(r[6])
        )

    def views(self) -> list[PeerView]:
        return [
            v
            for n in [str(r[0]) for r in self._q("SELECT node_id FROM peers ORDER BY node_id")]
            if (v := self.view(n))
        ]

    def set_view(
        self,
        node_id: str,
        header: BlockHeader,
        note: bytes,
        *,
        mirrored: int | None = None,
        peaks: bytes | None = None,
    ) -> None:
        import time

        old = self.view(node_id)
        m = mirrored if mirrored is not None else (old.mirrored if old else 0)
        p = peaks if peaks is not None else (old.peaks if old else b"")
        self._x(
            "INSERT OR REPLACE INTO peers (node_id, size, root, height, note, mirrored, peaks, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(node_id, header.size, header.root, header.height, note, m, p, time.time())],
        )

    async def accept_checkpoint(
        self,
        node_id: str,
        note: bytes,
        verifier: NoteVerifier,
        fetch_consistency: ConsistencyFetcher | None,
        proof: list[bytes] | None = None,
        proof_from: int | None = None,
        advance: bool = True,
        latest: bool = True,
    ) -> BlockHeader:
        """Verify a peer's signed checkpoint and its consistency with what we saw before.

        Moves the stored view forward if the new checkpoint is larger and
        ``advance`` is set (mirroring); a report's holder checks a home node's
        checkpoint against its view without moving it, so the home node can
        keep sending proofs from a size the holder still has.

        ``latest`` marks a checkpoint fetched from the peer as its current head
        (mirroring); report traffic and gossip pass ``False``, since a checkpoint
        taken a moment ago may be older than one mirrored since.

        Raises:
            SignatureError / NoteFormatError: bad note.
            InconsistentLogError-like ProofError: the peer forked its log (caller raises the alarm).
        """
        opened = open_note(note, [verifier])
        header = BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text))
        if header.origin != verifier.name:
            raise ProofError(f"checkpoint origin {header.origin!r} is not {verifier.name!r}")
        old = self.view(node_id)
        if old is None:
            self.set_view(node_id, header, note)
            return header
        a, b = (old, header) if old.size <= header.size else (header, old)
        a_size, a_root = (a.size, a.root)
        b_size, b_root = (b.size, b.root)
        if latest and header.size < old.size:
            # The peer's own latest checkpoint is older than one it already signed:
            # an honest append-only log never shrinks.
            raise ProofError(
                f"latest checkpoint has size {header.size}, below the {old.size} it signed before"
            )
        if a_size == 0:
            pass  # every tree extends the empty tree
        elif a_size == b_size:
            if a_root != b_root:
                raise ProofError(f"two checkpoints of size {a_size} with different roots")
        else:
            if proof is None or proof_from != a_size:
                if fetch_consistency is None:
                    raise ProofError(f"no consistency proof from size {a_size} to {b_size}")
                proof = await fetch_consistency(a_size, b_size)
            verify_consistency(a_size, b_size, a_root, b_root, proof, self.algorithm)
        if advance and (
            header.size > old.size or (header.size == old.size and header.height > old.height)
        ):
            self.set_view(node_id, header, note)
        return header

    # --- catalogue ------------------------------------------------------------
    def add_catalogue(self, node_id: str, usccs: Iterable[str]) -> None:
        self.add_catalogue_keys(node_id, [uscc_key(u) for u in set(usccs)])

    def holders(self, uscc: str) -> set[str]:
        return {
            str(r[0])
            for r in self._q("SELECT node_id FROM catalogue WHERE key = ?", (uscc_key(uscc),))
        }

    def add_catalogue_keys(self, node_id: str, keys: Iterable[bytes]) -> int:
        """Add catalogue keys (already hashed) held by ``node_id``; returns how many were new."""
        with self._lock:
            before = self._db.total_changes
            self._x(
                "INSERT OR IGNORE INTO catalogue (key, node_id) VALUES (?, ?)",
                [(k, node_id) for k in set(keys)],
            )
            added = self._db.total_changes - before
            if self._catalogue_rows is not None:
                self._catalogue_rows += added
            return added

    def catalogue_size(self) -> int:
        """Rows in the catalogue: counted once, then kept up to date as rows are added."""
        with self._lock:
            if self._catalogue_rows is None:
                self._catalogue_rows = int(self._q("SELECT count(*) FROM catalogue")[0][0])
            return self._catalogue_rows

    # --- outbound catalogue (what this node serves to compact-catalogue peers) ----
    def counter(self, name: str) -> int:
        rows = self._q("SELECT value FROM counters WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def add_outbound(
        self, rows: Sequence[tuple[int, bytes | None, str | None]], scanned: int
    ) -> None:
        """Record outbound catalogue rows (index, key, revoked authorization) and the scan's end, together."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbound (idx, key, authorization_id) VALUES (?, ?, ?)",
                    rows,
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO counters (name, value) VALUES ('outbound_scanned', ?)",
                    (scanned,),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                rollback_if_active(self._db, exc)
                raise store_error(exc, self.path) from exc

    def outbound(self, start: int, end: int) -> list[tuple[int, bytes | None, str | None]]:
        rows = self._q(
            "SELECT idx, key, authorization_id FROM outbound WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return [
            (int(r[0]), None if r[1] is None else bytes(r[1]), None if r[2] is None else str(r[2]))
            for r in rows
        ]

    # --- what this node has signed -------------------------------------------------
    def mark_signed(self, size: int) -> None:
        """Raise the signed high-water mark to ``size`` (never lowers it)."""
        self._x(
            "INSERT INTO counters (name, value) VALUES ('signed_size', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            [(size,)],
        )

    def signed_size(self) -> int:
        """The largest tree size this node has signed (0 before the first block)."""
        return self.counter("signed_size")

    def cosigned_size(self) -> int:
        """The largest size of our log a witness has cosigned (0 if none has)."""
        rows = self._q("SELECT max(size) FROM cosignatures")
        return 0 if rows[0][0] is None else int(rows[0][0])

    def add_revoked(self, node_id: str, ids: Iterable[str]) -> None:
        self._x(
            "INSERT OR IGNORE INTO revoked (node_id, authorization_id) VALUES (?, ?)",
            [(node_id, i) for i in ids],
        )

    def is_revoked(self, node_id: str, authorization_id: str) -> bool:
        return bool(
            self._q(
                "SELECT 1 FROM revoked WHERE node_id = ? AND authorization_id = ?",
                (node_id, authorization_id),
            )
        )

    # --- alarms ---------------------------------------------------------------
    def raise_alarm(
        self, node_id: str, fault: str, detail: str, at: str, ledger_index: int | None
    ) -> None:
        self._x(
            "INSERT INTO alarms (node_id, fault, detail, ledger_index, raised_at) VALUES (?, ?, ?, ?, ?)",
            [(node_id, fault, detail, ledger_index, at)],
        )

    def alarms(self, open_only: bool = False) -> list[Alarm]:
        sql = "SELECT id, node_id, fault, detail, ledger_index, raised_at, resolved_at FROM alarms"
        if open_only:
            sql += " WHERE resolved_at IS NULL"
        return [
            Alarm(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                None if r[4] is None else int(r[4]),
                str(r[5]),
                None if r[6] is None else str(r[6]),
            )
            for r in self._q(sql + " ORDER BY id")
        ]

    def refused(self, node_id: str) -> bool:
        return bool(
            self._q("SELECT 1 FROM alarms WHERE node_id = ? AND resolved_at IS NULL", (node_id,))
        )

    def resolve_alarms(self, node_id: str, at: str) -> int:
        n = len([a for a in self.alarms(True) if a.node_id == node_id])
        self._x(
            "UPDATE alarms SET resolved_at = ? WHERE node_id = ? AND resolved_at IS NULL",
            [(at, node_id)],
        )
        self._x("DELETE FROM peers WHERE node_id = ?", [(node_id,)])
        return n

    # --- cosignatures on our own checkpoints -------------------------------------
    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        self._x(
            "INSERT OR REPLACE INTO cosignatures (size, witness, line) VALUES (?, ?, ?)",
            [(size, witness, line)],
        )

    def cosignatures(self, size: int) -> list[str]:
        return [
            str(r[0])
            for r in self._q(
                "SELECT line FROM cosignatures WHERE size = ? ORDER BY witness", (size,)
            )
        ]
