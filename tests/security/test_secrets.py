"""Private keys: written with mode 0600, never logged, never served; data files private.

A two-city network is started the way ``creditchain up`` starts one (real node
processes on free 127.0.0.1 ports, logs in files), a report is queried, every
GET endpoint of every node is fetched unsigned and signed, and some requests
are refused on purpose. Then every key file's mode is checked, and the node
logs, the startup messages and every response (bodies and headers, problem
details included) are searched for each private key in every encoding the
project uses or could leak: PEM, PKCS#8 DER (base64), raw bytes (base64, hex). The
nodes' data directories and logs are checked too: every file 0600, every directory 0700.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.http import httpsig
from node.keys import generate_key_file, load_private_key
from scenarios import localnet as net

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOPOLOGY = """\
name: secrets-test
origin_prefix: yrd-credit-chain
algorithm: sha256
institutions: 2
cities:
  - {code: hz, name: Hangzhou, name_zh: 杭州, admin_code: "330100", nodes: 1, share: 0.5,
     lat: 30.27, lon: 120.16}
  - {code: hf, name: Hefei, name_zh: 合肥, admin_code: "340100", nodes: 1, share: 0.5,
     lat: 31.82, lon: 117.23}
"""


def _encodings(key: Ed25519PrivateKey) -> dict[str, bytes]:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "pem-body": pem.splitlines()[1],
        "pkcs8-base64": base64.b64encode(der),
        "raw-base64": base64.b64encode(raw).rstrip(b"="),
        "raw-base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "raw-hex": raw.hex().encode(),
        "raw": raw,
    }


def _leaks(blob: bytes, secrets: dict[str, dict[str, bytes]]) -> list[str]:
    lowered = blob.lower()
    found = [
        f"{name}: {kind}"
        for name, forms in secrets.items()
        for kind, value in forms.items()
        if (value.lower() in lowered if kind == "raw-hex" else value in blob)
    ]
    if b"PRIVATE KEY" in blob:
        found.append("a PEM private key header")
    return found


def test_generated_key_files_are_0600_and_never_overwritten(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        path = tmp_path / "keys" / "node.key"
        generate_key_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(Exception, match="already exists"):
        generate_key_file(path)
    assert path.read_bytes() == before


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[net.Consortium, list[str]]]:
    root = tmp_path_factory.mktemp("secrets")
    topology = root / "topology.yaml"
    topology.write_text(TOPOLOGY, encoding="utf-8")
    directory = root / "cc"
    messages: list[str] = []
    net.init_consortium(directory, str(topology), base_port=net.find_free_base_port(2))
    try:
        result = net.up(
            directory, enterprises=200, seed=3, progress=False, timeout_s=150, echo=messages.append
        )
        yield result.cons, messages
    finally:
        net.down(directory)


def test_keys_are_0600_never_logged_never_served(network: tuple[net.Consortium, list[str]]) -> None:
    cons, messages = network
    key_files = sorted((cons.dir / "keys").rglob("*.key"))
    assert len(key_files) >= 1 + len(cons.node_ids) + len(
        cons.institutions
    )  # root, nodes, institutions
    modes = {str(p.relative_to(cons.dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in key_files}
    assert set(modes.values()) == {"0o600"}, modes
    secrets = {str(p.relative_to(cons.dir)): _encodings(load_private_key(p)) for p in key_files}

    # Traffic: a report, every GET endpoint unsigned and signed, refusals.
    data = net.synthetic_data(cons)
    inst = cons.institutions[0]
    uscc = data.enterprise(cons.topology.cities[0].code, 0).uscc
    blobs: list[tuple[str, bytes]] = []
    result = net.query_report(
        cons, inst.institution_id, uscc, inst.purposes[0], out=cons.dir / "bundle.json"
    )
    blobs.append(("report bundle", (cons.dir / "bundle.json").read_bytes()))
    assert result is not None
    with httpx.Client(timeout=30) as plain:
        spec = plain.get(cons.url(cons.node_ids[0]) + "/openapi.json").json()
    fill = {"{uscc}": uscc, "{institution_id}": inst.institution_id, "{peer_id}": cons.node_ids[-1]}
    gets = ["/openapi.json", "/docs"]
    for path, ops in spec["paths"].items():
        if "get" in ops:
            for k, v in fill.items():
                path = path.replace(k, v)
            gets.append(path)
    statuses: set[int] = set()
    for node_id in cons.node_ids:
        base = cons.url(node_id)
        signers = [None, httpsig.RequestSigner(f"node:{node_id}", cons.node_key(node_id))]
        if inst.home_node == node_id:
            signers.append(httpsig.RequestSigner(f"inst:{inst.institution_id}", inst.key()))
        for auth in signers:
            with httpx.Client(timeout=30, auth=auth) as c:
                responses = [c.get(base + p) for p in gets]
                responses += [
                    c.get(base + "/v1/enterprises/91330100XXXXXXXXXX/queries"),
                    c.post(
                        base + "/v1/reports",
                        json={"uscc": "bad", "purpose": "x", "authorization_id": "y"},
                    ),
                    c.post(
                        base + "/v1/ingest",
                        content=b"{not json",
                        headers={"content-type": "application/json"},
                    ),
                    c.get(base + "/v1/proofs/inclusion", params={"index": 10**9}),
                ]
            for r in responses:
                statuses.add(r.status_code)
                head = "".join(f"{k}: {v}\n" for k, v in r.headers.items()).encode()
                blobs.append(
                    (
                        f"{node_id} {r.request.method} {r.request.url} -> {r.status_code}",
                        head + r.content,
                    )
                )
    assert {200, 401, 422} <= statuses  # answers, refusals and problems were all looked at

    logs = {node_id: cons.log_path(node_id).read_bytes() for node_id in cons.node_ids}
    assert all(logs.values())  # the nodes did log
    blobs += [(f"log of {n}", text) for n, text in logs.items()]
    blobs.append(("startup messages", "\n".join(messages).encode()))
    leaks = {where: found for where, blob in blobs if (found := _leaks(blob, secrets))}
    assert leaks == {}


def test_data_files_are_0600_in_0700_directories(
    network: tuple[net.Consortium, list[str]],
) -> None:
    """Ledgers (every record body and salt), state.db, their SQLite -wal/-shm files, the
    node logs, the saved report bundle and the consent documents: readable by their owner
    alone, as ``up``, the nodes and ``query`` made them (under the test's own umask)."""
    cons, _ = network
    assert net.running_nodes(cons.dir)
    found: dict[str, str] = {}
    for node_id in cons.node_ids:
        data_dir = cons.ledger_path(node_id).parent
        for p in [data_dir, *data_dir.rglob("*"), cons.log_path(node_id).parent]:
            found[str(p.relative_to(cons.dir))] = oct(stat.S_IMODE(p.stat().st_mode))
        found[str(cons.log_path(node_id).relative_to(cons.dir))] = oct(
            stat.S_IMODE(cons.log_path(node_id).stat().st_mode)
        )
    data = net.synthetic_data(cons)
    inst = cons.institutions[0]
    uscc = data.enterprise(cons.topology.cities[-1].code, 1).uscc
    saved = cons.dir / "saved" / "bundle.json"  # a directory the query makes
    net.query_report(cons, inst.institution_id, uscc, inst.purposes[0], out=saved)
    consents = cons.dir / "consents"
    for p in [saved.parent, saved, consents, *consents.iterdir()]:
        # credit data and consent documents the query wrote: private too
        found[str(p.relative_to(cons.dir))] = oct(stat.S_IMODE(p.stat().st_mode))
    names = {Path(k).name for k in found}
    assert "bundle.json" in names and any(n.endswith(".txt") for n in names)
    assert {"ledger.db", "ledger.db-wal", "ledger.db-shm", "state.db", "node.lock"} <= names
    wrong = {
        path: mode
        for path, mode in found.items()
        if mode != ("0o700" if (cons.dir / path).is_dir() else "0o600")
    }
    assert wrong == {}


def test_the_scan_would_see_a_leak(tmp_path: Path) -> None:
    """The search itself finds a key in each encoding (so the test above can fail)."""
    key = generate_key_file(tmp_path / "k.key")
    secrets = {"k": _encodings(key)}
    for kind, value in secrets["k"].items():
        assert _leaks(b"log line " + value + b" end", secrets), kind
    assert _leaks((tmp_path / "k.key").read_bytes(), secrets)
    assert not _leaks(
        b'{"public_key": "' + base64.b64encode(key.public_key().public_bytes_raw()) + b'"}', secrets
    )
