"""SM2 digital signatures (GB/T 32918.2-2016) on the recommended curve, with SM3.

The national-cryptography suite's signature primitive, kept apart from the
formats that will carry it. Keys and signatures have fixed raw encodings so a
signed note or an HTTP signature carries them without ASN.1:

* a public key is the 64-byte point ``x ‖ y`` (big-endian, 32 bytes each;
  the ``0x04`` prefix of the uncompressed SEC 1 form is dropped);
* a private key is the 32-byte scalar ``d``, ``1 ≤ d ≤ n − 2``;
* a signature is the 64-byte ``r ‖ s`` (GM/T 0009-2012 §7.3 writes the same
  pair as an ASN.1 SEQUENCE; the raw form is the one GB/T 32918.2 prints).

The signer's distinguishing identifier is fixed at the standard's default
``1234567812345678`` (GB/T 35276-2017 §10; GM/T 0009-2012 §10): ``Z_A``
hashes it with the curve parameters and the public key, and ``e =
SM3(Z_A ‖ M)`` is what is signed. The arithmetic is Tongsuo's (the
``tongsuopy`` binding, a fork of pyca/cryptography on the Tongsuo library);
``tests/unit/test_sm2.py`` checks it against the GB/T 32918.2-2016 Annex A
example and, message by message, against ``gmalg``, an independent
pure-Python implementation.

Everything here is bounded: inputs of the wrong length are refused before any
arithmetic, and a verifier answers ``False`` for any malformed signature
instead of raising.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import hashes
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

from ledger.errors import InvalidRecordError

__all__ = [
    "SM2_DEFAULT_ID",
    "SM2_ORDER",
    "SM2_PUBLIC_KEY_LEN",
    "SM2_SIGNATURE_LEN",
    "Sm2PrivateKey",
    "sm2_public_key_problem",
    "sm2_verify",
]

SM2_DEFAULT_ID = b"1234567812345678"
"""The default distinguishing identifier every signature here is made with."""

SM2_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
"""n, the order of the recommended curve's base point (GB/T 32918.5-2017)."""

SM2_PUBLIC_KEY_LEN = 64
SM2_SIGNATURE_LEN = 64
_SCALAR_LEN = 32
_CURVE = ec.SM2()


def _algorithm() -> ec.ECDSA:
    # Tongsuo's EVP_DigestSign with an SM2 key and SM3 computes Z_A with the
    # default identifier, then e = SM3(Z_A ‖ M): the SM2 signature scheme,
    # despite the class name it shares with pyca's ECDSA.
    return ec.ECDSA(hashes.SM3())


def _load_public(raw: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, b"\x04" + raw)


def sm2_public_key_problem(raw: bytes) -> str | None:
    """Say in one sentence what is wrong with a raw SM2 public key, or None."""
    if len(raw) != SM2_PUBLIC_KEY_LEN:
        return f"an SM2 public key is {SM2_PUBLIC_KEY_LEN} bytes (x ‖ y), got {len(raw)}"
    try:
        _load_public(raw)
    except ValueError:
        return "the SM2 public key is not a point of the recommended curve"
    return None


def sm2_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (64-byte ``r ‖ s``) is the SM2 signature of ``message``.

    Never raises for bad input: a key or signature of the wrong length, a
    point off the curve, or ``r``/``s`` outside ``[1, n − 1]`` all answer False.
    """
    if len(public_key) != SM2_PUBLIC_KEY_LEN or len(signature) != SM2_SIGNATURE_LEN:
        return False
    r = int.from_bytes(signature[:_SCALAR_LEN], "big")
    s = int.from_bytes(signature[_SCALAR_LEN:], "big")
    if not (0 < r < SM2_ORDER and 0 < s < SM2_ORDER):
        return False
    try:
        key = _load_public(public_key)
        key.verify(encode_dss_signature(r, s), message, _algorithm())
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, eq=False)
class Sm2PrivateKey:
    """An SM2 signing key. Compares by identity; repr hides the key.

    Attributes:
        key: Tongsuo's key object (kept to sign without re-deriving it).
    """

    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        """A fresh key from the operating system's random source."""
        return cls.from_scalar((secrets.randbelow(SM2_ORDER - 2) + 1).to_bytes(_SCALAR_LEN, "big"))

    @classmethod
    def from_scalar(cls, raw: bytes) -> Sm2PrivateKey:
        """The key whose 32-byte big-endian scalar is ``raw``.

        Raises:
            InvalidRecordError: ``raw`` is not 32 bytes, or ``d`` is outside ``[1, n − 2]``.
        """
        if len(raw) != _SCALAR_LEN:
            raise InvalidRecordError(f"an SM2 private key is {_SCALAR_LEN} bytes, got {len(raw)}")
        d = int.from_bytes(raw, "big")
        if not 0 < d < SM2_ORDER - 1:
            raise InvalidRecordError("an SM2 private key must lie in [1, n - 2]")
        return cls(ec.derive_private_key(d, _CURVE))

    def scalar(self) -> bytes:
        """The 32-byte big-endian scalar ``d``."""
        value: int = self.key.private_numbers().private_value
        return value.to_bytes(_SCALAR_LEN, "big")

    def public_bytes(self) -> bytes:
        """The 64-byte public point ``x ‖ y``."""
        numbers = self.key.public_key().public_numbers()
        x: int = numbers.x
        y: int = numbers.y
        return x.to_bytes(_SCALAR_LEN, "big") + y.to_bytes(_SCALAR_LEN, "big")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ``r ‖ s`` SM2 signature of ``message`` (randomised, as the scheme is)."""
        r, s = decode_dss_signature(self.key.sign(message, _algorithm()))
        return r.to_bytes(_SCALAR_LEN, "big") + s.to_bytes(_SCALAR_LEN, "big")
