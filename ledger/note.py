"""C2SP signed notes, transparency-log checkpoints and cosignatures, Ed25519 or SM2.

Job: encode, parse and verify the three text formats a city node publishes its
tree heads in, exactly as specified and with no I/O and no clock (timestamps are
passed in):

* **signed note** (https://c2sp.org/signed-note, as implemented by
  ``golang.org/x/mod/sumdb/note``): a UTF-8 text ending in a newline, a blank
  line, then one or more lines ``— <key name> <base64(key ID ‖ signature)>``.
  Ed25519 keys have signature type 0x01 and key ID
  ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``. Key strings are the Go
  ones: verifier ``name+hexkeyid+base64(0x01 ‖ public key)`` and signer
  ``PRIVATE+KEY+name+hexkeyid+base64(0x01 ‖ seed)``.
* **checkpoint** (https://c2sp.org/tlog-checkpoint): the note text is the
  origin line, the decimal tree size, the base64 RFC 6962 root hash, then
  optional non-empty extension lines.
* **Ed25519 cosignature** (https://c2sp.org/tlog-cosignature, type 0x04): a
  note signature by a witness whose bytes are
  ``key ID ‖ u64 big-endian timestamp ‖ Ed25519 signature`` over
  ``"cosignature/v1\\ntime <timestamp>\\n" ‖ checkpoint text``.

* **SM2** (the national-cryptography suite, :mod:`ledger.sm2`): the same
  three formats with SM2 in place of Ed25519. signed-note assigns no byte to
  SM2, so its types are 0xff followed by an identifier, as the spec
  recommends for unassigned types: :data:`SIG_TYPE_SM2` for note signatures
  and :data:`SIG_TYPE_COSIGNATURE_SM2` for cosignatures. Key IDs hash the
  whole type, key strings carry it before the key (a 64-byte public point
  ``x ‖ y`` or a 32-byte scalar), and signatures are the 64-byte ``r ‖ s``;
  a cosignature is ``key ID ‖ u64 timestamp ‖ r ‖ s`` over the same
  ``cosignature/v1`` message. SM2 signatures are randomised, so the
  determinism invariant below is Ed25519's only.

Errors: parsers and :func:`sign_note` raise :class:`~ledger.errors.NoteFormatError`
whose ``rule`` is one of the slugs in :data:`RULES` (one slug per rule);
constructors of the value objects raise :class:`~ledger.errors.InvalidRecordError`
(a ``ValueError``) naming the same slug; a signature that is missing or does not
verify raises :class:`~ledger.errors.SignatureError`.

Invariants:

* Round trip: for any text that passes the text rules and any signers,
  ``open_note(sign_note(text, signers), verifiers_of_signers).text == text``,
  and ``Checkpoint.from_text(c.to_text()) == c``.
* One encoding per note: base64 must be canonical (what an encoder writes), so
  changing any byte of a signed note makes it either malformed or no longer
  verified by every key that signed it. Go's decoder is laxer here: a note
  whose base64 has non-zero padding bits is accepted there and refused here.
* A signature whose key name *and* key ID match a known key is always checked,
  and one that fails makes the whole note fail; signatures from unknown keys
  are kept in :attr:`Note.signatures` but never trusted; a note with no
  verified signature is refused.
* Ed25519 is deterministic: one key and one text always give the same bytes,
  so :func:`sign_note` reproduces published test vectors byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import InvalidRecordError, NoteFormatError, SignatureError
from ledger.sm2 import SM2_PUBLIC_KEY_LEN, Sm2PrivateKey, sm2_public_key_problem, sm2_verify

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_COSIGNATURE_TIMESTAMP",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "RULES",
    "SIG_TYPE_COSIGNATURE_ED25519",
    "SIG_TYPE_COSIGNATURE_SM2",
    "SIG_TYPE_ED25519",
    "SIG_TYPE_SM2",
    "SUITES",
    "Checkpoint",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Signer",
    "Sm2CosignatureSigner",
    "Sm2CosignatureVerifier",
    "Sm2NoteSigner",
    "Sm2NoteVerifier",
    "Verifier",
    "add_signatures",
    "compute_key_id",
    "cosignature_message",
    "cosignature_timestamp",
    "note_signer_from_key_string",
    "note_verifier_from_key_string",
    "open_note",
    "parse_note",
    "sign_note",
]

SIG_TYPE_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note)."""

SIG_TYPE_COSIGNATURE_ED25519 = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature)."""

SIG_TYPE_SM2 = b"\xffgbt32918.2/sm2-sm3"
"""Signature type of SM2 note signatures: 0xff (c2sp.org/signed-note's byte for types it
does not assign) followed by an identifier, as the spec recommends."""

SIG_TYPE_COSIGNATURE_SM2 = b"\xffgbt32918.2/sm2-sm3-cosignature/v1"
"""Signature type of timestamped SM2 cosignatures (tlog-cosignature's format, SM2 in place
of Ed25519)."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the spec asks for at least 16; Go allows 100)."""

COSIGNATURE_HEADER = "cosignature/v1"
"""First line of the message an Ed25519 cosignature signs."""

MAX_TREE_SIZE = 2**64 - 1
"""Largest tree size a checkpoint may state (uint64, as every Go implementation reads it)."""

MAX_COSIGNATURE_TIMESTAMP = 2**63 - 1
"""Largest cosignature timestamp (c2sp.org/tlog-cosignature)."""

_EM_DASH_PREFIX = "\u2014 "
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_ED25519_KEY_LEN = 32
_ED25519_SIG_LEN = 64
_COSIGNATURE_LEN = 8 + _ED25519_SIG_LEN

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"[0-9]+")

