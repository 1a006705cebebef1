"""Tests for ledger.note: public vectors, one test per format rule, and properties.

The vectors in tests/vectors/signed/*.json are copied from the public sources
each file names in its "source" field (golang.org/x/mod, C2SP, sigsum-go,
transparency-dev/formats, torchwood); every entry is one named case here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.errors import (
    InvalidRecordError,
    LedgerError,
    NoteFormatError,
    SignatureError,
)
from ledger.note import (
    COSIGNATURE_HEADER,
    MAX_COSIGNATURE_TIMESTAMP,
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    RULES,
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    add_signatures,
    compute_key_id,
    cosignature_message,
    cosignature_timestamp,
    open_note,
    parse_note,
    sign_note,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "signed"
VECTOR_FILES = sorted(VECTORS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def cases(name: str, key: str) -> list[Any]:
    """One pytest param per entry of ``vectors[key]``, named after the entry."""
    return [pytest.param(case, id=case["name"]) for case in load(name)[key]]


def note_bytes(case: dict[str, Any]) -> bytes:
    if "note_base64" in case:
        return base64.b64decode(case["note_base64"])
    note = case["note"] + case.get("repeat_line", "") * case.get("repeat", 0)
    return str(note).encode("utf-8")


def sig_dict(sig: NoteSignature) -> dict[str, str]:
    return {
        "name": sig.name,
        "key_id": sig.key_id.hex(),
        "base64": base64.b64encode(sig.key_id + sig.signature).decode(),
    }


def key(seed_byte: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)


def check_checkpoint(cp: Checkpoint, want: dict[str, Any]) -> None:
    assert cp.origin == want["origin"]
    assert cp.size == want["size"]
    assert cp.root == base64.b64decode(want["root_base64"])


GO = "go_sumdb_note.json"
GO_KEYS = load(GO)["keys"]
GO_VERIFIERS = {name: NoteVerifier.from_key_string(k["verifier"]) for name, k in GO_KEYS.items()}
PETER = NoteSigner.from_key_string(GO_KEYS["PeterNeumann"]["signer"])
TEXT = load(GO)["sign"][0]["text"]
ROOT = bytes(range(32))
CP_TEXT = Checkpoint("example.com/city/310000", 5, ROOT).to_text()

# --------------------------------------------------------------------------- vector files


@pytest.mark.parametrize("path", VECTOR_FILES, ids=[p.name for p in VECTOR_FILES])
def test_vector_file_names_its_source(path: Path) -> None:
    source = json.loads(path.read_text(encoding="utf-8"))["source"]
    assert {"repository", "path", "commit", "description"} <= source.keys()
    assert "/" in source["repository"] and source["description"]


def test_vector_files_present() -> None:
    assert len(VECTOR_FILES) >= 5


# --------------------------------------------------------------------------- golang.org/x/mod


@pytest.mark.parametrize("name", sorted(GO_KEYS))
def test_go_key_strings_round_trip(name: str) -> None:
    entry = GO_KEYS[name]
    verifier = NoteVerifier.from_key_string(entry["verifier"])
    assert verifier.name == name
    assert verifier.key_id.hex() == entry["key_id"]
    assert verifier.key_string() == entry["verifier"]
    if "signer" in entry:
        signer = NoteSigner.from_key_string(entry["signer"])
        assert signer.key_string() == entry["signer"]
        assert signer.verifier() == verifier
        assert signer.key_id == verifier.key_id


@pytest.mark.parametrize("case", cases(GO, "sign"))
def test_go_sign_reproduces_signature_bytes(case: dict[str, Any]) -> None:
    signers = [NoteSigner.from_key_string(GO_KEYS[n]["signer"]) for n in case["signers"]]
    assert sign_note(case["text"], signers) == case["note"].encode()


@pytest.mark.parametrize("case", cases(GO, "sign_errors"))
def test_go_sign_errors(case: dict[str, Any]) -> None:
    with pytest.raises(NoteFormatError) as info:
        sign_note(case["text"], [PETER])
    assert info.value.rule == case["rule"]


@pytest.mark.parametrize("case", cases(GO, "open"))
def test_go_open(case: dict[str, Any]) -> None:
    verifiers = [GO_VERIFIERS[n] for n in case["verifiers"]]
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SignatureError) as info:
            open_note(note_bytes(case), verifiers)
        assert info.value.key_name == expect["key_name"]
        return
    note = open_note(note_bytes(case), verifiers)
    assert note.text == expect["text"]
    assert [sig_dict(s) for s in note.signatures] == expect["signatures"]
    assert list(note.verified_by) == expect["verified_by"]


@pytest.mark.parametrize("case", cases(GO, "malformed"))
def test_go_malformed_notes(case: dict[str, Any]) -> None:
    with pytest.raises(NoteFormatError) as info:
        open_note(note_bytes(case), [GO_VERIFIERS["PeterNeumann"]])
    assert info.value.rule == case["rule"]


@pytest.mark.parametrize("case", cases(GO, "bad_verifier_keys"))
def test_go_bad_verifier_keys(case: dict[str, Any]) -> None:
    with pytest.raises(NoteFormatError) as info:
        NoteVerifier.from_key_string(case["key"])
    assert info.value.rule == case["rule"]


def _manglings(text: str) -> list[str]:
    """Every proper substring and every one-byte increment, as Go's tests build them."""
    raw = text.encode()
    out = {
        raw[i:j].decode("utf-8", "replace")
        for i in range(len(raw) + 1)
        for j in range(i + 1, len(raw) + 1)
        if (i, j) != (0, len(raw))
    }
    for i in range(len(raw)):
        bumped = bytearray(raw)
        bumped[i] = (bumped[i] + 1) % 256
        out.add(bytes(bumped).decode("utf-8", "replace"))
    out.discard(text)
    return sorted(out)


