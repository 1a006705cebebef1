"""NodeState: everything one running node holds, built by ``create_app``.

No module globals: tests build several NodeStates in one process.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.requests import Request

from ledger import AlarmEntry, Entry, InstitutionEntry, Ledger, NoteSigner, parse_entry, utc_now
from node.clock import NetworkClock
from node.consortium import Manifest, ManifestHistory, NodeInfo
from node.datadir import DataDirLock, private_umask
from node.errors import ConfigError, LedgerBehindError, ManifestRefusedError, UnknownPeerError
from node.events import EventHub
from node.http import httpsig
from node.keys import public_from_b64
from node.peers.client import PeerClient
from node.sequencer import Sequencer
from node.settings import NodeSettings
from node.stages import StageTimer, stage
from node.views import PeerViews

__all__ = [
    "Caller",
    "NodeState",
    "parsed_entry",
    "refuse_if_behind",
    "require_node",
    "signed_caller",
]


@functools.lru_cache(maxsize=4096)
def parsed_entry(data: bytes) -> Entry:
    """``parse_entry`` of canonical entry bytes, remembered (bounded LRU keyed by the bytes).

    Entries are immutable values and the parse is a pure function of the bytes, so a
    cached result is always the one a fresh parse would give; failures are not cached.
    Institution and authorization entries are read on every report and request.
    """
    return parse_entry(data)


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str  # "node" or "institution"
    id: str


INLINE_VERIFY_BYTES = 64 * 1024  # bodies up to this size are verified on the event loop


async def signed_caller(st: NodeState, request: Request) -> Caller:
    """Who signed ``request`` (RFC 9421); raises the verifier's error otherwise.

    The signature is checked against this node's configured public URL, not the
    Host header: a request signed for another node's authority must not verify here.
    """
    body = await request.body()
    url = st.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = dict(request.headers.items())
    with stage("request_verify"):
        if len(body) <= INLINE_VERIFY_BYTES:
            # A fraction of a millisecond: cheaper on the event loop than a hop to the thread pool.
            verified = st.verifier.verify(request.method, url, headers, body)
        else:  # hashing a large body for Content-Digest would hold up the loop
            verified = await asyncio.to_thread(
                st.verifier.verify, request.method, url, headers, body
            )
    # The response middleware signs only answers to requests verified here, bound to the
    # method and URL they were verified against (node.http.middleware.SignedResponses).
    request.state.verified_request = (request.method, url)
    kind, _, ident = verified.key_id.partition(":")
    return Caller("node" if kind == "node" else "institution", ident)


def require_node(c: Caller) -> str:
    """The caller's node id; UnknownPeerError for an institution."""
    if c.kind != "node":
        raise UnknownPeerError(
            c.id, f"{c.id} is an institution; this endpoint is for consortium nodes"
        )
    return c.id


def refuse_if_behind(ledger_path: Path, size: int, views: PeerViews, state_path: Path) -> None:
    """Refuse a ledger of ``size`` entries smaller than any size this node signed or had
    cosigned, as recorded in ``state.db``.

    Raises:
        LedgerBehindError: the ledger lost entries that were acknowledged.
    """
    signed, cosigned = views.signed_size(), views.cosigned_size()
    if size >= max(signed, cosigned):
        return
    if signed >= cosigned:
        evidence = f"this node has signed (the signed_size counter in {state_path})"
    else:
        evidence = f"a witness has cosigned of this node's log (the cosignatures in {state_path})"
    raise LedgerBehindError(ledger_path, size, max(signed, cosigned), evidence)


