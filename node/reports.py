"""Credit reports: the home node's side and the holder's side of a query.

Home (``make_report``): check the institution and the cited authorization,
route by the USCC's administrative code and the catalogue, ask every holder
in parallel, verify every answer (checkpoint signature, consistency with what
we saw before, every body against its commitment, every inclusion proof),
write the home receipt, and return a signed, self-contained bundle. A holder
that is down, slow, refuses or fails verification is named in ``missing``
and the report is ``partial`` — never silently short.

Holder (``answer_peer``): check that the caller is a manifest node not under
alarm, that the authorization entry is included in the home node's signed
checkpoint and that checkpoint is consistent with our view of the home node,
that it allows this institution, enterprise, purpose and moment and is not
revoked; write the holder receipt; answer with bodies, salts and proofs.
"""

from __future__ import annotations

import asyncio
import bisect
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger import (
    PURPOSES,
    AuthorizationEntry,
    BlockHeader,
    CommitmentError,
    CorrectionEntry,
    Entry,
    InvalidRecordError,
    Item,
    LedgerError,
    ProofError,
    ReceiptEntry,
    RevocationEntry,
    canonical_bytes,
    entry_bytes,
    leaf_hash,
    parse_entry,
    parse_uscc,
    utc_now,
    verify_inclusion,
)
from node.bundle import verify_record_item
from node.consent import verify_consent
from node.disputes import verify_objection_items
from node.errors import (
    AuthorizationError,
    BundleError,
    DenialNoticeError,
    NotFoundError,
    PeerMisbehavedError,
    PeerUnavailableError,
    RateLimitedError,
    UnknownInstitutionError,
    UnknownPeerError,
)
from node.objections import section_objections
from node.sequencer import Guard
from node.stages import Span, stage
from node.state import NodeState, b64, parsed_entry, unb64

__all__ = [
    "answer_peer",
    "check_authorization",
    "make_report",
    "record_denial_notice",
    "require_consent",
    "route",
]


def check_authorization(
    state: NodeState,
    auth: AuthorizationEntry,
    *,
    institution_id: str,
    uscc: str,
    purpose: str,
    now: str,
    home_node: str,
) -> None:
    """Raise AuthorizationError (with a reason slug) unless ``auth`` allows this query now."""
    if auth.institution_id != institution_id:
        raise AuthorizationError(
            "other-institution",
            f"authorization {auth.authorization_id} was given to {auth.institution_id}, not {institution_id}",
        )
    if auth.uscc != uscc:
        raise AuthorizationError(
            "other-enterprise",
            f"authorization {auth.authorization_id} is for enterprise {auth.uscc}, not {uscc}",
        )
    if purpose not in auth.purposes:
        raise AuthorizationError(
            "other-purpose",
            f"authorization {auth.authorization_id} allows {', '.join(auth.purposes)}, not {purpose}",
        )
    if now < auth.not_before:
        raise AuthorizationError(
            "not-yet-valid",
            f"authorization {auth.authorization_id} is valid from {auth.not_before}",
        )
    if now >= auth.not_after:
        raise AuthorizationError(
            "expired", f"authorization {auth.authorization_id} expired at {auth.not_after}"
        )
    if home_node == state.node_id:
        # A revocation is final from its ledger position, whatever the clock says
        # now (a clock stepped back must not revive a consent).
        found = state.ledger.by_ref(f"revocation:{auth.authorization_id}")
        if found is not None and isinstance(found[1], RevocationEntry):
            raise AuthorizationError(
                "revoked",
                f"authorization {auth.authorization_id} was revoked at {found[1].revoked_at}",
            )
    elif state.views.is_revoked(home_node, auth.authorization_id):
        raise AuthorizationError(
            "revoked", f"authorization {auth.authorization_id} was revoked on {home_node}'s ledger"
        )
    verify_consent(state.manifest, auth)


