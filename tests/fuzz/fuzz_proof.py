"""atheris harness: the Merkle proof verifiers and the proofs' wire form.

Property: for any sizes, indexes, hashes and proof lists, ``verify_inclusion``
and ``verify_consistency`` return or raise ``ProofError``; a genuine proof over
fuzzed leaves verifies, and the same proof with one fuzzed change does not.
Proofs travel as lists of base64 strings (``GET /v1/proofs/*``); the harness
decodes that form the way a client does before verifying.

Run: ``python tests/fuzz/fuzz_proof.py -runs=20000 CORPUS_DIR``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ledger"]):
    from ledger import (
        consistency_proof,
        inclusion_proof,
        leaf_hash,
        root,
        verify_consistency,
        verify_inclusion,
    )
    from ledger.errors import ProofError


def seeds() -> list[bytes]:
    return [
        bytes(range(64)),
        b"\x05\x02" + bytes(200),
        json.dumps({"index": 1, "size": 3, "proof": ["AA=="]}).encode(),
    ]


def _hashes(fdp: atheris.FuzzedDataProvider, n: int) -> list[bytes]:
    return [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)) for _ in range(n)]


def _wire(data: bytes) -> list[bytes] | None:
    """A proof as a client receives it: JSON with a list of base64 strings."""
    try:
        value = json.loads(data)
        return [base64.b64decode(p, validate=True) for p in value["proof"]]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:  # arbitrary arguments
        index, size = fdp.ConsumeInt(9), fdp.ConsumeInt(9)
        leaf, root_hash = fdp.ConsumeBytes(32), fdp.ConsumeBytes(32)
        proof = _hashes(fdp, fdp.ConsumeIntInRange(0, 70))
        with contextlib.suppress(ProofError):
            verify_inclusion(leaf, index, size, proof, root_hash)
        with contextlib.suppress(ProofError):
            verify_consistency(index, size, leaf, root_hash, proof)
    elif mode == 1:  # genuine proofs over fuzzed leaves, then one change
        n = fdp.ConsumeIntInRange(1, 70)
        leaves = [leaf_hash(fdp.ConsumeBytes(4) + i.to_bytes(2, "big")) for i in range(n)]
        index = fdp.ConsumeIntInRange(0, n - 1)
        proof = inclusion_proof(leaves, index)
        verify_inclusion(leaves[index], index, n, proof, root(leaves))
        old = fdp.ConsumeIntInRange(1, n)
        cproof = consistency_proof(leaves, old)
        verify_consistency(old, n, root(leaves[:old]), root(leaves), cproof)
        if proof:
            k = fdp.ConsumeIntInRange(0, len(proof) - 1)
            bad = bytearray(proof[k])
            bad[fdp.ConsumeIntInRange(0, 31)] ^= fdp.ConsumeIntInRange(1, 255)
            try:
                verify_inclusion(
                    leaves[index], index, n, [*proof[:k], bytes(bad), *proof[k + 1 :]], root(leaves)
                )
            except ProofError:
                pass
            else:
                raise AssertionError("a changed inclusion proof verified")
    else:  # the wire form
        proof = _wire(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600)))
        if proof is not None:
            index, size = fdp.ConsumeIntInRange(0, 2**20), fdp.ConsumeIntInRange(0, 2**20)
            with contextlib.suppress(ProofError):
                verify_inclusion(bytes(32), index, size, proof, bytes(32))
            with contextlib.suppress(ProofError):
                verify_consistency(index, size, bytes(32), bytes(32), proof)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        for i, seed in enumerate(seeds()):
            (Path(sys.argv[2]) / f"seed-{i}").write_bytes(seed)
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
