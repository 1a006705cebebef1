"""Every parser on arbitrary input: it parses, or raises its module's documented error.

Properties, one family per parser (the existing unit tests hold the vectors and
the per-rule cases; these add arbitrary and mutated input, and round trips):

* USCC (``ledger.uscc.parse_uscc``): ``Uscc`` or ``InvalidUsccError``;
* signed notes, checkpoints, signature lines, key strings, cosignatures
  (``ledger.note``) and block headers (``BlockHeader.from_checkpoint``):
  a value or ``NoteFormatError`` / ``SignatureError``;
* Merkle proof verifiers (``ledger.merkle``): ``None`` or ``ProofError``;
* entries (``ledger.entries.parse_entry``): an ``Entry`` or ``DecodeError``;
* scenario files (``scenarios.scenario.spec.parse_scenario``): a ``Scenario`` or
  ``ScenarioError``.

Anything else escaping (``ValueError``, ``KeyError``, ``IndexError``, …) fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger import (
    BlockHeader,
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    Entry,
    NoteSigner,
    NoteVerifier,
    canonical_bytes,
    entry_bytes,
    inclusion_proof,
    leaf_hash,
    make_uscc,
    open_note,
    parse_entry,
    parse_uscc,
    root,
    sign_note,
    verify_consistency,
    verify_inclusion,
)
from ledger.errors import (
    DecodeError,
    InvalidRecordError,
    InvalidUsccError,
    NoteFormatError,
    ProofError,
    SignatureError,
)
from ledger.note import NoteSignature, cosignature_timestamp, parse_note
from ledger.uscc import USCC_ALPHABET
from scenarios.scenario.spec import ScenarioError, parse_scenario

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOTE_ERRORS = (NoteFormatError, SignatureError)
SIGNER = NoteSigner("hz-1.yrd.example", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
COSIGNER = CosignatureSigner(
    "sh-1.yrd.example", Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
)
SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios" / "files").glob("*.yaml"))

any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
note_like = st.lists(
    st.one_of(
        any_text.filter(lambda s: "\n" not in s),
        st.sampled_from(
            [
                "",
                "— hz-1.yrd.example AAAA",
                "— x " + "A" * 88,
                "yrd.example/hz-1",
                "12",
                "height 1",
                "prev " + "A" * 43 + "=",
                "time 2021-10-31T08:00:00Z",
            ]
        ),
    ),
    max_size=10,
).map(lambda lines: "\n".join(lines) + "\n")


def _mutate(data: bytes, rnd: random.Random, n: int) -> bytes:
    out = bytearray(data)
    for _ in range(n):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            out[pos:pos] = bytes([rnd.randrange(256)])
        elif op == 2 and out:
            del out[min(pos, len(out) - 1)]
        else:
            out[pos:pos] = out[pos : pos + rnd.randrange(1, 8)]
    return bytes(out)


def _block_note(height: int, size: int, seed: int) -> tuple[BlockHeader, bytes]:
    rnd = random.Random(seed)
    header = BlockHeader(
        "yrd.example/hz-1",
        height,
        size,
        rnd.randbytes(32),
        "2021-10-31T08:00:00Z",
        rnd.randbytes(32),
    )
    return header, sign_note(header.text(), [SIGNER])


# --- USCC ---------------------------------------------------------------------------------------


@SETTINGS
@given(
    st.one_of(
        any_text, st.text(st.sampled_from(USCC_ALPHABET + "IOSVZ0a"), min_size=16, max_size=20)
    )
)
def test_uscc_parses_or_names_a_rule(code: str) -> None:
    try:
        parsed = parse_uscc(code)
    except InvalidUsccError as exc:
        assert exc.rule in {
            "length",
            "alphabet",
            "registration-type",
            "admin-code",
            "organization-code-check",
            "check-character",
        }
        return
    assert parsed.code == code and parse_uscc(parsed.code) == parsed


@SETTINGS
@given(st.sampled_from(["310000", "320100", "330100", "340100", "321300"]), st.integers(0, 10**6))
def test_uscc_round_trips(admin: str, serial: int) -> None:
    code = make_uscc(admin, serial).code
    assert parse_uscc(code).code == code
    assert parse_uscc(code).admin_code == admin


# --- signed notes, checkpoints, cosignatures ---------------------------------------------------


@SETTINGS
@given(st.one_of(st.binary(max_size=400), note_like.map(str.encode)))
def test_note_bytes_open_or_raise_note_errors(data: bytes) -> None:
    try:
        text, signatures = parse_note(data)
    except NoteFormatError:
        pass
    else:
        assert data.startswith(text.encode())
        assert all(isinstance(s, NoteSignature) for s in signatures)
    try:
        note = open_note(data, [SIGNER.verifier()])
    except NOTE_ERRORS:
        return
    assert note.verified_by == (SIGNER.name,)


@SETTINGS
@given(
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**32),
    st.randoms(use_true_random=False),
    st.integers(1, 6),
)
def test_mutated_checkpoint_notes_never_escape(
    height: int, size: int, seed: int, rnd: random.Random, n: int
) -> None:
    header, note = _block_note(height, size, seed)
    mutated = _mutate(note, rnd, n)
    try:
        opened = open_note(mutated, [SIGNER.verifier()])
        parsed = BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text))
    except NOTE_ERRORS:
        return
    # Whatever still verifies is the signed text itself.
    assert parsed == header


@SETTINGS
@given(st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**32))
def test_block_header_note_round_trips(height: int, size: int, seed: int) -> None:
    header, note = _block_note(height, size, seed)
    opened = open_note(note, [SIGNER.verifier()])
    assert BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text)) == header
    assert Checkpoint.from_text(opened.text).to_text() == opened.text


@SETTINGS
@given(note_like)
def test_checkpoint_text_parses_or_raises(text: str) -> None:
    try:
        cp = Checkpoint.from_text(text)
    except NoteFormatError:
        return
    assert Checkpoint.from_text(cp.to_text()) == cp
    with contextlib.suppress(NoteFormatError):
        BlockHeader.from_checkpoint(cp)


@SETTINGS
@given(
    st.one_of(
        any_text,
        st.builds(
            lambda n, b: f"— {n} {b}",
            any_text,
            st.binary(max_size=90).map(lambda raw: base64.b64encode(raw).decode()),
        ),
    )
)
def test_signature_line_parses_or_raises(line: str) -> None:
    try:
        sig = NoteSignature.from_line(line)
    except NoteFormatError:
        return
    assert NoteSignature.from_line(sig.to_line()) == sig
    with contextlib.suppress(NoteFormatError):
        cosignature_timestamp(sig)


@SETTINGS
@given(any_text)
def test_key_strings_parse_or_raise(text: str) -> None:
    for parse in (
        NoteVerifier.from_key_string,
        NoteSigner.from_key_string,
        CosignatureVerifier.from_key_string,
    ):
        with contextlib.suppress(NoteFormatError):
            parse(text)


@SETTINGS
@given(
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.integers(0, 2**32),
    any_text,
    st.integers(0, 2**63),
    st.randoms(use_true_random=False),
)
def test_cosignature_lines_verify_or_raise(
    height: int, size: int, seed: int, junk: str, timestamp: int, rnd: random.Random
) -> None:
    header, _ = _block_note(height, size, seed)
    text = header.text()
    verifier = COSIGNER.verifier()
    try:
        good = COSIGNER.cosign(text, timestamp)
    except (NoteFormatError, ValueError):  # the signer refuses out-of-range timestamps up front
        return
    assert verifier.verify_line(text, good) == timestamp
    for line in (junk, _mutate(good.encode(), rnd, 2).decode("utf-8", "replace")):
        with contextlib.suppress(NOTE_ERRORS):
            assert verifier.verify_line(text, line) == timestamp
    with contextlib.suppress(NOTE_ERRORS):
        verifier.verify_line(junk, good)


# --- Merkle proofs ------------------------------------------------------------------------------

hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
sizes = st.one_of(st.integers(-3, 70), st.integers(-(2**70), 2**70))


@SETTINGS
@given(hashes, sizes, sizes, st.lists(hashes, max_size=12), hashes)
def test_inclusion_verifier_returns_or_raises_proof_error(
    leaf: bytes, index: int, size: int, proof: list[bytes], root_hash: bytes
) -> None:
    try:
        verify_inclusion(leaf, index, size, proof, root_hash)
    except ProofError:
        return
    raise AssertionError("a random inclusion proof verified")


@SETTINGS
@given(sizes, sizes, hashes, hashes, st.lists(hashes, max_size=12))
def test_consistency_verifier_returns_or_raises_proof_error(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    try:
        verify_consistency(old, new, old_root, new_root, proof)
    except ProofError:
        assert True
    else:
        assert (
            old == new and old_root == new_root and not proof
        )  # the only proof that needs no hashes


@SETTINGS
@given(st.integers(1, 64), st.data())
def test_a_proof_round_trips_through_the_wire_encoding(n: int, data: st.DataObject) -> None:
    """Proofs travel as lists of base64 strings (node proof endpoints): decode and verify."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    index = data.draw(st.integers(0, n - 1))
    wire = json.dumps([base64.b64encode(p).decode() for p in inclusion_proof(leaves, index)])
    proof = [base64.b64decode(p, validate=True) for p in json.loads(wire)]
    verify_inclusion(leaves[index], index, n, proof, root(leaves))


