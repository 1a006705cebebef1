"""JSON nested too deep: refused with a 422 problem naming the limit, before any parser runs.

200,000 nested ``[`` (400 KB) used to end in ``RecursionError`` and a 500 wherever
the body or answer was parsed. Every route, signed or not, now refuses such a body
in the middleware, and a peer's answer nested that deep is a misbehaving peer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re

import httpx
import pytest
from starlette.responses import Response

from ledger import MAX_BODY_DEPTH, MAX_JSON_DEPTH, parse_entry

pytestmark = pytest.mark.asyncio(loop_scope="module")

BOMB = b"[" * 200_000  # the reproduction: 200,000 nested arrays, 400 KB with the closers
BOMB = BOMB + b"]" * len(BOMB)


def nested(depth: int, inner: bytes = b"1") -> bytes:
    """A JSON object whose ``uscc`` member nests arrays down to ``depth`` levels in all."""
    arrays = depth - 1
    return b'{"uscc": ' + b"[" * arrays + inner + b"]" * arrays + b"}"


async def _post(world, node: str, path: str, content: bytes, *, as_peer: bool = True, **kw):
    client = world.net.operator("hz-1") if as_peer else world.inst()
    async with client as c:
        return await c.post(
            f"http://{node}{path}",
            content=content,
            headers={"content-type": "application/json"},
            **kw,
        )


@pytest.mark.parametrize("path", ["/v1/peer/records", "/v1/peer/receipts"])
async def test_deep_json_signed_by_a_peer_is_422(shared_world, problem, path):
    w = shared_world
    before = w.sizes()
    r = await _post(w, "hf-1", path, BOMB)
    body = problem(r, 422, "json-too-deep", node_id="hf-1", instance=path)
    assert body["max_depth"] == MAX_JSON_DEPTH
    assert f"more than {MAX_JSON_DEPTH} levels" in body["detail"]
    assert "signature" not in r.headers  # refused before the signature was verified: unsigned
    assert w.sizes() == before


async def test_every_route_refuses_deep_json_unsigned(shared_world, problem):
    """Each route the node serves, with every method it accepts, and no signature."""
    w = shared_world
    app = w.net.nodes["hz-1"]
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    assert len(routes) > 20
    before = w.sizes()
    async with httpx.AsyncClient(transport=w.net.transport) as plain:
        for method, path in routes:
            r = await plain.request(method, f"http://hz-1{path}", content=BOMB)
            problem(r, 422, "json-too-deep", instance=path, max_depth=MAX_JSON_DEPTH)
    assert w.sizes() == before


async def test_the_limit_is_the_limit(shared_world, problem):
    """At the limit the body reaches the route (which finds no USCC there); one past, it does not."""
    w = shared_world
    r = await _post(w, "hz-1", "/v1/reports", nested(MAX_JSON_DEPTH), as_peer=False)
    assert problem(r, 422, "invalid-record")["status"] == 422
    r = await _post(w, "hz-1", "/v1/reports", nested(MAX_JSON_DEPTH + 1), as_peer=False)
    problem(r, 422, "json-too-deep", max_depth=MAX_JSON_DEPTH)
    # Brackets inside strings are text, not nesting.
    r = await _post(w, "hz-1", "/v1/reports", nested(3, b'"' + b"[{" * 5000 + b'"'), as_peer=False)
    assert problem(r, 422, "invalid-record")["status"] == 422


async def test_deep_chunked_body_is_422(shared_world, problem):
    """No Content-Length: the body is read to its end (within the size limit) and scanned."""
    w = shared_world

    async def stream():
        for i in range(0, len(BOMB), 65536):
            yield BOMB[i : i + 65536]

    r = await _post(w, "hf-1", "/v1/peer/records", stream())
    assert "content-length" not in r.request.headers
    problem(r, 422, "json-too-deep", max_depth=MAX_JSON_DEPTH)


async def test_a_peer_answering_deep_json_is_a_failed_holder(world, problem, monkeypatch):
    """The home node parses a holder's signed answer with the same limit: no 500."""

    async def deep_answer(*args: object, **kwargs: object) -> Response:
        return Response(BOMB, media_type="application/json")

    monkeypatch.setattr("node.api.peer.answer_peer", deep_answer)
    r = await world.report()
    assert r.status_code == 200, r.text
    missing = {m["node_id"]: m["reason"] for m in r.json()["report"]["missing"]}
    assert missing.keys() == {"hf-1", "sh-1"}
    for reason in missing.values():
        assert f"more than {MAX_JSON_DEPTH} levels" in reason, reason


