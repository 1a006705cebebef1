"""SQLite storage for one node's ledger.

One database file (WAL mode) holds:

* ``entries``  – canonical entry bytes by index (the leaves), with derived
  ``kind``/``subject`` columns for look-ups (``verify`` re-derives them);
* ``bodies``   – record bodies and salts, off the ledger but in the same file;
* ``tiles``    – stored tree nodes, as tiles: a tile at tile level ``L`` holds
  up to 256 consecutive perfect-subtree hashes of tree level ``8·L``. Full
  tiles have width 256; the right edge is written as partial tiles keyed by
  width, so no row is ever rewritten and any earlier tree size can still be
  proved (perfect-subtree hashes never change once complete);
* ``blocks``   – one header and signed checkpoint note per append batch;
* ``refs``     – unique keys (authorization ids, institution ids) → index;
* ``meta``     – schema version, origin, hash algorithm, verifier key.

Invariants:
    * Triggers refuse UPDATE and DELETE on every table: the file only grows.
    * One append batch is one ``BEGIN IMMEDIATE`` transaction that writes the
      entries, bodies, tiles and block together; ``synchronous=FULL`` makes an
      acknowledged batch durable, and a batch interrupted by a crash leaves no
      trace (SQLite's atomic commit).
    * A bulk load (``Store(path, bulk=True)``, fresh files only) trades
      durability for speed while the file is private to its writer: no
      journal on disk, ``synchronous=OFF``, an exclusive lock and no subject
      index. :meth:`Store.finish_bulk` builds the index, switches to WAL with
      ``synchronous=FULL`` and fsyncs the file; the caller
      (:meth:`ledger.log.Ledger.finish_bulk`) then verifies it from disk before
      anyone uses it. A crash during a bulk load leaves a file that must be
      thrown away (the seeder writes to a temporary name for that reason).
    * ``sqlite3.Error`` never leaves this module: it becomes
      :class:`~ledger.errors.StoreError` (or :class:`AppendOnlyError`, or
      :class:`StorageFullError` when the file system is full).
    * A failed write transaction is rolled back only if SQLite has not already
      done so itself (it does on ``SQLITE_FULL`` and some I/O errors), so the
      error the caller sees is the one that made the write fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ledger.errors import AppendOnlyError, StorageFullError, StoreError

__all__ = [
    "SCHEMA_VERSION",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Store",
    "fsync_path",
    "quick_check_file",
    "rollback_if_active",
    "store_error",
]

SCHEMA_VERSION = 1
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

LEDGER_TABLES = ("meta", "entries", "bodies", "tiles", "blocks", "refs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject TEXT, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (idx INTEGER PRIMARY KEY, salt BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, width INTEGER NOT NULL, hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx, width)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, time TEXT NOT NULL,
    prev BLOB NOT NULL, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS refs (ref TEXT PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID;
"""

# Built after a bulk load instead of during it: one sort beats millions of random
# B-tree inserts once the index outgrows the page cache.
_INDEXES = "CREATE INDEX IF NOT EXISTS entries_subject ON entries (subject);\n"


_KEYS = {
    "meta": "key = NEW.key",
    "entries": "idx = NEW.idx",
    "bodies": "idx = NEW.idx",
    "tiles": "level = NEW.level AND idx = NEW.idx AND width = NEW.width",
    "blocks": "height = NEW.height",
    "refs": "ref = NEW.ref",
}


def _triggers() -> str:
    out = []
    for table in LEDGER_TABLES:
        # INSERT OR REPLACE deletes the old row without firing DELETE triggers
        # (recursive_triggers is off by default), so refuse it up front.
        out.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {_KEYS[table]}) "
            f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only: REPLACE on {table} refused'); END;"
        )
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {op} on {table} refused'); END;"
            )
    return "\n".join(out)


def store_error(exc: sqlite3.Error, path: str | Path) -> StoreError:
    """The :class:`StoreError` that says what ``exc`` (raised on the database at ``path``) means.

    ``SQLITE_FULL`` (the file system, or SQLite's page limit, has no room) becomes
    :class:`StorageFullError`; a refusal by an append-only trigger becomes
    :class:`AppendOnlyError`; anything else a plain :class:`StoreError`.
    """
    msg = str(exc)
    if "append-only" in msg:
        return AppendOnlyError(msg)
    if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL:
        return StorageFullError(
            str(path), f"{msg}: nothing of this write was stored; it succeeds once space is freed"
        )
    return StoreError(f"{path}: {type(exc).__name__}: {msg}")


