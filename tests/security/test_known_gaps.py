"""Three gaps closed in the node, each with a test that failed before the fix:

* a cosignature from a witness this node refused (open alarm) is refused too;
* the query history of an enterprise is readable only by consortium nodes and by
  institutions holding a live authorization for it;
* size refusals (413, 414, 431) to signed requests go out unsigned: they are
  answered before any signature is verified, and a node signs only answers to
  requests it verified (``tests/security/test_response_binding.py``); garbage
  signature fields never turn an answer into a 500.
"""

from __future__ import annotations

import time

import httpx
import pytest
from support.inproc import seeded_key

from ledger import CosignatureSigner
from node.http import httpsig
from node.http.middleware import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_TARGET_BYTES


def _cosignature(world, witness: str, of: str) -> tuple[int, str]:
    """A valid cosignature line by ``witness`` of ``of``'s latest checkpoint."""
    head = world.state(of).ledger.head
    signer = CosignatureSigner(world.manifest.node(witness).origin, world.net.keys[witness])
    return head.size, signer.cosign(head.header.text(), int(time.time()))


async def test_cosignature_from_a_refused_witness_is_403(world, problem):
    hf = world.state("hf-1")
    await hf.raise_alarm("sh-1", "equivocation", "two checkpoints of one size", [])
    size, line = _cosignature(world, "sh-1", "hf-1")
    before = hf.views.cosignatures(size)
    async with world.net.operator("sh-1") as c:
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": line})
    problem(r, 403, "unknown-peer", peer_id="sh-1", node_id="hf-1")
    assert "refused" in r.json()["detail"]
    assert hf.views.cosignatures(size) == before
    # The same line is accepted once the operator resolves the alarm: the refusal was the reason.
    async with world.net.operator("hf-1") as c:
        assert (await c.post("http://hf-1/v1/peers/sh-1/resolve")).status_code == 200
    async with world.net.operator("sh-1") as c:
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": line})
    assert r.status_code == 201, r.text
    assert line in hf.views.cosignatures(size)


async def _history(world, client: httpx.AsyncClient, uscc: str) -> httpx.Response:
    async with client as c:
        return await c.get(f"http://hz-1/v1/enterprises/{uscc}/queries")


async def test_query_history_is_for_nodes_and_authorized_institutions(world, problem):
    w = world
    assert (await w.report()).status_code == 200  # one receipt to list
    # Consortium nodes: the home operator and any other node.
    for node in ("hz-1", "sh-1", "hf-1"):
        r = await _history(w, w.net.operator(node), w.uscc)
        assert r.status_code == 200, r.text
        assert r.json()["queries"], r.json()
    # hzbank holds the live authorization a1 for this enterprise.
    r = await _history(w, w.inst(), w.uscc)
    assert r.status_code == 200 and r.json()["queries"]
    # njbank is registered here but holds none: refused, and nothing is disclosed.
    r = await _history(w, w.inst(w.other_key, "inst:njbank"), w.uscc)
    body = problem(r, 403, "authorization-invalid", reason="no-authorization")
    assert "queries" not in body and "hzbank" not in r.text
    # hzbank has no authorization for the other enterprise.
    problem(await _history(w, w.inst(), w.other_uscc), 403, "authorization-invalid")
    # Unsigned: 401.
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        problem(await c.get(f"http://hz-1/v1/enterprises/{w.uscc}/queries"), 401, "bad-signature")
    # An unknown key: 401.
    r = await _history(w, w.net.client("inst:nobody", seeded_key("inst/nobody")), w.uscc)
    problem(r, 401, "unknown-key")


@pytest.mark.parametrize(
    "window,allowed",
    [
        (("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"), False),  # expired
        (("2090-01-01T00:00:00Z", "2099-01-01T00:00:00Z"), False),  # not yet valid
        (("2021-01-01T00:00:00Z", "2099-01-01T00:00:00Z"), True),
    ],
)
async def test_query_history_needs_an_authorization_valid_now(world, problem, window, allowed):
    w = world
    await w.authorize(
        "nj-window",
        uscc=w.other_uscc,
        institution_id="njbank",
        not_before=window[0],
        not_after=window[1],
    )
    r = await _history(w, w.inst(w.other_key, "inst:njbank"), w.other_uscc)
    if allowed:
        assert r.status_code == 200, r.text
    else:
        problem(r, 403, "authorization-invalid", reason="no-authorization")


