"""Institutions' routes: authorizations, revocations, reports, the query history and records."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query

from ledger import (
    AuthorizationEntry,
    CorrectionEntry,
    ReceiptEntry,
    RecordEntry,
    RevocationEntry,
    current_view,
    parse_uscc,
    utc_now,
)
from node.api.deps import caller_for, operator_check
from node.api.schemas import (
    AuthorizationIn,
    ReportIn,
    RevocationIn,
)
from node.errors import (
    AuthorizationError,
    DuplicateEntryError,
    NotFoundError,
    UnknownInstitutionError,
    UnknownPeerError,
)
from node.reports import make_report, require_consent
from node.state import Caller, NodeState


def institution_router(st: NodeState) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()
    caller = caller_for(st)
    require_operator = operator_check(st)

    # --- institutions: authorizations and reports ----------------------------------------
    @router.post(
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
            body.consent,
        )
        await require_consent(st, entry)
        index, block = await st.sequencer.add([entry])
        return {"index": index, "height": block.height, "authorization_id": body.authorization_id}

    @router.post(
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

    @router.post("/v1/reports", summary="A verified cross-node credit report (institutions)")
    async def report(body: ReportIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        if c.kind != "institution":
            raise UnknownInstitutionError(f"{c.id} (reports are requested by institutions)")
        started = time.perf_counter()
        args: dict[str, Any] = {"institution_id": c.id, "uscc": body.uscc, "purpose": body.purpose}
        try:
            bundle = await make_report(st, c.id, body.uscc, body.purpose, body.authorization_id)
        except AuthorizationError as exc:
            st.events.on_report(
                st.node_id, seconds=time.perf_counter() - started, denied=str(exc), **args
            )
            raise
        st.events.on_report(
            st.node_id, seconds=time.perf_counter() - started, bundle=bundle, **args
        )
        return bundle

    @router.get(
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

    @router.get(
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

    return router


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