@pytest.mark.parametrize(
    ("kind", "parse"),
    [("verifier", NoteVerifier.from_key_string), ("signer", NoteSigner.from_key_string)],
)
def test_go_mangled_key_strings_refused(kind: str, parse: Callable[[str], object]) -> None:
    original = load(GO)["mangle"][kind]
    parse(original)
    for mangled in _manglings(original):
        with pytest.raises(NoteFormatError):
            parse(mangled)


def test_go_add_signature_replaces_same_key() -> None:
    """TestSign: an existing (bad) signature by the signing key is replaced."""
    want = load(GO)["sign"][0]["note"].encode()
    stale = NoteSignature("PeterNeumann", PETER.key_id, b"BADSIGN").to_line()
    assert add_signatures((TEXT + "\n" + stale).encode(), [PETER]) == want
    assert add_signatures(want, [PETER]) == want


def test_add_signatures_keeps_existing_lines() -> None:
    first = load(GO)["sign"][0]["note"]
    other = NoteSigner("city.example/hangzhou", key(7))
    both = add_signatures(first.encode(), [other])
    assert both.startswith(first.encode())
    assert both.decode().count("\n\u2014 ") == 2
    note = open_note(both, [PETER.verifier(), other.verifier()])
    assert note.verified_by == ("PeterNeumann", "city.example/hangzhou")
    with pytest.raises(ValueError):
        add_signatures(first.encode(), [])


# --------------------------------------------------------------------------- sigsum-go

SIGSUM = "sigsum_checkpoint.json"
SIGSUM_KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(load(SIGSUM)["key"]["seed_hex"]))


def test_sigsum_log_signature_reproduced() -> None:
    vec = load(SIGSUM)["log_signature"]
    signer = NoteSigner(vec["name"], SIGSUM_KEY)
    assert sign_note(vec["text"], [signer]) == vec["note"].encode()
    note = open_note(vec["note"].encode(), [signer.verifier()])
    assert note.verified_by == (vec["name"],)
    check_checkpoint(Checkpoint.from_text(note.text), vec["checkpoint"])


def test_sigsum_cosignature_reproduced() -> None:
    vec = load(SIGSUM)["cosignature"]
    cosigner = CosignatureSigner(vec["name"], SIGSUM_KEY)
    assert cosigner.cosign(vec["checkpoint"], vec["timestamp"]) == vec["line"]
    assert cosigner.verifier().verify_line(vec["checkpoint"], vec["line"]) == vec["timestamp"]


@pytest.mark.parametrize("case", cases(SIGSUM, "cosignature_lines"))
def test_sigsum_cosignature_lines(case: dict[str, Any]) -> None:
    vec = load(SIGSUM)["cosignature"]
    verifier = CosignatureSigner(vec["name"], SIGSUM_KEY).verifier()
    expect = case["expect"]
    if "timestamp" in expect:
        assert verifier.verify_line(vec["checkpoint"], case["line"]) == expect["timestamp"]
    elif "rule" in expect:
        with pytest.raises(NoteFormatError) as info:
            verifier.verify_line(vec["checkpoint"], case["line"])
        assert info.value.rule == expect["rule"]
    else:
        with pytest.raises(SignatureError):
            verifier.verify_line(vec["checkpoint"], case["line"])


