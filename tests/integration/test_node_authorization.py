"""Authorizations: every refusal is a 403 with a reason slug, a denied receipt
at the home node and at every holder, and no records in the answer.

The home-node cases share one world; the holder's own checks (a home node
that cites a revoked, foreign or unincluded authorization) build their own.
"""

from __future__ import annotations

import base64
import re
import uuid

import httpx
import pytest
import pytest_asyncio

from ledger import AuthorizationEntry, entry_bytes, entry_from_dict, entry_to_dict, parse_entry


async def _setup_expired(w):
    await w.authorize(
        "x-expired", not_before="2020-01-01T00:00:00Z", not_after="2021-01-01T00:00:00Z"
    )
    return "x-expired", "post_loan"


async def _setup_future(w):
    await w.authorize(
        "x-future", not_before="2098-01-01T00:00:00Z", not_after="2099-01-01T00:00:00Z"
    )
    return "x-future", "post_loan"


async def _setup_revoked(w):
    await w.authorize("x-revoked")
    async with w.inst() as c:
        r = await c.post(
            "http://hz-1/v1/authorizations/x-revoked/revocation", json={"reason": "loan repaid"}
        )
    assert r.status_code == 201, r.text
    assert r.json()["revoked_at"].endswith("Z")
    return "x-revoked", "post_loan"


async def _setup_other_purpose(w):
    return "a1", "pre_loan"


async def _setup_other_enterprise(w):
    await w.authorize("x-other-ent", uscc=w.other_uscc)
    return "x-other-ent", "post_loan"


async def _setup_other_institution(w):
    await w.authorize("x-njbank", institution_id="njbank")
    return "x-njbank", "post_loan"


async def _setup_unknown(w):
    return "no-such-authorization", "post_loan"


async def _setup_purpose_not_registered(w):
    await w.authorize("x-guarantee", purposes=("guarantee",))
    return "x-guarantee", "guarantee"


