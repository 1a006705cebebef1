"""SM2 signatures (ledger/sm2.py) against GB/T 32918.2-2016 Annex A and an independent implementation.

The vector file names its source. ``gmalg`` (pure Python, written apart from
Tongsuo) is the differential oracle: it accepts an injected k, so it
reproduces the standard's r and s exactly, and every signature made by one
implementation must verify under the other.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from ledger.errors import InvalidRecordError
from ledger.sm2 import (
    SM2_DEFAULT_ID,
    SM2_ORDER,
    Sm2PrivateKey,
    sm2_public_key_problem,
    sm2_verify,
)

gmalg = pytest.importorskip("gmalg", reason="gmalg (test extra) is the independent SM2 oracle")

VECTOR = json.loads(
    (Path(__file__).parents[1] / "vectors" / "sm2" / "gbt32918_2_annex_a.json").read_text()
)
D = bytes.fromhex(VECTOR["d"])
PUBLIC = bytes.fromhex(VECTOR["public_x"] + VECTOR["public_y"])
MESSAGE = VECTOR["message"].encode()
SIGNATURE = bytes.fromhex(VECTOR["r"] + VECTOR["s"])


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _oracle(public: bytes, private: bytes | None = None, k: int | None = None) -> object:
    return gmalg.SM2(
        sk=private,
        pk=b"\x04" + public,
        uid=SM2_DEFAULT_ID,
        rnd_fn=(lambda _n: k) if k is not None else None,
    )


def test_the_vector_names_the_default_identifier_and_its_digest_chain() -> None:
    assert VECTOR["id"].encode() == SM2_DEFAULT_ID
    curve = VECTOR["curve"]
    assert int(curve["n"], 16) == SM2_ORDER
    entl = (len(SM2_DEFAULT_ID) * 8).to_bytes(2, "big")
    params = b"".join(bytes.fromhex(curve[k]) for k in ("a", "b", "gx", "gy"))
    za = _sm3(entl + SM2_DEFAULT_ID + params + PUBLIC)
    assert za.hex().upper() == VECTOR["za"]
    assert _sm3(za + MESSAGE).hex().upper() == VECTOR["e"]


def test_the_private_key_of_the_example_gives_its_public_key() -> None:
    key = Sm2PrivateKey.from_scalar(D)
    assert key.public_bytes() == PUBLIC
    assert key.scalar() == D


def test_the_standards_signature_verifies_and_any_changed_byte_does_not() -> None:
    assert sm2_verify(PUBLIC, MESSAGE, SIGNATURE)
    assert not sm2_verify(PUBLIC, MESSAGE + b".", SIGNATURE)
    for i in (0, 31, 32, 63):
        bad = bytearray(SIGNATURE)
        bad[i] ^= 0x01
        assert not sm2_verify(PUBLIC, MESSAGE, bytes(bad))
    other = Sm2PrivateKey.generate().public_bytes()
    assert not sm2_verify(other, MESSAGE, SIGNATURE)


def test_the_oracle_reproduces_the_standards_r_and_s_from_its_k() -> None:
    r, s = _oracle(PUBLIC, D, int(VECTOR["k"], 16)).sign(MESSAGE)
    assert r + s == SIGNATURE


def test_signatures_cross_verify_with_the_oracle_both_ways() -> None:
    rng = random.Random(32918)
    for _ in range(8):
        key = Sm2PrivateKey.generate()
        public = key.public_bytes()
        message = rng.randbytes(rng.randrange(0, 300))
        ours = key.sign(message)
        assert _oracle(public).verify(message, ours[:32], ours[32:])
        r, s = _oracle(public, key.scalar()).sign(message)
        assert sm2_verify(public, message, r + s)
        assert not sm2_verify(public, message + b"\x00", r + s)


def test_malformed_input_answers_false_or_names_the_problem() -> None:
    assert not sm2_verify(PUBLIC[:-1], MESSAGE, SIGNATURE)
    assert not sm2_verify(PUBLIC, MESSAGE, SIGNATURE[:-1])
    assert not sm2_verify(b"\x00" * 64, MESSAGE, SIGNATURE)
    zero_r = bytes(32) + SIGNATURE[32:]
    assert not sm2_verify(PUBLIC, MESSAGE, zero_r)
    big_s = SIGNATURE[:32] + SM2_ORDER.to_bytes(32, "big")
    assert not sm2_verify(PUBLIC, MESSAGE, big_s)
    assert sm2_public_key_problem(PUBLIC) is None
    assert "64 bytes" in (sm2_public_key_problem(PUBLIC[:10]) or "")
    assert "not a point" in (sm2_public_key_problem(b"\x01" * 64) or "")


@pytest.mark.parametrize(
    "raw",
    [b"\x00" * 32, (SM2_ORDER - 1).to_bytes(32, "big"), b"\x01" * 31],
    ids=["zero", "n-1", "short"],
)
def test_out_of_range_private_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecordError):
        Sm2PrivateKey.from_scalar(raw)


def test_the_key_repr_hides_the_scalar() -> None:
    key = Sm2PrivateKey.from_scalar(D)
    assert VECTOR["d"].lower() not in repr(key).lower()