@pytest.mark.parametrize("case", cases(SIGSUM, "extra_signatures"))
def test_sigsum_extra_signatures(case: dict[str, Any]) -> None:
    verifier = NoteSigner(load(SIGSUM)["log_signature"]["name"], SIGSUM_KEY).verifier()
    expect = case["expect"]
    if "rule" in expect:
        with pytest.raises(NoteFormatError) as info:
            open_note(note_bytes(case), [verifier])
        assert info.value.rule == expect["rule"]
    else:
        assert list(open_note(note_bytes(case), [verifier]).verified_by) == expect["verified_by"]


def test_go_sumdb_checkpoint_verifies() -> None:
    vec = load(SIGSUM)["go_sumdb"]
    verifier = NoteVerifier.from_key_string(vec["verifier"])
    assert verifier.key_string() == vec["verifier"]
    note = open_note(vec["note"].encode(), [verifier])
    assert list(note.verified_by) == vec["verified_by"]
    check_checkpoint(Checkpoint.from_text(note.text), vec["checkpoint"])
    tampered = vec["note"].replace("30055305", "30055306").encode()
    with pytest.raises(SignatureError):
        open_note(tampered, [verifier])


# --------------------------------------------------------------------------- parse-only vectors

PARSE_ONLY = [
    pytest.param(file, case, id=f"{file}:{case['name']}")
    for file, key in [
        ("c2sp_signed_note.json", "notes"),
        ("c2sp_tlog_checkpoint.json", "notes"),
        ("c2sp_tlog_cosignature.json", "notes"),
        ("tdev_note_verifier.json", "notes"),
        ("sigsum_checkpoint.json", "parse_only"),
    ]
    for case in load(file)[key]
]


@pytest.mark.parametrize(("file", "case"), PARSE_ONLY)
def test_parse_only_vectors(file: str, case: dict[str, Any]) -> None:
    text, signatures = parse_note(note_bytes(case))
    if "text" in case:
        assert text == case["text"]
    assert [sig_dict(s) for s in signatures] == case["signatures"]
    if "checkpoint" in case:
        check_checkpoint(Checkpoint.from_text(text), case["checkpoint"])
    for cosig in case.get("cosignatures", []):
        (sig,) = [s for s in signatures if s.name == cosig["name"]]
        assert cosignature_timestamp(sig) == cosig["timestamp"]
    with pytest.raises(SignatureError) as info:
        open_note(note_bytes(case), [GO_VERIFIERS["PeterNeumann"]])
    assert info.value.key_name is None


@pytest.mark.parametrize("case", cases("c2sp_tlog_cosignature.json", "signed_messages"))
def test_c2sp_cosignature_signed_message(case: dict[str, Any]) -> None:
    message = cosignature_message(case["checkpoint"], case["timestamp"])
    assert message == case["message"].encode()
    assert message.startswith(COSIGNATURE_HEADER.encode() + b"\n")


@pytest.mark.parametrize("case", cases("torchwood_litewitness.json", "notes"))
def test_torchwood_sigsum_checkpoint_verifies(case: dict[str, Any]) -> None:
    verifier = NoteVerifier(case["signer_name"], bytes.fromhex(case["public_key_hex"]))
    note = open_note(note_bytes(case), [verifier])
    assert note.verified_by == (case["signer_name"],)
    check_checkpoint(Checkpoint.from_text(note.text), case["checkpoint"])


# --------------------------------------------------------------------------- transparency-dev


@pytest.mark.parametrize("case", cases("tdev_log_checkpoint.json", "cases"))
def test_tdev_checkpoint_cases(case: dict[str, Any]) -> None:
    with pytest.raises(NoteFormatError) as info:
        Checkpoint.from_text(case["text"])
    assert info.value.rule == case["rule"]


@pytest.mark.parametrize("case", cases("tdev_note_verifier.json", "verifier_keys"))
def test_tdev_verifier_keys(case: dict[str, Any]) -> None:
    if case["expect"] == "ok":
        assert NoteVerifier.from_key_string(case["key"]).key_string() == case["key"]
        return
    with pytest.raises(NoteFormatError) as info:
        NoteVerifier.from_key_string(case["key"])
    assert info.value.rule == case["expect"]


@pytest.mark.parametrize("case", cases("tdev_note_cosigv1.json", "verifier_keys"))
@pytest.mark.parametrize(
    ("field", "parse"),
    [
        ("note_verifier", NoteVerifier.from_key_string),
        ("cosignature_verifier", CosignatureVerifier.from_key_string),
    ],
)
def test_tdev_cosignature_verifier_keys(
    case: dict[str, Any], field: str, parse: Callable[[str], NoteVerifier | CosignatureVerifier]
) -> None:
    if case[field] == "ok":
        assert parse(case["key"]).key_string() == case["key"]
        return
    with pytest.raises(NoteFormatError) as info:
        parse(case["key"])
    assert info.value.rule == case[field]


