"""The Ledger facade: append → sequence → integrate → sign one block.

A :class:`Ledger` owns one :class:`~ledger.store.Store`. ``append`` turns a
batch of entries (and record drafts, whose bodies are salted and committed
here) into one block: entries, bodies, tree tiles and the signed block header
are written in one transaction.

Invariants:
    * Block 0 is the empty tree, written when the ledger is created, so a
      ledger always has a signed checkpoint.
    * A block header is a C2SP tlog-checkpoint (origin, size, root) with
      extension lines ``height N``, ``prev <base64 hash>``, ``time <RFC 3339>``;
      the hash link is SHA-256 of the previous header's checkpoint text.
    * Proofs read O(log n) stored tiles; nothing is recomputed over the log.
    * The in-memory right edge is only the partial tiles (≤ 256 hashes per
      tile level), so memory does not grow with the ledger.
    * Block times never go backwards: a clock that reads earlier than the
      previous block's time (stepped back, or the file was written by a clock
      running ahead) is held at that time until it passes it, and the step is
      logged once, with both times.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.codec import JsonValue, canonical_bytes, decode_canonical
from ledger.entries import (
    AlarmEntry,
    AuthorizationEntry,
    CorrectionEntry,
    Entry,
    InstitutionEntry,
    ObjectionEntry,
    ObjectionOutcomeEntry,
    ReceiptEntry,
    RecordEntry,
    RevocationEntry,
    check_time,
    entry_bytes,
    entry_subject,
    parse_entry,
)
from ledger.errors import (
    CommitmentError,
    CorruptLedgerError,
    DecodeError,
    InvalidRecordError,
    LedgerError,
    NoteFormatError,
    StoreError,
)
from ledger.merkle import (
    Hasher,
    consistency_ranges,
    hasher,
    inclusion_ranges,
    proof_from_nodes,
    range_hash,
)
from ledger.note import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    Sm2NoteSigner,
    Sm2NoteVerifier,
    note_verifier_from_key_string,
    open_note,
    sign_note,
)
from ledger.store import SCHEMA_VERSION, TILE_HEIGHT, TILE_WIDTH, Store, quick_check_file

__all__ = ["Block", "BlockHeader", "CorrectionDraft", "Ledger", "RecordDraft", "utc_now"]

log = logging.getLogger("ledger")

ZERO_HASH = bytes(32)
SALT_BYTES = 16
TILE_CACHE_TILES = 4096  # tiles kept for proofs: at most about 66 MiB (16.6 KiB each)


def utc_now() -> str:
    """The current UTC time as RFC 3339 to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """One block: what the signed checkpoint says."""

    origin: str
    height: int
    size: int
    root: bytes
    time: str
    prev: bytes

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            origin=self.origin,
            size=self.size,
            root=self.root,
            extensions=(
                f"height {self.height}",
                f"prev {base64.b64encode(self.prev).decode()}",
                f"time {self.time}",
            ),
        )

    def text(self) -> str:
        return self.checkpoint().to_text()

    def hash(self) -> bytes:
        """The hash link: SHA-256 of the checkpoint text."""
        return hashlib.sha256(self.text().encode()).digest()

    @classmethod
    def from_checkpoint(cls, cp: Checkpoint) -> BlockHeader:
        """Read our extension lines back; raises NoteFormatError if absent or bad."""
        ext: dict[str, str] = {}
        for line in cp.extensions:
            key, _, value = line.partition(" ")
            ext[key] = value
        try:
            height = int(ext["height"])
            prev = base64.b64decode(ext["prev"], validate=True)
            time = ext["time"]
        except (KeyError, ValueError) as exc:
            raise NoteFormatError(
                "block-extensions", f"checkpoint lacks valid height/prev/time lines: {exc}"
            ) from exc
        if len(prev) != 32 or height < 0:
            raise NoteFormatError(
                "block-extensions", "prev must be 32 bytes and height non-negative"
            )
        return cls(cp.origin, height, cp.size, cp.root, time, prev)


@dataclass(frozen=True, slots=True)
class Block:
    """A sealed block: its header and the signed note that publishes it."""

    header: BlockHeader
    note: bytes

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def size(self) -> int:
        return self.header.size

    @property
    def root(self) -> bytes:
        return self.header.root


@dataclass(frozen=True, slots=True)
class RecordDraft:
    """A credit record before it is committed: the ledger adds salt and commitment."""

    uscc: str
    record_type: str
    record_id: str
    source: str
    observed_at: str
    body: JsonValue