RULES: Mapping[str, str] = {
    # Text of a note or checkpoint.
    "invalid-utf8": "notes are valid UTF-8 (no lone surrogates in a str)",
    "control-char": "no ASCII control character other than newline (U+000A)",
    "text-final-newline": "the note text ends with a newline",
    # Framing of a signed note.
    "missing-blank-line": "a blank line separates the text from the signatures",
    "no-signatures": "at least one signature line follows the blank line",
    "final-newline": "the last signature line ends with a newline",
    "too-many-signatures": f"at most {MAX_SIGNATURES} signature lines",
    # One signature line.
    "signature-line-break": "a signature line is one line",
    "signature-prefix": "a signature line starts with em dash (U+2014) and a space",
    "signature-fields": "a space separates the key name from the base64 signature",
    "signature-base64": "the signature is canonical standard base64",
    "signature-too-short": "the signature decodes to a 4-byte key ID and at least 1 byte",
    # Key names (in signature lines, key strings and signers).
    "name-empty": "a key name is not empty",
    "name-whitespace": "a key name has no Unicode whitespace",
    "name-plus": "a key name has no plus sign (U+002B)",
    # Key strings.
    "key-private-prefix": "a signer key string starts with PRIVATE+KEY+",
    "key-fields": "a key string has the fields name+keyid+key",
    "key-id-hex": "the key ID field is 8 hexadecimal digits",
    "key-base64": "the key field is canonical standard base64",
    "key-empty": "the key field is not empty",
    "key-algorithm": "the key's signature type byte is the expected one",
    "key-length": "a key is 32 bytes (Ed25519) or 64 bytes (SM2 public) after its type",
    "key-id-mismatch": "the key ID field matches the key ID computed from name and key",
    # Checkpoint text and fields.
    "checkpoint-final-newline": "a checkpoint text ends with a newline",
    "checkpoint-too-few-lines": "a checkpoint has origin, size and root hash lines",
    "origin-empty": "the origin line is not empty",
    "size-not-decimal": "the tree size is ASCII decimal digits (a non-negative int)",
    "size-leading-zero": "the tree size has no leading zero (except the size 0)",
    "size-too-large": f"the tree size is at most {MAX_TREE_SIZE} (uint64)",
    "root-not-base64": "the root hash is canonical standard base64",
    "root-length": "the root hash is 32 bytes (SHA-256)",
    "extension-empty": "extension lines are not empty",
    "field-line-break": "origin and extension values hold no newline (Checkpoint constructor)",
    # Ed25519 cosignatures.
    "cosignature-length": "a cosignature is key ID, 8-byte timestamp and 64-byte signature",
    "cosignature-timestamp-range": f"a cosignature timestamp is 0..{MAX_COSIGNATURE_TIMESTAMP}",
}


# --------------------------------------------------------------------------- helpers


def compute_key_id(name: str, signature_type: int | bytes, public_key: bytes) -> bytes:
    """Return the 4-byte key ID of a key, as c2sp.org/signed-note recommends.

    Args:
        name: the key name.
        signature_type: the signature type byte (0x01 Ed25519, 0x04 cosignature),
            or the whole type of an unassigned one (0xff and its identifier, as
            :data:`SIG_TYPE_SM2` and :data:`SIG_TYPE_COSIGNATURE_SM2`).
        public_key: the raw public key (32 bytes for Ed25519, 64 for SM2).

    Returns:
        ``SHA-256(name ‖ 0x0A ‖ signature_type ‖ public_key)[:4]``.
    """
    kind = bytes([signature_type]) if isinstance(signature_type, int) else signature_type
    data = name.encode("utf-8") + b"\n" + kind + public_key
    return hashlib.sha256(data).digest()[:4]