@pytest.mark.parametrize("case", cases("tdev_note_cosigv1.json", "cosignature_timestamps"))
def test_tdev_cosignature_timestamps(case: dict[str, Any]) -> None:
    line = f"\u2014 placeholder {case['base64']}\n"
    expect = case["expect"]
    if "timestamp" in expect:
        assert cosignature_timestamp(NoteSignature.from_line(line)) == expect["timestamp"]
        return
    with pytest.raises(NoteFormatError) as info:
        cosignature_timestamp(NoteSignature.from_line(line))
    assert info.value.rule == expect["rule"]


# --------------------------------------------------------------------------- every rule

GOOD_LINE = PETER.verifier().key_string()
GOOD_SIG = "\u2014 a AAAAAAA=\n"
B64_ROOT = base64.b64encode(ROOT).decode()


def _open(data: str | bytes) -> object:
    return open_note(data.encode() if isinstance(data, str) else data, [])


def _cp(text: str) -> object:
    return Checkpoint.from_text(text)


def _cosig_len() -> object:
    return cosignature_timestamp(NoteSignature("w", b"abcd", bytes(71)))


def _cosig_range() -> object:
    return cosignature_timestamp(
        NoteSignature("w", b"abcd", (2**63).to_bytes(8, "big") + bytes(64))
    )


def _many_signers() -> object:
    signers = [NoteSigner(f"k{i}", key(1)) for i in range(MAX_SIGNATURES + 1)]
    return sign_note("x\n", signers)


def _pub_b64(prefix: bytes, body: bytes) -> str:
    return base64.b64encode(prefix + body).decode()