# --- entries ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=5),
    max_leaves=20,
)
entry_like = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [
                "record",
                "correction",
                "institution",
                "authorization",
                "revocation",
                "receipt",
                "alarm",
                "other",
            ]
        ),
        "v": st.sampled_from([1, 2, "1"]),
    },
    optional={
        k: json_values
        for k in (
            "uscc",
            "record_id",
            "record_type",
            "source",
            "observed_at",
            "commitment",
            "institution_id",
            "purposes",
            "authorization_id",
            "peer",
            "evidence",
        )
    },
)


def _check_entry(data: bytes) -> None:
    try:
        entry = parse_entry(data)
    except DecodeError:
        return
    assert isinstance(entry, Entry)
    assert entry_bytes(entry) == data  # only canonical bytes parse, so they round-trip exactly


@SETTINGS
@given(st.binary(max_size=300))
def test_entry_bytes_parse_or_raise_decode_error(data: bytes) -> None:
    _check_entry(data)


@SETTINGS
@given(entry_like)
def test_entry_shaped_json_parses_or_raises_decode_error(value: dict) -> None:
    with contextlib.suppress(InvalidRecordError):  # the encoder refuses values outside its domain
        _check_entry(canonical_bytes(value))
    _check_entry(json.dumps(value).encode())
    _check_entry(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


# --- scenario files -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_scenario_text_parses_or_raises_scenario_error(text: str) -> None:
    with contextlib.suppress(ScenarioError):
        parse_scenario(text, "fuzz.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SCENARIOS), st.randoms(use_true_random=False), st.integers(1, 4))
def test_mutated_scenario_files_parse_or_raise_scenario_error(
    path: Path, rnd: random.Random, n: int
) -> None:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    for _ in range(n):
        i = rnd.randrange(len(lines))
        op = rnd.randrange(4)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rnd.randrange(len(lines))])
        elif op == 2:
            lines[i] = lines[i].replace(":", "", 1)
        else:
            line = lines[i]
            cut = rnd.randrange(len(line) + 1)
            lines[i] = (
                line[:cut]
                + rnd.choice(
                    [
                        "'",
                        "[",
                        "{",
                        " -",
                        "&a",
                        "*a",
                        "!!python/object ",
                        "\t",
                        "9" * 30,
                        "1e400",
                        "-1",
                        ": x",
                    ]
                )
                + line[cut:]
            )
        if not lines:
            lines = ["\n"]
    text = "".join(lines)
    assume(text.strip())
    with contextlib.suppress(ScenarioError):
        parse_scenario(text, path.name)
