"""ledger.merkle against public RFC 6962 / RFC 9162 test vectors.

The vectors in ``tests/vectors/merkle/`` are copied verbatim from
transparency-dev/merkle (``testonly/constants.go``, ``rfc6962/rfc6962_test.go``,
``proof/verify_test.go`` and the ``testdata/{inclusion,consistency}`` probes);
see ``tests/vectors/README.md`` for the exact files and commits.

Each vector case is one pytest case whose id is the case's ``name``:

* roots: leaf hashes, node hash, empty-tree root and tree hashes for sizes 0..8;
* known-good proofs verify, and our generators produce exactly the same proof
  (and roots) over the same leaves;
* every probe marked ``want_err`` is rejected with :class:`ProofError`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import ProofError

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle"

Case = dict[str, Any]


def _load(name: str) -> list[Case]:
    doc = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    cases: list[Case] = doc["cases"]
    return cases


ROOT_CASES = _load("rfc6962_roots.json")
INCLUSION_CASES = _load("rfc6962_inclusion.json")
CONSISTENCY_CASES = _load("rfc6962_consistency.json")


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in cases]


def _decode(value: str, key: str) -> bytes:
    if key.endswith("_hex"):
        return bytes.fromhex(value)
    return base64.b64decode(value, validate=True)


def _hash(case: Case, field: str) -> bytes:
    """``field_hex`` or ``field_b64`` of a case, as bytes."""
    for key in (field + "_hex", field + "_b64"):
        if key in case:
            return _decode(case[key], key)
    raise KeyError(f"{case['name']}: no {field}_hex or {field}_b64")


def _hashes(case: Case, field: str) -> list[bytes]:
    """A list of hashes (``null`` upstream means an empty proof)."""
    for key in (field + "_hex", field + "_b64"):
        if key in case:
            return [_decode(v, key) for v in case[key] or []]
    raise KeyError(f"{case['name']}: no {field}_hex or {field}_b64")


def _leaf(case: Case) -> bytes:
    if "leaf_input_hex" in case:
        return merkle.leaf_hash(bytes.fromhex(case["leaf_input_hex"]))
    return _hash(case, "leaf_hash")


def _tree(case: Case) -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(x)) for x in case["leaf_inputs_hex"]]


def _hexes(hs: list[bytes]) -> list[str]:
    return [h.hex() for h in hs]


# --------------------------------------------------------------------------- roots


@pytest.mark.parametrize("case", _params([c for c in ROOT_CASES if c["kind"] == "leaf_hash"]))
def test_leaf_hash_vector(case: Case) -> None:
    got = merkle.leaf_hash(bytes.fromhex(case["input_hex"]))
    assert got.hex() == case["hash_hex"]


@pytest.mark.parametrize("case", _params([c for c in ROOT_CASES if c["kind"] == "node_hash"]))
def test_node_hash_vector(case: Case) -> None:
    got = merkle.node_hash(bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"]))
    assert got.hex() == case["hash_hex"]


@pytest.mark.parametrize("case", _params([c for c in ROOT_CASES if c["kind"] == "tree"]))
def test_root_vector(case: Case) -> None:
    assert merkle.root(_tree(case)).hex() == case["root_hex"]


def test_root_vectors_cover_sizes_0_to_8() -> None:
    sizes = {
        len(c["leaf_inputs_hex"])
        for c in ROOT_CASES
        if c["kind"] == "tree" and c["name"].startswith("constants.go/RootHashes")
    }
    assert sizes == set(range(9))


# ----------------------------------------------------------------------- inclusion


@pytest.mark.parametrize("case", _params(INCLUSION_CASES))
def test_inclusion_vector_verifies_or_fails(case: Case) -> None:
    args = (
        _leaf(case),
        case["leaf_index"],
        case["tree_size"],
        _hashes(case, "proof"),
        _hash(case, "root"),
    )
    if case["want_err"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize(
    "case", _params([c for c in INCLUSION_CASES if not c["want_err"] and "leaf_inputs_hex" in c])
)
def test_inclusion_vector_generated_proof(case: Case) -> None:
    leaves = _tree(case)
    index = case["leaf_index"]
    assert len(leaves) == case["tree_size"]
    assert leaves[index] == _leaf(case)
    assert merkle.root(leaves).hex() == _hash(case, "root").hex()
    assert _hexes(merkle.inclusion_proof(leaves, index)) == _hexes(_hashes(case, "proof"))


# --------------------------------------------------------------------- consistency


@pytest.mark.parametrize("case", _params(CONSISTENCY_CASES))
def test_consistency_vector_verifies_or_fails(case: Case) -> None:
    args = (
        case["old_size"],
        case["new_size"],
        _hash(case, "old_root"),
        _hash(case, "new_root"),
        _hashes(case, "proof"),
    )
    if case["want_err"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


@pytest.mark.parametrize(
    "case", _params([c for c in CONSISTENCY_CASES if not c["want_err"] and "leaf_inputs_hex" in c])
)
def test_consistency_vector_generated_proof(case: Case) -> None:
    leaves = _tree(case)
    old_size = case["old_size"]
    assert len(leaves) == case["new_size"]
    assert merkle.root(leaves[:old_size]).hex() == _hash(case, "old_root").hex()
    assert merkle.root(leaves).hex() == _hash(case, "new_root").hex()
    assert _hexes(merkle.consistency_proof(leaves, old_size)) == _hexes(_hashes(case, "proof"))


# ------------------------------------------------------------------------ sanity


def test_vector_files_have_sources_and_unique_names() -> None:
    names: list[str] = []
    for file in ("rfc6962_roots.json", "rfc6962_inclusion.json", "rfc6962_consistency.json"):
        doc = json.loads((VECTORS / file).read_text(encoding="utf-8"))
        assert doc["source"]["repository"] == "transparency-dev/merkle"
        assert doc["source"]["files"]
        names += [c["name"] for c in doc["cases"]]
    assert len(names) == len(set(names))
    # Both verdicts are represented.
    assert any(c["want_err"] for c in INCLUSION_CASES)
    assert any(not c["want_err"] for c in INCLUSION_CASES)
    assert any(c["want_err"] for c in CONSISTENCY_CASES)
    assert any(not c["want_err"] for c in CONSISTENCY_CASES)
