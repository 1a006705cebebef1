"""Several nodes in one process: keys, manifest, apps wired by RoutingTransport."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import AuthorizationEntry
from node.app import build_state, create_app
from node.consent import sign_consent
from node.consortium import NodeInfo, RegistryInfo, sign_manifest
from node.http import httpsig
from node.keys import public_b64
from node.peers.client import RoutingTransport
from node.settings import NodeSettings


def seeded_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def registry_key(city: str) -> Ed25519PrivateKey:
    """The test registry key of a city (the manifest of :func:`make_net` names it)."""
    return seeded_key(f"registry/{city}")


def consent_for(body: dict[str, Any], city: str) -> str:
    """The consent signature ``city``'s registry gives an authorization request body."""
    auth = AuthorizationEntry(
        body["authorization_id"],
        body["uscc"],
        body["institution_id"],
        tuple(body["purposes"]),
        body["not_before"],
        body["not_after"],
        body["document_digest"],
    )
    return sign_consent(registry_key(city), auth)


@dataclass
class Net:
    root: Path
    nodes: dict[str, Any] = field(default_factory=dict)  # node_id -> app
    states: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    transport: RoutingTransport | None = None
    manifest_path: Path | None = None

    def client(self, key_id: str, key: Ed25519PrivateKey) -> httpx.AsyncClient:
        assert self.transport is not None
        return httpx.AsyncClient(
            transport=self.transport, auth=httpsig.RequestSigner(key_id, key), timeout=30
        )

    def operator(self, node_id: str) -> httpx.AsyncClient:
        return self.client(f"node:{node_id}", self.keys[node_id])

    async def close(self) -> None:
        for st in self.states.values():
            await st.close()


def make_net(
    root: Path,
    nodes: list[tuple[str, str, str]],
    *,
    algorithm: str = "sha256",
    latency_ms: dict[str, float] | None = None,
    settings: dict[str, Any] | None = None,
) -> Net:
    """nodes: (node_id, city, admin_code). URLs are http://<node_id>.

    ``settings``: NodeSettings fields every node gets on top of the test defaults.
    """
    net = Net(root)
    infos = []
    for node_id, city, admin in nodes:
        k = seeded_key(f"node/{node_id}")
        net.keys[node_id] = k
        infos.append(NodeInfo(node_id, city, city, (admin,), f"http://{node_id}", public_b64(k)))
    rootkey = seeded_key("root")
    net.manifest_path = root / "manifest.json"
    root.mkdir(parents=True, exist_ok=True)
    registries = {}
    for _, city, admin in nodes:
        registries.setdefault(city, []).append(admin)
    regs = [
        RegistryInfo(city, tuple(admins), public_b64(registry_key(city)))
        for city, admins in registries.items()
    ]
    net.manifest_path.write_bytes(sign_manifest("test", algorithm, rootkey, infos, regs))
    apps = {}
    for node_id, _, _ in nodes:
        kf = root / node_id / "node.key"
        kf.parent.mkdir(parents=True, exist_ok=True)
        kf.write_bytes(
            net.keys[node_id].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        s = NodeSettings(
            node_id=node_id,
            data_dir=root / node_id,
            key_file=kf,
            manifest=net.manifest_path,
            public_url=f"http://{node_id}",
            mirror_interval_s=0,
            peer_timeout_s=5,
            latency_ms=latency_ms or {},
        ).with_(**(settings or {}))
        net.transport = net.transport or RoutingTransport({})
        st = build_state(s, transport=net.transport)
        app = create_app(s, st, mirror=False)
        apps[node_id] = app
        net.states[node_id] = st
    assert net.transport is not None
    net.transport.transports = {nid: httpx.ASGITransport(app=a) for nid, a in apps.items()}
    net.nodes = apps
    return net


def b64key(k: Ed25519PrivateKey) -> str:
    return base64.b64encode(k.public_key().public_bytes_raw()).decode()