PUB = PETER.public_key
TYPE04_KEY = _pub_b64(b"\x04", PUB)
SHORT_KEY = _pub_b64(b"\x01", PUB[:31])
LONG_SEED = _pub_b64(b"\x01", PUB + b"!")
RULE_CASES: list[tuple[str, type[Exception], Callable[[], object]]] = [
    ("invalid-utf8", NoteFormatError, lambda: _open(b"\xc3(\n\n" + GOOD_SIG.encode())),
    ("invalid-utf8", NoteFormatError, lambda: sign_note("lone \ud800\n", [PETER])),
    ("control-char", NoteFormatError, lambda: _open("tab\there\n\n" + GOOD_SIG)),
    ("control-char", NoteFormatError, lambda: _open("cr\r\n\n" + GOOD_SIG)),
    ("control-char", NoteFormatError, lambda: sign_note("bell\x07\n", [PETER])),
    ("text-final-newline", NoteFormatError, lambda: sign_note("no newline", [PETER])),
    ("text-final-newline", NoteFormatError, lambda: sign_note("", [PETER])),
    ("missing-blank-line", NoteFormatError, lambda: _open("text\n" + GOOD_SIG)),
    ("no-signatures", NoteFormatError, lambda: _open("text\n\n")),
    ("final-newline", NoteFormatError, lambda: _open("text\n\n" + GOOD_SIG[:-1])),
    ("too-many-signatures", NoteFormatError, lambda: _open("t\n\n" + GOOD_SIG * 101)),
    ("too-many-signatures", NoteFormatError, _many_signers),
    (
        "signature-line-break",
        NoteFormatError,
        lambda: NoteSignature.from_line(GOOD_SIG + GOOD_SIG),
    ),
    ("signature-prefix", NoteFormatError, lambda: _open("t\n\n- a AAAAAAA=\n")),
    ("signature-prefix", NoteFormatError, lambda: _open("t\n\n\u2014a AAAAAAA=\n")),
    ("signature-fields", NoteFormatError, lambda: _open("t\n\n\u2014 nameonly\n")),
    ("signature-base64", NoteFormatError, lambda: _open("t\n\n\u2014 a AAAAAAB=\n")),
    ("signature-base64", NoteFormatError, lambda: _open("t\n\n\u2014 a not*base64\n")),
    ("signature-base64", NoteFormatError, lambda: _open("t\n\n\u2014 a AAAA AAA=\n")),
    ("signature-too-short", NoteFormatError, lambda: _open("t\n\n\u2014 a AAAA\n")),
    ("signature-too-short", NoteFormatError, lambda: _open("t\n\n\u2014 a \n")),
    ("name-empty", NoteFormatError, lambda: _open("t\n\n\u2014  AAAAAAA=\n")),
    ("name-whitespace", NoteFormatError, lambda: _open("t\n\n\u2014 a\u00a0b AAAAAAA=\n")),
    ("name-whitespace", NoteFormatError, lambda: _open("t\n\n\u2014 a\u3000b AAAAAAA=\n")),
    ("name-plus", NoteFormatError, lambda: _open("t\n\n\u2014 a+b AAAAAAA=\n")),
    ("name-plus", InvalidRecordError, lambda: NoteSigner("a+b", key(1))),
    ("name-whitespace", InvalidRecordError, lambda: NoteVerifier("a b", PUB)),
    ("name-empty", InvalidRecordError, lambda: CosignatureSigner("", key(1))),
    ("control-char", InvalidRecordError, lambda: CosignatureVerifier("a\x00", PUB)),
    ("key-private-prefix", NoteFormatError, lambda: NoteSigner.from_key_string(GOOD_LINE)),
    ("key-fields", NoteFormatError, lambda: NoteVerifier.from_key_string("PeterNeumann")),
    ("key-fields", NoteFormatError, lambda: NoteVerifier.from_key_string("Peter+c74f20a3")),
    ("key-id-hex", NoteFormatError, lambda: NoteVerifier.from_key_string("a+c74f20+AQ==")),
    ("key-id-hex", NoteFormatError, lambda: NoteVerifier.from_key_string("a+c74f20g3+AQ==")),
    ("key-base64", NoteFormatError, lambda: NoteVerifier.from_key_string("a+c74f20a3+AR==")),
    ("key-empty", NoteFormatError, lambda: NoteVerifier.from_key_string("a+c74f20a3+")),
    (
        "key-algorithm",
        NoteFormatError,
        lambda: NoteVerifier.from_key_string(f"a+00000000+{TYPE04_KEY}"),
    ),
    (
        "key-length",
        NoteFormatError,
        lambda: NoteVerifier.from_key_string(f"a+00000000+{SHORT_KEY}"),
    ),
    (
        "key-length",
        NoteFormatError,
        lambda: NoteSigner.from_key_string(f"PRIVATE+KEY+a+00000000+{LONG_SEED}"),
    ),
    (
        "key-id-mismatch",
        NoteFormatError,
        lambda: NoteVerifier.from_key_string(GOOD_LINE.replace("c74f20a3", "c74f20a4")),
    ),
    (
        "key-id-mismatch",
        NoteFormatError,
        lambda: NoteSigner.from_key_string(PETER.key_string().replace("+PeterNeumann+", "+Peter+")),
    ),
    ("key-length", InvalidRecordError, lambda: NoteVerifier("a", PUB[:31])),
    ("checkpoint-final-newline", NoteFormatError, lambda: _cp(f"o\n1\n{B64_ROOT}")),
    ("checkpoint-too-few-lines", NoteFormatError, lambda: _cp("o\n1\n")),
    ("checkpoint-too-few-lines", NoteFormatError, lambda: _cp("\n")),
    ("origin-empty", NoteFormatError, lambda: _cp(f"\n1\n{B64_ROOT}\n")),
    ("size-not-decimal", NoteFormatError, lambda: _cp(f"o\n\n{B64_ROOT}\n")),
    ("size-not-decimal", NoteFormatError, lambda: _cp(f"o\n+1\n{B64_ROOT}\n")),
    ("size-not-decimal", NoteFormatError, lambda: _cp(f"o\n 1\n{B64_ROOT}\n")),
    ("size-not-decimal", NoteFormatError, lambda: _cp(f"o\n\u0661\n{B64_ROOT}\n")),
    ("size-not-decimal", NoteFormatError, lambda: _cp(f"o\n0x10\n{B64_ROOT}\n")),
    ("size-leading-zero", NoteFormatError, lambda: _cp(f"o\n01\n{B64_ROOT}\n")),
    ("size-leading-zero", NoteFormatError, lambda: _cp(f"o\n00\n{B64_ROOT}\n")),
    ("size-too-large", NoteFormatError, lambda: _cp(f"o\n{2**64}\n{B64_ROOT}\n")),
    ("size-too-large", NoteFormatError, lambda: _cp(f"o\n{'9' * 5000}\n{B64_ROOT}\n")),
    ("root-not-base64", NoteFormatError, lambda: _cp("o\n1\nnot base64\n")),
    ("root-not-base64", NoteFormatError, lambda: _cp(f"o\n1\n{B64_ROOT[:-2]}B=\n")),
    ("root-length", NoteFormatError, lambda: _cp("o\n1\nAAAA\n")),
    ("extension-empty", NoteFormatError, lambda: _cp(f"o\n1\n{B64_ROOT}\n\n")),
    ("extension-empty", NoteFormatError, lambda: _cp(f"o\n1\n{B64_ROOT}\nx\n\ny\n")),
    ("control-char", NoteFormatError, lambda: _cp(f"o\x7f\x1b\n1\n{B64_ROOT}\n")),
    ("origin-empty", InvalidRecordError, lambda: Checkpoint("", 1, ROOT)),
    ("size-not-decimal", InvalidRecordError, lambda: Checkpoint("o", -1, ROOT)),
    ("size-not-decimal", InvalidRecordError, lambda: Checkpoint("o", True, ROOT)),
    ("size-too-large", InvalidRecordError, lambda: Checkpoint("o", MAX_TREE_SIZE + 1, ROOT)),
    ("root-length", InvalidRecordError, lambda: Checkpoint("o", 1, ROOT[:31])),
    ("extension-empty", InvalidRecordError, lambda: Checkpoint("o", 1, ROOT, ("",))),
    ("field-line-break", InvalidRecordError, lambda: Checkpoint("o\n2", 1, ROOT)),
    ("field-line-break", InvalidRecordError, lambda: Checkpoint("o", 1, ROOT, ("a\nb",))),
    ("control-char", InvalidRecordError, lambda: Checkpoint("o", 1, ROOT, ("a\tb",))),
    ("cosignature-length", NoteFormatError, _cosig_len),
    ("cosignature-timestamp-range", NoteFormatError, _cosig_range),
    (
        "cosignature-timestamp-range",
        InvalidRecordError,
        lambda: CosignatureSigner("w", key(1)).cosign(CP_TEXT, 2**63),
    ),
]


