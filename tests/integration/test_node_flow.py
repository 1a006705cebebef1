"""The whole flow across three city nodes: ingest, mirror, authorize, report,
verify offline, audit. Also the operational surface (metrics, OpenAPI)."""

from __future__ import annotations

import pytest

from node.bundle import verify_bundle
from node.http import httpsig
from node.reports import route


async def test_report_spans_three_nodes_and_verifies_offline(world):
    before = world.sizes()
    r = await world.report()
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    bundle = r.json()
    report = bundle["report"]
    assert report["partial"] is False and report["missing"] == []
    assert report["home_node"] == "hz-1" and report["uscc"] == world.uscc

    summary = verify_bundle(bundle, world.manifest)
    assert summary.partial is False
    assert summary.holders == {"hz-1": 1, "hf-1": 3, "sh-1": 1}
    assert {h["node_id"] for h in report["holders"]} == {"hz-1", "hf-1", "sh-1"}

    current = {d["record_id"] for d in summary.current}
    history = {d["record_id"] for d in summary.history}
    assert current == {"hf-1:r1", "hf-1:p1c", "sh-1:j1", "hz-1:t1"}
    assert "hf-1:p1" not in current  # superseded by the correction
    assert history == current | {"hf-1:p1"}
    penalty = next(d for d in summary.history if d["record_id"] == "hf-1:p1")
    assert (
        penalty["body"] == {"amount_minor": 100_000} and penalty["record_type"] == "admin_penalty"
    )
    correction = next(d for d in summary.current if d["record_id"] == "hf-1:p1c")
    assert correction["supersedes"] == "hf-1:p1" and correction["kind"] == "correction"

    # One receipt at home, one at each remote holder; hz-1 answered locally.
    after = world.sizes()
    assert after == {
        "hz-1": before["hz-1"] + 1,
        "hf-1": before["hf-1"] + 1,
        "sh-1": before["sh-1"] + 1,
    }
    home_q = await world.queries("hz-1")
    assert [(q["role"], q["outcome"], q["records"]) for q in home_q] == [("home", "granted", 5)]
    assert home_q[0]["query_id"] == report["query_id"] == summary.query_id
    assert home_q[0]["index"] == report["home_receipt"]["index"]
    for holder, n in (("hf-1", 3), ("sh-1", 1)):
        qs = await world.queries(holder)
        assert len(qs) == 1, qs
        q = qs[0]
        assert (q["query_id"], q["role"], q["outcome"], q["records"]) == (
            report["query_id"],
            "holder",
            "granted",
            n,
        )
        assert (q["home_node"], q["holder_node"], q["institution_id"]) == ("hz-1", holder, "hzbank")
        assert (q["purpose"], q["authorization_id"]) == ("post_loan", "a1")


@pytest.mark.asyncio(loop_scope="module")
async def test_query_history_lists_granted_and_denied(shared_world, problem):
    w = shared_world
    ok = await w.report()
    assert ok.status_code == 200, ok.text
    granted_id = ok.json()["report"]["query_id"]
    denied = await w.report(purpose="pre_loan")  # a1 allows post_loan only
    body = problem(denied, 403, "authorization-invalid", reason="other-purpose")
    denied_id = body["detail"].split("(query ")[1].split(" ")[0]
    for node_id, role in (("hz-1", "home"), ("hf-1", "holder"), ("sh-1", "holder")):
        qs = {q["query_id"]: q for q in await w.queries(node_id)}
        g, d = qs[granted_id], qs[denied_id]
        assert (g["role"], g["purpose"], g["outcome"]) == (role, "post_loan", "granted"), g
        assert (d["role"], d["purpose"], d["outcome"], d["records"]) == (
            role,
            "pre_loan",
            "denied",
            0,
        ), d
        assert "other-purpose" in d["reason"]
        assert g["institution_id"] == d["institution_id"] == "hzbank"
        assert g["index"] < d["index"]
        assert g["at"] <= d["at"]


@pytest.mark.asyncio(loop_scope="module")
async def test_operator_record_views_resolve_the_correction(shared_world):
    async with shared_world.net.operator("hf-1") as c:
        cur = await c.get(f"http://hf-1/v1/enterprises/{shared_world.uscc}/records")
        hist = await c.get(
            f"http://hf-1/v1/enterprises/{shared_world.uscc}/records", params={"view": "history"}
        )
    assert cur.status_code == hist.status_code == 200
    assert [x["record_id"] for x in cur.json()["records"]] == ["hf-1:r1", "hf-1:p1c"]
    assert [x["record_id"] for x in hist.json()["records"]] == ["hf-1:r1", "hf-1:p1", "hf-1:p1c"]


