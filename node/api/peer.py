"""Consortium routes: entry metadata, records and receipts between nodes, cosignatures, alarms."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ledger import (
    InvalidRecordError,
    utc_now,
)
from node.api.deps import caller_for, json_body, operator_check
from node.api.schemas import (
    MAX_INDEX,
    PEER_RECEIPTS_BODY,
    PEER_RECORDS_BODY,
    CosignatureIn,
    json_body_doc,
)
from node.errors import (
    UnknownPeerError,
)
from node.reports import answer_peer, record_denial_notice
from node.state import Caller, NodeState, b64, require_node


def peer_router(st: NodeState) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()
    caller = caller_for(st)
    require_operator = operator_check(st)

    # --- consortium-only reads ---------------------------------------------------
    @router.get(
        "/v1/entries", summary="Entries by range: metadata and commitments only, never bodies"
    )
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

    # --- peers ---------------------------------------------------------------------------
    @router.post(
        "/v1/peer/records",
        summary="A holder's answer to a home node's report query (nodes)",
        openapi_extra=json_body_doc(PEER_RECORDS_BODY),
    )
    async def peer_records(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_node(c)
        return await answer_peer(st, node, await json_body(request))

    @router.post(
        "/v1/peer/receipts",
        summary="Notice of a query denied by the home node (nodes)",
        status_code=201,
        openapi_extra=json_body_doc(PEER_RECEIPTS_BODY),
    )
    async def peer_receipts(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_node(c)
        if st.views.refused(node):
            raise UnknownPeerError(node, f"{node} is refused: an alarm against it is open")
        return await record_denial_notice(st, node, await json_body(request))

    @router.post(
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

    @router.get("/v1/peers", summary="What this node knows of its peers; open alarms")
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

    @router.get(
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

    @router.post("/v1/peers/{peer_id}/resolve", summary="Resolve alarms against a peer (operator)")
    async def resolve(peer_id: str, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        st.manifest.node(peer_id)
        return {"peer_id": peer_id, "resolved": st.views.resolve_alarms(peer_id, utc_now())}

    return router
