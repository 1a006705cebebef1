"""RFC 9421 signatures on requests: every failure is a 401/403 problem and
changes nothing (no receipt, no entry on any ledger)."""

from __future__ import annotations

import time

import httpx
import pytest
from support.inproc import seeded_key

from node.http import httpsig

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _report_body(w) -> dict:
    return {"uscc": w.uscc, "purpose": "post_loan", "authorization_id": "a1"}


def _signed(key_id: str, key, method: str, url: str, *, clock=time.time, **kw) -> httpx.Request:
    request = httpx.Request(method, url, **kw)
    httpsig.RequestSigner(key_id, key, clock=clock).sign(request)
    return request


async def _send(w, request: httpx.Request) -> httpx.Response:
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        return await c.send(request)


async def test_unsigned_request_is_401_missing_signature(shared_world, problem):
    w = shared_world
    before = w.sizes()
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.post("http://hz-1/v1/reports", json=_report_body(w))
        problem(r, 401, "bad-signature", reason="missing-signature")
        assert r.headers["www-authenticate"].startswith("Signature")
        r = await c.post("http://hf-1/v1/peer/records", json={})
        problem(r, 401, "bad-signature", reason="missing-signature")
        r = await c.post("http://hz-1/v1/ingest", json={"records": []})
        problem(r, 401, "bad-signature", reason="missing-signature")
        r = await c.get(f"http://hz-1/v1/enterprises/{w.uscc}/queries")
        problem(r, 401, "bad-signature", reason="missing-signature")
    assert w.sizes() == before


async def test_unknown_key_id_is_401(shared_world, problem):
    w = shared_world
    before = w.sizes()
    async with w.inst(seeded_key("inst/nobody"), "inst:nobody") as c:
        r = await c.post("http://hz-1/v1/reports", json=_report_body(w))
    body = problem(r, 401, "unknown-key", reason="unknown-key")
    assert "inst:nobody" in body["detail"]
    # An institution registered at another node is unknown here.
    async with w.inst() as c:
        r = await c.post("http://hf-1/v1/reports", json=_report_body(w))
    problem(r, 401, "unknown-key", reason="unknown-key")
    assert w.sizes() == before


async def test_node_outside_the_manifest_is_refused(shared_world, problem):
    w = shared_world
    before = w.sizes()
    evil = seeded_key("node/evil-1")
    async with w.net.client("node:evil-1", evil) as c:
        r = await c.post("http://hf-1/v1/peer/records", json={"query_id": "q"})
        problem(r, 401, "unknown-key", reason="unknown-key")
        r = await c.post(
            "http://hf-1/v1/peer/receipts",
            json={
                "query_id": "q",
                "uscc": w.uscc,
                "institution_id": "hzbank",
                "purpose": "post_loan",
            },
        )
        problem(r, 401, "unknown-key", reason="unknown-key")
        r = await c.get("http://hf-1/v1/entries", params={"start": 0, "end": 10})
        problem(r, 401, "unknown-key")
    assert w.sizes() == before


async def test_wrong_kind_of_signer_is_403(shared_world, problem):
    w = shared_world
    before = w.sizes()
    # A manifest node acting as another node's operator.
    async with w.net.operator("sh-1") as c:
        rec = {
            "uscc": w.uscc,
            "record_type": "tax_rating",
            "record_id": "hz-1:evil",
            "source": "s",
            "observed_at": "2022-01-01T00:00:00Z",
            "body": {},
        }
        r = await c.post("http://hz-1/v1/ingest", json={"records": [rec]})
        problem(r, 403, "unknown-peer", peer_id="sh-1")
        r = await c.post("http://hz-1/v1/peers/hf-1/resolve")
        problem(r, 403, "unknown-peer")
        r = await c.post("http://hz-1/v1/reports", json=_report_body(w))
        problem(r, 403, "unknown-institution")
    # An institution calling a peer endpoint.
    async with w.inst() as c:
        r = await c.post("http://hz-1/v1/peer/records", json={})
        problem(r, 403, "unknown-peer", peer_id="hzbank")
        r = await c.get("http://hz-1/v1/entries", params={"start": 0, "end": 10})
        problem(r, 403, "unknown-peer")
        r = await c.post(
            "http://hz-1/v1/institutions",
            json={
                "institution_id": "x",
                "name": "x",
                "public_key": "A" * 44,
                "purposes": ["post_loan"],
            },
        )
        problem(r, 403, "unknown-peer")
    # One institution filing an authorization in another's name.
    async with w.inst(w.other_key, "inst:njbank") as c:
        r = await c.post(
            "http://hz-1/v1/authorizations",
            json={
                "authorization_id": "stolen",
                "uscc": w.uscc,
                "institution_id": "hzbank",
                "purposes": ["post_loan"],
                "not_before": "2021-01-01T00:00:00Z",
                "not_after": "2099-01-01T00:00:00Z",
                "document_digest": "a" * 64,
            },
        )
        problem(r, 403, "unknown-institution")
    assert w.sizes() == before


async def test_forged_institution_key_is_401_bad_signature(shared_world, problem):
    w = shared_world
    before = w.sizes()
    audit = await w.queries("hz-1")
    async with w.inst(seeded_key("inst/impostor"), "inst:hzbank") as c:
        r = await c.post("http://hz-1/v1/reports", json=_report_body(w))
    problem(r, 401, "bad-signature", reason="bad-signature")
    async with w.net.client("node:hz-1", seeded_key("node/impostor")) as c:
        r = await c.post("http://hf-1/v1/peer/records", json={})
    problem(r, 401, "bad-signature", reason="bad-signature")
    assert w.sizes() == before
    assert await w.queries("hz-1") == audit  # no receipt


