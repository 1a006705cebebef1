"""create_app: one city node as a FastAPI application.

Routes translate between wire JSON and ledger/report calls, nothing else.
Requests that change anything, and peer requests, must carry an RFC 9421
signature by a manifest node (``node:<id>``) or a registered institution
(``inst:<id>``); every response to a signed request is signed and bound to
it. Errors are RFC 9457 problem details (``node.api.problems``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from ledger import (
    PURPOSES,
    AuthorizationEntry,
    Block,
    CorrectionDraft,
    CorrectionEntry,
    InstitutionEntry,
    InvalidRecordError,
    Ledger,
    ReceiptEntry,
    RecordDraft,
    RecordEntry,
    RevocationEntry,
    current_view,
    parse_uscc,
    utc_now,
)
from node.api.problems import install_problem_handlers, problem, problem_for
from node.catalogue import catalogue_router
from node.consortium import load_manifest
from node.errors import (
    AuthorizationError,
    ConfigError,
    DuplicateEntryError,
    NotFoundError,
    UnknownInstitutionError,
    UnknownPeerError,
)
from node.http import httpsig
from node.keys import load_private_key, public_b64
from node.peers.client import PeerClient
from node.reports import answer_peer, make_report, record_denial_notice
from node.sequencer import Sequencer
from node.settings import NodeSettings
from node.state import Caller, NodeState, b64, require_node, signed_caller
from node.views import PeerViews

__all__ = ["build_state", "create_app"]

log = logging.getLogger("node")

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


# --- wire models (never hashed or signed) ---------------------------------------
#: Sizes and indexes are SQLite integers: anything larger is refused as input (422).
MAX_INDEX = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstitutionIn(_Strict):
    institution_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(
        min_length=40, max_length=64, description="base64 raw Ed25519 public key"
    )
    purposes: list[str] = Field(min_length=1, max_length=len(PURPOSES))


class AuthorizationIn(_Strict):
    authorization_id: str = Field(min_length=1, max_length=128)
    uscc: str = Field(min_length=1, max_length=64)
    institution_id: str = Field(min_length=1, max_length=128)
    purposes: list[str] = Field(min_length=1, max_length=len(PURPOSES))
    not_before: str
    not_after: str
    document_digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class RevocationIn(_Strict):
    reason: str = Field(min_length=1, max_length=512)


class ReportIn(_Strict):
    uscc: str = Field(min_length=1, max_length=64)
    purpose: str = Field(min_length=1, max_length=64)
    authorization_id: str = Field(min_length=1, max_length=128)


class RecordIn(_Strict):
    uscc: str = Field(min_length=1, max_length=64)
    record_type: str | None = None
    record_id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=128)
    observed_at: str
    body: dict[str, Any]
    supersedes: str | None = None
    outcome: str | None = None


class IngestIn(_Strict):
    records: list[RecordIn] | None = Field(default=None, max_length=5000)
    source: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[^\x00]*$",
        description="a JSON Lines file under the node's sources/ directory",
    )


class CosignatureIn(_Strict):
    size: int = Field(ge=0, le=MAX_INDEX)
    line: str = Field(min_length=1, max_length=400)


# --- signatures in, signatures out -------------------------------------------------
#: Limits on the request head, checked before anything else. They sit below the
#: server's own guard (uvicorn's h11 parser refuses a head over 16 KiB with a bare
#: 400), so a request with too many or too large header fields, or too long a
#: target, gets a problem details answer instead.
MAX_HEADER_FIELDS = 64
MAX_HEADER_BYTES = 8 * 1024
MAX_TARGET_BYTES = 4 * 1024


class SignedResponses:
    """Pure ASGI middleware: limit head and body size; sign responses to signed requests.

    Every response to a request that carries signature fields is signed and bound
    to that request, the size refusals (413, 414, 431) included. A request whose
    signature fields cannot be bound to (malformed) gets its answer unsigned: the
    route has already refused it with 401 if it needed a signature.
    """

    def __init__(self, app: ASGIApp, state_getter: Callable[[], NodeState]) -> None:
        self.app = app
        self.state = state_getter

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state()
        raw_headers = scope.get("headers", [])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        path = scope.get("path", "")
        sig_input, sig = headers.get("signature-input"), headers.get("signature")
        if sig_input and sig:
            send = self._signing(send, sig_input, sig, state)
        head_bytes = sum(len(k) + len(v) + 4 for k, v in raw_headers)
        if len(raw_headers) > MAX_HEADER_FIELDS or head_bytes > MAX_HEADER_BYTES:
            await problem(
                431,
                "headers-too-large",
                "Request header fields too large",
                f"requests are limited to {MAX_HEADER_FIELDS} header fields and {MAX_HEADER_BYTES} bytes "
                f"of them, got {len(raw_headers)} fields and {head_bytes} bytes",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        target = len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b""))
        if target > MAX_TARGET_BYTES:
            await problem(
                414,
                "uri-too-long",
                "Request target too long",
                f"request targets are limited to {MAX_TARGET_BYTES} bytes, got {target}",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        limit = state.settings.max_body_bytes
        too_large = problem(
            413,
            "too-large",
            "Body too large",
            f"request bodies are limited to {limit} bytes",
            path,
            state.node_id,
        )
        declared = headers.get("content-length", "").strip()
        if declared and not (declared.isascii() and declared.isdigit()):
            await problem(
                400,
                "bad-request",
                "Bad request",
                f"Content-Length must be a decimal number, got {declared[:40]!r}",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        if declared and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        if not declared:
            # A chunked body declares no length: read it here, up to the limit,
            # so the limit holds for it too, then replay it to the app.
            parts: list[bytes] = []
            total, more = 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                parts.append(message.get("body", b""))
                total += len(parts[-1])
                if total > limit:
                    await too_large(scope, receive, send)
                    return
                more = message.get("more_body", False)
            buffered: list[Any] = [
                {"type": "http.request", "body": b"".join(parts), "more_body": False}
            ]
            upstream = receive

            async def replay() -> Any:
                return buffered.pop() if buffered else await upstream()

            receive = replay
        await self.app(scope, receive, send)

    @staticmethod
    def _signing(
        send: Callable[[Any], Awaitable[None]], sig_input: str, sig: str, state: NodeState
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap ``send``: buffer the response, then send it signed and bound to the request."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    raw = [
                        (k, v)
                        for k, v in start.get("headers", [])
                        if k.lower() != b"content-length"
                    ]
                    raw += [(b"content-length", str(len(body)).encode())]
                    try:
                        extra = httpsig.sign_response(
                            start["status"],
                            {},
                            body,
                            sig_input,
                            sig,
                            f"node:{state.node_id}",
                            state.key,
                        )
                    except httpsig.HttpSignatureError:
                        extra = {}  # nothing usable to bind to: the answer goes out unsigned
                    raw += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    await send({**start, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        return capture


# Witnessing, mirroring and monitoring traffic. Every other request is foreground
# demand (reports, holder answers, authorizations, ingest, ...): mirroring paces
# itself only while there is some (node.peers.mirror.pause_after).
BACKGROUND_PATHS = frozenset(
    {
        "/v1/health",
        "/v1/info",
        "/metrics",
        "/v1/checkpoint",
        "/v1/checkpoint/consistency",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
        "/v1/entries",
        "/v1/catalogue",
        "/v1/cosignatures",
        "/v1/peers",
        "/v1/views",
    }
)


class RequestMetrics:
    """Pure ASGI middleware: count requests by route and status and time them.

    An exception that escaped the problem table becomes a problem here (the
    response has not started), so the client still gets RFC 9457 details.
    """

    def __init__(
        self,
        app: ASGIApp,
        requests: Counter,
        latency: Histogram,
        node_id: str,
        counters: dict[str, Any],
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.node_id = node_id
        self.counters = counters

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]
        if (
            scope.get("path") not in BACKGROUND_PATHS
        ):  # demand that mirroring yields to (node.peers.mirror)
            self.counters["foreground"] = self.counters.get("foreground", 0) + 1

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # reached only if a handler escaped the table
            if status[0]:
                raise  # the answer has started: nothing better can be sent
            await problem_for(exc, str(scope.get("path", "")), self.node_id)(scope, receive, watch)
        name = getattr(scope.get("route"), "path", "unmatched")
        self.requests.labels(name, str(status[0])).inc()
        self.latency.labels(name).observe(time.perf_counter() - t0)


# --- OpenAPI: what the wire actually carries ---------------------------------------------
_B64 = {"type": "string", "maxLength": 8192}
PEER_RECORDS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["query_id", "uscc", "purpose", "institution_id", "authorization"],
    "properties": {
        "query_id": {"type": "string"},
        "uscc": {"type": "string"},
        "purpose": {"type": "string"},
        "institution_id": {"type": "string"},
        "known_size": {"type": "integer", "minimum": 0},
        "authorization": {
            "type": "object",
            "required": ["entry", "index", "checkpoint", "proof"],
            "properties": {
                "entry": _B64,
                "index": {"type": "integer", "minimum": 0},
                "checkpoint": {"type": "string"},
                "proof": {"type": "array", "items": _B64},
            },
        },
        "home_consistency": {
            "type": "object",
            "required": ["from", "proof"],
            "properties": {
                "from": {"type": "integer", "minimum": 0},
                "proof": {"type": "array", "items": _B64},
            },
        },
    },
}
PEER_RECEIPTS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["query_id", "uscc", "institution_id", "purpose"],
    "properties": {
        k: {"type": "string"}
        for k in ("query_id", "uscc", "institution_id", "purpose", "authorization_id", "reason")
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "node_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "node_id": {"type": "string"},
    },
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _document_problems(spec: dict[str, Any]) -> None:
    """Every error is ``application/problem+json``: say so for every operation, 422 included."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    answer = {
        "description": "RFC 9457 problem details",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses["422"] = answer
            responses["default"] = answer
    for name in ("HTTPValidationError", "ValidationError"):
        spec["components"]["schemas"].pop(name, None)