@dataclass(frozen=True, slots=True)
class CorrectionDraft:
    """A correction before it is committed."""

    uscc: str
    record_id: str
    supersedes: str
    outcome: str
    source: str
    observed_at: str
    body: JsonValue


Item = Entry | RecordDraft | CorrectionDraft


_ENTRY_TYPES = frozenset(
    {
        AuthorizationEntry,
        InstitutionEntry,
        RevocationEntry,
        ReceiptEntry,
        AlarmEntry,
        ObjectionEntry,
        ObjectionOutcomeEntry,
    }
)

# Unique keys kept in the refs table (records are looked up by subject instead).
_REFS: dict[str, Callable[[Any], str]] = {
    "authorization": lambda e: f"authorization:{e.authorization_id}",
    "revocation": lambda e: f"revocation:{e.authorization_id}",
    "institution": lambda e: f"institution:{e.institution_id}",
    "objection": lambda e: f"objection:{e.objection_id}",
    "objection_outcome": lambda e: f"objection_outcome:{e.objection_id}",
}


def _perfect_root(hashes: Sequence[bytes], h: Hasher) -> bytes:
    level = list(hashes)
    while len(level) > 1:
        level = [h.node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class Ledger:
    """One node's append-only, verifiable ledger."""

    def __init__(
        self,
        store: Store,
        *,
        signer: NoteSigner | Sm2NoteSigner | None = None,
        clock: Callable[[], str] = utc_now,
        salt: Callable[[int], bytes] = os.urandom,
    ) -> None:
        meta = store.meta()
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(f"{store.path}: not a ledger of schema version {SCHEMA_VERSION}")
        self.store = store
        try:
            self.origin = meta["origin"]
            self.algorithm = meta["algorithm"]
            self.hasher = hasher(self.algorithm)
            self.verifier: NoteVerifier | Sm2NoteVerifier = note_verifier_from_key_string(
                meta["verifier"]
            )
        except (KeyError, ValueError, LedgerError) as exc:
            raise StoreError(f"{store.path}: the ledger's metadata is unusable ({exc!r})") from exc
        if signer is not None and signer.verifier().key_string() != self.verifier.key_string():
            raise LedgerError(
                f"{store.path}: signing key does not match the ledger's key {self.verifier.name}"
            )
        self._signer = signer
        self._clock = clock
        self._clock_held = False  # the clock read earlier than the last block: times held
        self._salt = salt
        self._write_lock = threading.Lock()
        # (level, index) → the tile's rows, bottom first, each one bytes object of 32-byte
        # hashes: 16 KiB per full tile, against 37 KiB as lists of bytes objects.
        self._tile_cache: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        last = store.last_block()
        if last is None:
            raise StoreError(f"{store.path}: ledger has no genesis block")
        self._head = Block(
            BlockHeader(self.origin, last[0], last[1], last[2], last[3], last[4]), last[5]
        )
        self._load_edge()

    # --- opening -----------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        origin: str,
        signer: NoteSigner | Sm2NoteSigner,
        algorithm: str = "sha256",
        clock: Callable[[], str] = utc_now,
        bulk: bool = False,
    ) -> Ledger:
        """Create a new ledger file with its genesis block (the empty tree).

        With ``bulk`` the file is written without a journal on disk or fsyncs
        until :meth:`finish_bulk` (see :mod:`ledger.store`); call it before the
        file is used by anyone else, and throw the file away if the load fails.
        """
        h = hasher(algorithm)
        if isinstance(signer, Sm2NoteSigner) and algorithm != "sm3":
            raise LedgerError(
                f"an SM2-signed ledger hashes with sm3 (the GM suite), not {algorithm}"
            )
        if Path(path).exists():
            raise StoreError(f"{path} already exists; open it instead")
        store = Store(path, bulk=bulk)
        header = BlockHeader(origin, 0, 0, h.empty(), clock(), ZERO_HASH)
        note = sign_note(header.text(), [signer])
        with store.transaction():
            store.put_meta(
                {
                    "schema_version": str(SCHEMA_VERSION),
                    "origin": origin,
                    "algorithm": algorithm,
                    "verifier": signer.verifier().key_string(),
                }
            )
            store.put_block(0, 0, header.root, header.time, header.prev, note)
        return cls(store, signer=signer, clock=clock)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        signer: NoteSigner | Sm2NoteSigner | None = None,
        readonly: bool = False,
        clock: Callable[[], str] = utc_now,
        check: bool = False,
    ) -> Ledger:
        """Open an existing ledger; without a signer it is read-only in practice.

        With ``check`` the file is checked before anything builds on it
        (:meth:`check`): a writer should never sign blocks on top of a damaged file.

        Raises:
            StoreError: the file is missing or cannot be opened.
            CorruptLedgerError: with ``check``, the file fails the check.
        """
        path = Path(path)
        if not path.exists():
            raise StoreError(f"{path} does not exist")
        if check:
            problems = quick_check_file(path)
            if problems:
                raise CorruptLedgerError(path, f"SQLite quick_check: {'; '.join(problems[:3])}")
        store = Store(path, readonly=readonly)
        try:
            ledger = cls(store, signer=signer, clock=clock)
        except BaseException as exc:
            store.close()
            if check and isinstance(exc, StoreError) and not isinstance(exc, CorruptLedgerError):
                raise CorruptLedgerError(path, str(exc).removeprefix(f"{path}: ")) from exc
            raise
        if check:
            try:
                ledger.check_tail()
            except BaseException:
                ledger.close()
                raise
        return ledger

    def close(self) -> None:
        self.store.close()

    def finish_bulk(self, *, check: bool = True) -> None:
        """End a bulk load: index, make durable, then verify the file as read back from disk.

        Also records the enterprise and record counts in ``meta`` so a node
        opening a large ledger need not scan it to count them. The check reads
        the file through a new connection: SQLite's ``quick_check``, the last
        block's signature, the tree root recomputed from the stored tiles and the
        entry count must all agree with what was appended.

        Raises:
            StoreError: the file on disk does not hold what was written.
        """
        if not self.store.bulk:
            return
        with self._write_lock:
            enterprises, records = self.store.scan_record_counts()
            with self.store.transaction():
                self.store.put_meta(
                    {
                        "counts_size": str(self.size),
                        "counts_enterprises": str(enterprises),
                        "counts_records": str(records),
                    }
                )
            self.store.finish_bulk()
            if check:
                self._check_on_disk()

    def _check_on_disk(self) -> None:
        path = self.store.path
        ro = Ledger(Store(path, readonly=True))
        try:
            problems = ro.store.quick_check()
            if problems:
                raise StoreError(f"{path}: quick_check after bulk load: {'; '.join(problems[:3])}")
            if ro.head != self._head:
                raise StoreError(
                    f"{path}: last block on disk is {ro.height}/{ro.size}, "
                    f"expected {self.height}/{self.size}"
                )
            ro.check_tail()
        finally:
            ro.close()

    def check(self) -> None:
        """Check the file before building on it: SQLite's ``quick_check``, then the tail.

        ``quick_check`` (O(file), read ahead through a memory map: see
        :func:`ledger.store.quick_check_file`) proves the pages hold well-formed B-trees;
        :meth:`check_tail` proves the last block is ours and matches the stored tree. What
        neither reads, the entries and bodies before the last tile, only a full
        ``verify_ledger`` recomputes (O(entries) hashing).

        Raises:
            CorruptLedgerError: the file fails a check; the message names the file.
        """
        problems = quick_check_file(self.store.path)
        if problems:
            raise CorruptLedgerError(
                self.store.path, f"SQLite quick_check: {'; '.join(problems[:3])}"
            )
        self.check_tail()

    def check_tail(self) -> None:
        """Check the last block against the stored tree, in O(log n) tile reads.

        The last block's note verifies under the ledger's key and says what its columns
        say; its hash link matches the block before; the root recomputed from the stored
        tiles is its signed root; the entries table ends at its size; and the entries of
        the last (up to 256) leaves hash to the stored leaf hashes.

        Raises:
            CorruptLedgerError: a check fails; the message names the file and the block.
        """
        path, head = self.store.path, self._head.header
        where = f"block {head.height} (size {head.size})"
        try:
            signed = self.open_note(self._head.note)
        except LedgerError as exc:
            raise CorruptLedgerError(path, f"the note of {where} does not verify: {exc}") from exc
        if signed != head:
            raise CorruptLedgerError(path, f"the signed note of {where} differs from its columns")
        if head.height > 0:
            before = self.store.block(head.height - 1)
            if before is None:
                raise CorruptLedgerError(path, f"block {head.height - 1} is missing")
            prev = BlockHeader(self.origin, *before[:5])
            if prev.hash() != head.prev:
                raise CorruptLedgerError(
                    path, f"{where} does not link to block {prev.height} (hash link broken)"
                )
        try:
            root = self.root_at(head.size)
        except StoreError as exc:
            raise CorruptLedgerError(path, f"the tree of {where} cannot be read: {exc}") from exc
        if root != head.root:
            raise CorruptLedgerError(
                path, f"the tiles on disk do not hash to the signed root of {where}"
            )
        stored = self.store.entry_count()
        if stored != head.size:
            raise CorruptLedgerError(path, f"{stored} entries are stored, {where} has {head.size}")
        start = head.size - (head.size % TILE_WIDTH or TILE_WIDTH) if head.size else 0
        rows = self.store.entries(start, head.size)
        if [i for i, _ in rows] != list(range(start, head.size)):
            raise CorruptLedgerError(path, f"entries {start}..{head.size - 1} are not all stored")
        for index, data in rows:
            if self.hasher.leaf(data) != self.leaf_hash(index):
                raise CorruptLedgerError(
                    path, f"entry {index} does not hash to its leaf in the stored tree"
                )

    # --- state -------------------------------------------------------------
    @property
    def head(self) -> Block:
        return self._head

    @property
    def size(self) -> int:
        return self._head.size

    @property
    def height(self) -> int:
        return self._head.height

    def _load_edge(self) -> None:
        n = self.size
        self._edge: list[list[bytes]] = []
        level = 0
        while (n >> (TILE_HEIGHT * level)) > 0:
            count = n >> (TILE_HEIGHT * level)
            width = count & (TILE_WIDTH - 1)
            hashes: list[bytes] = []
            if width:
                blob = self.store.tile(level, count >> TILE_HEIGHT, width)
                if blob is None:
                    raise StoreError(
                        f"tile {level}/{count >> TILE_HEIGHT} of width {width} is missing"
                    )
                blob = blob[: width * 32]
                hashes = [blob[i : i + 32] for i in range(0, len(blob), 32)]
            self._edge.append(hashes)
            level += 1

    # --- append ------------------------------------------------------------
    def append(self, items: Sequence[Item]) -> Block:
        """Append a batch as one block; returns the signed block.

        Raises:
            InvalidRecordError: an item is invalid (nothing is written).
            StoreError: the database refused the batch (nothing is written).
        """
        if self._signer is None:
            raise LedgerError("ledger opened without its signing key cannot append")
        if not items:
            raise InvalidRecordError("an append batch must hold at least one entry")
        with self._write_lock:
            return self._append(items)

    def _append(self, items: Sequence[Item]) -> Block:
        assert self._signer is not None
        h = self.hasher
        start = self.size
        entry_rows: list[tuple[int, str, str | None, bytes]] = []
        body_rows: list[tuple[int, bytes, bytes]] = []
        ref_rows: list[tuple[str, int]] = []
        leaves: list[bytes] = []
        n_bodies = sum(
            1 for item in items if type(item) is RecordDraft or type(item) is CorrectionDraft
        )
        salts = self._salt(SALT_BYTES * n_bodies) if n_bodies else b""
        digest, leaf = h.digest, h.leaf
        k = 0
        for offset, item in enumerate(items):
            idx = start + offset
            entry: Entry
            t = type(item)
            if t is RecordDraft or t is CorrectionDraft:
                salt = salts[k : k + SALT_BYTES]
                k += SALT_BYTES
                body = canonical_bytes(item.body)  # type: ignore[union-attr]
                commit = digest(salt + body).hex()
                if t is RecordDraft:
                    d = item
                    assert isinstance(d, RecordDraft)
                    entry = RecordEntry(
                        d.uscc, d.record_type, d.record_id, d.source, d.observed_at, commit
                    )
                else:
                    c = item
                    assert isinstance(c, CorrectionDraft)
                    entry = CorrectionEntry(
                        c.uscc,
                        c.record_id,
                        c.supersedes,
                        c.outcome,
                        c.source,
                        c.observed_at,
                        commit,
                    )
                body_rows.append((idx, salt, body))
            elif t is RecordEntry or t is CorrectionEntry:
                raise InvalidRecordError(
                    f"item {offset}: records and corrections are appended as drafts with their "
                    "body, not as bare entries"
                )
            elif t not in _ENTRY_TYPES:
                raise InvalidRecordError(
                    f"item {offset} is a {t.__name__}, not a ledger entry or record draft"
                )
            else:
                entry = item  # type: ignore[assignment]
            data = entry_bytes(entry)
            entry_rows.append((idx, entry.kind, entry_subject(entry), data))
            leaves.append(leaf(data))
            ref_of = _REFS.get(entry.kind)
            if ref_of is not None:
                ref_rows.append((ref_of(entry), idx))
        edge = [list(t) for t in self._edge]
        tile_rows = self._integrate(edge, start, leaves)
        size = start + len(leaves)
        root = self._root_from_edge(edge, size)
        prev = self._head.header
        header = BlockHeader(
            self.origin, prev.height + 1, size, root, self._block_time(prev), prev.hash()
        )
        note = sign_note(header.text(), [self._signer])
        with self.store.transaction():
            self.store.put_entries(entry_rows)
            if body_rows:
                self.store.put_bodies(body_rows)
            if ref_rows:
                self.store.put_refs(ref_rows)
            self.store.put_tiles(tile_rows)
            self.store.put_block(header.height, size, root, header.time, header.prev, note)
        self._edge = edge
        self._head = Block(header, note)
        return self._head

    def _block_time(self, prev: BlockHeader) -> str:
        """The clock's time, or ``prev``'s when the clock reads earlier (block times never
        go backwards). Logs once when the clock falls behind and once when it catches up.

        Raises:
            InvalidRecordError: the clock gave something that is not an RFC 3339 UTC time.
        """
        now = self._clock()
        check_time("the ledger clock's time", now)
        # Both are RFC 3339 UTC to the second, fixed width: string order is time order.
        if now >= prev.time:
            if self._clock_held:
                self._clock_held = False
                log.info(
                    "%s: the clock (%s) has caught up with block %d's time %s; "
                    "block times follow it again",
                    self.store.path,
                    now,
                    prev.height,
                    prev.time,
                )
            return now
        if not self._clock_held:
            self._clock_held = True
            log.warning(
                "%s: the clock reads %s, earlier than block %d's time %s (stepped back?); "
                "new blocks keep the time %s until the clock passes it",
                self.store.path,
                now,
                prev.height,
                prev.time,
                prev.time,
            )
        return prev.time

    def _integrate(
        self, edge: list[list[bytes]], start: int, leaves: list[bytes]
    ) -> list[tuple[int, int, int, bytes]]:
        """Fold new leaves into the right-edge tiles; return tile rows to write."""
        h = self.hasher
        rows: list[tuple[int, int, int, bytes]] = []
        touched: set[int] = set()
        count_before = start

        def push(level: int, node: bytes, position: int) -> None:
            while len(edge) <= level:
                edge.append([])
            tile = edge[level]
            tile.append(node)
            touched.add(level)
            if len(tile) == TILE_WIDTH:
                rows.append((level, position >> TILE_HEIGHT, TILE_WIDTH, b"".join(tile)))
                up = _perfect_root(tile, h)
                edge[level] = []
                push(level + 1, up, position >> TILE_HEIGHT)

        for i, leaf in enumerate(leaves):
            push(0, leaf, count_before + i)
        size = start + len(leaves)
        for level in sorted(touched):
            if level < len(edge) and edge[level]:
                count = size >> (TILE_HEIGHT * level)
                rows.append((level, count >> TILE_HEIGHT, len(edge[level]), b"".join(edge[level])))
        return rows

    def _root_from_edge(self, edge: list[list[bytes]], size: int) -> bytes:
        h = self.hasher
        if size == 0:
            return h.empty()
        # Perfect subtrees of the binary decomposition of size, largest first,
        # each computed from the in-memory partial tiles.
        parts: list[bytes] = []
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                tl, sub = divmod(level, TILE_HEIGHT)
                first = (pos >> level) << sub
                off = first & (TILE_WIDTH - 1)
                parts.append(_perfect_root(edge[tl][off : off + (1 << sub)], h))
                pos += 1 << level
        acc = parts[-1]
        for p in reversed(parts[:-1]):
            acc = h.node(p, acc)
        return acc

    # --- proofs ------------------------------------------------------------
    def _tile_levels(self, level: int, index: int, min_width: int) -> list[bytes]:
        """All rows of one tile (bottom row first, each the concatenated 32-byte hashes),
        from the cache or the store.

        Partial tiles are cached too: a perfect-subtree hash never changes once
        complete, so a narrower cached tile stays right for the widths it covers
        and is replaced only when a wider one is needed.
        """
        key = (level, index)
        levels = self._tile_cache.get(key)
        if levels is not None and len(levels[0]) >= min_width * 32:
            self._tile_cache.move_to_end(key)
            return levels
        n_here = self.size >> (TILE_HEIGHT * level)
        if index == n_here >> TILE_HEIGHT and level < len(self._edge):
            row = list(self._edge[level])
        else:
            blob = self.store.tile(level, index, min_width)
            if blob is None:
                raise StoreError(f"tile {level}/{index} of width >= {min_width} is missing")
            row = [blob[i : i + 32] for i in range(0, len(blob), 32)]
        if len(row) < min_width:
            raise StoreError(f"tile {level}/{index} has {len(row)} hashes, need {min_width}")
        levels = [b"".join(row)]
        node = self.hasher.node
        while len(row) > 1:
            row = [node(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
            levels.append(b"".join(row))
        self._tile_cache[key] = levels
        if len(self._tile_cache) > TILE_CACHE_TILES:
            self._tile_cache.popitem(last=False)
        return levels

    def _get_node(self, level: int, index: int) -> bytes:
        tl, sub = divmod(level, TILE_HEIGHT)
        first = index << sub
        tile_index, off = divmod(first, TILE_WIDTH)
        at = (off >> sub) * 32
        return self._tile_levels(tl, tile_index, off + (1 << sub))[sub][at : at + 32]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` (default: current)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise InvalidRecordError(f"size must be in [0, {self.size}], got {size}")
        return proof_from_nodes(inclusion_ranges(index, size), self._get_node, self.hasher)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from ``old_size`` to ``new_size`` (default: current)."""
        new_size = self.size if new_size is None else new_size
        if not 0 <= new_size <= self.size:
            raise InvalidRecordError(f"new_size must be in [0, {self.size}], got {new_size}")
        return proof_from_nodes(consistency_ranges(old_size, new_size), self._get_node, self.hasher)

    def root_at(self, size: int) -> bytes:
        """Tree root at any size up to the current one, from stored tiles."""
        if not 0 <= size <= self.size:
            raise InvalidRecordError(f"size must be in [0, {self.size}], got {size}")
        if size == 0:
            return self.hasher.empty()
        return range_hash(0, size, self._get_node, self.hasher)

    def leaf_hash(self, index: int) -> bytes:
        return self._get_node(0, index)

    # --- reads -------------------------------------------------------------
    def block(self, height: int | None = None) -> Block:
        if height is None:
            return self._head
        row = self.store.block(height)
        if row is None:
            raise InvalidRecordError(
                f"no block at height {height}; the ledger is at height {self.height}"
            )
        return Block(BlockHeader(self.origin, row[0], row[1], row[2], row[3], row[4]), row[5])

    def block_for_size(self, size: int) -> Block:
        """The first block whose tree includes entry ``size - 1``."""
        row = self.store.block_for_size(size)
        if row is None:
            raise InvalidRecordError(
                f"no block reaches size {size}; the ledger has {self.size} entries"
            )
        return Block(BlockHeader(self.origin, row[0], row[1], row[2], row[3], row[4]), row[5])

    def entry_data(self, index: int) -> bytes:
        data = self.store.entry(index)
        if data is None:
            raise InvalidRecordError(
                f"no entry at index {index}; the ledger has {self.size} entries"
            )
        return data

    def entry(self, index: int) -> Entry:
        return parse_entry(self.entry_data(index))

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        end = min(end, self.size)
        return self.store.entries(start, end) if start < end else []

    def by_subject(self, subject: str, kinds: Sequence[str] = ()) -> list[tuple[int, Entry]]:
        return [(i, parse_entry(d)) for i, d in self.store.by_subject(subject, kinds)]

    def by_ref(self, ref: str) -> tuple[int, Entry] | None:
        idx = self.store.ref(ref)
        return None if idx is None else (idx, self.entry(idx))

    def body(self, index: int) -> tuple[bytes, JsonValue]:
        """The salt and body of a record entry, checked against its commitment.

        Raises:
            CommitmentError: the stored body does not match the ledger.
        """
        entry = self.entry(index)
        if not isinstance(entry, RecordEntry | CorrectionEntry):
            raise InvalidRecordError(f"entry {index} is a {entry.kind}, which has no body")
        row = self.store.body(index)
        if row is None:
            raise CommitmentError(index, f"body of entry {index} is missing")
        salt, body = row
        if self.hasher.digest(salt + body).hex() != entry.commitment:
            raise CommitmentError(index)
        try:
            return salt, decode_canonical(body, f"body of entry {index}")
        except DecodeError as exc:
            raise CommitmentError(index, str(exc)) from exc

    def open_note(self, note: bytes) -> BlockHeader:
        """Verify a note signed by this ledger's key and return its header."""
        opened = open_note(note, [self.verifier])
        return BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text))
