"""Ingest jobs are the operator's: their listing names local source files and the line that
stopped a job (record content in the error). Before, ``GET /v1/ingest`` answered anyone,
unsigned, and ``GET /v1/info`` repeated the jobs to anyone too."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOURCE = "private-feed.jsonl"
SECRET = "秘密示例有限公司"


async def _failed_job(w) -> dict:
    """A file ingest on hz-1 whose only line is bad: a job with a source and an error."""
    st = w.state("hz-1")
    sources = st.settings.data_dir / "sources"
    sources.mkdir(exist_ok=True)
    (sources / SOURCE).write_text(
        json.dumps({"uscc": w.uscc, "record_id": "x", "body": {"name": SECRET}}, ensure_ascii=False)
        + "\n",
        "utf-8",
    )
    async with w.net.operator("hz-1") as c:
        r = await c.post("http://hz-1/v1/ingest", json={"source": SOURCE})
    assert r.status_code == 202, r.text
    job = st.ingest_jobs[r.json()["job_id"]]
    for _ in range(2000):  # hang guard: the job runs on this event loop
        if job["status"] != "running":
            break
        await asyncio.sleep(0.01)
    assert job["status"] == "failed" and job["error"], job
    return job


async def test_the_ingest_listing_is_for_the_operator_alone(shared_world, problem):
    w = shared_world
    before = w.sizes()
    job = await _failed_job(w)
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.get("http://hz-1/v1/ingest")
    problem(r, 401, "bad-signature")
    refused = [r]
    for client in (w.net.operator("sh-1"), w.inst()):  # a peer node, an institution
        async with client as c:
            r = await c.get("http://hz-1/v1/ingest")
        problem(r, 403, "unknown-peer")
        refused.append(r)
    for r in refused:
        assert SOURCE not in r.text and job["job_id"] not in r.text
    async with w.net.operator("hz-1") as c:
        r = await c.get("http://hz-1/v1/ingest")
    assert r.status_code == 200, r.text
    (listed,) = [j for j in r.json()["jobs"] if j["job_id"] == job["job_id"]]
    assert listed["source"] == SOURCE and listed["error"] == job["error"]
    assert w.sizes() == before


async def test_info_does_not_show_ingest_jobs(shared_world):
    w = shared_world
    job = await _failed_job(w)
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.get("http://hz-1/v1/info")
    assert r.status_code == 200, r.text
    assert "ingest" not in r.json()
    assert SOURCE not in r.text and job["job_id"] not in r.text and SECRET not in r.text