def build_state(
    settings: NodeSettings, *, transport: Any = None, urls: dict[str, str] | None = None
) -> NodeState:
    """Open keys, manifest, ledger and node state for ``settings``."""
    manifest = load_manifest(settings.manifest)
    info = manifest.node(settings.node_id) if manifest.has(settings.node_id) else None
    if info is None:
        raise ConfigError(f"node {settings.node_id} is not in the manifest {settings.manifest}")
    key = load_private_key(settings.key_file)
    if public_b64(key) != info.public_key:
        raise ConfigError(
            f"key file {settings.key_file} does not hold the key the manifest names for {info.node_id}"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from ledger import NoteSigner

    signer = NoteSigner(info.origin, key)
    if settings.ledger_path.exists():
        ledger = Ledger.open(settings.ledger_path, signer=signer)
    else:
        ledger = Ledger.create(
            settings.ledger_path, origin=info.origin, signer=signer, algorithm=manifest.algorithm
        )
    views = PeerViews(settings.state_path, manifest.algorithm)
    peers = PeerClient(
        manifest,
        info.node_id,
        key,
        transport=transport,
        latency_ms=settings.latency_ms,
        loss=settings.loss,
        timeout_s=settings.peer_timeout_s,
        urls=urls,
    )
    return NodeState(
        settings=settings,
        manifest=manifest,
        info=info,
        key=key,
        ledger=ledger,
        views=views,
        peers=peers,
        sequencer=Sequencer(ledger),
    )


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
            _document_problems(generate_openapi())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_middleware(
        RequestMetrics,
        requests=m_requests,
        latency=m_latency,
        node_id=st.node_id,
        counters=st.metrics,
    )
    app.add_middleware(
        SignedResponses, state_getter=lambda: st
    )  # outermost: signs what the rest answers

    async def caller(request: Request) -> Caller:
        return await signed_caller(st, request)

    def require_operator(c: Caller) -> None:
        if c.kind != "node" or c.id != st.node_id:
            raise UnknownPeerError(c.id, "only this node's operator (its own key) may do this")

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidRecordError(f"request body is not JSON: {exc}") from exc

    # --- public reads ----------------------------------------------------------
    @app.get("/v1/health", summary="Liveness and ledger height")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "node_id": st.node_id,
            "height": st.ledger.height,
            "size": st.ledger.size,
        }

    @app.get("/v1/info", summary="Node identity, ledger head, peers")
    async def info() -> dict[str, Any]:
        head = st.ledger.head
        views = {v.node_id: v for v in st.views.views()}
        return {
            "node_id": st.node_id,
            "city": st.info.city,
            "city_name": st.info.city_name,
            "origin": st.info.origin,
            "admin_codes": list(st.info.admin_codes),
            "url": st.settings.public_url,
            "public_key": st.info.public_key,
            "note_verifier": st.ledger.verifier.key_string(),
            "algorithm": st.ledger.algorithm,
            "height": head.height,
            "size": head.size,
            "root": b64(head.root),
            "enterprises": st.metrics.get("enterprises", 0),
            "records": st.metrics.get("records", 0),
            "catalogue": st.views.catalogue_size(),
            "peers": [
                {
                    "node_id": n.node_id,
                    "seen_size": views[n.node_id].size if n.node_id in views else None,
                    "mirrored": views[n.node_id].mirrored if n.node_id in views else 0,
                    "refused": st.views.refused(n.node_id),
                }
                for n in st.manifest.nodes
                if n.node_id != st.node_id
            ],
            "alarms": [dataclasses.asdict(a) for a in st.views.alarms(open_only=True)],
            "ingest": list(st.ingest_jobs.values()),
        }

    def _witnessed_note(head: Block) -> str:
        """The head's signed note followed by the witnesses' cosignature lines."""
        cosigs = st.views.cosignatures(head.size)
        return head.note.decode() + "".join(
            line if line.endswith("\n") else line + "\n" for line in cosigs
        )

    @app.get(
        "/v1/checkpoint",
        summary="Latest signed checkpoint (C2SP signed note, with witness cosignatures)",
        response_class=PlainTextResponse,
    )
    async def checkpoint() -> PlainTextResponse:
        return PlainTextResponse(
            _witnessed_note(st.ledger.head), media_type="text/plain; charset=utf-8"
        )

    @app.get(
        "/v1/checkpoint/consistency",
        summary="Latest signed checkpoint with its consistency proof from "
        "an earlier size (one exchange per mirroring round)",
    )
    async def checkpoint_consistency(old: int = Query(ge=0, le=MAX_INDEX)) -> dict[str, Any]:
        head = st.ledger.head
        note = _witnessed_note(head)
        # A size above ours gets the checkpoint alone: the caller sees a log that shrank.
        proof = (
            [b64(p) for p in st.ledger.consistency_proof(old, head.size)]
            if 0 < old < head.size
            else []
        )
        return {"checkpoint": note, "old": old, "new": head.size, "proof": proof}

    @app.get("/v1/proofs/inclusion", summary="Inclusion proof of an entry")
    async def inclusion(
        index: int = Query(ge=0, le=MAX_INDEX),
        size: int | None = Query(default=None, ge=1, le=MAX_INDEX),
    ) -> dict[str, Any]:
        n = st.ledger.size if size is None else size
        if n > st.ledger.size or index >= n:
            raise InvalidRecordError(
                f"need index < size <= {st.ledger.size}, got index {index}, size {n}"
            )
        return {
            "index": index,
            "size": n,
            "proof": [b64(p) for p in st.ledger.inclusion_proof(index, n)],
        }

    @app.get("/v1/proofs/consistency", summary="Consistency proof between two tree sizes")
    async def consistency(
        old: int = Query(ge=0, le=MAX_INDEX),
        new: int | None = Query(default=None, ge=0, le=MAX_INDEX),
    ) -> dict[str, Any]:
        n = st.ledger.size if new is None else new
        if not old <= n <= st.ledger.size:
            raise InvalidRecordError(f"need old <= new <= {st.ledger.size}, got old {old}, new {n}")
        return {
            "old": old,
            "new": n,
            "proof": [b64(p) for p in st.ledger.consistency_proof(old, n)],
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        m_size.set(st.ledger.size)
        m_height.set(st.ledger.height)
        m_alarms.set(len(st.views.alarms(open_only=True)))
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    # --- consortium-only reads ---------------------------------------------------
    @app.get("/v1/entries", summary="Entries by range: metadata and commitments only, never bodies")
    async def entries(
        start: int = Query(ge=0, le=MAX_INDEX),
        end: int = Query(ge=0, le=MAX_INDEX),
        c: Caller = Depends(caller),
    ) -> dict[str, Any]:
        require_node(c)
        if end < start:
            raise InvalidRecordError(f"end must be >= start, got {start}..{end}")
        end = min(end, start + 2000, st.ledger.size)
        return {
            "start": start,
            "size": st.ledger.size,
            "entries": [{"index": i, "data": b64(d)} for i, d in st.ledger.entries(start, end)],
        }

    # --- operator: ingest and institutions -----------------------------------------
    @app.post(
        "/v1/ingest", summary="Ingest records from this node's local data sources", status_code=202
    )
    async def ingest(body: IngestIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        if body.records:
            items: list[RecordDraft | CorrectionDraft] = []
            for r in body.records:
                parse_uscc(r.uscc)
                if r.supersedes:
                    items.append(
                        CorrectionDraft(
                            r.uscc,
                            r.record_id,
                            r.supersedes,
                            r.outcome or "amended",
                            r.source,
                            r.observed_at,
                            r.body,
                        )
                    )
                else:
                    items.append(
                        RecordDraft(
                            r.uscc,
                            r.record_type or "",
                            r.record_id,
                            r.source,
                            r.observed_at,
                            r.body,
                        )
                    )
            _check_unique_record_ids(st, items)
            block = await st.sequencer.append_now(items)
            st.metrics["enterprises"], st.metrics["records"] = await asyncio.to_thread(
                st.ledger.store.record_counts
            )
            return {
                "status": "done",
                "height": block.height,
                "size": block.size,
                "first_index": block.size - len(items),
            }
        if body.source is not None:
            from node.ingest import start_file_ingest

            return start_file_ingest(st, body.source)
        raise InvalidRecordError("give either 'records' or 'source'")

    @app.get("/v1/ingest", summary="Ingest jobs and their progress")
    async def ingest_status() -> dict[str, Any]:
        return {"jobs": list(st.ingest_jobs.values())}

    @app.post(
        "/v1/institutions", summary="Register a query institution (operator)", status_code=201
    )
    async def register_institution(
        body: InstitutionIn, c: Caller = Depends(caller)
    ) -> dict[str, Any]:
        require_operator(c)
        if st.ledger.store.ref(f"institution:{body.institution_id}") is not None:
            raise DuplicateEntryError(f"institution {body.institution_id}")
        try:
            from node.keys import public_from_b64

            public_from_b64(body.public_key)
        except ValueError as exc:
            raise InvalidRecordError(str(exc)) from exc
        entry = InstitutionEntry(
            body.institution_id, body.name, body.public_key, tuple(body.purposes), utc_now()
        )
        index, block = await st.sequencer.add([entry])
        return {"index": index, "height": block.height, "institution_id": body.institution_id}

    @app.get("/v1/institutions/{institution_id}", summary="A registered institution and its key")
    async def get_institution(institution_id: str) -> dict[str, Any]:
        found = st.ledger.by_ref(f"institution:{institution_id}")
        if found is None:
            raise UnknownInstitutionError(institution_id)
        index, entry = found
        assert isinstance(entry, InstitutionEntry)
        return {
            "index": index,
            "institution_id": entry.institution_id,
            "name": entry.name,
            "public_key": entry.public_key,
            "purposes": list(entry.purposes),
            "registered_at": entry.registered_at,
        }

    # --- institutions: authorizations and reports ----------------------------------------
    @app.post(
        "/v1/authorizations",
        summary="Record an enterprise's authorization for an institution",
        status_code=201,
    )
    async def authorize(body: AuthorizationIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        if c.kind == "institution" and c.id != body.institution_id:
            raise UnknownInstitutionError(
                f"{c.id} (cannot file an authorization for {body.institution_id})"
            )
        if c.kind == "node" and c.id != st.node_id:
            raise UnknownPeerError(
                c.id, "authorizations are filed by institutions or this node's operator"
            )
        if st.institution(body.institution_id) is None:
            raise UnknownInstitutionError(body.institution_id)
        parse_uscc(body.uscc)
        if st.ledger.store.ref(f"authorization:{body.authorization_id}") is not None:
            raise DuplicateEntryError(f"authorization {body.authorization_id}")
        entry = AuthorizationEntry(
            body.authorization_id,
            body.uscc,
            body.institution_id,
            tuple(body.purposes),
            body.not_before,
            body.not_after,
            body.document_digest,
        )
        index, block = await st.sequencer.add([entry])
        return {"index": index, "height": block.height, "authorization_id": body.authorization_id}

    @app.post(
        "/v1/authorizations/{authorization_id}/revocation",
        summary="Revoke an authorization",
        status_code=201,
    )
    async def revoke(
        authorization_id: str, body: RevocationIn, c: Caller = Depends(caller)
    ) -> dict[str, Any]:
        found = st.ledger.by_ref(f"authorization:{authorization_id}")
        if found is None or not isinstance(found[1], AuthorizationEntry):
            raise NotFoundError(f"authorization {authorization_id!r} is not on this ledger")
        auth = found[1]
        if not (
            (c.kind == "institution" and c.id == auth.institution_id)
            or (c.kind == "node" and c.id == st.node_id)
        ):
            raise UnknownInstitutionError(
                f"{c.id} (only {auth.institution_id} or the operator may revoke)"
            )
        if st.ledger.store.ref(f"revocation:{authorization_id}") is not None:
            raise DuplicateEntryError(f"revocation of {authorization_id}")
        entry = RevocationEntry(authorization_id, auth.uscc, utc_now(), body.reason)
        index, block = await st.sequencer.add([entry])
        return {"index": index, "height": block.height, "revoked_at": entry.revoked_at}

    @app.post("/v1/reports", summary="A verified cross-node credit report (institutions)")
    async def report(body: ReportIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        if c.kind != "institution":
            raise UnknownInstitutionError(f"{c.id} (reports are requested by institutions)")
        return await make_report(st, c.id, body.uscc, body.purpose, body.authorization_id)

    @app.get(
        "/v1/enterprises/{uscc}/queries",
        summary="Every query about an enterprise recorded on this ledger",
    )
    async def query_history(uscc: str, c: Caller = Depends(caller)) -> dict[str, Any]:
        """The audit trail of an enterprise on this ledger: who asked, when, why, with what outcome.

        DESIGN.md section 4 (Audit): an enterprise lists every query about it through its
        home node. The trail names the lenders looking at an enterprise, so it is not
        public; these signed callers may read it:

        * any consortium node that is not refused (``node:<id>``), this node's operator
          included: the operator answers the enterprise's own request, and the
          enterprise's home node gathers the trail from every holder. Receipts are
          ledger entries that mirroring peers already read through ``/v1/entries``;
        * an institution registered here that holds a live authorization for this
          enterprise on this ledger (inside its validity window, not revoked): a lender
          with consent may see the enterprise's query history.

        Anyone else gets a 403 problem and learns nothing but that the USCC is well formed.
        """
        parse_uscc(uscc)
        if c.kind == "node" and st.views.refused(c.id):
            raise UnknownPeerError(c.id, f"{c.id} is refused: an alarm against it is open")
        if c.kind == "institution" and not _holds_live_authorization(st, c.id, uscc):
            raise AuthorizationError(
                "no-authorization",
                f"institution {c.id} holds no live authorization for "
                f"enterprise {uscc} on {st.node_id}'s ledger, so it may not read its query history",
            )
        rows = st.ledger.by_subject(uscc, ("receipt",))
        return {
            "uscc": uscc,
            "node_id": st.node_id,
            "queries": [
                {
                    "index": i,
                    **{
                        k: getattr(e, k)
                        for k in (
                            "query_id",
                            "institution_id",
                            "home_node",
                            "holder_node",
                            "role",
                            "purpose",
                            "authorization_id",
                            "outcome",
                            "reason",
                            "records",
                            "at",
                        )
                    },
                }
                for i, e in rows
                if isinstance(e, ReceiptEntry)
            ],
        }

    @app.get(
        "/v1/enterprises/{uscc}/records", summary="This node's records of an enterprise (operator)"
    )
    async def records(
        uscc: str,
        view: str = Query(default="current", pattern="^(current|history)$"),
        c: Caller = Depends(caller),
    ) -> dict[str, Any]:
        require_operator(c)
        parse_uscc(uscc)
        rows = [
            (i, e)
            for i, e in st.ledger.by_subject(uscc, ("record", "correction"))
            if isinstance(e, RecordEntry | CorrectionEntry)
        ]
        keep = (
            {id(e) for e in current_view([e for _, e in rows])}
            if view == "current"
            else {id(e) for _, e in rows}
        )
        return {
            "uscc": uscc,
            "view": view,
            "records": [
                {
                    "index": i,
                    "kind": e.kind,
                    "record_id": e.record_id,
                    "record_type": getattr(e, "record_type", None),
                    "supersedes": getattr(e, "supersedes", None),
                    "observed_at": e.observed_at,
                    "body": st.ledger.body(i)[1],
                }
                for i, e in rows
                if id(e) in keep
            ],
        }

    # --- peers ---------------------------------------------------------------------------
    @app.post(
        "/v1/peer/records",
        summary="A holder's answer to a home node's report query (nodes)",
        openapi_extra=_json_body(PEER_RECORDS_BODY),
    )
    async def peer_records(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_node(c)
        return await answer_peer(st, node, await json_body(request))

    @app.post(
        "/v1/peer/receipts",
        summary="Notice of a query denied by the home node (nodes)",
        status_code=201,
        openapi_extra=_json_body(PEER_RECEIPTS_BODY),
    )
    async def peer_receipts(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_node(c)
        if st.views.refused(node):
            raise UnknownPeerError(node, f"{node} is refused: an alarm against it is open")
        return await record_denial_notice(st, node, await json_body(request))

    @app.post(
        "/v1/cosignatures",
        summary="A witness's cosignature of our checkpoint (nodes)",
        status_code=201,
    )
    async def cosign(body: CosignatureIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_node(c)
        if st.views.refused(node):
            # A witness we caught equivocating vouches for nothing until its alarm is resolved.
            raise UnknownPeerError(node, f"{node} is refused: an alarm against it is open")
        from ledger import CosignatureVerifier

        block = st.ledger.block_for_size(body.size) if body.size else st.ledger.block(0)
        if block.size != body.size:
            raise InvalidRecordError(f"no block has size {body.size}")
        witness = st.manifest.node(node)
        verifier = CosignatureVerifier(witness.origin, base64.b64decode(witness.public_key))
        verifier.verify_line(block.header.text(), body.line)
        st.views.add_cosignature(body.size, node, body.line)
        return {"size": body.size, "witness": node}

    @app.get("/v1/peers", summary="What this node knows of its peers; open alarms")
    async def peers_view() -> dict[str, Any]:
        return {
            "peers": [
                {
                    "node_id": v.node_id,
                    "size": v.size,
                    "height": v.height,
                    "mirrored": v.mirrored,
                    "refused": st.views.refused(v.node_id),
                }
                for v in st.views.views()
            ],
            "alarms": [dataclasses.asdict(a) for a in st.views.alarms()],
        }

    @app.get(
        "/v1/views",
        summary="The peer checkpoints this node has accepted (for gossip between witnesses)",
    )
    async def views() -> dict[str, Any]:
        return {
            "views": [
                {"node_id": v.node_id, "size": v.size, "note": v.note.decode()}
                for v in st.views.views()
            ]
        }

    @app.post("/v1/peers/{peer_id}/resolve", summary="Resolve alarms against a peer (operator)")
    async def resolve(peer_id: str, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        st.manifest.node(peer_id)
        return {"peer_id": peer_id, "resolved": st.views.resolve_alarms(peer_id, utc_now())}

    return app


def _holds_live_authorization(st: NodeState, institution_id: str, uscc: str) -> bool:
    """Whether ``institution_id`` holds an authorization for ``uscc`` that is valid now and not revoked."""
    now = utc_now()
    for _, e in st.ledger.by_subject(uscc, ("authorization",)):
        if not (
            isinstance(e, AuthorizationEntry)
            and e.institution_id == institution_id
            and e.not_before <= now < e.not_after
        ):
            continue
        revoked = st.ledger.by_ref(f"revocation:{e.authorization_id}")
        if (
            revoked is None
            or not isinstance(revoked[1], RevocationEntry)
            or revoked[1].revoked_at > now
        ):
            return True
    return False


def _check_unique_record_ids(st: NodeState, items: list[RecordDraft | CorrectionDraft]) -> None:
    ids = [i.record_id for i in items]
    if len(set(ids)) != len(ids):
        raise InvalidRecordError("record_id values in one batch must be unique")
    by_uscc: dict[str, set[str]] = {}
    for it in items:
        if it.uscc not in by_uscc:
            by_uscc[it.uscc] = {
                getattr(e, "record_id", "")
                for _, e in st.ledger.by_subject(it.uscc, ("record", "correction"))
            }
        if it.record_id in by_uscc[it.uscc]:
            raise DuplicateEntryError(f"record {it.record_id}")
        if isinstance(it, CorrectionDraft) and it.supersedes not in by_uscc[it.uscc] | set(ids):
            raise InvalidRecordError(
                f"correction {it.record_id} supersedes {it.supersedes}, which {st.node_id} does "
                f"not hold for {it.uscc}"
            )
