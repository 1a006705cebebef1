"""The operator's routes: ingest jobs, institution registration, the event feed.

Everything here but an institution's public entry needs a request signed by this node's own
key: starting an ingest, listing the jobs (their source files and errors), registering,
watching receipts and alarms as they are appended (``GET /v1/events``, :mod:`node.events`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query

from ledger import (
    CorrectionDraft,
    InstitutionEntry,
    InvalidRecordError,
    RecordDraft,
    check_record,
    parse_uscc,
    utc_now,
)
from node.api.deps import caller_for, operator_check
from node.api.schemas import (
    IngestIn,
    InstitutionIn,
)
from node.errors import (
    DuplicateEntryError,
    UnknownInstitutionError,
)
from node.events import MAX_WAIT_S
from node.state import Caller, NodeState


def operator_router(st: NodeState) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()
    caller = caller_for(st)
    require_operator = operator_check(st)

    # --- operator: ingest and institutions -----------------------------------------
    @router.post(
        "/v1/ingest", summary="Ingest records from this node's local data sources", status_code=202
    )
    async def ingest(body: IngestIn, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        if body.records:
            from node.ingest import check_body_depth

            items: list[RecordDraft | CorrectionDraft] = []
            for i, r in enumerate(body.records):
                parse_uscc(r.uscc)
                check_body_depth(r.body, f"records[{i}].body")
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
                    check_record(r.record_type or "", r.source, r.body, f"records[{i}]")
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

    @router.get("/v1/ingest", summary="Ingest jobs and their progress (operator)")
    async def ingest_status(c: Caller = Depends(caller)) -> dict[str, Any]:
        # A job names its source file and the line that stopped it (record content in the
        # error): for the operator alone, like starting one.
        require_operator(c)
        return {"jobs": list(st.ingest_jobs.values())}

    @router.post(
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

    @router.get("/v1/institutions/{institution_id}", summary="A registered institution and its key")
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

    @router.get("/v1/events", summary="Receipts, alarms and reports as they happen (operator)")
    async def events(
        subscriber: str | None = Query(default=None, max_length=64),
        wait: float = Query(default=20.0, ge=0, le=MAX_WAIT_S),
        c: Caller = Depends(caller),
    ) -> dict[str, Any]:
        """Without ``subscriber``: subscribe, and get the id to poll with. With it: the
        events queued since the last poll, waiting up to ``wait`` seconds for the first.

        Nothing is queued for anyone while nobody is subscribed; a subscriber idle for a
        minute is forgotten; each one's queue is bounded, and ``dropped`` counts the
        events it missed because the queue was full.
        """
        require_operator(c)
        if subscriber is None:
            sub = st.events.subscribe()
            return {"subscriber": sub.id, "events": [], "dropped": 0}
        return await st.events.poll(subscriber, wait)

    return router


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