CASES = {
    "expired": _setup_expired,
    "not-yet-valid": _setup_future,
    "revoked": _setup_revoked,
    "other-purpose": _setup_other_purpose,
    "other-enterprise": _setup_other_enterprise,
    "other-institution": _setup_other_institution,
    "unknown": _setup_unknown,
    "purpose-not-registered": _setup_purpose_not_registered,
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("reason", list(CASES))
async def test_home_refuses_and_everyone_records_the_denial(shared_world, problem, reason):
    w = shared_world
    authorization_id, purpose = await CASES[reason](w)
    before = w.sizes()
    r = await w.report(authorization_id=authorization_id, purpose=purpose)
    body = problem(
        r, 403, "authorization-invalid", reason=reason, instance="/v1/reports", node_id="hz-1"
    )
    assert "report" not in body and "records" not in body and "holders" not in body
    query_id = re.search(r"query ([0-9a-f]{32}) recorded as denied", body["detail"]).group(1)
    # One denied receipt at home, one at each holder (told by a signed notice).
    assert w.sizes() == {n: s + 1 for n, s in before.items()}
    for node_id, role in (("hz-1", "home"), ("hf-1", "holder"), ("sh-1", "holder")):
        mine = [q for q in await w.queries(node_id) if q["query_id"] == query_id]
        assert len(mine) == 1, (node_id, mine)
        q = mine[0]
        assert (q["role"], q["outcome"], q["records"]) == (role, "denied", 0)
        assert (q["institution_id"], q["purpose"], q["authorization_id"]) == (
            "hzbank",
            purpose,
            authorization_id,
        )
        assert reason in q["reason"]
        assert q["home_node"] == "hz-1"


@pytest.mark.asyncio(loop_scope="module")
async def test_revocation_rules(shared_world, problem):
    w = shared_world
    await w.authorize("x-rev2")
    before = w.sizes()
    async with w.inst(w.other_key, "inst:njbank") as c:
        r = await c.post(
            "http://hz-1/v1/authorizations/x-rev2/revocation", json={"reason": "not mine"}
        )
    problem(r, 403, "unknown-institution")
    async with w.inst() as c:
        r = await c.post("http://hz-1/v1/authorizations/nope/revocation", json={"reason": "x"})
        problem(r, 404, "not-found")
        assert w.sizes() == before
        r = await c.post("http://hz-1/v1/authorizations/x-rev2/revocation", json={"reason": "done"})
        assert r.status_code == 201
        r = await c.post(
            "http://hz-1/v1/authorizations/x-rev2/revocation", json={"reason": "again"}
        )
        problem(r, 409, "duplicate-entry")
    assert w.sizes()["hz-1"] == before["hz-1"] + 1


# --- the holder's own checks --------------------------------------------------


async def _peer_query(
    w,
    holder: str,
    auth: dict,
    *,
    institution_id: str = "hzbank",
    purpose: str = "post_loan",
    uscc: str | None = None,
    query_id: str = "q-holder",
) -> httpx.Response:
    """hz-1 (the home node's key) asks ``holder`` directly, citing ``auth``."""
    async with w.net.operator("hz-1") as c:
        return await c.post(
            f"http://{holder}/v1/peer/records",
            json={
                "query_id": query_id,
                "uscc": uscc or w.uscc,
                "purpose": purpose,
                "institution_id": institution_id,
                "authorization": auth,
            },
        )


async def _holder_denied(
    w, holder: str, query_id: str, reason: str, uscc: str | None = None
) -> None:
    mine = [q for q in await w.queries(holder, uscc) if q["query_id"] == query_id]
    assert [(q["role"], q["outcome"], q["records"]) for q in mine] == [("holder", "denied", 0)], (
        mine
    )
    assert mine[0]["reason"].startswith(reason), mine[0]


@pytest_asyncio.fixture(loop_scope="module")
async def granted(shared_world):
    """A fresh authorization, and the authorization section of a granted report citing it."""
    w = shared_world
    authorization_id = f"g-{uuid.uuid4().hex[:12]}"
    await w.authorize(authorization_id)
    r = await w.report(authorization_id=authorization_id)
    assert r.status_code == 200, r.text
    assert r.json()["report"]["partial"] is False
    return w, r.json()["report"]["authorization"]


@pytest.mark.asyncio(loop_scope="module")
async def test_holder_enforces_a_revocation_it_mirrored(granted, problem):
    w, auth = granted
    async with w.inst() as c:
        aid = parse_entry(base64.b64decode(auth["entry"])).authorization_id
        r = await c.post(
            f"http://hz-1/v1/authorizations/{aid}/revocation", json={"reason": "consent withdrawn"}
        )
    assert r.status_code == 201
    await w.mirror_all()  # hf-1 learns of the revocation from hz-1's ledger
    size = w.state("hf-1").ledger.size
    r = await _peer_query(w, "hf-1", auth, query_id="q-revoked")
    body = problem(r, 403, "authorization-invalid", reason="revoked", node_id="hf-1")
    assert "records" not in body
    assert w.state("hf-1").ledger.size == size + 1
    await _holder_denied(w, "hf-1", "q-revoked", "revoked")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "change,reason",
    [
        ({"institution_id": "njbank"}, "other-institution"),
        ({"purpose": "pre_loan"}, "other-purpose"),
        ({"uscc": "__other__"}, "other-enterprise"),
    ],
)
async def test_holder_checks_the_cited_authorization(granted, problem, change, reason):
    w, auth = granted
    if change.get("uscc") == "__other__":
        change = {"uscc": w.other_uscc}
    r = await _peer_query(w, "sh-1", auth, query_id=f"q-{reason}", **change)
    problem(r, 403, "authorization-invalid", reason=reason, node_id="sh-1")
    await _holder_denied(w, "sh-1", f"q-{reason}", reason, change.get("uscc"))


@pytest.mark.asyncio(loop_scope="module")
async def test_holder_refuses_an_authorization_not_on_the_home_ledger(granted, problem):
    w, auth = granted
    # A home node that invents an authorization (wider purposes) keeps the old proof.
    forged = entry_to_dict(parse_entry(base64.b64decode(auth["entry"])))
    forged["purposes"] = ["post_loan", "pre_loan"]
    entry = entry_from_dict(forged)
    assert isinstance(entry, AuthorizationEntry)
    fake = {**auth, "entry": base64.b64encode(entry_bytes(entry)).decode()}
    r = await _peer_query(w, "hf-1", fake, purpose="pre_loan", query_id="q-forged")
    problem(r, 403, "authorization-invalid", reason="not-on-home-ledger", node_id="hf-1")
    await _holder_denied(w, "hf-1", "q-forged", "not-on-home-ledger")


@pytest.mark.asyncio(loop_scope="module")
async def test_holder_refuses_an_entry_that_is_not_an_authorization(granted, problem):
    w, auth = granted
    hz = w.state("hz-1")
    head = hz.ledger.head
    index, _ = hz.ledger.by_ref("institution:hzbank")
    inst = {
        "node_id": "hz-1",
        "index": index,
        "entry": base64.b64encode(hz.ledger.entries(index, index + 1)[0][1]).decode(),
        "checkpoint": head.note.decode(),
        "proof": [
            base64.b64encode(p).decode() for p in hz.ledger.inclusion_proof(index, head.size)
        ],
    }
    r = await _peer_query(w, "hf-1", inst, query_id="q-inst")
    problem(r, 403, "authorization-invalid", reason="not-an-authorization")
    await _holder_denied(w, "hf-1", "q-inst", "not-an-authorization")
    del auth
