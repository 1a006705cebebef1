"""A revocation is final: it wins a race against a report in flight, and a
clock stepped back does not revive the consent it withdrew.

The race is made deterministic: the Hefei holder's transport files the
revocation at the home node while the report waits for Hefei's answer, so the
revocation is acknowledged strictly before the report's receipt is placed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from support.inproc_world import assert_problem

from ledger import AuthorizationEntry
from node.reports import check_authorization


class _RevokeFirst(httpx.AsyncBaseTransport):
    """Stand in for hf-1: on its first records request, revoke at the home node, then answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, revoke) -> None:
        self.inner = inner
        self.revoke = revoke
        self.revocations: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/peer/records" and not self.revocations:
            self.revocations.append(await self.revoke())
        return await self.inner.handle_async_request(request)


@pytest.mark.asyncio
async def test_a_revocation_acknowledged_during_a_report_denies_it(world):
    await world.authorize("race-1")

    async def revoke() -> httpx.Response:
        async with world.inst() as c:
            return await c.post(
                "http://hz-1/v1/authorizations/race-1/revocation", json={"reason": "withdrawn"}
            )

    transports = world.net.transport.transports
    racer = _RevokeFirst(transports["hf-1"], revoke)
    transports["hf-1"] = racer
    r = await world.report("race-1")

    assert racer.revocations and racer.revocations[0].status_code == 201
    assert_problem(r, 403, "authorization-invalid", reason="revoked")
    home = world.state("hz-1")
    rev_index = home.ledger.store.ref("revocation:race-1")
    receipts = [
        (i, e)
        for i, e in home.ledger.by_subject(world.uscc, ("receipt",))
        if e.authorization_id == "race-1" and e.role == "home"
    ]
    assert [e.outcome for _, e in receipts] == ["denied"], receipts
    assert all(i > rev_index for i, _ in receipts)


@pytest.mark.asyncio
async def test_a_revocation_queued_ahead_in_the_same_block_denies_the_receipt(world):
    """Guards see the entries queued ahead of them in the batch, not only the committed ledger."""
    import asyncio

    from ledger import ReceiptEntry, RevocationEntry, utc_now
    from node.errors import AuthorizationError

    await world.authorize("race-2")
    home = world.state("hz-1")
    revocation = RevocationEntry("race-2", world.uscc, utc_now(), "withdrawn")
    receipt = ReceiptEntry(
        query_id="q-race-2",
        uscc=world.uscc,
        institution_id="hzbank",
        home_node="hz-1",
        holder_node="hz-1",
        role="home",
        purpose="post_loan",
        authorization_id="race-2",
        outcome="granted",
        reason="complete",
        records=0,
        at=utc_now(),
    )

    def guard(ahead) -> None:
        if any(isinstance(e, RevocationEntry) and e.authorization_id == "race-2" for e in ahead):
            raise AuthorizationError("revoked", "revoked ahead in the batch")

    size = home.ledger.size
    got = await asyncio.gather(
        home.sequencer.add([revocation]),
        home.sequencer.add([receipt], guard),
        return_exceptions=True,
    )
    assert isinstance(got[1], AuthorizationError), got
    assert got[0][0] == size and home.ledger.size == size + 1


@pytest.mark.asyncio
async def test_a_clock_stepped_back_does_not_revive_a_revoked_consent(world):
    await world.authorize("clock-1")
    async with world.inst() as c:
        r = await c.post(
            "http://hz-1/v1/authorizations/clock-1/revocation", json={"reason": "withdrawn"}
        )
    assert r.status_code == 201, r.text
    revoked_at = datetime.strptime(r.json()["revoked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    ten_minutes_earlier = (revoked_at - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    home = world.state("hz-1")
    _, auth = home.ledger.by_ref("authorization:clock-1")
    assert isinstance(auth, AuthorizationEntry)
    from node.errors import AuthorizationError

    with pytest.raises(AuthorizationError) as caught:
        check_authorization(
            home,
            auth,
            institution_id="hzbank",
            uscc=world.uscc,
            purpose="post_loan",
            now=ten_minutes_earlier,
            home_node="hz-1",
        )
    assert caught.value.reason == "revoked"
