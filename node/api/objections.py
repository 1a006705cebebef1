"""Objection routes (``node.objections``) and the network clock's (``node.clock``).

* ``POST /v1/objections`` — an enterprise's objection, filed at its home node (any signed
  caller; the body carries the enterprise's own signature, which is what counts);
* ``GET /v1/objections`` — this ledger's objections, ``?status=open|overdue|closed|<outcome>``
  and ``?uscc=`` (consortium nodes: the operator, a regulator's or explorer's node);
* ``GET /v1/objections/{id}?holder=`` — the holder's signed entries, fetched and checked by
  this node (consortium nodes);
* ``POST /v1/objections/{id}/outcome`` — the holder's reply (this node's operator);
* ``POST /v1/peer/objections``, ``POST /v1/peer/objection-outcomes``,
  ``GET /v1/peer/objections/{id}`` — between nodes;
* ``GET /v1/clock`` (public) and ``PUT /v1/clock`` (operator) — the network's clock offset.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ledger import InvalidRecordError, parse_uscc
from node.api.deps import caller_for, json_body, operator_check
from node.errors import UnknownPeerError
from node.objections import (
    accept_objection,
    accept_outcome_notice,
    decide_objection,
    file_objection,
    list_objections,
    objection_evidence,
)
from node.state import Caller, NodeState, require_node

__all__ = ["objection_router"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _objection_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise InvalidRecordError(
            f"an objection id is 1-128 characters of [A-Za-z0-9._:-], got {value[:40]!r}"
        )
    return value


def objection_router(st: NodeState) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()
    caller = caller_for(st)
    require_operator = operator_check(st)

    def require_member(c: Caller) -> str:
        node = require_node(c)
        if st.views.refused(node):
            raise UnknownPeerError(node, f"{node} is refused: an alarm against it is open")
        return node

    @router.post(
        "/v1/objections",
        summary="File an enterprise's objection to a record (at its home node)",
        status_code=201,
    )
    async def file(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        who = f"node:{c.id}" if c.kind == "node" else f"inst:{c.id}"
        return await file_objection(st, who, await json_body(request))

    @router.get("/v1/objections", summary="Objections on this ledger, with their deadlines (nodes)")
    async def listing(
        status: str | None = Query(
            default=None, pattern="^(open|overdue|closed|corrected|upheld|unverifiable)$"
        ),
        uscc: str | None = Query(default=None, max_length=18),
        c: Caller = Depends(caller),
    ) -> dict[str, Any]:
        require_member(c)
        if uscc is not None:
            parse_uscc(uscc)
        rows = list_objections(st, uscc=uscc, status=status)
        return {
            "node_id": st.node_id,
            "now": st.clock.now(),
            "clock_offset_s": st.clock.offset_s,
            "objections": rows,
        }

    @router.get(
        "/v1/objections/{objection_id}",
        summary="An objection and its outcome as the holder signed them (nodes)",
    )
    async def evidence(
        objection_id: str,
        holder: str | None = Query(default=None, max_length=128),
        c: Caller = Depends(caller),
    ) -> dict[str, Any]:
        require_member(c)
        target = holder or st.node_id
        if not st.manifest.has(target):
            raise UnknownPeerError(target)
        return await objection_evidence(st, _objection_id(objection_id), target)

    @router.post(
        "/v1/objections/{objection_id}/outcome",
        summary="The holder's reply to an objection: corrected, upheld or unverifiable (operator)",
        status_code=201,
    )
    async def outcome(
        objection_id: str, request: Request, c: Caller = Depends(caller)
    ) -> dict[str, Any]:
        require_operator(c)
        body = await json_body(request)
        return await decide_objection(st, f"node:{c.id}", _objection_id(objection_id), body)

    @router.post("/v1/peer/objections", summary="An objection forwarded by the home node (nodes)")
    async def peer_objection(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_member(c)
        return await accept_objection(st, node, await json_body(request))

    @router.post(
        "/v1/peer/objection-outcomes",
        summary="A holder's signed outcome, for the enterprise's home node (nodes)",
        status_code=201,
    )
    async def peer_outcome(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        node = require_member(c)
        return await accept_outcome_notice(st, node, await json_body(request))

    @router.get(
        "/v1/peer/objections/{objection_id}",
        summary="This holder's objection and outcome entries with proofs (nodes)",
    )
    async def peer_evidence(objection_id: str, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_member(c)
        return await objection_evidence(st, _objection_id(objection_id), st.node_id)

    @router.get("/v1/clock", summary="The network's clock: now and the simulation's offset")
    async def clock() -> dict[str, Any]:
        return {"node_id": st.node_id, "now": st.clock.now(), "offset_s": st.clock.offset_s}

    @router.put("/v1/clock", summary="Advance the network's clock offset (operator)")
    async def set_clock(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        body = await json_body(request)
        if not isinstance(body, dict) or "offset_s" not in body:
            raise InvalidRecordError("give {'offset_s': seconds}")
        st.clock.set_offset(body["offset_s"])
        return {"node_id": st.node_id, "now": st.clock.now(), "offset_s": st.clock.offset_s}

    return router
