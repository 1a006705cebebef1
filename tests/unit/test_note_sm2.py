"""SM2 signed notes and cosignatures (ledger/note.py's national-cryptography suite).

The byte formats are c2sp.org/signed-note's and c2sp.org/tlog-cosignature's
with signature type 0xff and an identifier (the spec's byte for unassigned
types), SM2 in place of Ed25519. Each signature is also checked with the
independent ``gmalg`` implementation, so the note layer cannot pass by
agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import NoteFormatError, SignatureError
from ledger.note import (
    SIG_TYPE_COSIGNATURE_SM2,
    SIG_TYPE_SM2,
    Checkpoint,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    Sm2CosignatureSigner,
    Sm2CosignatureVerifier,
    Sm2NoteSigner,
    Sm2NoteVerifier,
    add_signatures,
    cosignature_message,
    note_signer_from_key_string,
    note_verifier_from_key_string,
    open_note,
    parse_note,
    sign_note,
)
from ledger.sm2 import SM2_DEFAULT_ID, Sm2PrivateKey

gmalg = pytest.importorskip("gmalg", reason="gmalg (test extra) is the independent SM2 oracle")

D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
TEXT = "example.com/log\n5\nKgMOkJZJ4iOaB/1mfC8+35wH3U/BsUQeCs4e1wDdKhk=\n"


def _oracle_verifies(public: bytes, message: bytes, raw: bytes) -> bool:
    oracle = gmalg.SM2(pk=b"\x04" + public, uid=SM2_DEFAULT_ID)
    return bool(oracle.verify(message, raw[:32], raw[32:]))


def test_key_id_and_key_strings_follow_the_signed_note_recommendation() -> None:
    signer = Sm2NoteSigner("city.example/hz", Sm2PrivateKey.from_scalar(D))
    public = signer.public_key
    want = hashlib.sha256(b"city.example/hz\n" + SIG_TYPE_SM2 + public).digest()[:4]
    assert signer.key_id == want
    vkey = signer.verifier().key_string()
    name, key_hex, encoded = vkey.split("+", 2)
    assert (name, key_hex) == ("city.example/hz", want.hex())
    assert base64.b64decode(encoded) == SIG_TYPE_SM2 + public
    assert Sm2NoteVerifier.from_key_string(vkey) == signer.verifier()
    skey = signer.key_string()
    assert skey.startswith("PRIVATE+KEY+city.example/hz+")
    assert base64.b64decode(skey.split("+", 4)[4]) == SIG_TYPE_SM2 + D
    again = Sm2NoteSigner.from_key_string(skey)
    assert again.public_key == public and again.key_id == signer.key_id


def test_an_sm2_note_opens_and_each_signature_checks_with_the_oracle() -> None:
    signer = Sm2NoteSigner("city.example/hz", Sm2PrivateKey.generate())
    note = sign_note(TEXT, [signer])
    opened = open_note(note, [signer.verifier()])
    assert opened.text == TEXT and opened.verified_by == ("city.example/hz",)
    _, signatures = parse_note(note)
    (sig,) = signatures
    assert len(sig.signature) == 64
    assert _oracle_verifies(signer.public_key, TEXT.encode(), sig.signature)


def test_a_changed_text_or_signature_fails_and_other_keys_are_ignored() -> None:
    signer = Sm2NoteSigner("city.example/hz", Sm2PrivateKey.generate())
    note = sign_note(TEXT, [signer])
    tampered = note.replace(b"\n5\n", b"\n6\n")
    with pytest.raises(SignatureError):
        open_note(tampered, [signer.verifier()])
    stranger = Sm2NoteSigner("city.example/hz", Sm2PrivateKey.generate())
    with pytest.raises(SignatureError, match="no verifiable signatures"):
        open_note(note, [stranger.verifier()])


def test_suites_mix_in_one_note_only_as_distinct_keys() -> None:
    ed = NoteSigner("city.example/nj", _ed25519())
    sm = Sm2NoteSigner("city.example/nj", Sm2PrivateKey.generate())
    note = sign_note(TEXT, [ed, sm])
    assert open_note(note, [sm.verifier()]).verified_by == ("city.example/nj",)
    assert open_note(note, [ed.verifier()]).verified_by == ("city.example/nj",)
    assert len(parse_note(add_signatures(note, [sm]))[1]) == 2


def test_key_strings_are_read_by_their_type() -> None:
    sm = Sm2NoteSigner("a.example", Sm2PrivateKey.generate())
    ed = NoteSigner("a.example", _ed25519())
    assert isinstance(note_verifier_from_key_string(sm.verifier().key_string()), Sm2NoteVerifier)
    assert isinstance(note_verifier_from_key_string(ed.verifier().key_string()), NoteVerifier)
    assert isinstance(note_signer_from_key_string(sm.key_string()), Sm2NoteSigner)
    assert isinstance(note_signer_from_key_string(ed.key_string()), NoteSigner)


def test_bad_sm2_key_strings_name_the_rule() -> None:
    good = Sm2NoteSigner("a.example", Sm2PrivateKey.from_scalar(D)).verifier()
    name, key_hex, _ = good.key_string().split("+", 2)
    short = base64.b64encode(SIG_TYPE_SM2 + good.public_key[:-1]).decode()
    with pytest.raises(NoteFormatError) as info:
        Sm2NoteVerifier.from_key_string(f"{name}+{key_hex}+{short}")
    assert info.value.rule == "key-length"
    off_curve = SIG_TYPE_SM2 + b"\x01" * 64
    key_id = hashlib.sha256(b"a.example\n" + off_curve).digest()[:4].hex()
    with pytest.raises(NoteFormatError) as info:
        Sm2NoteVerifier.from_key_string(
            f"a.example+{key_id}+{base64.b64encode(off_curve).decode()}"
        )
    assert info.value.rule == "key-length"
    ed = NoteSigner("a.example", _ed25519()).verifier().key_string()
    with pytest.raises(NoteFormatError) as info:
        Sm2NoteVerifier.from_key_string(ed)
    assert info.value.rule == "key-algorithm"
    assert "0xff" in str(info.value)
    wrong_id = f"{name}+00000000+{good.key_string().split('+', 2)[2]}"
    with pytest.raises(NoteFormatError) as info:
        Sm2NoteVerifier.from_key_string(wrong_id)
    assert info.value.rule == "key-id-mismatch"


def test_an_sm2_cosignature_is_the_cosignature_v1_message_signed_with_sm2() -> None:
    log = Sm2NoteSigner("city.example/hz", Sm2PrivateKey.generate())
    witness = Sm2CosignatureSigner("witness.example/sh", Sm2PrivateKey.generate())
    checkpoint = Checkpoint("city.example/hz", 5, b"\x2a" * 32)
    text = checkpoint.to_text()
    note = sign_note(text, [log])
    line = witness.cosign(text, 1_700_000_000)
    cosigned = note + line.encode()
    verifier = witness.verifier()
    assert (
        verifier.key_id
        == hashlib.sha256(
            b"witness.example/sh\n" + SIG_TYPE_COSIGNATURE_SM2 + witness.public_key
        ).digest()[:4]
    )
    assert verifier.verify_line(text, line) == 1_700_000_000
    opened = open_note(cosigned, [log.verifier(), verifier])
    assert opened.verified_by == ("city.example/hz", "witness.example/sh")
    sig = NoteSignature.from_line(line)
    assert int.from_bytes(sig.signature[:8], "big") == 1_700_000_000
    message = cosignature_message(text, 1_700_000_000)
    assert _oracle_verifies(witness.public_key, message, sig.signature[8:])
    assert Sm2CosignatureVerifier.from_key_string(verifier.key_string()) == verifier


def test_an_sm2_cosignature_moved_to_another_time_or_checkpoint_fails() -> None:
    witness = Sm2CosignatureSigner("witness.example/sh", Sm2PrivateKey.generate())
    text = Checkpoint("city.example/hz", 5, b"\x2a" * 32).to_text()
    line = witness.cosign(text, 1_700_000_000)
    sig = NoteSignature.from_line(line)
    later = NoteSignature(
        sig.name, sig.key_id, (1_700_000_001).to_bytes(8, "big") + sig.signature[8:]
    )
    with pytest.raises(SignatureError, match="does not verify"):
        witness.verifier().verify_line(text, later.to_line())
    other = Checkpoint("city.example/hz", 6, b"\x2a" * 32).to_text()
    with pytest.raises(SignatureError, match="does not verify"):
        witness.verifier().verify_line(other, line)
    assert not witness.verifier().verify(b"not a checkpoint\n", sig.signature)


def _ed25519() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()