@dataclass
class NodeState:
    settings: NodeSettings
    manifest: Manifest
    info: NodeInfo
    key: Ed25519PrivateKey
    ledger: Ledger
    views: PeerViews
    peers: PeerClient
    sequencer: Sequencer
    # This process's hold on settings.data_dir (node.datadir), given back by close().
    data_lock: DataDirLock | None = None
    # The network's clock (wall time + the simulation's offset, node.clock): block times,
    # objection deadlines.
    clock: NetworkClock = field(default_factory=NetworkClock)
    verifier: httpsig.RequestVerifier = field(init=False)
    metrics: dict[str, Any] = field(default_factory=dict)
    ingest_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_by: dict[str, int] = field(default_factory=dict)
    # (home node, query id) → the answer a holder is paging out (node.reports)
    pages: dict[tuple[str, str], Any] = field(default_factory=dict)
    notice_buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # peer → tokens
    cosigned: dict[str, tuple[int, float]] = field(
        default_factory=dict
    )  # peer → (size, monotonic time) last cosigned  # peer → size of our log it last said it holds
    stages: StageTimer | None = None  # node_stage_seconds in the app's registry (node.stages)

    history: ManifestHistory | None = None  # every manifest version applied, 1 … current

    # Watchers of receipts, alarms and reports (GET /v1/events); idle while nobody listens.
    events: EventHub = field(default_factory=EventHub)

    def __post_init__(self) -> None:
        self.verifier = httpsig.RequestVerifier(self.resolve_key, window_s=self.settings.window_s)
        self.sequencer.on_entries = self.events.on_entries
        if self.history is None:
            self.history = ManifestHistory((self.manifest,))

    def apply_manifest(self, new: Manifest) -> bool:
        """Follow manifest version ``new`` live: peers, keys and URLs change at once.

        A version already applied (same digest) changes nothing and answers False.
        The history file is written before anything is switched, so a crash leaves
        the node on the old version or the new one, never between.

        Raises:
            ManifestRefusedError: ``new`` cannot follow the current version, or it
                changes this node's own key or origin (one sentence; nothing changed).
        """
        base = self.history
        assert base is not None  # set in __post_init__
        if base.holds(new):
            return False
        mine = new.node(self.node_id) if new.has(self.node_id) else None
        try:
            history = base.extended(new, reader=self.node_id)
        except ConfigError as exc:
            raise ManifestRefusedError(str(exc)) from exc
        assert mine is not None  # extended() refuses a version that removes this node
        if mine.public_key != self.info.public_key:
            raise ManifestRefusedError(
                f"manifest version {new.version} changes this node's key: "
                "restart it with the new key file"
            )
        write_history(self.settings.manifest_history_path, history)
        self.history = history
        self.manifest = new
        self.info = mine
        self.peers.use_manifest(new)
        return True

    @property
    def node_id(self) -> str:
        return self.info.node_id

    def note_signer(self) -> NoteSigner:
        return NoteSigner(self.info.origin, self.key)

    def resolve_key(self, key_id: str) -> Ed25519PublicKey | None:
        kind, _, ident = key_id.partition(":")
        if kind == "node" and self.manifest.has(ident):
            return self.manifest.node(ident).key()
        if kind == "inst":
            inst = self.institution(ident)
            if inst is not None:
                return public_from_b64(inst.public_key)
        return None

    def by_ref(self, ref: str) -> tuple[int, Entry] | None:
        """``Ledger.by_ref`` with the entry parsed through :func:`parsed_entry`."""
        index = self.ledger.store.ref(ref)
        if index is None:
            return None
        return index, parsed_entry(self.ledger.entry_data(index))

    def institution(self, institution_id: str) -> InstitutionEntry | None:
        found = self.by_ref(f"institution:{institution_id}")
        if found is None or not isinstance(found[1], InstitutionEntry):
            return None
        return found[1]

    async def raise_alarm(self, peer_id: str, fault: str, detail: str, evidence: list[str]) -> int:
        """Record evidence of a peer's misbehaviour on our ledger and refuse the peer."""
        at = utc_now()
        entry = AlarmEntry(
            peer=peer_id, fault=fault, detail=detail[:2000], evidence=tuple(evidence), at=at
        )
        index, _ = await self.sequencer.add([entry])
        self.views.raise_alarm(peer_id, fault, detail, at, index)
        return index

    def verifier_for(self, peer_id: str) -> Any:
        return self.manifest.node(peer_id).note_verifier()

    async def close(self) -> None:
        try:
            await self.peers.aclose()
            self.views.close()
            self.ledger.close()
        finally:
            if self.data_lock is not None:
                self.data_lock.release()


def write_history(path: Path, history: ManifestHistory) -> None:
    """Write the manifest history file atomically (0600): a new file renamed over the old."""
    tmp = path.with_name(path.name + ".tmp")
    with private_umask(), open(tmp, "wb") as f:
        f.write(history.to_bytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
