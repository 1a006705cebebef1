"""Issue 6 item 2 cases the integration suite covered only in unit tests: a nonce
reused on a *different* freshly signed request, and clock skew at the edge of the
window over HTTP. Each refusal is a 401 problem and records nothing."""

from __future__ import annotations

import time

import httpx
import pytest

from node.http import httpsig

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIXED_NONCE = "A" * 22


def _signed(w, path: str, body: dict, *, clock=time.time, monkeypatch=None) -> httpx.Request:
    request = httpx.Request("POST", f"http://hz-1{path}", json=body)
    signer = httpsig.RequestSigner("inst:hzbank", w.inst_key, clock=clock)
    if monkeypatch is None:
        signer.sign(request)
    else:
        with monkeypatch.context() as m:  # only this signature gets the fixed nonce
            m.setattr(httpsig, "_new_nonce", lambda: FIXED_NONCE)
            signer.sign(request)
    return request


async def _send(w, request: httpx.Request) -> httpx.Response:
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        return await c.send(request)


async def test_a_nonce_reused_on_another_request_is_refused(shared_world, problem, monkeypatch):
    w = shared_world
    first = await _send(
        w,
        _signed(
            w,
            "/v1/reports",
            {"uscc": w.uscc, "purpose": "post_loan", "authorization_id": "a1"},
            monkeypatch=monkeypatch,
        ),
    )
    assert first.status_code == 200, first.text
    before = w.sizes()
    audit = await w.queries("hz-1")
    # Another body, another signature, the same nonce: refused before anything happens.
    second = await _send(
        w,
        _signed(
            w,
            "/v1/reports",
            {"uscc": w.uscc, "purpose": "pre_loan", "authorization_id": "a1"},
            monkeypatch=monkeypatch,
        ),
    )
    body = problem(second, 401, "replayed-nonce", reason="replayed-nonce")
    assert FIXED_NONCE in body["detail"]
    assert w.sizes() == before
    assert await w.queries("hz-1") == audit


@pytest.mark.parametrize(
    "beyond_s,accepted",
    [
        (
            0,
            True,
        ),  # created exactly `window` seconds ahead: inside (the verifier's clock only moves toward it)
        (2, False),  # two seconds past the window (one for the clock's tick)
    ],
)
async def test_skew_at_and_just_beyond_the_window(shared_world, problem, beyond_s, accepted):
    w = shared_world
    window = w.state("hz-1").settings.window_s
    before = w.sizes()
    request = _signed(
        w,
        "/v1/authorizations/no-such/revocation",
        {"reason": "x"},
        clock=lambda: int(time.time()) + window + beyond_s,
    )
    r = await _send(w, request)
    if accepted:
        problem(r, 404, "not-found")  # past the signature checks, to the handler
    else:
        problem(r, 401, "stale-signature", reason="stale")
    assert w.sizes() == before