async def test_query_history_closes_when_the_authorization_is_revoked(world, problem):
    w = world
    await w.authorize("nj-live", uscc=w.other_uscc, institution_id="njbank")
    assert (await _history(w, w.inst(w.other_key, "inst:njbank"), w.other_uscc)).status_code == 200
    async with w.inst(w.other_key, "inst:njbank") as c:
        r = await c.post(
            "http://hz-1/v1/authorizations/nj-live/revocation", json={"reason": "consent withdrawn"}
        )
    assert r.status_code == 201, r.text
    problem(
        await _history(w, w.inst(w.other_key, "inst:njbank"), w.other_uscc),
        403,
        "authorization-invalid",
    )


async def test_query_history_refuses_a_refused_node(world, problem):
    w = world
    await w.state("hz-1").raise_alarm("sh-1", "equivocation", "test", [])
    r = await _history(w, w.net.operator("sh-1"), w.uscc)
    problem(r, 403, "unknown-peer", peer_id="sh-1")
    assert (await _history(w, w.net.operator("hf-1"), w.uscc)).status_code == 200


# --- signed size refusals ---------------------------------------------------------------------


def _signed(world, method: str, url: str, **kw) -> httpx.Request:
    request = httpx.Request(method, url, **kw)
    httpsig.RequestSigner("inst:hzbank", world.inst_key).sign(request)
    return request


def _assert_unsigned(r: httpx.Response) -> None:
    """Refused before the signature was verified: the node does not sign the answer."""
    assert "signature" not in r.headers and "signature-input" not in r.headers, r.headers


@pytest.mark.asyncio(loop_scope="module")
async def test_413_to_a_signed_request_is_a_problem_and_unsigned(shared_world, problem):
    w = shared_world
    before = w.sizes()
    limit = w.state("hz-1").settings.max_body_bytes
    request = _signed(
        w,
        "POST",
        "http://hz-1/v1/reports",
        content=b"[" + b" " * limit + b"]",
        headers={"content-type": "application/json"},
    )
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.send(request)
    problem(r, 413, "too-large", node_id="hz-1")
    _assert_unsigned(r)
    assert w.sizes() == before


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", ["many-fields", "large-field", "long-target"])
async def test_oversized_heads_are_problems_and_unsigned(shared_world, problem, case):
    w = shared_world
    before = w.sizes()
    url, headers = "http://hz-1/v1/health", {}
    if case == "many-fields":
        headers = {f"x-filler-{i}": "1" for i in range(MAX_HEADER_FIELDS)}
    elif case == "large-field":
        headers = {"x-filler": "a" * MAX_HEADER_BYTES}
    else:
        url += "?pad=" + "a" * MAX_TARGET_BYTES
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.send(_signed(w, "GET", url, headers=headers))
    status, slug = (414, "uri-too-long") if case == "long-target" else (431, "headers-too-large")
    problem(r, status, slug, node_id="hz-1")
    _assert_unsigned(r)
    assert w.sizes() == before


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "fields",
    [
        {"signature-input": "garbage((", "signature": "x"},
        {"signature-input": 'sig1=("@method");created=1', "signature": "sig1=:AAAA:"},
        {"signature-input": 'other=("@method")', "signature": "other=:AAAA:"},
    ],
)
async def test_garbage_signature_fields_never_break_an_answer(shared_world, problem, fields):
    """Before the fix, binding the response to an unusable request signature raised (a 500)."""
    w = shared_world
    before = w.sizes()
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.get("http://hz-1/v1/health", headers=fields)
        assert r.status_code == 200, r.text
        r = await c.post("http://hz-1/v1/reports", headers=fields, json={})
        problem(r, 401, "bad-signature")
        r = await c.post("http://hz-1/v1/reports", headers=fields, content=b"{" * 2_000_000)
        problem(r, 413, "too-large")
    assert w.sizes() == before


@pytest.mark.asyncio(loop_scope="module")
async def test_non_numeric_content_length_is_400(shared_world, problem):
    w = shared_world
    app = w.net.nodes["hz-1"]
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/reports",
        "raw_path": b"/v1/reports",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"hz-1"), (b"content-length", b"12abc")],
        "server": ("hz-1", 80),
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