def _b64decode(text: str) -> bytes | None:
    """Decode canonical standard base64, or return None.

    Canonical means exactly what :func:`base64.b64encode` writes: the right
    padding and zero padding bits. That keeps one encoding per byte string.
    """
    if len(text) % 4 or not _BASE64.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _text_problem(text: str, what: str) -> tuple[str, str] | None:
    """Return (rule, detail) if ``text`` breaks the character rules of a note."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return "invalid-utf8", f"{what} has a lone surrogate at index {exc.start}"
    match = _CONTROL.search(text)
    if match is not None:
        return (
            "control-char",
            f"{what} has control character U+{ord(match.group()):04X} at index {match.start()}",
        )
    return None


def _name_problem(name: str) -> tuple[str, str] | None:
    """Return (rule, detail) if ``name`` is not a valid key name."""
    if not name:
        return "name-empty", "key name is empty"
    for index, char in enumerate(name):
        if char.isspace():
            return "name-whitespace", f"key name {_clip(name)} has whitespace {char!r} at {index}"
        if char == "+":
            return "name-plus", f"key name {_clip(name)} has '+' at {index}"
    return _text_problem(name, f"key name {_clip(name)}")


def _require_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        rule, detail = problem
        raise InvalidRecordError(f"{detail} (rule: {rule})")


def _ed25519_public_key(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != _ED25519_KEY_LEN:
        raise InvalidRecordError(
            f"Ed25519 public key must be {_ED25519_KEY_LEN} bytes, got {len(raw)} (rule: key-length)"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidRecordError(f"not an Ed25519 public key: {raw.hex()}") from exc


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != _ED25519_SIG_LEN:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _parse_key_string(
    key_string: str, *, private: bool, signature_type: int | bytes, key_len: int = _ED25519_KEY_LEN
) -> tuple[str, bytes, bytes]:
    """Split a Go note key string into (name, declared key ID, key material).

    The key material is returned without its type byte. The declared key ID is
    not checked here: for a signer it depends on the derived public key.
    """
    kind = "signer" if private else "verifier"
    rest = key_string
    if private:
        if not key_string.startswith(_PRIVATE_PREFIX):
            raise NoteFormatError(
                "key-private-prefix",
                f"signer key string {_clip(key_string, 20)} does not start with {_PRIVATE_PREFIX}",
            )
        rest = key_string[len(_PRIVATE_PREFIX) :]
    name, sep1, rest = rest.partition("+")
    key_hex, sep2, key_b64 = rest.partition("+")
    if not sep1 or not sep2:
        raise NoteFormatError(
            "key-fields", f"{kind} key string has {1 + bool(sep1) + bool(sep2)} field(s), want 3"
        )
    problem = _name_problem(name)
    if problem is not None:
        raise NoteFormatError(*problem)
    if not _HEX8.fullmatch(key_hex):
        raise NoteFormatError("key-id-hex", f"key ID {_clip(key_hex, 12)} is not 8 hex digits")
    raw = _b64decode(key_b64)
    if raw is None:
        raise NoteFormatError("key-base64", f"{kind} key field is not canonical base64")
    if not raw:
        raise NoteFormatError("key-empty", f"{kind} key field is empty")
    kind_bytes = bytes([signature_type]) if isinstance(signature_type, int) else signature_type
    if not raw.startswith(kind_bytes):
        raise NoteFormatError(
            "key-algorithm",
            f"{kind} key {name} has signature type {_type_label(raw, len(kind_bytes))}, "
            f"want {_type_label(kind_bytes, len(kind_bytes))}",
        )
    if len(raw) != len(kind_bytes) + key_len:
        raise NoteFormatError(
            "key-length",
            f"{kind} key {name} is {len(raw) - len(kind_bytes)} bytes after the type, "
            f"want {key_len}",
        )
    return name, bytes.fromhex(key_hex), raw[len(kind_bytes) :]


def _type_label(raw: bytes, length: int) -> str:
    """Name a key's signature type: ``0x01``, or ``0xff`` and its identifier."""
    if length == 1 or raw[:1] != b"\xff":
        return f"{raw[0]:#04x}"
    return f"0xff {raw[1:length].decode('ascii', 'replace')!r}"


def _check_key_id(name: str, declared: bytes, computed: bytes) -> None:
    if declared != computed:
        raise NoteFormatError(
            "key-id-mismatch",
            f"key string for {name} declares key ID {declared.hex()}, computed {computed.hex()}",
        )


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """An Ed25519 (type 0x01) note verifier key.

    Attributes:
        name: the key name, as it appears in signature lines.
        public_key: the raw 32-byte Ed25519 public key.
        key_id: the 4-byte key ID, computed from name and key.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        _ed25519_public_key(self.public_key)
        key_id = compute_key_id(self.name, SIG_TYPE_ED25519, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @classmethod
    def from_key_string(cls, key_string: str) -> NoteVerifier:
        """Parse a verifier key string ``name+hexkeyid+base64(0x01 ‖ public key)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule.
        """
        name, declared, public_key = _parse_key_string(
            key_string, private=False, signature_type=SIG_TYPE_ED25519
        )
        _check_key_id(name, declared, compute_key_id(name, SIG_TYPE_ED25519, public_key))
        return cls(name, public_key)

    def key_string(self) -> str:
        """Return the verifier key string (lower-case hex key ID)."""
        return (
            f"{self.name}+{self.key_id.hex()}+{_b64(bytes([SIG_TYPE_ED25519]) + self.public_key)}"
        )

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Report whether ``sig`` (64 bytes, no key ID) is this key's signature of ``msg``."""
        return _ed25519_verify(self.public_key, msg, sig)


