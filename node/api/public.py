"""Public reads: health, identity, checkpoints, proofs and metrics; no signature needed."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest

from ledger import (
    Block,
    InvalidRecordError,
)
from node.api.deps import NodeMetrics
from node.api.schemas import (
    MAX_INDEX,
)
from node.objections import objection_counts
from node.state import NodeState, b64


def public_router(st: NodeState, gauges: NodeMetrics) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()

    # --- public reads ----------------------------------------------------------
    @router.get("/v1/health", summary="Liveness and ledger height")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "node_id": st.node_id,
            "height": st.ledger.height,
            "size": st.ledger.size,
            "manifest_version": st.manifest.version,
        }

    @router.get("/v1/info", summary="Node identity, ledger head, peers")
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
            "clock": {"now": st.clock.now(), "offset_s": st.clock.offset_s},
            "objections": objection_counts(st),
        }

    def _served(by: str | None, size: int) -> None:
        """Note the head a mirroring peer (``by``, unauthenticated) now holds of our log.

        Only a hint: a report request to that peer carries the consistency proof from
        this size (node.reports), which the peer verifies; a wrong hint costs the peer
        one proof fetch, never a wrong acceptance.
        """
        if by and by != st.node_id and st.manifest.has(by):
            st.seen_by[by] = max(st.seen_by.get(by, 0), size)

    def _etag(head: Block) -> str:
        """Names the head, root included (a forked log of the same size has another):
        what a conditional poll compares."""
        return f'"{head.size}.{head.height}.{head.root.hex()}"'

    def _witnessed_note(head: Block) -> str:
        """The head's signed note followed by the witnesses' cosignature lines."""
        cosigs = st.views.cosignatures(head.size)
        return head.note.decode() + "".join(
            line if line.endswith("\n") else line + "\n" for line in cosigs
        )

    @router.get(
        "/v1/checkpoint",
        summary="Latest signed checkpoint (C2SP signed note, with witness cosignatures)",
        response_class=PlainTextResponse,
    )
    async def checkpoint(by: str | None = Query(default=None, max_length=64)) -> PlainTextResponse:
        head = st.ledger.head
        _served(by, head.size)
        return PlainTextResponse(
            _witnessed_note(head),
            media_type="text/plain; charset=utf-8",
            headers={"etag": _etag(head)},
        )

    @router.get(
        "/v1/checkpoint/consistency",
        summary="Latest signed checkpoint with its consistency proof from "
        "an earlier size (one exchange per mirroring round)",
    )
    async def checkpoint_consistency(
        request: Request,
        old: int = Query(ge=0, le=MAX_INDEX),
        by: str | None = Query(default=None, max_length=64),
    ) -> Response:
        head = st.ledger.head
        _served(by, head.size)
        # A witness polls every round: an unchanged head (same size and block) costs a
        # bodyless 304, nothing to sign, prove or verify (node.peers.witnesses).
        etag = _etag(head)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        note = _witnessed_note(head)
        # A size above ours gets the checkpoint alone: the caller sees a log that shrank.
        proof = (
            [b64(p) for p in st.ledger.consistency_proof(old, head.size)]
            if 0 < old < head.size
            else []
        )
        return JSONResponse(
            {"checkpoint": note, "old": old, "new": head.size, "proof": proof},
            headers={"etag": etag},
        )

    @router.get("/v1/proofs/inclusion", summary="Inclusion proof of an entry")
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

    @router.get("/v1/proofs/consistency", summary="Consistency proof between two tree sizes")
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

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        gauges.size.set(st.ledger.size)
        gauges.height.set(st.ledger.height)
        gauges.alarms.set(len(st.views.alarms(open_only=True)))
        return Response(generate_latest(gauges.registry), media_type="text/plain; version=0.0.4")

    return router