async def test_a_peer_serving_deep_json_to_a_mirror_is_an_error_not_a_crash(world):
    """Unsigned reads (checkpoints, proofs) go through the same limit."""
    from node.peers.mirror import mirror_once

    world.net.transport.transports["hf-1"] = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=BOMB, headers={"content-type": "application/json"}
        )
    )
    results = {r["peer"]: r for r in await mirror_once(world.state("hz-1"))}
    assert results["hf-1"]["status"] == "error"
    assert f"more than {MAX_JSON_DEPTH} levels" in results["hf-1"]["detail"]
    assert results["sh-1"]["status"] == "ok"


async def test_record_bodies_nest_at_most_max_body_depth(world, problem):
    """A body the node accepts fits in every answer that later carries it."""
    w = world

    def record(record_id: str, depth: int) -> dict[str, object]:
        inner: object = "deep"
        for _ in range(depth - 1):  # the body object itself is one level
            inner = [inner]
        return {
            "uscc": w.uscc,
            "record_type": "registration",
            "record_id": record_id,
            "source": "hf-amr",
            "observed_at": "2021-02-01T00:00:00Z",
            "body": {"v": inner},
        }

    before = w.sizes()
    async with w.net.operator("hf-1") as c:
        r = await c.post(
            "http://hf-1/v1/ingest", json={"records": [record("hf-1:deep", MAX_BODY_DEPTH + 1)]}
        )
        body = problem(r, 422, "invalid-record")
        assert f"at most {MAX_BODY_DEPTH}" in body["detail"] and "records[0].body" in body["detail"]
        assert w.sizes() == before
        r = await c.post(
            "http://hf-1/v1/ingest", json={"records": [record("hf-1:deepest", MAX_BODY_DEPTH)]}
        )
        assert r.status_code == 202, r.text
    await w.mirror_all()
    r = await w.report()
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert report["missing"] == []
    ids = {
        parse_entry(base64.b64decode(rec["entry"])).record_id
        for holder in report["holders"]
        for rec in holder["records"]
    }
    assert "hf-1:deepest" in ids


async def test_a_source_file_line_nested_too_deep_stops_the_job_naming_the_line(world):
    w = world
    st = w.state("hf-1")
    sources = st.settings.data_dir / "sources"
    sources.mkdir(exist_ok=True)
    good = {
        "uscc": w.uscc,
        "record_type": "registration",
        "record_id": "hf-1:file-1",
        "source": "hf-amr",
        "observed_at": "2021-02-01T00:00:00Z",
        "body": {"name": "ok"},
    }
    limit = st.settings.max_body_bytes
    cases = {
        "deep.jsonl": (
            BOMB,
            f"deep.jsonl line 2: the line nests arrays and objects more than {MAX_JSON_DEPTH}",
        ),
        "long.jsonl": (b" " * (limit + 1), f"long.jsonl line 2 is longer than {limit} characters"),
    }
    before = w.sizes()
    for name, (line, expected) in cases.items():
        (sources / name).write_bytes(json.dumps(good).encode() + b"\n" + line + b"\n")
        async with w.net.operator("hf-1") as c:
            r = await c.post("http://hf-1/v1/ingest", json={"source": name})
            assert r.status_code == 202, r.text
            await asyncio.gather(*st.metrics["_tasks"])
            jobs = {j["job_id"]: j for j in (await c.get("http://hf-1/v1/ingest")).json()["jobs"]}
        job = jobs[r.json()["job_id"]]
        assert job["status"] == "failed"
        assert job["error"].startswith(expected), job["error"]
    assert w.sizes() == before