@dataclass(frozen=True, slots=True, eq=False)
class NoteSigner:
    """An Ed25519 (type 0x01) note signer. Compares by identity; repr hides the key.

    Attributes:
        name: the key name written in signature lines.
        private_key: the Ed25519 private key.
        public_key: the raw 32-byte public key.
        key_id: the 4-byte key ID.
    """

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: bytes = field(init=False, repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        public_key = self.private_key.public_key().public_bytes_raw()
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "key_id", compute_key_id(self.name, SIG_TYPE_ED25519, public_key))

    @classmethod
    def from_key_string(cls, key_string: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hexkeyid+base64(0x01 ‖ 32-byte seed)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule,
                including a key ID that does not match the derived public key.
        """
        name, declared, seed = _parse_key_string(
            key_string, private=True, signature_type=SIG_TYPE_ED25519
        )
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        _check_key_id(name, declared, signer.key_id)
        return signer

    def key_string(self) -> str:
        """Return the signer key string. It holds the secret seed: keep it secret."""
        seed = self.private_key.private_bytes_raw()
        encoded = _b64(bytes([SIG_TYPE_ED25519]) + seed)
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, msg: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``msg``."""
        return self.private_key.sign(msg)

    def verifier(self) -> NoteVerifier:
        """Return the matching :class:`NoteVerifier`."""
        return NoteVerifier(self.name, self.public_key)


# --------------------------------------------------------------------------- notes


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note, verified or not.

    Attributes:
        name: the key name.
        key_id: the 4-byte key ID.
        signature: the signature bytes after the key ID (for Ed25519, 64
            bytes; for a cosignature, 8-byte timestamp then 64 bytes).
    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _require_name(self.name)
        if len(self.key_id) != 4:
            raise InvalidRecordError(f"key_id must be 4 bytes, got {len(self.key_id)}")
        if not self.signature:
            raise InvalidRecordError("signature must not be empty (rule: signature-too-short)")

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line, with or without its final newline.

        Raises:
            NoteFormatError: the line breaks a ``signature-*`` or ``name-*`` rule,
                or holds a control character.
        """
        body = line[:-1] if line.endswith("\n") else line
        if "\n" in body:
            raise NoteFormatError(
                "signature-line-break", f"signature line {_clip(body)} holds a line break"
            )
        problem = _text_problem(body, f"signature line {_clip(body)}")
        if problem is not None:
            raise NoteFormatError(*problem)
        if not body.startswith(_EM_DASH_PREFIX):
            raise NoteFormatError(
                "signature-prefix",
                f"signature line {_clip(body)} does not start with em dash and space",
            )
        name, sep, encoded = body[len(_EM_DASH_PREFIX) :].partition(" ")
        if not sep:
            raise NoteFormatError(
                "signature-fields", f"signature line {_clip(body)} has no space after the key name"
            )
        name_problem = _name_problem(name)
        if name_problem is not None:
            raise NoteFormatError(*name_problem)
        raw = _b64decode(encoded)
        if raw is None:
            raise NoteFormatError(
                "signature-base64", f"signature by {name} is not canonical base64: {_clip(encoded)}"
            )
        if len(raw) < 5:
            raise NoteFormatError(
                "signature-too-short",
                f"signature by {name} decodes to {len(raw)} bytes, want at least 5",
            )
        return cls(name, raw[:4], raw[4:])

    def to_line(self) -> str:
        """Return the signature line, ending in a newline."""
        return f"{_EM_DASH_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"

    def key_label(self) -> str:
        """Return ``name+hexkeyid``, the way Go names a key in errors."""
        return f"{self.name}+{self.key_id.hex()}"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note whose signature by at least one known key verified.

    Attributes:
        text: the note text, ending in a newline (not the blank line).
        signatures: every distinct signature line in order, verified or not
            (a line repeated byte for byte is kept once).
        verified_by: names of the known keys whose signatures verified, in
            order of first appearance.
    """

    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[str, ...]


def _parse_note(data: bytes) -> tuple[str, list[NoteSignature]]:
    """Split and parse a signed note without verifying anything."""
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteFormatError(
            "invalid-utf8", f"note is not UTF-8: byte {data[exc.start]:#04x} at offset {exc.start}"
        ) from exc
    problem = _text_problem(message, "note")
    if problem is not None:
        raise NoteFormatError(*problem)
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteFormatError(
            "missing-blank-line", f"note of {len(data)} bytes has no blank line before signatures"
        )
    text, block = message[: split + 1], message[split + 2 :]
    if not block:
        raise NoteFormatError("no-signatures", "note has no signature lines after the blank line")
    if not block.endswith("\n"):
        raise NoteFormatError(
            "final-newline",
            f"last signature line {_clip(block.rsplit(chr(10), 1)[-1])} has no newline",
        )
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(
            "too-many-signatures", f"note has {len(lines)} signature lines, limit {MAX_SIGNATURES}"
        )
    return text, [NoteSignature.from_line(line) for line in lines]


def parse_note(data: bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Parse a signed note WITHOUT verifying it: for routing, never for trust.

    A witness uses it to read a checkpoint's origin and pick the log key to
    verify with; the text must not be acted on until :func:`open_note` has
    verified it. A line repeated byte for byte is returned once.

    Returns:
        The note text and its distinct signatures, in order.

    Raises:
        NoteFormatError: the bytes break a rule of the format.
    """
    text, parsed = _parse_note(data)
    return text, tuple(dict.fromkeys(parsed))


def _check_note_text(text: str) -> None:
    problem = _text_problem(text, "note text")
    if problem is not None:
        raise NoteFormatError(*problem)
    if not text.endswith("\n"):
        raise NoteFormatError("text-final-newline", f"note text ends with {_clip(text[-20:])}")


def _signature_lines(text: str, signers: Sequence[Signer]) -> list[NoteSignature]:
    message = text.encode("utf-8")
    seen: set[tuple[str, bytes]] = set()
    signatures = []
    for signer in signers:
        if (signer.name, signer.key_id) in seen:
            continue
        seen.add((signer.name, signer.key_id))
        signatures.append(NoteSignature(signer.name, signer.key_id, signer.sign(message)))
    return signatures


def _encode(text: str, signatures: Sequence[NoteSignature]) -> bytes:
    if len(signatures) > MAX_SIGNATURES:
        raise NoteFormatError(
            "too-many-signatures",
            f"note would have {len(signatures)} signature lines, limit {MAX_SIGNATURES}",
        )
    return (text + "\n" + "".join(sig.to_line() for sig in signatures)).encode("utf-8")


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """Sign ``text`` with every signer and return the encoded note.

    Signers that share a key (same name and key ID) sign once.

    Args:
        text: the note text; must end with a newline.
        signers: at least one signer.

    Returns:
        ``text ‖ "\\n" ‖ one signature line per signer``, as UTF-8.

    Raises:
        NoteFormatError: ``text`` breaks a text rule (``invalid-utf8``,
            ``control-char``, ``text-final-newline``) or there are too many signers.
        ValueError: ``signers`` is empty.
    """
    _check_note_text(text)
    if not signers:
        raise ValueError("sign_note needs at least one signer, got none")
    return _encode(text, _signature_lines(text, signers))


def add_signatures(note_bytes: bytes, signers: Sequence[Signer]) -> bytes:
    """Append signatures to an already signed note, keeping its existing lines.

    Existing signatures are not verified here (open the note first). An
    existing line by the same key (name and key ID) as a new signer is
    replaced by the fresh signature, as Go's ``note.Sign`` does.

    Raises:
        NoteFormatError: ``note_bytes`` is not a well-formed note, or the
            result would have too many signatures.
        ValueError: ``signers`` is empty.
    """
    text, existing = _parse_note(note_bytes)
    if not signers:
        raise ValueError("add_signatures needs at least one signer, got none")
    fresh = _signature_lines(text, signers)
    replaced = {(sig.name, sig.key_id) for sig in fresh}
    kept = [sig for sig in existing if (sig.name, sig.key_id) not in replaced]
    return _encode(text, kept + fresh)


def _known_keys(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        other = known.get(slot)
        if other is not None and other != verifier:
            raise ValueError(
                f"ambiguous key {verifier.name}+{verifier.key_id.hex()}: two different verifiers"
            )
        known[slot] = verifier
    return known


def open_note(data: bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify it against the known keys.

    A signature is by a known key when both its key name and key ID match a
    verifier; every such signature must verify. Others are ignored.

    Args:
        data: the encoded note.
        verifiers: the known keys; :class:`CosignatureVerifier` entries check
            witness cosignatures (the note text must then be a checkpoint).

    Returns:
        The parsed :class:`Note`.

    Raises:
        NoteFormatError: the bytes break a rule of the format (see :data:`RULES`).
        SignatureError: a known key's signature does not verify (``key_name``
            set), or no known key signed the note (``key_name`` is None).
        ValueError: two different verifiers share a name and key ID.
    """
    text, signatures = parse_note(data)
    known = _known_keys(verifiers)
    message = text.encode("utf-8")
    verified_by: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(message, sig.signature):
            raise SignatureError(f"invalid signature for key {sig.key_label()}", key_name=sig.name)
        if sig.name not in verified_by:
            verified_by.append(sig.name)
    if not verified_by:
        found = ", ".join(sig.key_label() for sig in signatures)
        wanted = ", ".join(f"{name}+{key_id.hex()}" for name, key_id in known) or "none"
        raise SignatureError(
            f"note has no verifiable signatures: signed by {len(signatures)} key(s) [{found}], "
            f"0 of them among the {len(known)} known key(s) [{wanted}]"
        )
    return Note(text, signatures, tuple(verified_by))


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_field_problem(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> tuple[str, str] | None:
    """Return (rule, detail) if the checkpoint fields cannot make a valid text."""
    if not origin:
        return "origin-empty", "checkpoint origin is empty"
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return "size-not-decimal", f"tree size must be an int >= 0, got {size!r}"
    if size > MAX_TREE_SIZE:
        return "size-too-large", f"tree size {size} exceeds {MAX_TREE_SIZE}"
    if not isinstance(root, bytes) or len(root) != 32:
        length = len(root) if isinstance(root, bytes) else type(root).__name__
        return "root-length", f"root hash must be 32 bytes, got {length}"
    for index, value in enumerate((origin, *extensions)):
        what = "origin" if index == 0 else f"extension {index}"
        if index and not value:
            return "extension-empty", f"checkpoint {what} is empty"
        if "\n" in value:
            return "field-line-break", f"checkpoint {what} {_clip(value)} holds a newline"
        problem = _text_problem(value, f"checkpoint {what}")
        if problem is not None:
            return problem
    return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A transparency-log checkpoint (the text of a signed note).

    Attributes:
        origin: the log's unique identity (first line).
        size: the number of leaves in the tree.
        root: the 32-byte RFC 6962 root hash.
        extensions: optional extension lines, each non-empty.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _checkpoint_field_problem(self.origin, self.size, self.root, self.extensions)
        if problem is not None:
            rule, detail = problem
            raise InvalidRecordError(f"{detail} (rule: {rule})")

    def to_text(self) -> str:
        """Return the checkpoint text: one line per field, each ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint text (a note text, without signatures).

        Raises:
            NoteFormatError: the text breaks a checkpoint rule (``origin-empty``,
                ``size-not-decimal``, ``size-leading-zero``, ``size-too-large``,
                ``root-not-base64``, ``root-length``, ``extension-empty``, ...).
        """
        problem = _text_problem(text, "checkpoint")
        if problem is not None:
            raise NoteFormatError(*problem)
        if not text.endswith("\n"):
            raise NoteFormatError(
                "checkpoint-final-newline", f"checkpoint ends with {_clip(text[-20:])}"
            )
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteFormatError(
                "checkpoint-too-few-lines", f"checkpoint has {len(lines)} line(s), want at least 3"
            )
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise NoteFormatError("origin-empty", "checkpoint origin line is empty")
        if not _DECIMAL.fullmatch(size_line):
            raise NoteFormatError(
                "size-not-decimal", f"tree size {_clip(size_line)} is not ASCII decimal"
            )
        if len(size_line) > 1 and size_line[0] == "0":
            raise NoteFormatError(
                "size-leading-zero", f"tree size {_clip(size_line)} has a leading zero"
            )
        # Length first: int() of a very long string is slow, and refused past 4300 digits.
        if len(size_line) > len(str(MAX_TREE_SIZE)) or int(size_line) > MAX_TREE_SIZE:
            raise NoteFormatError(
                "size-too-large", f"tree size {_clip(size_line)} exceeds {MAX_TREE_SIZE}"
            )
        root = _b64decode(root_line)
        if root is None:
            raise NoteFormatError(
                "root-not-base64", f"root hash {_clip(root_line)} is not canonical base64"
            )
        if len(root) != 32:
            raise NoteFormatError("root-length", f"root hash is {len(root)} bytes, want 32")
        for index, extension in enumerate(extensions):
            if not extension:
                raise NoteFormatError(
                    "extension-empty", f"checkpoint line {index + 4} (extension) is empty"
                )
        return cls(origin, int(size_line), root, tuple(extensions))


# --------------------------------------------------------------------------- cosignatures


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise InvalidRecordError(f"timestamp must be an int, got {timestamp!r}")
    if not 0 <= timestamp <= MAX_COSIGNATURE_TIMESTAMP:
        raise InvalidRecordError(
            f"timestamp must be 0..{MAX_COSIGNATURE_TIMESTAMP}, got {timestamp} "
            "(rule: cosignature-timestamp-range)"
        )


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the message an Ed25519 cosignature signs.

    Args:
        checkpoint_text: the whole checkpoint text, ending in a newline.
        timestamp: POSIX seconds, 0..2^63-1.

    Returns:
        ``"cosignature/v1\\ntime <timestamp>\\n" ‖ checkpoint_text`` as UTF-8.

    Raises:
        NoteFormatError: ``checkpoint_text`` is not a valid checkpoint.
        InvalidRecordError: ``timestamp`` is out of range.
    """
    Checkpoint.from_text(checkpoint_text)
    _check_timestamp(timestamp)
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def cosignature_timestamp(signature: NoteSignature) -> int:
    """Return the timestamp of an Ed25519 cosignature, without verifying it.

    Raises:
        NoteFormatError: the signature is not 8 + 64 bytes after the key ID
            (``cosignature-length``) or its timestamp exceeds 2^63-1
            (``cosignature-timestamp-range``).
    """
    if len(signature.signature) != _COSIGNATURE_LEN:
        raise NoteFormatError(
            "cosignature-length",
            f"cosignature by {signature.key_label()} is {len(signature.signature)} bytes "
            f"after the key ID, want {_COSIGNATURE_LEN}",
        )
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > MAX_COSIGNATURE_TIMESTAMP:
        raise NoteFormatError(
            "cosignature-timestamp-range",
            f"cosignature by {signature.key_label()} has timestamp {timestamp} > 2^63-1",
        )
    return timestamp


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's Ed25519 cosignature (type 0x04) verifier.

    It is also a note verifier: passed to :func:`open_note`, it checks the
    witness's line in a cosigned checkpoint.

    Attributes:
        name: the cosigner's key name.
        public_key: the raw 32-byte Ed25519 public key.
        key_id: ``SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]``.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        _ed25519_public_key(self.public_key)
        key_id = compute_key_id(self.name, SIG_TYPE_COSIGNATURE_ED25519, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @classmethod
    def from_key_string(cls, key_string: str) -> CosignatureVerifier:
        """Parse a vkey ``name+hexkeyid+base64(0x04 ‖ public key)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule
                (a plain 0x01 Ed25519 vkey is ``key-algorithm``).
        """
        name, declared, public_key = _parse_key_string(
            key_string, private=False, signature_type=SIG_TYPE_COSIGNATURE_ED25519
        )
        computed = compute_key_id(name, SIG_TYPE_COSIGNATURE_ED25519, public_key)
        _check_key_id(name, declared, computed)
        return cls(name, public_key)

    def key_string(self) -> str:
        """Return the vkey string with signature type 0x04."""
        encoded = _b64(bytes([SIG_TYPE_COSIGNATURE_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Report whether ``sig`` (timestamp ‖ signature) cosigns the checkpoint ``msg``.

        This is the note-verifier interface :func:`open_note` calls; a ``msg``
        that is not a checkpoint text never verifies.
        """
        return _cosignature_verifies(
            msg, sig, lambda m, raw: _ed25519_verify(self.public_key, m, raw)
        )

    def verify_line(self, checkpoint_text: str, line: str) -> int:
        """Verify this witness's cosignature line over a checkpoint.

        Args:
            checkpoint_text: the checkpoint text that was cosigned.
            line: one signature line, with or without its final newline.

        Returns:
            The cosignature's timestamp (POSIX seconds).

        Raises:
            NoteFormatError: the checkpoint or the line is malformed, or the
                cosignature has the wrong length or timestamp range.
            SignatureError: the line is by another key, or does not verify.
        """
        return _verify_cosignature_line(
            self.name,
            self.key_id,
            checkpoint_text,
            line,
            lambda m, raw: _ed25519_verify(self.public_key, m, raw),
        )


def _cosignature_verifies(msg: bytes, sig: bytes, verify: Callable[[bytes, bytes], bool]) -> bool:
    """Whether ``sig`` (u64 timestamp ‖ signature) cosigns the checkpoint text ``msg``."""
    if len(sig) != _COSIGNATURE_LEN:
        return False
    timestamp = int.from_bytes(sig[:8], "big")
    if timestamp > MAX_COSIGNATURE_TIMESTAMP:
        return False
    try:
        message = cosignature_message(msg.decode("utf-8"), timestamp)
    except (UnicodeDecodeError, NoteFormatError):
        return False
    return verify(message, sig[8:])


def _verify_cosignature_line(
    name: str,
    key_id: bytes,
    checkpoint_text: str,
    line: str,
    verify: Callable[[bytes, bytes], bool],
) -> int:
    Checkpoint.from_text(checkpoint_text)
    sig = NoteSignature.from_line(line)
    if (sig.name, sig.key_id) != (name, key_id):
        raise SignatureError(
            f"cosignature line is by {sig.key_label()}, not by {name}+{key_id.hex()}",
            key_name=name,
        )
    timestamp = cosignature_timestamp(sig)
    message = cosignature_message(checkpoint_text, timestamp)
    if not verify(message, sig.signature[8:]):
        raise SignatureError(
            f"cosignature by {sig.key_label()} at time {timestamp} does not verify",
            key_name=name,
        )
    return timestamp


@dataclass(frozen=True, slots=True, eq=False)
class CosignatureSigner:
    """A witness's Ed25519 cosigner (type 0x04). Compares by identity; repr hides the key.

    Attributes:
        name: the cosigner's key name.
        private_key: the Ed25519 private key.
        public_key: the raw 32-byte public key.
        key_id: the 4-byte cosignature key ID.
    """

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: bytes = field(init=False, repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        public_key = self.private_key.public_key().public_bytes_raw()
        object.__setattr__(self, "public_key", public_key)
        key_id = compute_key_id(self.name, SIG_TYPE_COSIGNATURE_ED25519, public_key)
        object.__setattr__(self, "key_id", key_id)

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """Cosign a checkpoint at ``timestamp`` and return the signature line.

        Args:
            checkpoint_text: the checkpoint text (validated as a checkpoint).
            timestamp: POSIX seconds, 0..2^63-1 (the caller reads the clock).

        Returns:
            ``"— <name> <base64(key ID ‖ u64 timestamp ‖ signature)>\\n"``,
            ready to append to the signed note.

        Raises:
            NoteFormatError: ``checkpoint_text`` is not a valid checkpoint.
            InvalidRecordError: ``timestamp`` is out of range.
        """
        message = cosignature_message(checkpoint_text, timestamp)
        raw = timestamp.to_bytes(8, "big") + self.private_key.sign(message)
        return NoteSignature(self.name, self.key_id, raw).to_line()

    def verifier(self) -> CosignatureVerifier:
        """Return the matching :class:`CosignatureVerifier`."""
        return CosignatureVerifier(self.name, self.public_key)


# --------------------------------------------------------------------------- SM2


def _sm2_public_key(raw: bytes) -> None:
    problem = sm2_public_key_problem(raw)
    if problem is not None:
        raise InvalidRecordError(f"{problem} (rule: key-length)")


@dataclass(frozen=True, slots=True)
class Sm2NoteVerifier:
    """An SM2 note verifier key (type :data:`SIG_TYPE_SM2`).

    Attributes:
        name: the key name, as it appears in signature lines.
        public_key: the raw 64-byte SM2 public point ``x ‖ y``.
        key_id: ``SHA-256(name ‖ 0x0A ‖ SIG_TYPE_SM2 ‖ public key)[:4]``.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        _sm2_public_key(self.public_key)
        object.__setattr__(self, "key_id", compute_key_id(self.name, SIG_TYPE_SM2, self.public_key))

    @classmethod
    def from_key_string(cls, key_string: str) -> Sm2NoteVerifier:
        """Parse ``name+hexkeyid+base64(SIG_TYPE_SM2 ‖ 64-byte public key)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule.
        """
        name, declared, public_key = _parse_key_string(
            key_string, private=False, signature_type=SIG_TYPE_SM2, key_len=SM2_PUBLIC_KEY_LEN
        )
        _check_key_id(name, declared, compute_key_id(name, SIG_TYPE_SM2, public_key))
        try:
            return cls(name, public_key)
        except InvalidRecordError as exc:
            raise NoteFormatError("key-length", str(exc)) from exc

    def key_string(self) -> str:
        """Return the verifier key string (lower-case hex key ID)."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(SIG_TYPE_SM2 + self.public_key)}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Report whether ``sig`` (64-byte ``r ‖ s``, no key ID) is this key's SM2 signature."""
        return sm2_verify(self.public_key, msg, sig)


@dataclass(frozen=True, slots=True, eq=False)
class Sm2NoteSigner:
    """An SM2 note signer (type :data:`SIG_TYPE_SM2`). Compares by identity; repr hides the key.

    SM2 signatures are randomised: signing one text twice gives two different
    notes, both valid.

    Attributes:
        name: the key name written in signature lines.
        private_key: the SM2 private key.
        public_key: the raw 64-byte public point.
        key_id: the 4-byte key ID.
    """

    name: str
    private_key: Sm2PrivateKey = field(repr=False)
    public_key: bytes = field(init=False, repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        public_key = self.private_key.public_bytes()
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "key_id", compute_key_id(self.name, SIG_TYPE_SM2, public_key))

    @classmethod
    def from_key_string(cls, key_string: str) -> Sm2NoteSigner:
        """Parse ``PRIVATE+KEY+name+hexkeyid+base64(SIG_TYPE_SM2 ‖ 32-byte scalar)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule,
                including a key ID that does not match the derived public key.
        """
        name, declared, scalar = _parse_key_string(
            key_string, private=True, signature_type=SIG_TYPE_SM2
        )
        try:
            signer = cls(name, Sm2PrivateKey.from_scalar(scalar))
        except InvalidRecordError as exc:
            raise NoteFormatError("key-length", f"signer key {name}: {exc}") from exc
        _check_key_id(name, declared, signer.key_id)
        return signer

    def key_string(self) -> str:
        """Return the signer key string. It holds the secret scalar: keep it secret."""
        encoded = _b64(SIG_TYPE_SM2 + self.private_key.scalar())
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, msg: bytes) -> bytes:
        """Return the 64-byte ``r ‖ s`` SM2 signature of ``msg``."""
        return self.private_key.sign(msg)

    def verifier(self) -> Sm2NoteVerifier:
        """Return the matching :class:`Sm2NoteVerifier`."""
        return Sm2NoteVerifier(self.name, self.public_key)


@dataclass(frozen=True, slots=True)
class Sm2CosignatureVerifier:
    """A witness's SM2 cosignature verifier (type :data:`SIG_TYPE_COSIGNATURE_SM2`).

    The cosignature is c2sp.org/tlog-cosignature's with SM2 in place of
    Ed25519: ``key ID ‖ u64 timestamp ‖ r ‖ s`` over the same
    ``cosignature/v1`` message.

    Attributes:
        name: the cosigner's key name.
        public_key: the raw 64-byte SM2 public point.
        key_id: ``SHA-256(name ‖ 0x0A ‖ SIG_TYPE_COSIGNATURE_SM2 ‖ public key)[:4]``.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        _sm2_public_key(self.public_key)
        key_id = compute_key_id(self.name, SIG_TYPE_COSIGNATURE_SM2, self.public_key)
        object.__setattr__(self, "key_id", key_id)

    @classmethod
    def from_key_string(cls, key_string: str) -> Sm2CosignatureVerifier:
        """Parse a vkey ``name+hexkeyid+base64(SIG_TYPE_COSIGNATURE_SM2 ‖ public key)``.

        Raises:
            NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule.
        """
        name, declared, public_key = _parse_key_string(
            key_string,
            private=False,
            signature_type=SIG_TYPE_COSIGNATURE_SM2,
            key_len=SM2_PUBLIC_KEY_LEN,
        )
        _check_key_id(name, declared, compute_key_id(name, SIG_TYPE_COSIGNATURE_SM2, public_key))
        try:
            return cls(name, public_key)
        except InvalidRecordError as exc:
            raise NoteFormatError("key-length", str(exc)) from exc

    def key_string(self) -> str:
        """Return the vkey string."""
        encoded = _b64(SIG_TYPE_COSIGNATURE_SM2 + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Report whether ``sig`` (timestamp ‖ r ‖ s) cosigns the checkpoint ``msg``."""
        return _cosignature_verifies(msg, sig, lambda m, raw: sm2_verify(self.public_key, m, raw))

    def verify_line(self, checkpoint_text: str, line: str) -> int:
        """Verify this witness's cosignature line; see :meth:`CosignatureVerifier.verify_line`."""
        return _verify_cosignature_line(
            self.name,
            self.key_id,
            checkpoint_text,
            line,
            lambda m, raw: sm2_verify(self.public_key, m, raw),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Sm2CosignatureSigner:
    """A witness's SM2 cosigner. Compares by identity; repr hides the key.

    Attributes:
        name: the cosigner's key name.
        private_key: the SM2 private key.
        public_key: the raw 64-byte public point.
        key_id: the 4-byte cosignature key ID.
    """

    name: str
    private_key: Sm2PrivateKey = field(repr=False)
    public_key: bytes = field(init=False, repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _require_name(self.name)
        public_key = self.private_key.public_bytes()
        object.__setattr__(self, "public_key", public_key)
        key_id = compute_key_id(self.name, SIG_TYPE_COSIGNATURE_SM2, public_key)
        object.__setattr__(self, "key_id", key_id)

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """Cosign a checkpoint at ``timestamp``; see :meth:`CosignatureSigner.cosign`."""
        message = cosignature_message(checkpoint_text, timestamp)
        raw = timestamp.to_bytes(8, "big") + self.private_key.sign(message)
        return NoteSignature(self.name, self.key_id, raw).to_line()

    def verifier(self) -> Sm2CosignatureVerifier:
        """Return the matching :class:`Sm2CosignatureVerifier`."""
        return Sm2CosignatureVerifier(self.name, self.public_key)


class Signer(Protocol):
    """Anything :func:`sign_note` signs with: a key name, its key ID and a signing function."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, msg: bytes) -> bytes: ...


Verifier: TypeAlias = NoteVerifier | CosignatureVerifier | Sm2NoteVerifier | Sm2CosignatureVerifier
"""Anything :func:`open_note` accepts as a known key."""

SUITES = ("ed25519", "sm2")
"""Signature suites: ``ed25519`` (the default, with SHA-256) and ``sm2`` (with SM3)."""


def note_verifier_from_key_string(key_string: str) -> NoteVerifier | Sm2NoteVerifier:
    """Parse a note verifier key string of either suite, chosen by its type.

    Raises:
        NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule.
    """
    if _key_type(key_string).startswith(SIG_TYPE_SM2):
        return Sm2NoteVerifier.from_key_string(key_string)
    return NoteVerifier.from_key_string(key_string)


def note_signer_from_key_string(key_string: str) -> NoteSigner | Sm2NoteSigner:
    """Parse a note signer key string of either suite, chosen by its type.

    Raises:
        NoteFormatError: the string breaks a ``key-*`` or ``name-*`` rule.
    """
    if _key_type(key_string).startswith(SIG_TYPE_SM2):
        return Sm2NoteSigner.from_key_string(key_string)
    return NoteSigner.from_key_string(key_string)


def _key_type(key_string: str) -> bytes:
    """The decoded key field of a key string, or b"" when it does not decode."""
    rest = key_string.removeprefix(_PRIVATE_PREFIX)
    fields = rest.split("+", 2)  # name, key ID, then base64 (which may hold "+")
    return (_b64decode(fields[2]) if len(fields) == 3 else None) or b""
