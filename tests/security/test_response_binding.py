"""A client's signature fields replayed to another route never yield an answer it accepts.

The attack (reproduced on the earlier code): capture the Signature-Input and
Signature fields of a request a client sends (here hzbank's ``GET
/v1/enterprises/{uscc}/queries``, or a node's ``POST /v1/peer/records``), replay
them to another route of the same node that verifies nothing (``GET
/v1/health``), and hand the node-signed answer to the client as the answer to its
request. The response signature covered only ``@status``, ``content-digest`` and
``"signature";req``, all of which the replay reproduces, and the middleware signed
every response to a request carrying signature fields, verified or not: the
client accepted a health check as its query history.

Now (``node.http.middleware.SignedResponses``, ``node.http.httpsig``):

* a node signs an answer only if the route verified the request's signature;
* the response signature also covers ``"@method";req``, ``"@authority";req``,
  ``"@path";req`` and ``"@query";req``, and both clients verify them against the
  request they sent: even a node that signed the replayed answer would be refused.
"""

from __future__ import annotations

import httpx
import pytest

from node.errors import PeerMisbehavedError
from node.http import httpsig
from node.peers.client import PeerClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _bound(request: httpx.Request) -> dict[str, str]:
    return {"request_method": request.method, "request_url": str(request.url)}


def _signed(world, method: str, url: str, **kw) -> httpx.Request:
    request = httpx.Request(method, url, **kw)
    httpsig.RequestSigner("inst:hzbank", world.inst_key).sign(request)
    return request


def _keys(world) -> dict[str, object]:
    return {f"node:{n.node_id}": n.key() for n in world.manifest.nodes}


async def test_replayed_signature_fields_get_no_signed_answer(shared_world):
    w = shared_world
    captured = _signed(w, "GET", f"http://hz-1/v1/enterprises/{w.uscc}/queries")
    fields = {k: captured.headers[k] for k in ("signature-input", "signature")}
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        replayed = await c.get("http://hz-1/v1/health", headers=fields)
    assert replayed.status_code == 200
    assert "signature" not in replayed.headers and "signature-input" not in replayed.headers
    # Handed to the client as the answer to the captured request: refused.
    with pytest.raises(httpsig.MissingSignatureError):
        httpsig.verify_response(
            replayed.status_code,
            replayed.headers,
            replayed.content,
            fields["signature-input"],
            fields["signature"],
            _keys(w),
            **_bound(captured),
        )


async def test_an_answer_signed_for_another_route_is_refused_by_the_client(shared_world):
    """A node that did sign the replayed answer (as the earlier middleware did) gains
    nothing: the answer names the route it answered, which is not the client's."""
    w = shared_world
    captured = _signed(w, "GET", f"http://hz-1/v1/enterprises/{w.uscc}/queries")
    fields = (captured.headers["signature-input"], captured.headers["signature"])
    body = b'{"status": "ok"}'
    key = w.net.keys["hz-1"]
    for method, url in [
        ("GET", "http://hz-1/v1/health"),  # another path
        ("POST", str(captured.url)),  # another method
        ("GET", str(captured.url) + "?view=history"),  # another query
        ("GET", str(captured.url).replace("hz-1", "hf-1")),  # another authority
    ]:
        headers = httpsig.sign_response(
            200, {}, body, *fields, "node:hz-1", key, request_method=method, request_url=url
        )
        with pytest.raises(httpsig.BadSignatureError):
            httpsig.verify_response(200, headers, body, *fields, _keys(w), **_bound(captured))
    # The same answer bound to the request as sent verifies: the check is the binding.
    headers = httpsig.sign_response(200, {}, body, *fields, "node:hz-1", key, **_bound(captured))
    assert (
        httpsig.verify_response(200, headers, body, *fields, _keys(w), **_bound(captured))
        == "node:hz-1"
    )


class Redirect(httpx.AsyncBaseTransport):
    """A man in the middle: sends every signed request, fields and all, to another path."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str) -> None:
        self.inner, self.path = inner, path
        self.redirected = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "signature" in request.headers:
            self.redirected += 1
            request = httpx.Request(
                "GET", request.url.copy_with(path=self.path, query=None), headers=request.headers
            )
        return await self.inner.handle_async_request(request)


async def test_the_peer_client_refuses_a_replayed_answer(shared_world):
    """End to end through the node's own peer client: hz-1 asks hf-1 for records, the
    request's fields land on hf-1's health route, and hz-1 names hf-1 as misbehaving."""
    w = shared_world
    redirect = Redirect(w.net.transport, "/v1/health")
    client = PeerClient(w.manifest, "hz-1", w.net.keys["hz-1"], transport=redirect)
    try:
        with pytest.raises(PeerMisbehavedError, match="response signature"):
            await client.call("hf-1", "POST", "/v1/peer/records", json_body={})
    finally:
        await client.aclose()
    assert redirect.redirected == 1