async def test_tampered_body_after_signing_is_401_bad_digest(shared_world, problem):
    w = shared_world
    before = w.sizes()
    signed = _signed(
        "inst:hzbank", w.inst_key, "POST", "http://hz-1/v1/reports", json=_report_body(w)
    )
    evil_body = signed.content.replace(b"post_loan", b"pre_loan!")
    headers = [(k, v) for k, v in signed.headers.multi_items() if k.lower() != "content-length"]
    r = await _send(w, httpx.Request("POST", signed.url, headers=headers, content=evil_body))
    problem(r, 401, "bad-digest", reason="bad-digest")
    # Recomputing Content-Digest does not help: the signature covers it.
    headers = [(k, v) for k, v in headers if k.lower() != "content-digest"]
    headers.append(("content-digest", httpsig.content_digest(evil_body)))
    r = await _send(w, httpx.Request("POST", signed.url, headers=headers, content=evil_body))
    problem(r, 401, "bad-signature", reason="bad-signature")
    assert w.sizes() == before


async def test_request_signed_for_another_node_is_refused(shared_world, problem):
    """@authority is covered: a request signed for hf-1 does not verify at sh-1."""
    w = shared_world
    before = w.sizes()
    signed = _signed("node:hz-1", w.net.keys["hz-1"], "GET", "http://hf-1/v1/entries?start=0&end=5")
    r = await _send(
        w, httpx.Request("GET", "http://sh-1/v1/entries?start=0&end=5", headers=signed.headers)
    )
    problem(r, 401, "bad-signature", reason="bad-signature")
    # ...nor with another query string (@query is covered).
    r = await _send(
        w, httpx.Request("GET", "http://hf-1/v1/entries?start=0&end=6", headers=signed.headers)
    )
    problem(r, 401, "bad-signature", reason="bad-signature")
    assert w.sizes() == before


@pytest.mark.parametrize("skew_s", [-3600, 3600])
async def test_stale_created_is_401(shared_world, problem, skew_s):
    w = shared_world
    before = w.sizes()
    audit = await w.queries("hz-1")
    signed = _signed(
        "inst:hzbank",
        w.inst_key,
        "POST",
        "http://hz-1/v1/reports",
        json=_report_body(w),
        clock=lambda: time.time() + skew_s,
    )
    r = await _send(w, signed)
    body = problem(r, 401, "stale-signature", reason="stale")
    assert "window" in body["detail"]
    assert w.sizes() == before
    assert await w.queries("hz-1") == audit  # no receipt


async def test_replayed_request_is_401_replayed_nonce(shared_world, problem):
    w = shared_world
    before = w.sizes()
    audit = await w.queries("hz-1")
    signed = _signed(
        "inst:hzbank", w.inst_key, "POST", "http://hz-1/v1/reports", json=_report_body(w)
    )
    first = await _send(w, signed)
    assert first.status_code == 200, first.text
    once = w.sizes()
    assert once != before  # the first one was a real, recorded query
    again = await _send(
        w, httpx.Request("POST", signed.url, headers=signed.headers, content=signed.content)
    )
    problem(again, 401, "replayed-nonce", reason="replayed-nonce")
    assert w.sizes() == once
    new = [q["query_id"] for q in await w.queries("hz-1") if q not in audit]
    assert new == [first.json()["report"]["query_id"]]  # one receipt, for the first request only


async def test_replayed_peer_request_is_refused(shared_world, problem):
    """A holder refuses a replayed peer query: no second receipt."""
    w = shared_world
    r = await w.report()
    assert r.status_code == 200
    auth = r.json()["report"]["authorization"]
    body = {
        "query_id": "replay-1",
        "uscc": w.uscc,
        "purpose": "post_loan",
        "institution_id": "hzbank",
        "authorization": auth,
    }
    signed = _signed(
        "node:hz-1", w.net.keys["hz-1"], "POST", "http://sh-1/v1/peer/records", json=body
    )
    first = await _send(w, signed)
    assert first.status_code == 200, first.text
    size = w.state("sh-1").ledger.size
    again = await _send(
        w, httpx.Request("POST", signed.url, headers=signed.headers, content=signed.content)
    )
    problem(again, 401, "replayed-nonce", node_id="sh-1")
    assert w.state("sh-1").ledger.size == size
    assert [q["query_id"] for q in await w.queries("sh-1")].count("replay-1") == 1


async def test_malformed_signature_fields_are_401(shared_world, problem):
    w = shared_world
    before = w.sizes()
    signed = _signed(
        "inst:hzbank", w.inst_key, "POST", "http://hz-1/v1/reports", json=_report_body(w)
    )
    headers = dict(signed.headers)
    headers["signature-input"] = headers["signature-input"].replace(
        'alg="ed25519"', 'alg="rsa-pss-sha512"'
    )
    r = await _send(w, httpx.Request("POST", signed.url, headers=headers, content=signed.content))
    problem(r, 401, "bad-signature", reason="malformed-signature")
    headers = dict(signed.headers)
    headers["signature"] = "sig1=:AAAA:"
    r = await _send(w, httpx.Request("POST", signed.url, headers=headers, content=signed.content))
    problem(r, 401, "bad-signature", reason="bad-signature")
    assert w.sizes() == before
