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

Versions: the root signs version n+1 of the manifest to change the consortium
(nodes or cities added or removed, keys or URLs changed), naming the SHA-256 of
version n's signed body in ``prev`` and the time it takes effect in
``effective_at``. :func:`successor_problem` says in one sentence why a version
cannot follow another (not signed by the root, not newer, a skipped version,
a broken chain, another hash algorithm, or removing the node that reads it);
:class:`ManifestHistory` is every version from 1 in order, as a file of one
signed manifest per line, and checks the chain link by link.

Invariants: a :class:`Manifest` object exists only after its signature was
checked; node ids, origins and keys are unique; version 1 has no ``prev`` and
every later version names its predecessor's digest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import NoteSigner, NoteVerifier, canonical_bytes, parse_json, utc_now
from node.errors import ConfigError, UnknownPeerError
from node.keys import public_b64, public_from_b64

__all__ = [
    "MAX_HISTORY_VERSIONS",
    "Manifest",
    "ManifestHistory",
    "NodeInfo",
    "RegistryInfo",
    "load_manifest",
    "parse_history",
    "sign_manifest",
    "successor_problem",
]

MAX_HISTORY_VERSIONS = 10_000
"""Most versions a manifest history file may hold (a bound on what is read)."""

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
    version: int = 1
    prev: str | None = None  # hex SHA-256 of the previous version's signed body
    effective_at: str = ""
    digest: str = ""  # hex SHA-256 of this version's signed body (canonical bytes)

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
    version: int,
    prev: str | None,
    effective_at: str | None,
) -> dict[str, object]:
    issued_at = utc_now()
    body: dict[str, object] = {
        "consortium": CONSORTIUM,
        "name": name,
        "version": version,
        "algorithm": algorithm,
        "issued_at": issued_at,
        "root_key": public_b64(root),
        "nodes": [n.to_dict() for n in nodes],
        "registries": [r.to_dict() for r in registries],
    }
    if version > 1:  # version 1 keeps the first format, so old manifests read the same
        body["prev"] = prev
        body["effective_at"] = effective_at or issued_at
    return body


def sign_manifest(
    name: str,
    algorithm: str,
    root: Ed25519PrivateKey,
    nodes: Sequence[NodeInfo],
    registries: Sequence[RegistryInfo] = (),
    *,
    version: int = 1,
    prev: str | None = None,
    effective_at: str | None = None,
) -> bytes:
    """Build and sign a manifest; returns the file bytes.

    Version 1 has no ``prev``; a later version names the digest
    (:attr:`Manifest.digest`) of the one it follows.
    """
    if version < 1 or (version == 1) != (prev is None):
        raise ValueError("version 1 has no prev; every later version names its predecessor")
    body = _manifest_body(name, algorithm, root, nodes, registries, version, prev, effective_at)
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
    version = body.get("version", 1)
    prev = body.get("prev")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{source}: the manifest version must be an integer from 1")
    if version == 1 and prev is not None:
        raise ConfigError(f"{source}: manifest version 1 names a previous version")
    if version > 1 and not (isinstance(prev, str) and len(prev) == 64):
        raise ConfigError(f"{source}: manifest version {version} does not name its predecessor")
    issued_at = str(body.get("issued_at", ""))
    return Manifest(
        name=str(body.get("name", "")),
        algorithm=str(body.get("algorithm", "sha256")),
        issued_at=issued_at,
        root_key=str(body["root_key"]),
        nodes=nodes,
        raw=data,
        registries=registries,
        version=version,
        prev=prev,
        effective_at=str(body.get("effective_at", issued_at)),
        digest=hashlib.sha256(canonical_bytes(body)).hexdigest(),
    )


