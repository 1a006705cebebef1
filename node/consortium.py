"""The consortium manifest: who the nodes are, signed by the root key.

A manifest file is canonical JSON ``{"manifest": {...}, "signature": b64}``
where the signature is the root key's Ed25519 signature over
``canonical_bytes(manifest)``. The manifest lists every node (id, city,
administrative codes served, URL, origin, public key) and the root's public
key. A node accepts peers only from its manifest. It also lists each city's
enterprise registry (the market regulator's e-seal service) by the
administrative codes it serves and its public key: a registry signs an
enterprise's consent to an authorization on the enterprise's behalf
(:mod:`node.consent`).

Invariants: a :class:`Manifest` object exists only after its signature was
checked; node ids, origins and keys are unique.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import NoteSigner, NoteVerifier, canonical_bytes, parse_json, utc_now
from node.errors import ConfigError, UnknownPeerError
from node.keys import public_b64, public_from_b64

__all__ = ["Manifest", "NodeInfo", "RegistryInfo", "load_manifest", "sign_manifest"]

CONSORTIUM = "yrd-credit-chain"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    city: str
    city_name: str
    admin_codes: tuple[str, ...]
    url: str
    public_key: str  # base64 raw Ed25519

    @property
    def origin(self) -> str:
        return f"{CONSORTIUM}/{self.node_id}"

    def key(self) -> Ed25519PublicKey:
        return public_from_b64(self.public_key)

    def note_verifier(self) -> NoteVerifier:
        return NoteVerifier(self.origin, base64.b64decode(self.public_key))

    def to_dict(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "city": self.city,
            "city_name": self.city_name,
            "admin_codes": list(self.admin_codes),
            "url": self.url,
            "origin": self.origin,
            "public_key": self.public_key,
        }


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    """A city's enterprise registry: signs consents for the enterprises registered there."""

    city: str
    admin_codes: tuple[str, ...]
    public_key: str  # base64 raw Ed25519

    @property
    def key_id(self) -> str:
        return f"registry:{self.city}"

    def key(self) -> Ed25519PublicKey:
        return public_from_b64(self.public_key)

    def to_dict(self) -> dict[str, object]:
        return {
            "city": self.city,
            "admin_codes": list(self.admin_codes),
            "public_key": self.public_key,
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    algorithm: str
    issued_at: str
    root_key: str
    nodes: tuple[NodeInfo, ...]
    raw: bytes  # the signed file, as read
    registries: tuple[RegistryInfo, ...] = ()

    def registry_for_admin_code(self, admin_code: str) -> RegistryInfo | None:
        """The registry that signs for enterprises registered under ``admin_code``."""
        for r in self.registries:
            if admin_code in r.admin_codes:
                return r
        return None

    def node(self, node_id: str) -> NodeInfo:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise UnknownPeerError(node_id)

    def has(self, node_id: str) -> bool:
        return any(n.node_id == node_id for n in self.nodes)

    def nodes_for_admin_code(self, admin_code: str) -> list[NodeInfo]:
        return [n for n in self.nodes if admin_code in n.admin_codes]

    def with_urls(self, urls: dict[str, str]) -> dict[str, str]:
        return {n.node_id: urls.get(n.node_id, n.url) for n in self.nodes}


def _manifest_body(
    name: str,
    algorithm: str,
    root: Ed25519PrivateKey,
    nodes: Sequence[NodeInfo],
    registries: Sequence[RegistryInfo],
) -> dict[str, object]:
    return {
        "consortium": CONSORTIUM,
        "name": name,
        "version": 1,
        "algorithm": algorithm,
        "issued_at": utc_now(),
        "root_key": public_b64(root),
        "nodes": [n.to_dict() for n in nodes],
        "registries": [r.to_dict() for r in registries],
    }


def sign_manifest(
    name: str,
    algorithm: str,
    root: Ed25519PrivateKey,
    nodes: Sequence[NodeInfo],
    registries: Sequence[RegistryInfo] = (),
) -> bytes:
    """Build and sign a manifest; returns the file bytes."""
    body = _manifest_body(name, algorithm, root, nodes, registries)
    sig = root.sign(canonical_bytes(body))
    return canonical_bytes({"manifest": body, "signature": base64.b64encode(sig).decode()}) + b"\n"


def parse_manifest(
    data: bytes, *, root_key: str | None = None, source: str = "manifest"
) -> Manifest:
    """Check a manifest's signature and shape.

    Args:
        root_key: the trusted root public key (base64); default: the key named
            inside the manifest (integrity only).
    """
    try:
        doc = parse_json(data, source)
        body = doc["manifest"]
        sig = base64.b64decode(doc["signature"], validate=True)
        key_text = root_key or body["root_key"]
        if root_key is not None and body["root_key"] != root_key:
            raise ConfigError(
                f"{source} names root key {body['root_key'][:12]}…, not the trusted one"
            )
        public_from_b64(key_text).verify(sig, canonical_bytes(body))
        nodes = tuple(
            NodeInfo(
                node_id=str(n["node_id"]),
                city=str(n["city"]),
                city_name=str(n.get("city_name", n["city"])),
                admin_codes=tuple(str(a) for a in n["admin_codes"]),
                url=str(n["url"]),
                public_key=str(n["public_key"]),
            )
            for n in body["nodes"]
        )
        registries = tuple(
            RegistryInfo(
                city=str(r["city"]),
                admin_codes=tuple(str(a) for a in r["admin_codes"]),
                public_key=str(r["public_key"]),
            )
            for r in body.get("registries", [])
        )
        for r in registries:
            r.key()  # a malformed key fails here, not at the first consent
    except InvalidSignature as exc:
        raise ConfigError(f"{source}: the root signature does not verify") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source} is not a valid manifest: {exc}") from exc
    ids = [n.node_id for n in nodes]
    keys = [n.public_key for n in nodes]
    if len(set(ids)) != len(ids) or len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: node ids and keys must be unique")
    return Manifest(
        name=str(body.get("name", "")),
        algorithm=str(body.get("algorithm", "sha256")),
        issued_at=str(body.get("issued_at", "")),
        root_key=str(body["root_key"]),
        nodes=nodes,
        raw=data,
        registries=registries,
    )


def load_manifest(path: Path, *, root_key: str | None = None) -> Manifest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc.strerror}") from exc
    return parse_manifest(data, root_key=root_key, source=str(path))


def node_signer(info: NodeInfo, key: Ed25519PrivateKey) -> NoteSigner:
    """The note signer for a node's checkpoints (name = origin)."""
    return NoteSigner(info.origin, key)