async def require_consent(state: NodeState, auth: AuthorizationEntry) -> None:
    """Refuse to file ``auth`` without the enterprise's consent, leaving a denied receipt.

    Raises:
        AuthorizationError: the consent is missing or does not verify (403).
    """
    try:
        verify_consent(state.manifest, auth)
    except AuthorizationError as exc:
        query_id = uuid.uuid4().hex
        await _receipt(
            state,
            query_id=query_id,
            uscc=auth.uscc,
            institution_id=auth.institution_id,
            home=state.node_id,
            holder=state.node_id,
            role="home",
            purpose=auth.purposes[0],
            authorization_id=auth.authorization_id,
            outcome="denied",
            reason=f"{exc.reason}: filing refused: {exc}",
            records=0,
        )
        raise AuthorizationError(
            exc.reason, f"{exc} (the filing is recorded as denied, query {query_id})"
        ) from exc


def route(state: NodeState, uscc: str) -> list[str]:
    """Holders of an enterprise: its city's nodes (by admin code) and the catalogue's.

    A ``full`` catalogue lists every holder, so only the city nodes it names
    are asked. A ``compact`` catalogue lists only holders outside the
    enterprise's city (``node.catalogue``), so every node of that city is asked.
    """
    admin = parse_uscc(uscc).admin_code
    city_nodes = {n.node_id for n in state.manifest.nodes_for_admin_code(admin)}
    known = state.views.holders(uscc)
    if state.ledger.store.by_subject(uscc, ("record", "correction")):
        known.add(state.node_id)
    if state.settings.catalogue == "compact" or not (known & city_nodes):
        known |= city_nodes  # (full) the catalogue has not seen the home registration yet: ask the whole city
    return sorted(known)


PAGE_TTL_S = 120.0  # how long a holder keeps a paged answer for its home node
MAX_OPEN_PAGES = 256  # paged answers kept at once (oldest dropped first)


@dataclass
class _Selection:
    """What a holder serves for one query: indices below ``size``, and how many it had."""

    size: int
    indices: list[int]
    total: int
    auth: AuthorizationEntry | None = None
    expires: float = 0.0

    @property
    def truncated(self) -> bool:
        return len(self.indices) < self.total


def _select(state: NodeState, uscc: str, size: int) -> _Selection:
    """Every record and correction of ``uscc`` below ``size``, up to the holder's cap.

    Over the cap, superseded records are dropped first, then current records,
    corrections last (oldest first within each): a record never appears without
    the correction that supersedes it.
    """
    found = [(i, e) for i, e in state.ledger.by_subject(uscc, ("record", "correction")) if i < size]
    cap = state.settings.max_records_per_holder
    if len(found) <= cap:
        return _Selection(size, [i for i, _ in found], len(found))
    superseded = {e.supersedes for _, e in found if isinstance(e, CorrectionEntry)}

    def rank(ie: tuple[int, Entry]) -> tuple[int, int]:
        i, e = ie
        tier = (
            2
            if isinstance(e, CorrectionEntry)
            else 0
            if getattr(e, "record_id", None) in superseded
            else 1
        )
        return tier, i

    ranked = sorted(found, key=rank, reverse=True)
    return _Selection(size, sorted(i for i, _ in ranked[:cap]), len(found))


def _record_items(state: NodeState, indices: Sequence[int], size: int) -> list[dict[str, Any]]:
    out = []
    for index in indices:
        salt, body = state.ledger.body(index)
        out.append(
            {
                "index": index,
                "entry": b64(state.ledger.entry_data(index)),
                "salt": b64(salt),
                "body": body,
                "proof": [b64(p) for p in state.ledger.inclusion_proof(index, size)],
            }
        )
    return out


def _counts(sel: _Selection) -> dict[str, Any]:
    return {"records_total": sel.total, "truncated": sel.truncated}


def _served_reason(sel: _Selection) -> str:
    if sel.truncated:
        return f"truncated: {len(sel.indices)} of {sel.total} records (max_records_per_holder)"
    return "complete"