def successor_problem(current: Manifest, new: Manifest, reader: str | None = None) -> str | None:
    """Why ``new`` cannot follow ``current``, in one sentence; None if it can.

    Both are already signature-checked; ``new`` must be signed by ``current``'s
    root. ``reader`` is the node applying it: a version that removes the node
    reading it is refused (that node would stop trusting itself).
    """
    if new.root_key != current.root_key:
        return (
            f"manifest version {new.version} is signed by root key {new.root_key[:12]}…, "
            f"not the consortium's root {current.root_key[:12]}…"
        )
    if new.version <= current.version:
        return (
            f"manifest version {new.version} is not newer than the current version "
            f"{current.version}"
        )
    if new.version != current.version + 1:
        return (
            f"manifest version {new.version} skips version {current.version + 1}: "
            "apply the versions in order"
        )
    if new.prev != current.digest:
        return (
            f"manifest version {new.version} names {str(new.prev)[:16]}… as its predecessor, "
            f"not version {current.version} ({current.digest[:16]}…)"
        )
    if new.algorithm != current.algorithm:
        return (
            f"manifest version {new.version} changes the hash algorithm from "
            f"{current.algorithm} to {new.algorithm}: one consortium keeps one suite"
        )
    if new.name != current.name:
        return (
            f"manifest version {new.version} is for consortium {new.name!r}, not {current.name!r}"
        )
    if reader is not None and not new.has(reader):
        return f"manifest version {new.version} removes node {reader}, the node reading it"
    return None


@dataclass(frozen=True, slots=True)
class ManifestHistory:
    """Every version of a consortium's manifest from version 1, each following the one before."""

    versions: tuple[Manifest, ...]

    @property
    def current(self) -> Manifest:
        return self.versions[-1]

    def at(self, version: int) -> Manifest:
        """The manifest of ``version``.

        Raises:
            ConfigError: the history does not hold that version.
        """
        first = self.versions[0].version
        if first <= version <= self.current.version:
            return self.versions[version - first]
        raise ConfigError(
            f"the manifest history holds versions {first} to {self.current.version}, not {version}"
        )

    def holds(self, manifest: Manifest) -> bool:
        """Whether this very version (same digest) is already in the history."""
        first = self.versions[0].version
        if not first <= manifest.version <= self.current.version:
            return False
        return self.versions[manifest.version - first].digest == manifest.digest

    def to_bytes(self) -> bytes:
        """The history file: each version's signed file, one per line, in order."""
        return b"".join(m.raw.rstrip(b"\n") + b"\n" for m in self.versions)

    def extended(self, new: Manifest, reader: str | None = None) -> ManifestHistory:
        """This history with ``new`` appended.

        Raises:
            ConfigError: ``new`` cannot follow the current version (one sentence).
        """
        problem = successor_problem(self.current, new, reader)
        if problem is not None:
            raise ConfigError(problem)
        return ManifestHistory((*self.versions, new))


def parse_history(
    data: bytes,
    *,
    root_key: str | None = None,
    source: str = "manifest history",
    from_any: bool = False,
) -> ManifestHistory:
    """Read a history file (one signed manifest per line, version 1 first) and check its chain.

    Args:
        root_key: the trusted root public key (base64); default: the key version 1 names.
        from_any: accept a history that starts after version 1 (a node that joined
            at a later version keeps the versions from there; ``root_key`` then
            pins the root).

    Raises:
        ConfigError: a line is not a valid manifest, or a version does not follow
            the one before it (the sentence names the line).
    """
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        raise ConfigError(f"{source} holds no manifest")
    if len(lines) > MAX_HISTORY_VERSIONS:
        raise ConfigError(f"{source} holds {len(lines)} versions, more than {MAX_HISTORY_VERSIONS}")
    first = parse_manifest(lines[0] + b"\n", root_key=root_key, source=f"{source} line 1")
    if first.version != 1 and not from_any:
        raise ConfigError(f"{source} starts at manifest version {first.version}, not 1")
    history = ManifestHistory((first,))
    for n, line in enumerate(lines[1:], start=2):
        m = parse_manifest(line + b"\n", root_key=first.root_key, source=f"{source} line {n}")
        try:
            history = history.extended(m)
        except ConfigError as exc:
            raise ConfigError(f"{source} line {n}: {exc}") from exc
    return history


def load_manifest(path: Path, *, root_key: str | None = None) -> Manifest:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc.strerror}") from exc
    return parse_manifest(data, root_key=root_key, source=str(path))


def node_signer(info: NodeInfo, key: Ed25519PrivateKey) -> NoteSigner:
    """The note signer for a node's checkpoints (name = origin)."""
    return NoteSigner(info.origin, key)