@pytest.mark.asyncio(loop_scope="module")
async def test_responses_to_signed_requests_are_signed_and_bound(shared_world):
    async with shared_world.inst() as c:
        r = await c.get(f"http://hz-1/v1/enterprises/{shared_world.uscc}/queries")
    assert r.status_code == 200
    sent = r.request.headers
    keys = {"node:hz-1": shared_world.manifest.node("hz-1").key()}
    assert (
        httpsig.verify_response(
            r.status_code,
            dict(r.headers),
            r.content,
            sent["signature-input"],
            sent["signature"],
            keys,
            request_method=r.request.method,
            request_url=str(r.request.url),
        )
        == "node:hz-1"
    )
    # Bound to this request: it does not verify as the answer to another one.
    async with shared_world.inst() as c:
        other = await c.get("http://hz-1/v1/health")
    try:
        httpsig.verify_response(
            r.status_code,
            dict(r.headers),
            r.content,
            other.request.headers["signature-input"],
            other.request.headers["signature"],
            keys,
            request_method=other.request.method,
            request_url=str(other.request.url),
        )
    except httpsig.BadSignatureError:
        pass
    else:
        raise AssertionError("a response verified against another request's signature")


async def test_catalogue_routes_to_a_non_home_holder(make_world):
    world = await make_world(mirror=False)
    hz = world.state("hz-1")
    # Before mirroring, hz-1 knows only the enterprise's city (Hefei) and itself.
    assert route(hz, world.uscc) == ["hf-1", "hz-1"]
    await world.mirror_all()
    assert route(hz, world.uscc) == ["hf-1", "hz-1", "sh-1"]
    assert hz.views.holders(world.uscc) == {"hf-1", "sh-1"}
    r = await world.report()
    assert r.status_code == 200, r.text
    sections = {
        h["node_id"]: [x["index"] for x in h["records"]] for h in r.json()["report"]["holders"]
    }
    assert sections["sh-1"] == [0]  # Shanghai holds a record of a Hefei enterprise
    # A Hangzhou enterprise held only by hz-1 is routed to no one else.
    assert route(hz, world.other_uscc) == ["hz-1"]


@pytest.mark.asyncio(loop_scope="module")
async def test_metrics_are_prometheus_text(shared_world):
    async with shared_world.inst() as c:
        r = await c.get("http://hf-1/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert "# TYPE node_ledger_entries gauge" in lines
    size = shared_world.state("hf-1").ledger.size
    assert f"node_ledger_entries {float(size)}" in lines
    assert any(line.startswith("node_requests_total{") for line in lines)
    assert any(line.startswith("node_ledger_height ") for line in lines)
    # Requests are counted by route template and status, and timed.
    async with shared_world.inst() as c:
        await c.get("http://hf-1/v1/health")
        await c.get("http://hf-1/v1/institutions/nobody")
        after = (await c.get("http://hf-1/metrics")).text.splitlines()

    def count(route: str, status: int, text: list[str]) -> float:
        prefix = f'node_requests_total{{route="{route}",status="{status}"}} '
        return sum(float(line[len(prefix) :]) for line in text if line.startswith(prefix))

    assert count("/v1/health", 200, after) == count("/v1/health", 200, lines) + 1
    assert (
        count("/v1/institutions/{institution_id}", 403, after)
        == count("/v1/institutions/{institution_id}", 403, lines) + 1
    )
    assert any(line.startswith('node_request_seconds_count{route="/v1/health"}') for line in after)


@pytest.mark.asyncio(loop_scope="module")
async def test_foreground_demand_is_counted_apart_from_witnessing(shared_world):
    """Mirroring yields only to foreground demand (node.peers.mirror.pause_after): witnessing,
    mirroring and monitoring requests must not count as demand, reports must."""
    hz, hf = shared_world.state("hz-1"), shared_world.state("hf-1")
    before = (hz.metrics.get("foreground", 0), hf.metrics.get("foreground", 0))
    async with shared_world.inst() as c:
        for path in ("/v1/health", "/v1/info", "/v1/checkpoint", "/metrics"):
            assert (await c.get(f"http://hf-1{path}")).status_code == 200
    await shared_world.mirror_all()
    assert (hz.metrics.get("foreground", 0), hf.metrics.get("foreground", 0)) == before
    r = await shared_world.report()
    assert r.status_code == 200, r.text
    assert hz.metrics["foreground"] > before[0]  # the report
    assert hf.metrics["foreground"] > before[1]  # the holder's answer to it


@pytest.mark.asyncio(loop_scope="module")
async def test_openapi_lists_the_endpoints(shared_world):
    async with shared_world.inst() as c:
        r = await c.get("http://hz-1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path, method in [
        ("/v1/reports", "post"),
        ("/v1/authorizations", "post"),
        ("/v1/authorizations/{authorization_id}/revocation", "post"),
        ("/v1/enterprises/{uscc}/queries", "get"),
        ("/v1/peer/records", "post"),
        ("/v1/peer/receipts", "post"),
        ("/v1/checkpoint", "get"),
        ("/v1/cosignatures", "post"),
        ("/v1/peers", "get"),
        ("/v1/peers/{peer_id}/resolve", "post"),
        ("/v1/ingest", "post"),
        ("/v1/institutions", "post"),
        ("/v1/proofs/inclusion", "get"),
        ("/v1/proofs/consistency", "get"),
        ("/v1/entries", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths.get(path, {}), (path, method)