async def _receipt(
    state: NodeState,
    *,
    query_id: str,
    uscc: str,
    institution_id: str,
    home: str,
    holder: str,
    role: str,
    purpose: str,
    authorization_id: str,
    outcome: str,
    reason: str,
    records: int,
    guard: Guard | None = None,
) -> dict[str, Any]:
    entry = ReceiptEntry(
        query_id=query_id,
        uscc=uscc,
        institution_id=institution_id,
        home_node=home,
        holder_node=holder,
        role=role,
        purpose=purpose[:64] or "-",
        authorization_id=authorization_id[:128] or "-",
        outcome=outcome,
        reason=reason[:512] or "-",
        records=records,
        at=utc_now(),
    )
    with stage(f"{role}_receipt"):
        index, block = await state.sequencer.add([entry], guard)
    state.metrics[f"receipts_{outcome}"] = state.metrics.get(f"receipts_{outcome}", 0) + 1
    return {
        "index": index,
        "entry": b64(entry_bytes(entry)),
        "checkpoint": block.note.decode(),
        "proof": [b64(p) for p in state.ledger.inclusion_proof(index, block.size)],
    }


NOTICES_PER_S = 5.0  # denial notices a peer may send, sustained ...
NOTICE_BURST = 50.0  # ... and at once


def _take_notice_token(state: NodeState, peer: str) -> None:
    now = time.monotonic()
    tokens, at = state.notice_buckets.get(peer, (NOTICE_BURST, now))
    tokens = min(NOTICE_BURST, tokens + (now - at) * NOTICES_PER_S)
    if tokens < 1.0:
        state.notice_buckets[peer] = (tokens, now)
        raise RateLimitedError(
            f"{peer} sent more than {NOTICE_BURST:.0f} denial notices at once or "
            f"{NOTICES_PER_S:g} per second",
            retry_after_s=max(1, int((1.0 - tokens) / NOTICES_PER_S + 0.999)),
        )
    state.notice_buckets[peer] = (tokens - 1.0, now)


