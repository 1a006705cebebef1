"""The objection lifecycle (征信业管理条例): file, flag, verify within 20 days, reply in writing.

Home node (``file_objection``): the enterprise files through the node of its own city,
with its signature (through its city's registry, as consents are: ``node.disputes``). The
home node checks the signature, forwards the objection to the record's holder in a signed
peer call, and keeps a receipt of the filing (granted or denied) on its ledger.

Holder (``accept_objection``): checks that the caller is the enterprise's home node, the
signature, that it holds the record, and that the record is not already disputed; then
appends the ``objection`` entry (due 20 days later on the network's clock,
``node.clock``) with its receipt in one block. From then on every report shows the record
as disputed, with the proven entry (``section_objections``).

Outcome (``decide_objection``, the holder's operator): ``corrected`` (a correction
supersedes the record, in the same block), ``upheld`` or ``unverifiable``; the
``objection_outcome`` entry closes the objection and the home node is sent the signed
outcome (entry, inclusion proof, checkpoint), which it checks and receipts.
``objection_evidence`` gives anyone asking through the home node the holder's signed
entries. Refusals (unknown record, not the enterprise's signature, a closed objection)
are RFC 9457 problems and leave a denied receipt.

Invariants: an objection and its outcome are ledger entries, never edited; one outcome per
objection (the ledger's refs table refuses a second); every step leaves a receipt.
"""

from __future__ import annotations

import uuid
from typing import Any

from ledger import (
    OBJECTION_OUTCOMES,
    CorrectionDraft,
    CorrectionEntry,
    Entry,
    InvalidRecordError,
    Item,
    LedgerError,
    ObjectionEntry,
    ObjectionOutcomeEntry,
    ReceiptEntry,
    RecordEntry,
    entry_bytes,
    leaf_hash,
    parse_entry,
    parse_uscc,
    verify_inclusion,
)
from node.clock import format_time, parse_time
from node.disputes import OBJECTION_DAYS, dispute_marks, verify_objection_consent
from node.errors import (
    DuplicateEntryError,
    NotByEnterpriseError,
    NotFoundError,
    ObjectionClosedError,
    ObjectionError,
    PeerMisbehavedError,
    PeerUnavailableError,
    UnknownPeerError,
    UnknownRecordObjectionError,
)
from node.state import NodeState, b64, unb64

__all__ = [
    "accept_objection",
    "accept_outcome_notice",
    "decide_objection",
    "file_objection",
    "list_objections",
    "objection_counts",
    "objection_evidence",
    "section_objections",
]

_KINDS = ("objection", "objection_outcome")
_PROBLEMS: dict[str, type[ObjectionError]] = {
    "objection-unknown-record": UnknownRecordObjectionError,
    "objection-not-by-enterprise": NotByEnterpriseError,
    "objection-closed": ObjectionClosedError,
}


