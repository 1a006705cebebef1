"""create_app: one city node as a FastAPI application — wiring only.

The routes live in ``node.api`` by audience (``public``, ``operator``, ``institution``,
``peer``; the catalogue's in ``node.catalogue``) and translate between wire JSON and
ledger/report calls, nothing else. Requests that change anything, and peer requests, must
carry an RFC 9421 signature by a manifest node (``node:<id>``) or a registered institution
(``inst:<id>``); every response to a signed request is signed and bound to it
(``node.http.middleware``). Errors are RFC 9457 problem details (``node.api.problems``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledger import Ledger, NoteSigner
from node.api.deps import NodeMetrics
from node.api.institution import institution_router
from node.api.manifest import manifest_router
from node.api.objections import objection_router
from node.api.operator import operator_router
from node.api.peer import peer_router
from node.api.problems import document_problems, install_problem_handlers
from node.api.public import public_router
from node.catalogue import catalogue_router
from node.clock import NetworkClock
from node.consortium import ManifestHistory, load_manifest, parse_history
from node.datadir import DataDirLock, make_private
from node.errors import (
    ConfigError,
)
from node.http.middleware import BACKGROUND_PATHS, RequestMetrics, SignedResponses
from node.keys import load_private_key, public_b64
from node.peers.client import PeerClient
from node.sequencer import Sequencer
from node.settings import NodeSettings
from node.stages import StageContext, StageTimer
from node.state import NodeState, refuse_if_behind, write_history
from node.views import PeerViews

__all__ = ["build_state", "create_app", "open_checked_ledger"]

log = logging.getLogger("node")


def build_state(
    settings: NodeSettings, *, transport: Any = None, urls: dict[str, str] | None = None
) -> NodeState:
    """Open keys, manifest, ledger and node state for ``settings``."""
    history = load_node_history(settings)
    manifest = history.current
    info = manifest.node(settings.node_id) if manifest.has(settings.node_id) else None
    if info is None:
        raise ConfigError(f"node {settings.node_id} is not in the manifest {settings.manifest}")
    key = load_private_key(settings.key_file)
    if public_b64(key) != info.public_key:
        raise ConfigError(
            f"key file {settings.key_file} does not hold the key the manifest names for {info.node_id}"
        )
    from ledger import NoteSigner

    # Held before the ledger is opened: a second process on this directory stops here. Until
    # the state is built, a failure gives back what was opened (the lock last).
    with contextlib.ExitStack() as undo:
        lock = DataDirLock.acquire(settings.data_dir)
        undo.callback(lock.release)
        make_private(settings.data_dir)
        signer = NoteSigner(info.origin, key)
        views = PeerViews(settings.state_path, manifest.algorithm)
        undo.callback(views.close)
        clock = NetworkClock(settings.data_dir / "clock.json")
        ledger = open_checked_ledger(settings, signer, manifest.algorithm, views, clock)
        undo.callback(ledger.close)
        # Again now that SQLite has made its files (-wal, -shm): 0600 whatever the umask.
        make_private(settings.data_dir)
        peers = PeerClient(
            manifest,
            info.node_id,
            key,
            transport=transport,
            latency_ms=settings.latency_ms,
            loss=settings.loss,
            timeout_s=settings.peer_timeout_s,
            urls=urls,
            deadline_s=settings.peer_deadline_s,
            max_bytes=settings.peer_max_bytes,
            max_bytes_by_path={"/v1/peer/records": settings.peer_max_record_bytes},
        )
        undo.pop_all()
    return NodeState(
        settings=settings,
        manifest=manifest,
        history=history,
        info=info,
        key=key,
        ledger=ledger,
        views=views,
        peers=peers,
        sequencer=Sequencer(ledger, on_block=lambda block: views.mark_signed(block.size)),
        data_lock=lock,
        clock=clock,
    )


def load_node_history(settings: NodeSettings) -> ManifestHistory:
    """The manifest versions this node follows: its applied history, then the settings' file.

    The settings' manifest file may be older than what the node applied live (it
    stays on the newest it holds), the same, or the next version (applied now, as
    if offered live). Anything else is refused: a file that disagrees with a
    version the node applied, or one that does not follow its history.

    Raises:
        ConfigError: one sentence naming the file and why.
    """
    manifest = load_manifest(settings.manifest)
    path = settings.manifest_history_path
    if not path.exists():
        return ManifestHistory((manifest,))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    history = parse_history(data, root_key=manifest.root_key, source=str(path), from_any=True)
    if history.holds(manifest) or manifest.version < history.versions[0].version:
        return history
    if manifest.version <= history.current.version:
        raise ConfigError(
            f"{settings.manifest} holds a manifest version {manifest.version} that differs "
            f"from the one this node applied ({path})"
        )
    extended = history.extended(manifest, reader=settings.node_id)
    write_history(path, extended)
    return extended


def open_checked_ledger(
    settings: NodeSettings,
    signer: NoteSigner,
    algorithm: str,
    views: PeerViews,
    clock: NetworkClock | None = None,
) -> Ledger:
    """The node's ledger, checked before the node signs anything on it.

    The file must pass :meth:`ledger.Ledger.check` (SQLite's quick_check, the last
    block's signature and root against the stored tiles) and hold at least every size
    this node has signed or had cosigned (:func:`node.state.refuse_if_behind`). A
    missing ledger is created only if this node never signed one.

    Raises:
        CorruptLedgerError: the file is damaged.
        LedgerBehindError: the file lost acknowledged entries (or is gone).
    """
    path = settings.ledger_path
    now = (clock or NetworkClock()).now  # block times follow the network's clock
    if not path.exists():
        refuse_if_behind(path, 0, views, settings.state_path)
        return Ledger.create(
            path, origin=signer.name, signer=signer, algorithm=algorithm, clock=now
        )
    ledger = Ledger.open(path, signer=signer, check=True, clock=now)
    try:
        refuse_if_behind(path, ledger.size, views, settings.state_path)
        views.mark_signed(ledger.size)  # a state.db older than the mark starts from here
    except BaseException:
        ledger.close()
        raise
    return ledger


def create_app(
    settings: NodeSettings,
    state: NodeState | None = None,
    *,
    mirror: bool = True,
    transport: Any = None,
    urls: dict[str, str] | None = None,
) -> FastAPI:
    """The node's FastAPI application. ``state`` may be injected (tests)."""
    st = state or build_state(settings, transport=transport, urls=urls)
    registry = CollectorRegistry()
    m_requests = Counter(
        "node_requests_total", "HTTP requests", ["route", "status"], registry=registry
    )
    m_latency = Histogram(
        "node_request_seconds",
        "request latency",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    m_size = Gauge("node_ledger_entries", "entries on the ledger", registry=registry)
    m_height = Gauge("node_ledger_height", "blocks on the ledger", registry=registry)
    m_alarms = Gauge("node_open_alarms", "open alarms against peers", registry=registry)
    st.stages = StageTimer(registry)  # node_stage_seconds{stage,area} (node.stages)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def count_records() -> None:
            st.metrics["enterprises"], st.metrics["records"] = await asyncio.to_thread(
                st.ledger.store.record_counts
            )

        counting = asyncio.create_task(count_records())
        task = None
        if mirror and settings.mirror_interval_s > 0:
            from node.peers.mirror import mirror_forever

            task = asyncio.create_task(mirror_forever(st))
        try:
            yield
        finally:
            counting.cancel()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await st.close()

    app = FastAPI(
        title=f"yrd-credit-chain node {st.node_id}",
        version="1",
        description="One city node of the Yangtze River Delta credit chain simulator. Signed requests use "
        "RFC 9421 HTTP Message Signatures (Ed25519); errors are RFC 9457 problem details.",
        lifespan=lifespan,
    )
    app.state.node = st
    install_problem_handlers(app, st.node_id)
    app.include_router(catalogue_router(st))
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problems(generate_openapi())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_middleware(
        RequestMetrics,
        requests=m_requests,
        latency=m_latency,
        node_id=st.node_id,
        counters=st.metrics,
    )
    app.add_middleware(SignedResponses, state_getter=lambda: st)  # signs what the rest answers
    # Outermost: binds this node's stage timer and the request's area for the request's
    # lifetime, so response signing is counted too (node.stages).
    app.add_middleware(StageContext, timer=st.stages, background_paths=BACKGROUND_PATHS)

    app.include_router(public_router(st, NodeMetrics(registry, m_size, m_height, m_alarms)))
    app.include_router(peer_router(st))
    app.include_router(operator_router(st))
    app.include_router(manifest_router(st))
    app.include_router(institution_router(st))
    app.include_router(objection_router(st))

    return app