async def record_denial_notice(
    state: NodeState, caller_node: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A home node tells a holder it denied a query: the holder keeps a receipt too.

    The notice must cite the home node's own denied receipt for that query,
    included in the home node's signed checkpoint (consistent with what this
    node has seen of it): a peer cannot fill another ledger with queries that
    never happened. Notices are rate-limited per peer.

    Raises:
        RateLimitedError: the peer is over its share of notices (429).
        DenialNoticeError: the notice cites no such receipt of the sender (403).
        InvalidRecordError: the notice is malformed (422).
    """
    _take_notice_token(state, caller_node)
    try:
        query_id = str(body["query_id"])
        cited = body["receipt"]
        entry_b = unb64(cited["entry"])
        index = int(cited["index"])
        note = str(cited["checkpoint"]).encode()
        proof = [unb64(p) for p in cited["proof"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"denial notice lacks {exc}") from exc
    try:
        receipt = parse_entry(entry_b)
    except LedgerError as exc:
        raise DenialNoticeError(f"the cited receipt does not decode: {exc}") from exc
    if not (
        isinstance(receipt, ReceiptEntry)
        and receipt.query_id == query_id
        and receipt.home_node == caller_node == receipt.holder_node
        and receipt.role == "home"
        and receipt.outcome == "denied"
    ):
        raise DenialNoticeError(
            f"the cited entry is not {caller_node}'s own denied receipt for query {query_id}"
        )
    try:
        header = await state.views.accept_checkpoint(
            caller_node,
            note,
            state.verifier_for(caller_node),
            state.peers.consistency_fetcher(caller_node),
            advance=False,
            latest=False,
        )
        verify_inclusion(
            leaf_hash(entry_b, state.ledger.algorithm),
            index,
            header.size,
            proof,
            header.root,
            state.ledger.algorithm,
        )
    except (LedgerError, PeerUnavailableError) as exc:
        raise DenialNoticeError(
            f"the receipt of query {query_id} is not shown included in {caller_node}'s "
            f"signed checkpoint: {exc}"
        ) from exc
    return await _receipt(
        state,
        query_id=receipt.query_id,
        uscc=receipt.uscc,
        institution_id=receipt.institution_id,
        home=caller_node,
        holder=state.node_id,
        role="holder",
        purpose=receipt.purpose,
        authorization_id=receipt.authorization_id,
        outcome="denied",
        reason=f"denied by home node {caller_node}: {receipt.reason}",
        records=0,
    )


async def make_report(
    state: NodeState, institution_id: str, uscc: str, purpose: str, authorization_id: str
) -> dict[str, Any]:
    parse_uscc(uscc)  # InvalidUsccError names the broken rule
    if purpose not in PURPOSES:
        raise InvalidRecordError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    institution = state.institution(institution_id)
    if institution is None:
        raise UnknownInstitutionError(institution_id)
    query_id = uuid.uuid4().hex
    now = utc_now()
    with stage("routing"):
        holders = route(state, uscc)
    common: dict[str, Any] = dict(
        query_id=query_id,
        uscc=uscc,
        institution_id=institution_id,
        home=state.node_id,
        purpose=purpose,
        authorization_id=authorization_id,
    )
    auth_span = Span("authorization_check")
    try:
        if purpose not in institution.purposes:
            raise AuthorizationError(
                "purpose-not-registered",
                f"institution {institution_id} is not registered for {purpose}",
            )
        found = state.by_ref(f"authorization:{authorization_id}")
        if found is None or not isinstance(found[1], AuthorizationEntry):
            raise AuthorizationError(
                "unknown", f"authorization {authorization_id!r} is not on {state.node_id}'s ledger"
            )
        auth_index, auth = found[0], found[1]
        check_authorization(
            state,
            auth,
            institution_id=institution_id,
            uscc=uscc,
            purpose=purpose,
            now=now,
            home_node=state.node_id,
        )
        auth_span.stop()
    except AuthorizationError as exc:
        denied = await _receipt(
            state,
            holder=state.node_id,
            role="home",
            outcome="denied",
            reason=f"{exc.reason}: {exc}",
            records=0,
            **common,
        )
        notice = {
            "query_id": query_id,
            "uscc": uscc,
            "institution_id": institution_id,
            "purpose": purpose,
            "authorization_id": authorization_id,
            "reason": f"{exc.reason}: {exc}",
            "receipt": denied,  # the holders check it against our signed checkpoint
        }
        await asyncio.gather(
            *(
                state.peers.call(h, "POST", "/v1/peer/receipts", json_body=notice)
                for h in holders
                if h != state.node_id
            ),
            return_exceptions=True,
        )
        raise AuthorizationError(
            exc.reason, f"{exc} (query {query_id} recorded as denied)"
        ) from exc

    head = state.ledger.head
    authorization = {
        "node_id": state.node_id,
        "index": auth_index,
        "entry": b64(entry_bytes(auth)),
        "checkpoint": head.note.decode(),
        "proof": [b64(p) for p in state.ledger.inclusion_proof(auth_index, head.size)],
    }
    request = {
        "query_id": query_id,
        "uscc": uscc,
        "purpose": purpose,
        "institution_id": institution_id,
        "authorization": authorization,
    }

    async def ask(holder: str) -> tuple[str, dict[str, Any] | None, str]:
        if holder == state.node_id:
            h = state.ledger.head
            sel = _select(state, uscc, h.size)
            return (
                holder,
                {
                    "checkpoint": h.note.decode(),
                    "records": _record_items(state, sel.indices, h.size),
                    **_counts(sel),
                    **section_objections(state, uscc, h.size),
                },
                "",
            )
        if state.views.refused(holder):
            return holder, None, "refused: an alarm against this node is open"
        try:
            view = state.views.view(holder)
            body: dict[str, Any] = {**request, "known_size": view.size if view else 0}
            seen = state.seen_by.get(holder, 0)
            if 0 < seen < head.size:
                # The holder checks our checkpoint against the one it holds: send the
                # proof from there, saving it a round trip back to us.
                body["home_consistency"] = {
                    "from": seen,
                    "proof": [b64(p) for p in state.ledger.consistency_proof(seen, head.size)],
                }
            with stage("holder_call"):
                answer = await state.peers.call(holder, "POST", "/v1/peer/records", json_body=body)
            if isinstance(answer.get("view_of_home"), int):
                # A holder's view only moves forward; a mirroring fetch may have told us of a
                # newer one (node.api.public) while this answer was on its way.
                state.seen_by[holder] = max(state.seen_by.get(holder, 0), answer["view_of_home"])
            with stage("home_verify"):
                header = await _verify_answer(state, holder, uscc, answer)
            first = answer
            records = list(answer["records"])
            page = 1
            while answer.get("next") is not None:
                # The rest of a long answer, page by page, every record proven against
                # the checkpoint of the first page.
                page += 1
                answer = await state.peers.call(
                    holder,
                    "POST",
                    "/v1/peer/records",
                    json_body={**request, "page": {"after": int(answer["next"])}},
                )
                for i, item in enumerate(answer["records"]):
                    verify_record_item(
                        item, uscc, header, state.ledger.algorithm, f"page {page} record {i}"
                    )
                if answer["records"] and int(answer["records"][0]["index"]) <= int(
                    records[-1]["index"]
                ):
                    raise BundleError("bad-page", f"page {page} does not follow page {page - 1}")
                records.extend(answer["records"])
            section = {
                "checkpoint": first["checkpoint"],
                "records": records,
                "records_total": int(first.get("records_total", len(records))),
                "truncated": bool(first.get("truncated", False)),
            }
            if len(records) != int(first.get("records_served", len(records))):
                raise BundleError(
                    "bad-page",
                    f"{holder} announced {first.get('records_served')} records, sent {len(records)}",
                )
            if "receipt" in first:
                section["receipt"] = first["receipt"]
            for key in ("objections", "disputes"):  # records under objection (node.disputes)
                if key in first:
                    section[key] = first[key]
            verify_objection_items(
                state.manifest, {"node_id": holder, **section}, uscc, header, state.ledger.algorithm
            )
            return holder, section, ""
        except PeerUnavailableError as exc:
            return holder, None, f"unavailable: {exc.detail}"
        except (
            PeerMisbehavedError,
            BundleError,
            LedgerError,
            KeyError,
            TypeError,
            ValueError,
        ) as exc:
            state.metrics["holder_verification_failures"] = (
                state.metrics.get("holder_verification_failures", 0) + 1
            )
            return holder, None, f"failed verification: {exc}"

    results = await asyncio.gather(*(ask(h) for h in holders))
    sections = [{"node_id": h, **a} for h, a, _ in results if a]
    missing = [{"node_id": h, "reason": why} for h, a, why in results if a is None]
    n_records = sum(len(s["records"]) for s in sections)

    def still_not_revoked(ahead: Sequence[Item]) -> None:
        # Run by the sequencer right before the granted receipt is placed: a
        # revocation committed (or queued ahead in the same block) since the
        # check above denies the report.
        revoked = state.ledger.by_ref(f"revocation:{authorization_id}") is not None or any(
            isinstance(e, RevocationEntry) and e.authorization_id == authorization_id for e in ahead
        )
        if revoked:
            raise AuthorizationError(
                "revoked",
                f"authorization {authorization_id} was revoked while the report was assembled",
            )

    try:
        receipt = await _receipt(
            state,
            holder=state.node_id,
            role="home",
            outcome="granted",
            reason="partial: " + ", ".join(m["node_id"] for m in missing)
            if missing
            else "complete",
            records=n_records,
            guard=still_not_revoked,
            **common,
        )
    except AuthorizationError as exc:
        await _receipt(
            state,
            holder=state.node_id,
            role="home",
            outcome="denied",
            reason=f"{exc.reason}: {exc}",
            records=0,
            **common,
        )
        raise AuthorizationError(
            exc.reason, f"{exc} (query {query_id} recorded as denied)"
        ) from exc
    report = {
        "version": 2,
        **{k: v for k, v in request.items()},
        "home_node": state.node_id,
        "manifest_version": state.manifest.version,
        "asked_at": now,
        "holders": sections,
        "missing": missing,
        "partial": bool(missing),
        "home_receipt": receipt,
    }
    with stage("bundle_sign"):
        signature = state.key.sign(canonical_bytes(report))
    state.metrics["reports"] = state.metrics.get("reports", 0) + 1
    return {"report": report, "signature": b64(signature)}


async def _verify_answer(
    state: NodeState, holder: str, uscc: str, answer: dict[str, Any]
) -> BlockHeader:
    """Everything a holder says is checked before it enters a report."""
    algorithm = state.ledger.algorithm
    note = str(answer["checkpoint"]).encode()

    cons = answer.get("consistency") or {}
    try:
        header = await state.views.accept_checkpoint(
            holder,
            note,
            state.verifier_for(holder),
            state.peers.consistency_fetcher(holder),
            proof=[unb64(p) for p in cons.get("proof", [])] if cons else None,
            proof_from=cons.get("from") if cons else None,
            # Our view of the holder moves only by mirroring, never by report traffic: the
            # proof it carries starts from the size we told it (known_size), and concurrent
            # reports do not move that size under each other.
            advance=False,
            latest=False,
        )
    except ProofError as exc:
        await state.raise_alarm(
            holder,
            "equivocation",
            f"checkpoint inconsistent with an earlier one: {exc}",
            [note.decode()],
        )
        raise PeerMisbehavedError(holder, f"forked log: {exc}") from exc
    except LedgerError as exc:
        raise PeerMisbehavedError(holder, f"bad checkpoint: {exc}") from exc
    # accept_checkpoint verified the note's signature under the holder's manifest key and
    # its origin: the note is not opened a second time.
    for i, item in enumerate(answer["records"]):
        verify_record_item(item, uscc, header, algorithm, f"record {i} from {holder}")
    return header


def _keep_pages(state: NodeState, caller: str, query_id: str, sel: _Selection) -> None:
    now = time.monotonic()
    for key in [k for k, v in state.pages.items() if v.expires < now]:
        del state.pages[key]
    while len(state.pages) >= MAX_OPEN_PAGES:
        del state.pages[next(iter(state.pages))]
    sel.expires = now + PAGE_TTL_S
    state.pages[(caller, query_id)] = sel


def _answer_page(state: NodeState, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    """A later page of an answer granted (and receipted) on the first page."""
    try:
        query_id = str(body["query_id"])
        after = int(body["page"]["after"])
        uscc = str(body["uscc"])
        purpose = str(body["purpose"])
        institution_id = str(body["institution_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"peer page request is malformed: {exc}") from exc
    sel = state.pages.get((caller, query_id))
    if sel is None or sel.expires < time.monotonic() or sel.auth is None:
        raise NotFoundError(
            f"no paged answer for query {query_id} from {caller} is open here "
            f"(pages are kept {PAGE_TTL_S:.0f} s after the first)"
        )
    # The grant was checked and receipted on the first page; a revocation mirrored
    # since then still stops the rest.
    check_authorization(
        state,
        sel.auth,
        institution_id=institution_id,
        uscc=uscc,
        purpose=purpose,
        now=utc_now(),
        home_node=caller,
    )
    start = bisect.bisect_right(sel.indices, after)
    chunk = sel.indices[start : start + state.settings.records_per_page]
    records = _record_items(state, chunk, sel.size)
    last = start + len(chunk) >= len(sel.indices)
    if last:
        state.pages.pop((caller, query_id), None)
    return {"records": records, "next": None if last or not chunk else chunk[-1]}


async def answer_peer(state: NodeState, caller_node: str, body: dict[str, Any]) -> dict[str, Any]:
    """The holder's side of a report query (or of a later page of its answer)."""
    if not state.manifest.has(caller_node):
        raise UnknownPeerError(caller_node)
    if state.views.refused(caller_node):
        raise UnknownPeerError(
            caller_node, f"{caller_node} is refused: an alarm against it is open"
        )
    if isinstance(body, dict) and body.get("page") is not None:
        return _answer_page(state, caller_node, body)
    try:
        query_id = str(body["query_id"])
        uscc = str(body["uscc"])
        purpose = str(body["purpose"])
        institution_id = str(body["institution_id"])
        auth = body["authorization"]
        auth_b = unb64(auth["entry"])
        auth_index = int(auth["index"])
        auth_note = str(auth["checkpoint"])
        auth_proof = [unb64(p) for p in auth["proof"]]
        known_size = int(body.get("known_size", 0))
        hc = body.get("home_consistency") or {}
        hc_from = int(hc["from"]) if hc else None
        hc_proof = [unb64(p) for p in hc["proof"]] if hc else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"peer record request is malformed: {exc}") from exc
    parse_uscc(uscc)
    verify_span = Span("holder_verify")
    common: dict[str, Any] = dict(
        query_id=query_id,
        uscc=uscc,
        institution_id=institution_id,
        home=caller_node,
        holder=state.node_id,
        role="holder",
        purpose=purpose,
    )
    try:
        auth_entry = parsed_entry(auth_b)
        if not isinstance(auth_entry, AuthorizationEntry):
            raise AuthorizationError(
                "not-an-authorization", "the cited entry is not an authorization"
            )

        try:
            header = await state.views.accept_checkpoint(
                caller_node,
                auth_note.encode(),
                state.verifier_for(caller_node),
                state.peers.consistency_fetcher(caller_node),
                proof=hc_proof,
                proof_from=hc_from,
                advance=False,
                latest=False,
            )
        except ProofError as exc:
            await state.raise_alarm(
                caller_node,
                "equivocation",
                f"checkpoint inconsistent with an earlier one: {exc}",
                [auth_note],
            )
            raise AuthorizationError(
                "home-inconsistent", f"home node {caller_node} showed an inconsistent checkpoint"
            ) from exc
        try:
            verify_inclusion(
                leaf_hash(auth_b, state.ledger.algorithm),
                auth_index,
                header.size,
                auth_proof,
                header.root,
                state.ledger.algorithm,
            )
        except ProofError as exc:
            raise AuthorizationError(
                "not-on-home-ledger",
                f"authorization is not included in {caller_node}'s checkpoint: {exc}",
            ) from exc
        check_authorization(
            state,
            auth_entry,
            institution_id=institution_id,
            uscc=uscc,
            purpose=purpose,
            now=utc_now(),
            home_node=caller_node,
        )
    except (AuthorizationError, LedgerError) as exc:
        reason = exc.reason if isinstance(exc, AuthorizationError) else "bad-authorization"
        await _receipt(
            state,
            authorization_id=str(getattr(locals().get("auth_entry"), "authorization_id", "-")),
            outcome="denied",
            reason=f"{reason}: {exc}",
            records=0,
            **common,
        )
        if isinstance(exc, AuthorizationError):
            raise
        raise AuthorizationError(reason, str(exc)) from exc
    verify_span.stop()
    h = state.ledger.head
    sel = _select(state, uscc, h.size)
    per_page = state.settings.records_per_page
    try:
        # Read (and check) the bodies of the first page before recording a grant: a
        # receipt must not say "granted" for an answer that was never sent.
        with stage("holder_proofs"):
            records = _record_items(state, sel.indices[:per_page], h.size)
    except CommitmentError as exc:
        await _receipt(
            state,
            authorization_id=auth_entry.authorization_id,
            outcome="denied",
            reason=f"commitment-mismatch: {exc}",
            records=0,
            **common,
        )
        raise
    receipt = await _receipt(
        state,
        authorization_id=auth_entry.authorization_id,
        outcome="granted",
        reason=_served_reason(sel),
        records=len(sel.indices),
        **common,
    )
    more = len(sel.indices) > per_page
    if more:
        sel.auth = auth_entry
        _keep_pages(state, caller_node, query_id, sel)
    home_view = state.views.view(caller_node)
    out: dict[str, Any] = {
        "checkpoint": h.note.decode(),
        "records": records,
        "records_served": len(sel.indices),
        **_counts(sel),
        "next": records[-1]["index"] if more else None,
        "receipt": receipt,
        "view_of_home": home_view.size if home_view else 0,
        **section_objections(state, uscc, h.size),
    }
    if 0 < known_size < h.size:
        out["consistency"] = {
            "from": known_size,
            "proof": [b64(p) for p in state.ledger.consistency_proof(known_size, h.size)],
        }
    return out
