"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verifiers.

Pure functions, no I/O. Two ways to build proofs share one planner:

* over a list of leaf hashes (:func:`root`, :func:`inclusion_proof`,
  :func:`consistency_proof`), for differential tests and outside checkers;
* over any source of *perfect-subtree* hashes (``get_node(level, index)``
  returns the hash of leaves ``[index·2^level, (index+1)·2^level)``), which is
  how the SQLite store answers proofs with O(log n) reads.

A proof is planned as a list of leaf ranges ``[start, end)`` (RFC 9162
§2.1.3 PATH and §2.1.4 SUBPROOF); a range that is not a perfect aligned
subtree is an "ephemeral" right-edge node, hashed from the perfect subtrees
of its binary decomposition.

Invariants: leaf = H(0x00 ‖ data), node = H(0x01 ‖ left ‖ right), empty tree
root = H(""). SHA-256 by default; SM3 (GB/T 32905) selectable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes

from ledger.errors import ProofError

__all__ = [
    "ALGORITHMS",
    "CompactRange",
    "Hasher",
    "consistency_proof",
    "consistency_ranges",
    "hasher",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "proof_from_nodes",
    "range_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

ALGORITHMS = ("sha256", "sm3")

NodeSource = Callable[[int, int], bytes]


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Hasher:
    """The tree's hash function with RFC 6962 domain separation."""

    name: str
    digest: Callable[[bytes], bytes] = field(repr=False)

    @property
    def size(self) -> int:
        return 32

    def empty(self) -> bytes:
        return self.digest(b"")

    def leaf(self, data: bytes) -> bytes:
        return self.digest(b"\x00" + data)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self.digest(b"\x01" + left + right)


_HASHERS = {"sha256": Hasher("sha256", _sha256), "sm3": Hasher("sm3", _sm3)}


def hasher(algorithm: str = "sha256") -> Hasher:
    """Return the :class:`Hasher` for ``algorithm`` (``"sha256"`` or ``"sm3"``)."""
    try:
        return _HASHERS[algorithm]
    except KeyError:
        raise ValueError(f"hash algorithm must be one of {ALGORITHMS}, got {algorithm!r}") from None


def leaf_hash(data: bytes, algorithm: str = "sha256") -> bytes:
    """RFC 6962 leaf hash H(0x00 ‖ data)."""
    return hasher(algorithm).leaf(data)


def node_hash(left: bytes, right: bytes, algorithm: str = "sha256") -> bytes:
    """RFC 6962 interior node hash H(0x01 ‖ left ‖ right)."""
    return hasher(algorithm).node(left, right)


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the inclusion proof of ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"index must be in [0, {size}), got {index}")
    out: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def range_hash(start: int, end: int, get_node: NodeSource, h: Hasher) -> bytes:
    """Hash of the RFC 6962 subtree over leaves ``[start, end)``.

    ``start`` must be aligned to the largest power of two not above
    ``end - start`` (true for every range the planners produce). The range is
    split into perfect subtrees, largest first, and folded from the right.
    """
    n = end - start
    if n <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    parts: list[bytes] = []
    pos = start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            parts.append(get_node(level, pos >> level))
            pos += 1 << level
    acc = parts[-1]
    for p in reversed(parts[:-1]):
        acc = h.node(p, acc)
    return acc


def proof_from_nodes(
    ranges: Iterable[tuple[int, int]], get_node: NodeSource, h: Hasher
) -> list[bytes]:
    """Resolve planned ranges into hashes through ``get_node``."""
    return [range_hash(a, b, get_node, h) for a, b in ranges]


def _list_source(leaf_hashes: Sequence[bytes], h: Hasher) -> NodeSource:
    cache: dict[tuple[int, int], bytes] = {}

    def get(level: int, index: int) -> bytes:
        if level == 0:
            return leaf_hashes[index]
        key = (level, index)
        got = cache.get(key)
        if got is None:
            got = h.node(get(level - 1, 2 * index), get(level - 1, 2 * index + 1))
            cache[key] = got
        return got

    return get


def root(leaf_hashes: Sequence[bytes], algorithm: str = "sha256") -> bytes:
    """Merkle tree hash of the given leaf hashes (H("") for none)."""
    h = hasher(algorithm)
    level = list(leaf_hashes)
    if not level:
        return h.empty()
    while len(level) > 1:
        nxt = [h.node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, algorithm: str = "sha256"
) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree over ``leaf_hashes``."""
    h = hasher(algorithm)
    return proof_from_nodes(
        inclusion_ranges(index, len(leaf_hashes)), _list_source(leaf_hashes, h), h
    )


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, algorithm: str = "sha256"
) -> list[bytes]:
    """Consistency proof from ``old_size`` to ``len(leaf_hashes)``."""
    h = hasher(algorithm)
    ranges = consistency_ranges(old_size, len(leaf_hashes))
    return proof_from_nodes(ranges, _list_source(leaf_hashes, h), h)


def verify_inclusion(
    leaf: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root_hash: bytes,
    algorithm: str = "sha256",
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: the proof does not lead from ``leaf`` to ``root_hash``.
    """
    h = hasher(algorithm)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    if len(leaf) != h.size or len(root_hash) != h.size:
        raise ProofError(
            f"leaf hash and root must be {h.size} bytes, got {len(leaf)} and {len(root_hash)}"
        )
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != h.size:
            raise ProofError(f"proof hash has {len(p)} bytes, expected {h.size}")
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} hashes, too many for size {size}")
        if fn & 1 or fn == sn:
            r = h.node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, too few for size {size}")
    if r != root_hash:
        raise ProofError(
            f"inclusion proof for index {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    algorithm: str = "sha256",
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2).

    Raises:
        ProofError: the proof does not show ``old_root`` is a prefix of ``new_root``.
    """
    h = hasher(algorithm)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    for p in proof:
        if len(p) != h.size:
            raise ProofError(f"proof hash has {len(p)} bytes, expected {h.size}")
    if old_size == new_size:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"different roots for the same size {old_size}")
        return
    if old_size == 0:
        # As transparency-dev/merkle: every tree extends the empty one, so a
        # "proof" from size 0 proves nothing; callers handle size 0 themselves.
        raise ProofError("consistency proof from the empty tree is meaningless")
    if len(old_root) != h.size or len(new_root) != h.size:
        raise ProofError(f"roots must be {h.size} bytes, got {len(old_root)} and {len(new_root)}")
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # power of two: old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof has {len(proof)} hashes, too many")
        if fn & 1 or fn == sn:
            fr = h.node(c, fr)
            sr = h.node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = h.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof has {len(proof)} hashes, too few")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the new root of size {new_size}")


@dataclass(slots=True)
class CompactRange:
    """The right edge of a tree: perfect-subtree roots covering ``[0, size)``.

    Lets a verifier or a mirror fold a stream of leaves into a root with
    O(log n) memory, and accept the next leaves of a peer without storing
    its entries (the "compact range" of DESIGN.md §4).
    """

    hasher: Hasher
    size: int = 0
    peaks: list[bytes] = field(default_factory=list)  # largest subtree first

    def append(self, leaf: bytes) -> None:
        self.peaks.append(leaf)
        n = self.size
        while n & 1:
            right = self.peaks.pop()
            left = self.peaks.pop()
            self.peaks.append(self.hasher.node(left, right))
            n >>= 1
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.peaks:
            return self.hasher.empty()
        acc = self.peaks[-1]
        for p in reversed(self.peaks[:-1]):
            acc = self.hasher.node(p, acc)
        return acc