def _field(body: Any, name: str, limit: int = 512) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRecordError(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _receipt(
    state: NodeState,
    *,
    objection_id: str,
    uscc: str,
    who: str,
    home: str,
    holder: str,
    role: str,
    purpose: str,
    outcome: str,
    reason: str,
    records: int = 1,
) -> ReceiptEntry:
    return ReceiptEntry(
        query_id=objection_id[:128],
        uscc=uscc,
        institution_id=who,
        home_node=home,
        holder_node=holder,
        role=role,
        purpose=purpose,
        authorization_id=objection_id[:128],
        outcome=outcome,
        reason=reason[:512],
        records=records,
        at=state.clock.now(),
    )


async def _deny(state: NodeState, receipt: ReceiptEntry) -> int:
    index, _ = await state.sequencer.add([receipt])
    state.metrics["receipts_denied"] = state.metrics.get("receipts_denied", 0) + 1
    return index


def _evidence(state: NodeState, index: int) -> dict[str, Any]:
    """One entry of ours, provable offline: bytes, index, proof, our signed checkpoint."""
    head = state.ledger.head
    return {
        "index": index,
        "entry": b64(state.ledger.entry_data(index)),
        "checkpoint": head.note.decode(),
        "proof": [b64(p) for p in state.ledger.inclusion_proof(index, head.size)],
    }


def _serves(state: NodeState, node_id: str, uscc: str) -> bool:
    admin = parse_uscc(uscc).admin_code
    return any(n.node_id == node_id for n in state.manifest.nodes_for_admin_code(admin))


# --- filing ----------------------------------------------------------------------------------
async def file_objection(state: NodeState, caller: str, body: Any) -> dict[str, Any]:
    """The home node's side: check, forward to the holder, receipt. ``caller`` signed the request.

    Raises:
        NotByEnterpriseError (403), UnknownRecordObjectionError (404), ObjectionError (409,
        e.g. ``already-disputed``; 403 ``not-home-node`` is raised as UnknownPeerError),
        PeerUnavailableError (502): each after a denied receipt here.
    """
    uscc = _field(body, "uscc", 18)
    parse_uscc(uscc)
    holder = _field(body, "holder", 128)
    record_id = _field(body, "record_id", 128)
    reason = _field(body, "reason")
    objection_id = str(body.get("objection_id") or f"obj-{uuid.uuid4().hex[:16]}")
    consent = str(body.get("consent") or "")
    if not state.manifest.has(holder):
        raise UnknownPeerError(holder)
    if not _serves(state, state.node_id, uscc):
        raise UnknownPeerError(
            state.node_id,
            f"{state.node_id} does not serve the area of {uscc}: an enterprise files objections "
            "through the node of its own city",
        )
    common: dict[str, Any] = dict(
        objection_id=objection_id,
        uscc=uscc,
        who=caller,
        home=state.node_id,
        holder=holder,
        role="home",
        purpose="objection",
    )
    try:
        signer = verify_objection_consent(
            state.manifest,
            objection_id=objection_id,
            uscc=uscc,
            holder_node=holder,
            record_id=record_id,
            reason=reason,
            consent=consent,
        )
    except NotByEnterpriseError as exc:
        await _deny(
            state, _receipt(state, outcome="denied", reason=f"not-enterprise: {exc}", **common)
        )
        raise
    request = {
        "objection_id": objection_id,
        "uscc": uscc,
        "holder": holder,
        "record_id": record_id,
        "reason": reason,
        "consent": consent,
    }
    common["who"] = signer  # the enterprise, through its registry
    try:
        if holder == state.node_id:
            # A refusal here is receipted (and raised) by the holder's side itself.
            answer = await accept_objection(state, state.node_id, request)
        else:
            answer = await state.peers.call(
                holder, "POST", "/v1/peer/objections", json_body=request
            )
    except PeerUnavailableError as exc:
        problem = exc.problem or {}
        slug = str(problem.get("type", "")).rsplit(":", 1)[-1]
        refused = _PROBLEMS.get(slug)
        detail = str(problem.get("detail") or exc.detail)
        why = str(problem.get("reason") or slug or "unavailable")
        await _deny(
            state,
            _receipt(
                state, outcome="denied", reason=f"{why}: {holder} refused: {detail}", **common
            ),
        )
        if refused is not None:
            raise refused(detail) from exc  # type: ignore[call-arg]
        if slug in ("objection-refused", "duplicate-entry"):
            raise ObjectionError(why, f"{holder}: {detail}") from exc
        raise
    try:
        entry = _proven_entry(state, holder, answer["objection"], ObjectionEntry)
    except (KeyError, TypeError, ValueError, LedgerError) as exc:
        raise PeerMisbehavedError(holder, f"objection answer does not verify: {exc}") from exc
    if holder != state.node_id:
        await _check_holder_checkpoint(state, holder, answer["objection"])
    index, block = await state.sequencer.add(
        [
            _receipt(
                state,
                outcome="granted",
                reason=f"objection to {record_id} filed at {holder}, due {entry.due_at}",
                **common,
            )
        ]
    )
    state.metrics["objections_filed"] = state.metrics.get("objections_filed", 0) + 1
    return {
        "objection_id": objection_id,
        "uscc": uscc,
        "holder": holder,
        "record_id": record_id,
        "filed_at": entry.filed_at,
        "due_at": entry.due_at,
        "objection": answer["objection"],
        "home_receipt": _evidence(state, index),
    }


def _proven_entry(state: NodeState, holder: str, ev: dict[str, Any], cls: type[Any]) -> Any:
    """The entry of ``ev`` when it decodes to ``cls`` (its inclusion is checked by the caller)."""
    entry = parse_entry(unb64(str(ev["entry"])))
    if not isinstance(entry, cls):
        raise ValueError(f"the entry is a {entry.kind}, not a {cls.kind}")
    return entry


async def _check_holder_checkpoint(state: NodeState, holder: str, ev: dict[str, Any]) -> None:
    """``ev``'s entry is included in ``holder``'s signed checkpoint, consistent with our view."""
    entry_b = unb64(str(ev["entry"]))
    try:
        header = await state.views.accept_checkpoint(
            holder,
            str(ev["checkpoint"]).encode(),
            state.verifier_for(holder),
            state.peers.consistency_fetcher(holder),
            advance=False,
            latest=False,
        )
        verify_inclusion(
            leaf_hash(entry_b, state.ledger.algorithm),
            int(ev["index"]),
            header.size,
            [unb64(p) for p in ev["proof"]],
            header.root,
            state.ledger.algorithm,
        )
    except (LedgerError, KeyError, TypeError, ValueError) as exc:
        raise PeerMisbehavedError(
            holder, f"the entry is not shown included in {holder}'s signed checkpoint: {exc}"
        ) from exc


def _held_record(state: NodeState, uscc: str, record_id: str) -> tuple[int, Entry] | None:
    for i, e in state.ledger.by_subject(uscc, ("record", "correction")):
        if isinstance(e, RecordEntry | CorrectionEntry) and e.record_id == record_id:
            return i, e
    return None


def _open_objection_on(state: NodeState, uscc: str, record_id: str) -> str | None:
    for m in dispute_marks(_objection_entries(state, uscc)):
        if m["record_id"] == record_id and m["status"] == "open":
            return str(m["objection_id"])
    return None


def _objection_entries(
    state: NodeState, uscc: str, size: int | None = None
) -> list[ObjectionEntry | ObjectionOutcomeEntry]:
    return [
        e
        for i, e in state.ledger.by_subject(uscc, _KINDS)
        if (size is None or i < size) and isinstance(e, ObjectionEntry | ObjectionOutcomeEntry)
    ]


async def accept_objection(state: NodeState, caller_node: str, body: Any) -> dict[str, Any]:
    """The holder's side of a filing: check, flag the record, receipt.

    Raises:
        UnknownPeerError: the caller is not the enterprise's home node (403).
        NotByEnterpriseError, UnknownRecordObjectionError, ObjectionError
        (``already-disputed``), DuplicateEntryError: each after a denied receipt.
    """
    if not state.manifest.has(caller_node):
        raise UnknownPeerError(caller_node)
    if state.views.refused(caller_node):
        raise UnknownPeerError(
            caller_node, f"{caller_node} is refused: an alarm against it is open"
        )
    uscc = _field(body, "uscc", 18)
    parse_uscc(uscc)
    objection_id = _field(body, "objection_id", 128)
    record_id = _field(body, "record_id", 128)
    reason = _field(body, "reason")
    consent = str(body.get("consent") or "")
    if str(body.get("holder")) != state.node_id:
        raise InvalidRecordError(f"the objection is addressed to {body.get('holder')!r}, not here")
    common: dict[str, Any] = dict(
        objection_id=objection_id,
        uscc=uscc,
        who=f"node:{caller_node}",
        home=caller_node,
        holder=state.node_id,
        role="holder",
        purpose="objection",
    )
    try:
        if not _serves(state, caller_node, uscc):
            raise ObjectionError(
                "not-home-node",
                f"{caller_node} is not a node of {uscc}'s city: objections come through the "
                "enterprise's home node",
            )
        common["who"] = verify_objection_consent(
            state.manifest,
            objection_id=objection_id,
            uscc=uscc,
            holder_node=state.node_id,
            record_id=record_id,
            reason=reason,
            consent=consent,
        )
        if state.ledger.store.ref(f"objection:{objection_id}") is not None:
            raise ObjectionError("duplicate", f"objection {objection_id} is already on the ledger")
        if _held_record(state, uscc, record_id) is None:
            raise UnknownRecordObjectionError(
                f"{state.node_id} holds no record {record_id!r} of enterprise {uscc}"
            )
        already = _open_objection_on(state, uscc, record_id)
        if already is not None:
            raise ObjectionError(
                "already-disputed",
                f"record {record_id} is already disputed by objection {already}, still open",
            )
    except ObjectionError as exc:
        await _deny(
            state, _receipt(state, outcome="denied", reason=f"{exc.reason}: {exc}", **common)
        )
        raise
    filed = state.clock.now()
    entry = ObjectionEntry(
        objection_id=objection_id,
        uscc=uscc,
        record_id=record_id,
        holder_node=state.node_id,
        home_node=caller_node,
        reason=reason,
        filed_at=filed,
        due_at=format_time(parse_time(filed) + OBJECTION_DAYS * 86400),
        consent=consent,
    )
    receipt = _receipt(
        state,
        outcome="granted",
        reason=f"objection to {record_id} recorded; the record is disputed until the outcome",
        **common,
    )
    index, _ = await state.sequencer.add([entry, receipt])
    state.metrics["objections_open"] = state.metrics.get("objections_open", 0) + 1
    return {
        "objection_id": objection_id,
        "objection": _evidence(state, index),
        "receipt": _evidence(state, index + 1),
    }


# --- the outcome -------------------------------------------------------------------------------
def _find_objection(state: NodeState, objection_id: str) -> tuple[int, ObjectionEntry]:
    found = state.ledger.by_ref(f"objection:{objection_id}")
    if found is None or not isinstance(found[1], ObjectionEntry):
        raise NotFoundError(f"objection {objection_id!r} is not on {state.node_id}'s ledger")
    return found[0], found[1]


async def decide_objection(
    state: NodeState, caller: str, objection_id: str, body: Any
) -> dict[str, Any]:
    """The holder's written reply: the outcome entry (and the correction), then the home node
    is sent the signed outcome.

    Raises:
        NotFoundError: no such objection here (404).
        ObjectionClosedError: it already has its outcome (409; a denied receipt is kept).
        InvalidRecordError: a bad outcome or correction (422).
    """
    _, obj = _find_objection(state, objection_id)
    outcome = _field(body, "outcome", 32)
    if outcome not in OBJECTION_OUTCOMES:
        raise InvalidRecordError(f"outcome must be one of {OBJECTION_OUTCOMES}, got {outcome!r}")
    verification = _field(body, "verification", 2000)
    common: dict[str, Any] = dict(
        objection_id=objection_id,
        uscc=obj.uscc,
        who=caller,
        home=obj.home_node,
        holder=state.node_id,
        role="holder",
        purpose="objection-outcome",
    )
    done = state.ledger.by_ref(f"objection_outcome:{objection_id}")
    if done is not None and isinstance(done[1], ObjectionOutcomeEntry):
        exc = ObjectionClosedError(
            f"objection {objection_id} was closed at {done[1].decided_at} as {done[1].outcome}; "
            "an outcome is final"
        )
        await _deny(
            state, _receipt(state, outcome="denied", reason=f"closed: {exc}", records=0, **common)
        )
        raise exc
    items: list[Item] = []
    correction_id = ""
    now = state.clock.now()
    if outcome == "corrected":
        c = body.get("correction")
        if not isinstance(c, dict):
            raise InvalidRecordError(
                "a corrected outcome needs 'correction': {record_id, body, outcome, source}"
            )
        correction_id = _field(c, "record_id", 128)
        if _held_record(state, obj.uscc, correction_id) is not None:
            raise DuplicateEntryError(f"record {correction_id}")
        kind = str(c.get("outcome") or "amended")
        items.append(
            CorrectionDraft(
                obj.uscc,
                correction_id,
                obj.record_id,
                kind,
                str(c.get("source") or f"{state.node_id}-objections"),
                str(c.get("observed_at") or now),
                c.get("body"),
            )
        )
    elif body.get("correction") is not None:
        raise InvalidRecordError(f"only a corrected outcome carries a correction, not {outcome}")
    result = ObjectionOutcomeEntry(
        objection_id=objection_id,
        uscc=obj.uscc,
        record_id=obj.record_id,
        outcome=outcome,
        verification=verification,
        decided_at=now,
        correction_id=correction_id,
    )
    late = now > obj.due_at
    items.append(result)
    items.append(
        _receipt(
            state,
            outcome="granted",
            reason=f"objection outcome {outcome}"
            + (f" (after the deadline {obj.due_at})" if late else ""),
            **common,
        )
    )
    first, _ = await state.sequencer.add(items)
    at = first + len(items) - 2
    evidence = _evidence(state, at)
    out: dict[str, Any] = {
        "objection_id": objection_id,
        "outcome": outcome,
        "decided_at": now,
        "due_at": obj.due_at,
        "late": late,
        "outcome_entry": evidence,
        "delivered": False,
    }
    if correction_id:
        out["correction"] = _evidence(state, first)
    notice = {"objection_id": objection_id, "outcome": evidence}
    try:
        if obj.home_node == state.node_id:
            await accept_outcome_notice(state, state.node_id, notice)
        else:
            await state.peers.call(
                obj.home_node, "POST", "/v1/peer/objection-outcomes", json_body=notice
            )
        out["delivered"] = True
    except (PeerUnavailableError, PeerMisbehavedError, UnknownPeerError) as exc:
        # The outcome stands on our ledger; the enterprise can still fetch it through its
        # home node (objection_evidence).
        out["delivery_error"] = str(exc)
    return out


async def accept_outcome_notice(state: NodeState, caller_node: str, body: Any) -> dict[str, Any]:
    """The home node receives a holder's signed outcome: check it, keep a receipt.

    Raises:
        PeerMisbehavedError: the outcome is not the caller's, or not included in its signed
            checkpoint (502).
        InvalidRecordError: malformed (422).
    """
    try:
        ev = body["outcome"]
        entry = parse_entry(unb64(str(ev["entry"])))
    except (KeyError, TypeError, ValueError, LedgerError) as exc:
        raise InvalidRecordError(f"outcome notice is malformed: {exc}") from exc
    if not isinstance(entry, ObjectionOutcomeEntry):
        raise InvalidRecordError(f"the notice carries a {entry.kind} entry, not an outcome")
    if caller_node != state.node_id:
        await _check_holder_checkpoint(state, caller_node, ev)
    if not _serves(state, state.node_id, entry.uscc):
        raise UnknownPeerError(state.node_id, f"{state.node_id} is not the home of {entry.uscc}")
    index, _ = await state.sequencer.add(
        [
            _receipt(
                state,
                objection_id=entry.objection_id,
                uscc=entry.uscc,
                who=f"node:{caller_node}",
                home=state.node_id,
                holder=caller_node,
                role="home",
                purpose="objection-outcome",
                outcome="granted",
                reason=f"outcome {entry.outcome} received from {caller_node} "
                f"({entry.decided_at}): {entry.verification}",
            )
        ]
    )
    return {"objection_id": entry.objection_id, "receipt": _evidence(state, index)}


# --- reading ---------------------------------------------------------------------------------------
def section_objections(state: NodeState, uscc: str, size: int) -> dict[str, Any]:
    """What a report section adds about objections: the proven entries and the marks.

    Empty (no keys) when the enterprise has no objection here, so sections stay as before.
    """
    rows = [
        (i, e)
        for i, e in state.ledger.by_subject(uscc, _KINDS)
        if i < size and isinstance(e, ObjectionEntry | ObjectionOutcomeEntry)
    ]
    if not rows:
        return {}
    return {
        "objections": [
            {
                "index": i,
                "entry": b64(entry_bytes(e)),
                "proof": [b64(p) for p in state.ledger.inclusion_proof(i, size)],
            }
            for i, e in rows
        ],
        "disputes": dispute_marks([e for _, e in rows]),
    }


def list_objections(
    state: NodeState, *, uscc: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """The objections on this ledger (of one enterprise, or all), with status and deadline.

    ``status`` filters: ``open``, ``overdue`` (open past its deadline on the network's
    clock), ``closed`` or an outcome.
    """
    now = state.clock.now()
    if uscc is not None:
        entries = _objection_entries(state, uscc)
    else:
        entries = []
        for _, index in state.ledger.store.refs_with_prefix("objection:"):
            obj = state.ledger.entry(index)
            if isinstance(obj, ObjectionEntry):
                entries.append(obj)
                done = state.ledger.by_ref(f"objection_outcome:{obj.objection_id}")
                if done is not None and isinstance(done[1], ObjectionOutcomeEntry):
                    entries.append(done[1])
    objections = {e.objection_id: e for e in entries if isinstance(e, ObjectionEntry)}
    out = []
    for m in dispute_marks(entries):
        o = objections[m["objection_id"]]
        m = {**m, "uscc": o.uscc, "home_node": o.home_node, "reason": o.reason}
        m["overdue"] = m["status"] == "open" and now > o.due_at
        wanted = (
            status is None
            or m["status"] == status
            or (status == "overdue" and m["overdue"])
            or (status == "closed" and m["status"] != "open")
        )
        if wanted:
            out.append(m)
    return out


def objection_counts(state: NodeState) -> dict[str, Any]:
    """Open and overdue objections held here, the overdue ones named (for /v1/info and status)."""
    if not state.ledger.store.refs_with_prefix("objection:"):
        return {"open": 0, "overdue": 0, "overdue_ids": []}
    rows = list_objections(state, status="open")
    overdue = [r for r in rows if r["overdue"]]
    return {
        "open": len(rows),
        "overdue": len(overdue),
        "overdue_ids": [
            {
                "objection_id": r["objection_id"],
                "uscc": r["uscc"],
                "record_id": r["record_id"],
                "due_at": r["due_at"],
            }
            for r in overdue[:50]
        ],
    }


async def objection_evidence(state: NodeState, objection_id: str, holder: str) -> dict[str, Any]:
    """The holder's signed objection and outcome entries, each provable with the manifest.

    Asked of the holder in a signed peer call when it is another node; checked here.
    """
    if holder != state.node_id:
        answer = await state.peers.call(holder, "GET", f"/v1/peer/objections/{objection_id}")
        for key in ("objection", "outcome"):
            if answer.get(key) is not None:
                await _check_holder_checkpoint(state, holder, answer[key])
        return {**answer, "holder": holder, "verified_by": state.node_id}
    index, obj = _find_objection(state, objection_id)
    done = state.ledger.by_ref(f"objection_outcome:{objection_id}")
    closing: list[ObjectionEntry | ObjectionOutcomeEntry] = [obj]
    if done is not None and isinstance(done[1], ObjectionOutcomeEntry):
        closing.append(done[1])
    marks = dispute_marks(closing)
    mark = marks[0]
    mark["overdue"] = mark["status"] == "open" and state.clock.now() > obj.due_at
    return {
        "objection_id": objection_id,
        "holder": state.node_id,
        "uscc": obj.uscc,
        "record_id": obj.record_id,
        "status": mark,
        "objection": _evidence(state, index),
        "outcome": _evidence(state, done[0]) if done else None,
        "verified_by": state.node_id,
    }