@pytest.mark.parametrize(
    ("rule", "error", "thunk"),
    [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(RULE_CASES)],
)
def test_rule(rule: str, error: type[Exception], thunk: Callable[[], object]) -> None:
    assert rule in RULES
    with pytest.raises(error) as info:
        thunk()
    if isinstance(info.value, NoteFormatError):
        assert info.value.rule == rule
        assert f"(rule: {rule})" in str(info.value)
    else:
        assert f"(rule: {rule})" in str(info.value)


def test_every_rule_has_a_case() -> None:
    covered = {rule for rule, error, _ in RULE_CASES if error is NoteFormatError}
    assert covered | {"field-line-break"} == set(RULES)


# --------------------------------------------------------------------------- notes


def test_signature_limit_is_inclusive() -> None:
    lines = [NoteSignature(f"k{i}", b"\0\0\0\0", b"sig").to_line() for i in range(MAX_SIGNATURES)]
    text, sigs = parse_note(("t\n\n" + "".join(lines)).encode())
    assert len(sigs) == MAX_SIGNATURES


def test_unknown_keys_are_ignored_even_sharing_name_or_id() -> None:
    note = sign_note(TEXT, [PETER])
    impostor = NoteVerifier("PeterNeumann", NoteSigner("x", key(9)).public_key)
    assert impostor.key_id != PETER.key_id
    with pytest.raises(SignatureError) as info:
        open_note(note, [impostor])
    assert info.value.key_name is None
    renamed = note.replace(b"PeterNeumann x08g", b"PeterNeumanx x08g")
    with pytest.raises(SignatureError):
        open_note(renamed, [PETER.verifier()])


def test_known_key_with_bad_signature_fails_whole_note() -> None:
    other = NoteSigner("other", key(3))
    note = sign_note(TEXT, [other, PETER])
    forged = NoteSignature("PeterNeumann", PETER.key_id, bytes(64)).to_line().encode()
    bad = note.replace(note.split(b"\n")[-2] + b"\n", forged)
    assert open_note(bad, [other.verifier()]).verified_by == ("other",)
    with pytest.raises(SignatureError) as info:
        open_note(bad, [other.verifier(), PETER.verifier()])
    assert info.value.key_name == "PeterNeumann"
    assert "PeterNeumann+c74f20a3" in str(info.value)


def test_ambiguous_verifiers_refused() -> None:
    twin = NoteVerifier("PeterNeumann", NoteSigner("x", key(5)).public_key)
    object.__setattr__(twin, "key_id", PETER.key_id)
    note = sign_note(TEXT, [PETER])
    with pytest.raises(ValueError, match="ambiguous key PeterNeumann\\+c74f20a3"):
        open_note(note, [PETER.verifier(), twin])
    assert open_note(note, [PETER.verifier(), PETER.verifier()]).verified_by == ("PeterNeumann",)


def test_sign_note_needs_signers_and_dedupes() -> None:
    with pytest.raises(ValueError):
        sign_note(TEXT, [])
    note = sign_note(TEXT, [PETER, NoteSigner.from_key_string(PETER.key_string())])
    assert note == load(GO)["sign"][0]["note"].encode()


def test_signer_repr_hides_private_key() -> None:
    assert "private" not in repr(PETER).lower()
    assert "private" not in repr(CosignatureSigner("w", key(1))).lower()


