"""atheris harness: signed notes, checkpoints, block headers, signature lines, cosignatures.

Property: any bytes either parse or raise ``NoteFormatError`` / ``SignatureError``
(the documented errors of ``ledger.note``); a note that opens with the node's key
has a signed text that parses back to the same checkpoint. Any other exception
is a crash and libFuzzer stops with the input saved.

Run: ``python tests/fuzz/fuzz_note.py -runs=20000 CORPUS_DIR``;
``python tests/fuzz/fuzz_note.py --write-seeds DIR`` writes the seed corpus.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ledger"]):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import BlockHeader, Checkpoint, CosignatureSigner, NoteSigner, open_note, sign_note
    from ledger.errors import NoteFormatError, SignatureError
    from ledger.note import (
        CosignatureVerifier,
        NoteSignature,
        NoteVerifier,
        cosignature_timestamp,
        parse_note,
    )

ERRORS = (NoteFormatError, SignatureError)
SIGNER = NoteSigner("yrd.example/hz-1", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
WITNESS = CosignatureSigner(
    "yrd.example/sh-1", Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
)
VERIFIERS = [SIGNER.verifier(), WITNESS.verifier()]


def seeds() -> list[bytes]:
    header = BlockHeader(
        "yrd.example/hz-1", 3, 7, bytes(32), "2021-10-31T08:00:00Z", bytes(range(32))
    )
    note = sign_note(header.text(), [SIGNER])
    cosigned = note + WITNESS.cosign(header.text(), 1_635_667_200).encode()
    return [
        note,
        cosigned,
        header.text().encode(),
        SIGNER.verifier().key_string().encode(),
        WITNESS.verifier().key_string().encode(),
    ]


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(NoteFormatError):
        parse_note(data)
    try:
        note = open_note(data, VERIFIERS)
    except ERRORS:
        note = None
    if note is not None:
        try:
            header = BlockHeader.from_checkpoint(Checkpoint.from_text(note.text))
        except NoteFormatError:
            pass
        else:
            assert Checkpoint.from_text(header.text()).to_text() == header.text()
    text = data.decode("utf-8", "replace")
    for line in text.splitlines()[:8]:
        try:
            sig = NoteSignature.from_line(line)
        except NoteFormatError:
            continue
        with contextlib.suppress(NoteFormatError):
            cosignature_timestamp(sig)
    head, _, rest = text.partition("\n\n")
    with contextlib.suppress(ERRORS):
        WITNESS.verifier().verify_line(head + "\n", rest)
    for parse in (
        NoteVerifier.from_key_string,
        CosignatureVerifier.from_key_string,
        NoteSigner.from_key_string,
    ):
        with contextlib.suppress(NoteFormatError):
            parse(text)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        for i, seed in enumerate(seeds()):
            (Path(sys.argv[2]) / f"seed-{i}").write_bytes(seed)
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
