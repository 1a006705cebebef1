"""Denial notices are backed by the sender's ledger and rate-limited per peer.

Reproduced on the old code: signed with one node's key, 30 ``POST
/v1/peer/receipts`` with invented query ids naming ``hzbank`` were all
accepted, so another node's audit trail listed 30 queries that never happened.
"""

from __future__ import annotations

import pytest


def _forged(world, i: int) -> dict:
    return {
        "query_id": f"invented-{i}",
        "uscc": world.uscc,
        "institution_id": "hzbank",
        "purpose": "post_loan",
        "authorization_id": "a1",
        "reason": "unknown: made up",
    }


async def _notice(world, sender: str, body: dict):
    async with world.net.operator(sender) as c:
        return await c.post("http://hf-1/v1/peer/receipts", json=body)


@pytest.mark.asyncio
async def test_a_notice_without_the_senders_denied_receipt_is_refused(world, problem):
    hf = world.state("hf-1")
    size = hf.ledger.size
    r = await _notice(world, "sh-1", _forged(world, 0))
    problem(r, 422, "invalid-record")
    # Citing a real receipt of the sender that is not a denial of that query:
    # hz-1's granted receipt of a report.
    granted = await world.report()
    assert granted.status_code == 200, granted.text
    home_receipt = granted.json()["report"]["home_receipt"]
    body = {**_forged(world, 1), "receipt": home_receipt}
    r = await _notice(world, "hz-1", body)
    problem(r, 403, "denial-notice-refused")
    # ... or a denied receipt of hz-1, sent by sh-1.
    denied = await world.report(authorization_id="no-such-authorization")
    assert denied.status_code == 403
    [q] = [
        q
        for q in await world.queries("hz-1")
        if q["authorization_id"] == "no-such-authorization" and q["role"] == "home"
    ]
    mine = [q2 for q2 in await world.queries("hf-1") if q2["query_id"] == q["query_id"]]
    assert [m["outcome"] for m in mine] == ["denied"]  # the genuine notice was accepted
    size = hf.ledger.size
    r = await _notice(world, "sh-1", {**_forged(world, 2), "query_id": q["query_id"]})
    problem(r, 422, "invalid-record")
    assert hf.ledger.size == size


@pytest.mark.asyncio
async def test_a_tampered_receipt_proof_is_refused(world, problem):
    await world.report(authorization_id="nope")
    hz = world.state("hz-1")
    [(index, entry)] = [
        (i, e)
        for i, e in hz.ledger.by_subject(world.uscc, ("receipt",))
        if e.authorization_id == "nope" and e.role == "home"
    ]
    import base64

    from ledger import entry_bytes

    head = hz.ledger.head
    proof = [base64.b64encode(p).decode() for p in hz.ledger.inclusion_proof(index, head.size)]
    cited = {
        "entry": base64.b64encode(entry_bytes(entry)).decode(),
        "index": index + 1,  # the right entry at the wrong position
        "checkpoint": head.note.decode(),
        "proof": proof,
    }
    body = {**_forged(world, 3), "query_id": entry.query_id, "receipt": cited}
    r = await _notice(world, "hz-1", body)
    problem(r, 403, "denial-notice-refused")


@pytest.mark.asyncio
async def test_notices_are_rate_limited_per_peer(world, problem):
    statuses = []
    for i in range(80):
        r = await _notice(world, "sh-1", {**_forged(world, i), "receipt": {}})
        statuses.append(r.status_code)
        if r.status_code == 429:
            body = problem(r, 429, "rate-limited")
            assert int(r.headers["retry-after"]) >= 1
            assert "sh-1" in body["detail"]
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {422}, statuses
    # another peer has its own share
    r = await _notice(world, "hz-1", {**_forged(world, 99), "receipt": {}})
    problem(r, 422, "invalid-record")