def test_note_text_may_hold_blank_lines() -> None:
    text = "a\n\nb\n\n"
    note = open_note(sign_note(text, [PETER]), [PETER.verifier()])
    assert note.text == text


def test_verifier_rejects_wrong_length_signature() -> None:
    verifier = PETER.verifier()
    assert verifier.verify(b"hi", PETER.sign(b"hi"))
    assert not verifier.verify(b"hi", PETER.sign(b"hi")[:63])
    assert not verifier.verify(b"hi", PETER.sign(b"hi") + b"\0")


def test_compute_key_id_matches_go_vectors() -> None:
    assert compute_key_id("PeterNeumann", 0x01, PETER.public_key).hex() == "c74f20a3"


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_text_layout() -> None:
    cp = Checkpoint("example.com/behind-the-sofa", 20852163, ROOT, ("height 7", "time x"))
    assert cp.to_text() == (
        f"example.com/behind-the-sofa\n20852163\n{B64_ROOT}\nheight 7\ntime x\n"
    )
    assert Checkpoint.from_text(cp.to_text()) == cp


@pytest.mark.parametrize("size", [0, 1, 10, MAX_TREE_SIZE])
def test_checkpoint_size_bounds(size: int) -> None:
    cp = Checkpoint("o", size, ROOT)
    assert Checkpoint.from_text(cp.to_text()).size == size


def test_checkpoint_origin_may_hold_spaces() -> None:
    assert Checkpoint.from_text(f"go.sum database tree\n0\n{B64_ROOT}\n").origin == (
        "go.sum database tree"
    )


# --------------------------------------------------------------------------- cosignatures


def test_cosignature_round_trip_and_open_note() -> None:
    log = NoteSigner("example.com/city/310000", key(11))
    witness = CosignatureSigner("witness.example/w1", key(12))
    note = sign_note(CP_TEXT, [log])
    line = witness.cosign(CP_TEXT, 1_700_000_000)
    assert line.endswith("\n") and line.startswith("\u2014 witness.example/w1 ")
    assert witness.verifier().verify_line(CP_TEXT, line) == 1_700_000_000
    assert witness.verifier().verify_line(CP_TEXT, line.rstrip("\n")) == 1_700_000_000
    cosigned = note + line.encode()
    opened = open_note(cosigned, [log.verifier(), witness.verifier()])
    assert opened.verified_by == (log.name, witness.name)
    assert cosignature_timestamp(opened.signatures[1]) == 1_700_000_000
    # A plain Ed25519 verifier of the same key and name does not accept a cosignature.
    plain = NoteVerifier(witness.name, witness.public_key)
    assert plain.key_id != witness.key_id
    with pytest.raises(SignatureError):
        open_note(note.split(b"\n\n")[0] + b"\n\n" + line.encode(), [plain])


def test_cosignature_key_string_round_trip() -> None:
    verifier = CosignatureSigner("witness.example/w1", key(12)).verifier()
    assert CosignatureVerifier.from_key_string(verifier.key_string()) == verifier
    assert verifier.key_string().split("+")[2].startswith("B")  # 0x04 type byte


def test_cosignature_of_other_checkpoint_or_key_fails() -> None:
    witness = CosignatureSigner("w", key(12))
    line = witness.cosign(CP_TEXT, 5)
    other = Checkpoint("example.com/city/310000", 6, ROOT).to_text()
    with pytest.raises(SignatureError):
        witness.verifier().verify_line(other, line)
    with pytest.raises(SignatureError):
        CosignatureSigner("w", key(13)).verifier().verify_line(CP_TEXT, line)
    with pytest.raises(SignatureError):
        CosignatureSigner("w2", key(12)).verifier().verify_line(CP_TEXT, line)


def test_cosignature_verifier_on_non_checkpoint_note() -> None:
    witness = CosignatureSigner("w", key(12))
    forged = NoteSignature("w", witness.key_id, bytes(72)).to_line()
    with pytest.raises(SignatureError) as info:
        open_note(("not a checkpoint\n\n" + forged).encode(), [witness.verifier()])
    assert info.value.key_name == "w"
    assert not witness.verifier().verify(b"\xff\n", bytes(72))


@pytest.mark.parametrize("timestamp", [-1, MAX_COSIGNATURE_TIMESTAMP + 1, True, 1.5])
def test_cosign_refuses_bad_timestamps(timestamp: Any) -> None:
    with pytest.raises(InvalidRecordError):
        CosignatureSigner("w", key(1)).cosign(CP_TEXT, timestamp)


