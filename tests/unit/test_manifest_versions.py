"""Manifest versions: the chain from version 1, and every way a version is refused."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.consortium import (
    ManifestHistory,
    NodeInfo,
    parse_history,
    parse_manifest,
    sign_manifest,
    successor_problem,
)
from node.errors import ConfigError
from node.keys import public_b64

ROOT = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = {n: Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i, n in enumerate("abc")}
NODES = [
    NodeInfo(f"{n}-1", n, n, (f"3{i}0100",), f"http://{n}-1", public_b64(KEYS[n]))
    for i, n in enumerate("abc")
]


def _sign(nodes=NODES, *, version=1, prev=None, root=ROOT, algorithm="sha256", name="t"):
    data = sign_manifest(name, algorithm, root, nodes, version=version, prev=prev)
    return parse_manifest(data)


def _chain(n: int):
    versions = [_sign()]
    for v in range(2, n + 1):
        moved = [dataclasses.replace(NODES[0], url=f"http://a-1:{8000 + v}"), *NODES[1:]]
        versions.append(_sign(moved, version=v, prev=versions[-1].digest))
    return versions


def test_version_one_keeps_the_first_format_and_later_versions_name_their_predecessor() -> None:
    v1, v2 = _chain(2)
    assert (v1.version, v1.prev) == (1, None)
    assert b'"prev"' not in v1.raw and b'"effective_at"' not in v1.raw
    assert (v2.version, v2.prev) == (2, v1.digest)
    assert v2.effective_at and v2.node("a-1").url == "http://a-1:8002"
    assert successor_problem(v1, v2, "a-1") is None
    with pytest.raises(ValueError):
        sign_manifest("t", "sha256", ROOT, NODES, version=2)
    with pytest.raises(ValueError):
        sign_manifest("t", "sha256", ROOT, NODES, version=1, prev=v1.digest)


def test_each_refusal_is_one_sentence_naming_why() -> None:
    v1, v2, v3 = _chain(3)
    assert "not newer" in (successor_problem(v2, v1) or "")
    assert "not newer" in (successor_problem(v2, v2) or "")
    assert "skips version 2" in (successor_problem(v1, v3) or "")
    forked = _sign(NODES, version=2, prev="0" * 64)
    assert "as its predecessor" in (successor_problem(v1, forked) or "")
    other_suite = _sign(NODES, version=2, prev=v1.digest, algorithm="sm3")
    assert "one consortium keeps one suite" in (successor_problem(v1, other_suite) or "")
    dropped = _sign(NODES[1:], version=2, prev=v1.digest)
    assert successor_problem(v1, dropped, "b-1") is None
    assert "removes node a-1, the node reading it" in (successor_problem(v1, dropped, "a-1") or "")
    thief = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
    stolen = _sign(NODES, version=2, prev=v1.digest, root=thief)
    assert "not the consortium's root" in (successor_problem(v1, stolen) or "")
    with pytest.raises(ConfigError, match="not the trusted one"):
        parse_manifest(stolen.raw, root_key=v1.root_key)
    renamed = _sign(NODES, version=2, prev=v1.digest, name="other")
    assert "for consortium 'other'" in (successor_problem(v1, renamed) or "")


def test_a_tampered_version_fails_its_root_signature() -> None:
    v1, v2 = _chain(2)
    tampered = v2.raw.replace(b"http://a-1:8002", b"http://evil:8002")
    with pytest.raises(ConfigError, match="root signature does not verify"):
        parse_manifest(tampered, root_key=v1.root_key)


def test_a_history_file_round_trips_and_serves_each_version() -> None:
    versions = _chain(4)
    history = ManifestHistory((versions[0],))
    for m in versions[1:]:
        history = history.extended(m)
    parsed = parse_history(history.to_bytes(), root_key=versions[0].root_key)
    assert [m.digest for m in parsed.versions] == [m.digest for m in versions]
    assert parsed.at(3).digest == versions[2].digest
    assert parsed.holds(versions[1]) and not parsed.holds(_sign(version=2, prev="1" * 64))
    with pytest.raises(ConfigError, match="holds versions 1 to 4, not 5"):
        parsed.at(5)
    with pytest.raises(ConfigError, match="skips version 5"):
        parsed.extended(_sign(version=6, prev=versions[-1].digest))


def test_a_broken_history_names_its_line() -> None:
    v1, v2, v3 = _chain(3)
    lines = [v1.raw, v3.raw]  # version 2 missing
    with pytest.raises(ConfigError, match="line 2: manifest version 3 skips version 2"):
        parse_history(b"".join(lines))
    with pytest.raises(ConfigError, match="starts at manifest version 2, not 1"):
        parse_history(v2.raw + v3.raw)
    assert parse_history(v2.raw + v3.raw, from_any=True).current.version == 3
    with pytest.raises(ConfigError, match="line 2"):
        parse_history(v1.raw + b'{"manifest": {}, "signature": "AA=="}\n')
    with pytest.raises(ConfigError, match="holds no manifest"):
        parse_history(b"\n\n")
