"""Edge values schemathesis found no way to send before the OpenAPI declared bounds:
integers past SQLite's 64-bit range and NUL characters in file names. Each was a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")

HUGE = [2**63, 2**70]


@pytest.mark.parametrize("size", HUGE)
async def test_cosignature_of_a_huge_size_is_422(shared_world, problem, size):
    w = shared_world
    before = w.sizes()
    async with w.net.operator("sh-1") as c:
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": "— x AAAA"})
    assert "size" in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before


@pytest.mark.parametrize(
    "path,params",
    [
        ("/v1/proofs/inclusion", {"index": 0, "size": 2**64}),
        ("/v1/proofs/consistency", {"old": 2**64}),
        ("/v1/entries", {"start": 2**64, "end": 2**65}),
    ],
)
async def test_huge_query_integers_are_422(shared_world, problem, path, params):
    async with shared_world.net.operator("sh-1") as c:
        r = await c.get(f"http://hz-1{path}", params=params)
    problem(r, 422, "invalid-record")


@pytest.mark.parametrize("source", ["a\x00b", "\x00"])
async def test_nul_in_an_ingest_source_is_422(shared_world, problem, source):
    w = shared_world
    before = w.sizes()
    async with w.net.operator("hz-1") as c:
        r = await c.post("http://hz-1/v1/ingest", json={"source": source})
    assert "source" in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before and not w.state("hz-1").ingest_jobs
