"""Size limits over a real socket: a node served by uvicorn (h11) with the configuration
``python -m node`` uses (``node.http.server.server_config``).

The node refuses, with RFC 9457 problem details and before any handler runs,
more than ``MAX_HEADER_FIELDS`` header fields or ``MAX_HEADER_BYTES`` of them
(431), a request target over ``MAX_TARGET_BYTES`` (414) and a body over
``max_body_bytes``, declared or chunked (413). Those limits sit below the
server's own guard: h11 refuses a request head over 16 KiB with a bare 400 and
closes the connection when a head arrives in pieces past that size (the
last case). Nothing is recorded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.inproc_world import NODES, make_net
from support.served import serve

from node.http import httpsig
from node.http.middleware import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_TARGET_BYTES

H11_HEAD_LIMIT = 16 * 1024  # h11.DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, which uvicorn keeps by default


class Served:
    def __init__(self, net: Any, port: int) -> None:
        self.net, self.port = net, port
        self.url = f"http://127.0.0.1:{port}"
        self.node_id = NODES[0][0]

    @property
    def state(self) -> Any:
        return self.net.states[self.node_id]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="yrd-uvicorn-") as tmp:
        net = make_net(Path(tmp) / "net", NODES[:1])
        node_id = NODES[0][0]
        with serve(net.nodes[node_id], net.states[node_id].settings) as serving:
            yield Served(net, serving.port)


def _problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["type"].endswith(":" + slug) and body["status"] == status, body
    return dict(body)


def _client(s: Served, signed: bool = False) -> httpx.Client:
    auth = httpsig.RequestSigner(f"node:{s.node_id}", s.net.keys[s.node_id]) if signed else None
    return httpx.Client(base_url=s.url, auth=auth, timeout=30)


@pytest.mark.parametrize("signed", [False, True])
def test_too_many_header_fields_is_431(served: Served, signed: bool) -> None:
    size = served.state.ledger.size
    headers = {f"x-filler-{i}": "1" for i in range(MAX_HEADER_FIELDS)}
    with _client(served, signed) as c:
        r = c.post("/v1/ingest", headers=headers, json={"records": []})
    assert str(MAX_HEADER_FIELDS) in _problem(r, 431, "headers-too-large")["detail"]
    # refused before any signature is verified: unsigned, signed request or not
    assert "signature" not in r.headers and "signature-input" not in r.headers
    assert served.state.ledger.size == size


def test_large_header_field_is_431(served: Served) -> None:
    with _client(served) as c:
        r = c.get("/v1/health", headers={"x-filler": "a" * MAX_HEADER_BYTES})
    _problem(r, 431, "headers-too-large")


def test_long_target_is_414(served: Served) -> None:
    with _client(served) as c:
        r = c.get("/v1/proofs/inclusion", params={"index": 0, "pad": "a" * MAX_TARGET_BYTES})
    _problem(r, 414, "uri-too-long")


def test_oversized_bodies_are_413(served: Served) -> None:
    size = served.state.ledger.size
    limit = served.state.settings.max_body_bytes
    with _client(served, signed=True) as c:
        r = c.post(
            "/v1/ingest",
            content=b"[" + b" " * limit + b"]",
            headers={"content-type": "application/json"},
        )
        _problem(r, 413, "too-large")
        assert "signature" not in r.headers  # refused before the signature was verified

        def chunks() -> Iterator[bytes]:
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        r = c.post("/v1/ingest", content=chunks(), headers={"content-type": "application/json"})
        assert r.request.headers.get("transfer-encoding") == "chunked"
        _problem(r, 413, "too-large")
    assert served.state.ledger.size == size


@pytest.mark.parametrize("filler", [H11_HEAD_LIMIT, 64 * H11_HEAD_LIMIT])
def test_a_head_past_the_server_guard_is_refused(served: Served, filler: int) -> None:
    """h11 enforces its 16 KiB only while a head is still arriving: a head read in one
    piece reaches the node (431 problem), a longer one gets uvicorn's bare 400 — or, when
    the server closes while the client is still sending, a reset connection."""
    size = served.state.ledger.size
    with _client(served) as c:
        try:
            r = c.post("/v1/ingest", headers={"x-filler": "a" * filler}, json={"records": []})
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            r = None  # refused by closing the connection mid-request
        if r is not None and r.status_code == 431:
            _problem(r, 431, "headers-too-large")
        elif r is not None:
            assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), (
                r.text
            )
    with _client(served) as c:
        assert c.get("/v1/health").status_code == 200  # the node serves on
    assert served.state.ledger.size == size
