"""Property tests for ledger.merkle: every proof verifies, any change fails,
and the fast root agrees with a naive recursive RFC 6962 definition."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import ProofError


def naive_root(leaves: list[bytes], algorithm: str = "sha256") -> bytes:
    """MTH straight from RFC 6962 §2.1, recursive."""
    n = len(leaves)
    if n == 0:
        return merkle.hasher(algorithm).empty()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return merkle.node_hash(
        naive_root(leaves[:k], algorithm), naive_root(leaves[k:], algorithm), algorithm
    )


def leaves_of(n: int, algorithm: str = "sha256") -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big"), algorithm) for i in range(n)]


@pytest.mark.parametrize("algorithm", merkle.ALGORITHMS)
@pytest.mark.parametrize("n", list(range(0, 40)) + [64, 65, 100, 255, 256, 257])
def test_root_matches_naive(n: int, algorithm: str) -> None:
    leaves = leaves_of(n, algorithm)
    assert merkle.root(leaves, algorithm) == naive_root(leaves, algorithm)
    compact = merkle.CompactRange(merkle.hasher(algorithm))
    compact.extend(leaves)
    assert compact.root() == merkle.root(leaves, algorithm)


def test_sm3_differs_from_sha256() -> None:
    assert merkle.leaf_hash(b"x", "sm3") != merkle.leaf_hash(b"x", "sha256")
    # GB/T 32905-2016 example: SM3("abc")
    assert merkle.hasher("sm3").digest(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    assert merkle.hasher("sha256").empty() == hashlib.sha256(b"").digest()


def test_unknown_algorithm_named() -> None:
    with pytest.raises(ValueError, match="md5"):
        merkle.hasher("md5")


def _shape(index: int, size: int) -> list[bool]:
    """For each proof hash, whether it is a left sibling."""
    return [start < index for start, _ in merkle.inclusion_ranges(index, size)]


sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes)
def test_inclusion_verifies_and_changes_fail(data: st.DataObject, n: int) -> None:
    leaves = leaves_of(n)
    r = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(leaves, i)
    merkle.verify_inclusion(leaves[i], i, n, proof, r)
    # wrong index
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i)) if n > 1 else None
    if j is not None:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[i], j, n, proof, r)
    # wrong size
    m = data.draw(st.integers(1, 400).filter(lambda x: x != n))
    if i < m and _shape(i, m) != _shape(i, n):
        # RFC 6962 binds the size through the signed tree head, not the proof:
        # a size whose path has the same left/right shape is indistinguishable.
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[i], i, m, proof, r)
    # any changed byte in any proof hash, the leaf or the root
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        b = data.draw(st.integers(0, 31))
        bad = list(proof)
        bad[k] = bad[k][:b] + bytes([bad[k][b] ^ 1]) + bad[k][b + 1 :]
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[i], i, n, bad, r)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[i], i, n, proof[:-1], r)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[i], i, n, [*proof, proof[0]], r)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(bytes(32), i, n, proof, r)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[i], i, n, proof, bytes(32))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=sizes)
def test_consistency_verifies_and_changes_fail(data: st.DataObject, n: int) -> None:
    leaves = leaves_of(n)
    m = data.draw(st.integers(1, n))
    old_root, new_root = merkle.root(leaves[:m]), merkle.root(leaves)
    proof = merkle.consistency_proof(leaves, m)
    merkle.verify_consistency(m, n, old_root, new_root, proof)
    if m == n:
        assert proof == []
        return
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, bytes(32), new_root, proof)
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, old_root, bytes(32), proof)
    k = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[k] = bytes([bad[k][0] ^ 0x80]) + bad[k][1:]
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, old_root, new_root, bad)
    other = data.draw(st.integers(1, n - 1).filter(lambda x: x != m)) if n > 2 else None
    if other is not None:
        with pytest.raises(ProofError):
            merkle.verify_consistency(other, n, old_root, new_root, proof)
    if len(merkle.consistency_ranges(m, n + 1)) != len(proof):
        # As with inclusion, sizes with the same proof shape are bound by the
        # signed tree head, not by the proof.
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n + 1, old_root, new_root, proof)