def rollback_if_active(db: sqlite3.Connection, cause: BaseException) -> None:
    """Roll back ``db``'s open transaction, if SQLite has not already rolled it back.

    On ``SQLITE_FULL`` (and some I/O errors) SQLite ends the transaction itself, and
    a second ``ROLLBACK`` fails with "no transaction is active", which would hide
    ``cause``. A ``ROLLBACK`` that fails for another reason is noted on ``cause``.
    """
    if not db.in_transaction:
        return
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        cause.add_note(f"ROLLBACK after this error failed too: {exc}")


class Store:
    """Thin, typed access to the ledger database; all SQL lives here."""

    def __init__(self, path: str | Path, *, readonly: bool = False, bulk: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self.bulk = bulk
        if bulk and (readonly or self.path.exists()):
            raise StoreError(f"{self.path}: a bulk load needs a new file, opened for writing")
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(
                    str(self.path), check_same_thread=False, isolation_level=None
                )
                if bulk:
                    # Rollback still works (journal in memory); nothing is fsynced until
                    # finish_bulk. See the module docstring for why this is safe.
                    self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
                    self._db.execute("PRAGMA journal_mode=MEMORY")
                    self._db.execute("PRAGMA synchronous=OFF")
                    self._db.executescript(_SCHEMA + _triggers())
                else:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=FULL")
                    self._db.executescript(_SCHEMA + _INDEXES + _triggers())
            self._db.execute(f"PRAGMA cache_size={-262144 if bulk else -65536}")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def finish_bulk(self) -> None:
        """End a bulk load: build the indexes, switch to WAL + ``synchronous=FULL``, fsync.

        After this the store behaves exactly like one opened normally.
        """
        if not self.bulk:
            return
        with self._lock:
            try:
                self._db.executescript(_INDEXES)
                self._db.execute("PRAGMA locking_mode=NORMAL")
                self._db.execute("PRAGMA journal_mode=DELETE")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA cache_size=-65536")
                # Leaving exclusive locking mode takes effect at the next access;
                # journal_mode=WAL then rewrites the header under a normal lock.
                self._db.execute("SELECT count(*) FROM meta").fetchall()
                self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            self.bulk = False
        fsync_path(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); rolled back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            try:
                yield
            except BaseException as exc:
                rollback_if_active(self._db, exc)
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from exc
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    rollback_if_active(self._db, exc)
                    raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        return store_error(exc, self.path)

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _write_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    # --- meta -------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._query("SELECT key, value FROM meta")}

    def put_meta(self, items: dict[str, str]) -> None:
        self._write_many("INSERT INTO meta (key, value) VALUES (?, ?)", list(items.items()))

    # --- writes inside a transaction -------------------------------------
    def put_entries(self, rows: Sequence[tuple[int, str, str | None, bytes]]) -> None:
        self._write_many("INSERT INTO entries (idx, kind, subject, data) VALUES (?, ?, ?, ?)", rows)

    def put_bodies(self, rows: Sequence[tuple[int, bytes, bytes]]) -> None:
        self._write_many("INSERT INTO bodies (idx, salt, body) VALUES (?, ?, ?)", rows)

    def put_tiles(self, rows: Sequence[tuple[int, int, int, bytes]]) -> None:
        self._write_many("INSERT INTO tiles (level, idx, width, hashes) VALUES (?, ?, ?, ?)", rows)

    def put_refs(self, rows: Sequence[tuple[str, int]]) -> None:
        self._write_many("INSERT INTO refs (ref, idx) VALUES (?, ?)", rows)

    def put_block(
        self, height: int, size: int, root: bytes, time: str, prev: bytes, note: bytes
    ) -> None:
        self._write_many(
            "INSERT INTO blocks (height, size, root, time, prev, note) VALUES (?, ?, ?, ?, ?, ?)",
            [(height, size, root, time, prev, note)],
        )

    # --- reads -----------------------------------------------------------
    def tile(self, level: int, index: int, min_width: int) -> bytes | None:
        rows = self._query(
            "SELECT hashes FROM tiles WHERE level = ? AND idx = ? AND width >= ? ORDER BY width LIMIT 1",
            (level, index, min_width),
        )
        return bytes(rows[0][0]) if rows else None

    def entry(self, index: int) -> bytes | None:
        rows = self._query("SELECT data FROM entries WHERE idx = ?", (index,))
        return bytes(rows[0][0]) if rows else None

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = self._query(
            "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        return [(int(i), bytes(d)) for i, d in rows]

    def by_subject(self, subject: str, kinds: Sequence[str] = ()) -> list[tuple[int, bytes]]:
        if kinds:
            marks = ",".join("?" * len(kinds))
            rows = self._query(
                f"SELECT idx, data FROM entries WHERE subject = ? AND kind IN ({marks}) ORDER BY idx",
                (subject, *kinds),
            )
        else:
            rows = self._query(
                "SELECT idx, data FROM entries WHERE subject = ? ORDER BY idx", (subject,)
            )
        return [(int(i), bytes(d)) for i, d in rows]

    def kinds_in_range(
        self, start: int, end: int, kinds: Sequence[str]
    ) -> list[tuple[int, str, str | None]]:
        """(index, kind, subject) of the ``kinds`` entries in ``[start, end)``, by index; no bytes."""
        marks = ",".join("?" * len(kinds))
        rows = self._query(
            "SELECT idx, kind, subject FROM entries WHERE idx >= ? AND idx < ? AND kind IN "
            f"({marks}) ORDER BY idx",
            (start, end, *kinds),
        )
        return [(int(i), str(k), None if s is None else str(s)) for i, k, s in rows]

    def refs_with_prefix(self, prefix: str) -> list[tuple[str, int]]:
        """(ref, index) of every ref starting with ``prefix`` (a range scan of the key)."""
        rows = self._query(
            "SELECT ref, idx FROM refs WHERE ref >= ? AND ref < ? ORDER BY idx",
            (prefix, prefix + "\U0010ffff"),
        )
        return [(str(r), int(i)) for r, i in rows]

    def ref(self, ref: str) -> int | None:
        rows = self._query("SELECT idx FROM refs WHERE ref = ?", (ref,))
        return int(rows[0][0]) if rows else None

    def body(self, index: int) -> tuple[bytes, bytes] | None:
        rows = self._query("SELECT salt, body FROM bodies WHERE idx = ?", (index,))
        return (bytes(rows[0][0]), bytes(rows[0][1])) if rows else None

    def last_block(self) -> tuple[int, int, bytes, str, bytes, bytes] | None:
        rows = self._query(
            "SELECT height, size, root, time, prev, note FROM blocks ORDER BY height DESC LIMIT 1"
        )
        return _block_row(rows[0]) if rows else None

    def block(self, height: int) -> tuple[int, int, bytes, str, bytes, bytes] | None:
        rows = self._query(
            "SELECT height, size, root, time, prev, note FROM blocks WHERE height = ?", (height,)
        )
        return _block_row(rows[0]) if rows else None

    def block_for_size(self, size: int) -> tuple[int, int, bytes, str, bytes, bytes] | None:
        """The first block whose tree size is at least ``size``."""
        rows = self._query(
            "SELECT height, size, root, time, prev, note FROM blocks WHERE size >= ? ORDER BY height LIMIT 1",
            (size,),
        )
        return _block_row(rows[0]) if rows else None

    def record_counts(self) -> tuple[int, int]:
        """(enterprises with records, record and correction entries), from a
        separate read-only connection so a long scan never holds the writer's lock.

        A bulk-loaded ledger holds the counts at the end of the load in ``meta``;
        then only the entries appended since are read (by index), so the cost
        does not grow with the ledger. Otherwise the whole table is scanned.
        """
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                meta = dict(
                    db.execute("SELECT key, value FROM meta WHERE key LIKE 'counts_%'").fetchall()
                )
                if {"counts_size", "counts_enterprises", "counts_records"} <= set(meta):
                    since = int(meta["counts_size"])
                    n_rec = (
                        int(meta["counts_records"])
                        + db.execute(
                            "SELECT count(*) FROM entries WHERE idx >= ? AND kind IN ('record', "
                            "'correction')",
                            (since,),
                        ).fetchone()[0]
                    )
                    n_ent = (
                        int(meta["counts_enterprises"])
                        + db.execute(
                            "SELECT count(DISTINCT subject) FROM entries AS e WHERE idx >= ? AND "
                            "kind = 'record' "
                            "AND NOT EXISTS (SELECT 1 FROM entries AS o WHERE o.subject = e.subject "
                            "AND o.kind = 'record' AND o.idx < ?)",
                            (since, since),
                        ).fetchone()[0]
                    )
                    return int(n_ent), int(n_rec)
                n_ent, n_rec = _scan_counts(db)
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return n_ent, n_rec

    def scan_record_counts(self) -> tuple[int, int]:
        """(enterprises with records, record and correction entries) by a full scan."""
        with self._lock:
            try:
                return _scan_counts(self._db)
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: the problems found (empty when the file is sound)."""
        rows = self._query("PRAGMA quick_check")
        return [str(r[0]) for r in rows if str(r[0]) != "ok"]

    def entry_count(self) -> int:
        """Entries stored (by the largest index, O(log n); indexes are dense from 0)."""
        rows = self._query("SELECT max(idx) FROM entries")
        return 0 if rows[0][0] is None else int(rows[0][0]) + 1

    def count_kind(self, kind: str) -> int:
        return int(self._query("SELECT count(*) FROM entries WHERE kind = ?", (kind,))[0][0])

    def count_subjects(self, kind: str) -> int:
        rows = self._query("SELECT count(DISTINCT subject) FROM entries WHERE kind = ?", (kind,))
        return int(rows[0][0])


def _scan_counts(db: sqlite3.Connection) -> tuple[int, int]:
    n_ent = db.execute(
        "SELECT count(DISTINCT subject) FROM entries WHERE kind = 'record'"
    ).fetchone()[0]
    n_rec = db.execute(
        "SELECT count(*) FROM entries WHERE kind IN ('record', 'correction')"
    ).fetchone()[0]
    return int(n_ent), int(n_rec)


def quick_check_file(path: Path) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` of the database at ``path`` (WAL included), through a
    read-only connection of its own that maps the file into memory.

    quick_check visits every page in b-tree order. Through ``read()`` that is one 4 KiB
    request per page (about 35 s for a 2 GiB ledger from a cold page cache, measured);
    through a memory map the kernel reads ahead (about 3.6 s), and SQLite caps the map at
    2 GiB, past which pages are read one by one. Use it on a file no other process is
    changing: an I/O error on a mapped page is a SIGBUS, not an exception.

    Returns:
        The problems found, empty when the file is sound. A file SQLite cannot read as a
        database ("file is not a database", "malformed") is a problem, not an exception.

    Raises:
        StoreError: the file cannot be opened or read at all (missing, locked, I/O error).
    """
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} to check it: {exc}") from exc
    try:
        db.execute(f"PRAGMA mmap_size={max(0, path.stat().st_size)}")
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError as exc:  # locked, busy, I/O: not a verdict on the data
        raise StoreError(f"cannot check {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # not a database, malformed
        return [str(exc)]
    except OSError as exc:
        raise StoreError(f"cannot check {path}: {exc}") from exc
    finally:
        db.close()
    # A report row may span lines ("*** in database main ***" then the problem): one per line.
    lines = (line.strip() for r in rows for line in str(r[0]).splitlines())
    return [line for line in lines if line and line != "ok" and not line.startswith("***")]


def fsync_path(path: Path) -> None:
    """fsync a file and the directory that names it."""
    for target, flags in (
        (path, os.O_RDONLY),
        (path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)),
    ):
        try:
            fd = os.open(target, flags)
        except OSError as exc:
            raise StoreError(f"cannot open {target} to fsync it: {exc}") from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"cannot fsync {target}: {exc}") from exc
        finally:
            os.close(fd)


def _block_row(r: tuple[Any, ...]) -> tuple[int, int, bytes, str, bytes, bytes]:
    return (int(r[0]), int(r[1]), bytes(r[2]), str(r[3]), bytes(r[4]), bytes(r[5]))