def test_cosign_refuses_bad_checkpoint() -> None:
    with pytest.raises(NoteFormatError) as info:
        CosignatureSigner("w", key(1)).cosign("o\n01\n" + B64_ROOT + "\n", 1)
    assert info.value.rule == "size-leading-zero"


def test_cosignature_timestamp_bounds() -> None:
    signer = CosignatureSigner("w", key(1))
    for timestamp in (0, MAX_COSIGNATURE_TIMESTAMP):
        line = signer.cosign(CP_TEXT, timestamp)
        assert signer.verifier().verify_line(CP_TEXT, line) == timestamp


# --------------------------------------------------------------------------- properties

NAME_CHARS = st.characters(
    exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="+"
)
names = st.text(NAME_CHARS, min_size=1, max_size=20).filter(
    lambda s: not any(c.isspace() for c in s)
)
TEXT_CHARS = st.characters(exclude_categories=["Cs"]).filter(lambda c: c >= " " or c == "\n")
texts = st.text(TEXT_CHARS, max_size=200).map(lambda s: s + "\n")
seeds = st.binary(min_size=32, max_size=32)
signer_sets = st.lists(st.tuples(names, seeds), min_size=1, max_size=4, unique_by=lambda t: t[0])
origins = st.text(TEXT_CHARS.filter(lambda c: c != "\n"), min_size=1, max_size=40)
extensions = st.lists(origins, max_size=4).map(tuple)
checkpoints = st.builds(
    Checkpoint,
    origin=origins,
    size=st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=extensions,
)
SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def _signers(pairs: list[tuple[str, bytes]]) -> list[NoteSigner]:
    return [NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed)) for name, seed in pairs]


@SETTINGS
@given(text=texts, pairs=signer_sets)
def test_property_sign_open_round_trip(text: str, pairs: list[tuple[str, bytes]]) -> None:
    signers = _signers(pairs)
    data = sign_note(text, signers)
    note = open_note(data, [s.verifier() for s in signers])
    assert note.text == text
    assert note.verified_by == tuple(s.name for s in signers)
    assert [s.to_line() for s in note.signatures] == data.decode()[len(text) + 1 :].splitlines(
        keepends=True
    )


@SETTINGS
@given(name=names, seed=seeds)
def test_property_key_strings_round_trip(name: str, seed: bytes) -> None:
    signer = NoteSigner(name, Ed25519PrivateKey.from_private_bytes(seed))
    again = NoteSigner.from_key_string(signer.key_string())
    assert (again.name, again.key_id, again.public_key) == (
        signer.name,
        signer.key_id,
        signer.public_key,
    )
    assert NoteVerifier.from_key_string(signer.verifier().key_string()) == signer.verifier()
    cosigner = CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(seed))
    verifier = cosigner.verifier()
    assert CosignatureVerifier.from_key_string(verifier.key_string()) == verifier


@SETTINGS
@given(
    text=texts,
    pairs=signer_sets,
    index=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_property_any_flipped_byte_fails(
    text: str, pairs: list[tuple[str, bytes]], index: int, mask: int
) -> None:
    """Flip one byte anywhere: the note is malformed, fails, or loses a signer."""
    signers = _signers(pairs)
    data = bytearray(sign_note(text, signers))
    data[index % len(data)] ^= mask
    try:
        note = open_note(bytes(data), [s.verifier() for s in signers])
    except (NoteFormatError, SignatureError):
        return
    assert set(note.verified_by) < {s.name for s in signers}


@SETTINGS
@given(cp=checkpoints)
def test_property_checkpoint_round_trip(cp: Checkpoint) -> None:
    assert Checkpoint.from_text(cp.to_text()) == cp


@SETTINGS
@given(
    cp=checkpoints,
    name=names,
    seed=seeds,
    timestamp=st.integers(min_value=0, max_value=MAX_COSIGNATURE_TIMESTAMP),
    index=st.integers(min_value=0),
    replacement=st.characters(exclude_categories=["Cs"]),
    in_line=st.booleans(),
)
def test_property_cosignature_tamper_detected(
    cp: Checkpoint,
    name: str,
    seed: bytes,
    timestamp: int,
    index: int,
    replacement: str,
    in_line: bool,
) -> None:
    signer = CosignatureSigner(name, Ed25519PrivateKey.from_private_bytes(seed))
    text = cp.to_text()
    line = signer.cosign(text, timestamp)
    assert signer.verifier().verify_line(text, line) == timestamp
    target = line if in_line else text
    position = index % len(target)
    assume(target[position] != replacement)
    changed = target[:position] + replacement + target[position + 1 :]
    with pytest.raises(LedgerError):
        if in_line:
            signer.verifier().verify_line(text, changed)
        else:
            signer.verifier().verify_line(changed, line)
