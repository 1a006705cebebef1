"""Bad input: every error is an RFC 9457 problem, and nothing is recorded.

All cases share one seeded world; each asserts that no ledger moved.
"""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="module")

BAD_USCC = {
    "check-character": "9134010000000CT75A",
    "alphabet": "9134010000000ct75e",
    "length": "9134010000",
    "admin-code": "9199999900000CT75E",
}


async def _post(world, path: str, *, node: str = "hz-1", operator: bool = False, **kw):
    client = world.net.operator(node) if operator else world.inst()
    async with client as c:
        return await c.post(f"http://{node}{path}", **kw)


async def test_malformed_json_body(shared_world, problem):
    w = shared_world
    before = w.sizes()
    r = await _post(
        w, "/v1/reports", content=b'{"uscc": "9134', headers={"content-type": "application/json"}
    )
    body = problem(r, 422, "invalid-record", instance="/v1/reports", node_id="hz-1")
    assert "json" in body["detail"].lower()
    # The peer endpoint parses its own body.
    async with w.net.operator("hz-1") as c:
        r = await c.post(
            "http://hf-1/v1/peer/records",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    body = problem(r, 422, "invalid-record", node_id="hf-1")
    assert "not JSON" in body["detail"]
    for wrong in (b"[]", b'"x"', b'{"query_id": "q"}'):
        async with w.net.operator("hz-1") as c:
            r = await c.post(
                "http://hf-1/v1/peer/records",
                content=wrong,
                headers={"content-type": "application/json"},
            )
        assert "malformed" in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before


async def test_oversized_body_is_413(shared_world, problem):
    w = shared_world
    before = w.sizes()
    limit = w.state("hz-1").settings.max_body_bytes
    big = b'{"uscc": "' + b"9" * limit + b'"}'
    r = await _post(w, "/v1/reports", content=big, headers={"content-type": "application/json"})
    body = problem(r, 413, "too-large", node_id="hz-1")
    assert str(limit) in body["detail"]
    r = await _post(
        w, "/v1/ingest", operator=True, content=big, headers={"content-type": "application/json"}
    )
    problem(r, 413, "too-large")
    assert w.sizes() == before


async def test_oversized_chunked_body_is_413(shared_world, problem):
    """No Content-Length (chunked upload): the limit still holds."""
    w = shared_world
    before = w.sizes()
    limit = w.state("hz-1").settings.max_body_bytes
    chunk = b" " * 65536

    async def stream():
        yield b'{"records": ['
        for _ in range(limit // len(chunk) + 2):
            yield chunk
        yield b"]}"

    r = await _post(
        w,
        "/v1/ingest",
        operator=True,
        content=stream(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    problem(r, 413, "too-large")
    assert w.sizes() == before


@pytest.mark.parametrize(
    "path,payload,where",
    [
        (
            "/v1/reports",
            {"uscc": "X", "purpose": "post_loan", "authorization_id": "a1", "admin": True},
            "admin",
        ),
        (
            "/v1/authorizations",
            {
                "authorization_id": "z",
                "uscc": "X",
                "institution_id": "hzbank",
                "purposes": ["post_loan"],
                "not_before": "2021-01-01T00:00:00Z",
                "not_after": "2099-01-01T00:00:00Z",
                "document_digest": "a" * 64,
                "scope": "all",
            },
            "scope",
        ),
        ("/v1/authorizations/a1/revocation", {"reason": "x", "effective": "now"}, "effective"),
    ],
)
async def test_unknown_fields_are_422(shared_world, problem, path, payload, where):
    w = shared_world
    before = w.sizes()
    r = await _post(w, path, json=payload)
    body = problem(r, 422, "invalid-record")
    assert where in body["detail"]
    assert ["body", where] in [e["loc"] for e in body["errors"]]
    assert w.sizes() == before


async def test_unknown_record_field_in_ingest_is_422(shared_world, problem):
    w = shared_world
    before = w.sizes()
    rec = {
        "uscc": w.uscc,
        "record_type": "tax_rating",
        "record_id": "hz-1:x",
        "source": "s",
        "observed_at": "2022-01-01T00:00:00Z",
        "body": {},
        "secret": 1,
    }
    r = await _post(w, "/v1/ingest", operator=True, json={"records": [rec]})
    assert "secret" in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before


@pytest.mark.parametrize("rule", sorted(BAD_USCC))
async def test_invalid_uscc_names_the_rule(shared_world, problem, rule):
    w = shared_world
    bad = BAD_USCC[rule]
    before = w.sizes()
    r = await w.report(uscc=bad)
    body = problem(r, 422, "invalid-uscc", rule=rule, instance="/v1/reports")
    assert bad in body["detail"]
    async with w.inst() as c:
        r = await c.get(f"http://hz-1/v1/enterprises/{bad}/queries")
    problem(r, 422, "invalid-uscc", rule=rule)
    async with w.inst() as c:
        r = await c.post(
            "http://hz-1/v1/authorizations",
            json={
                "authorization_id": f"bad-{rule}",
                "uscc": bad,
                "institution_id": "hzbank",
                "purposes": ["post_loan"],
                "not_before": "2021-01-01T00:00:00Z",
                "not_after": "2099-01-01T00:00:00Z",
                "document_digest": "a" * 64,
            },
        )
    problem(r, 422, "invalid-uscc", rule=rule)
    rec = {
        "uscc": bad,
        "record_type": "tax_rating",
        "record_id": "hz-1:bad",
        "source": "s",
        "observed_at": "2022-01-01T00:00:00Z",
        "body": {},
    }
    r = await _post(w, "/v1/ingest", operator=True, json={"records": [rec]})
    problem(r, 422, "invalid-uscc", rule=rule)
    assert w.sizes() == before


async def test_unknown_purpose_is_422_and_not_recorded(shared_world, problem):
    w = shared_world
    before = w.sizes()
    audit = await w.queries("hz-1")
    r = await w.report(purpose="curiosity")
    body = problem(r, 422, "invalid-record")
    assert "curiosity" in body["detail"] and "post_loan" in body["detail"]
    assert w.sizes() == before
    assert await w.queries("hz-1") == audit  # no receipt


@pytest.mark.parametrize(
    "not_before,not_after,needle",
    [
        ("2021-01-01", "2099-01-01T00:00:00Z", "not_before"),
        ("2021-01-01T00:00:00Z", "2099-01-01T00:00:00+08:00", "not_after"),
        ("2021-01-01T00:00:00.5Z", "2099-01-01T00:00:00Z", "not_before"),
        ("yesterday", "tomorrow", "not_before"),
        ("2030-01-01T00:00:00Z", "2029-01-01T00:00:00Z", "later than"),
    ],
)
async def test_invalid_authorization_times_are_422(
    shared_world, problem, not_before, not_after, needle
):
    w = shared_world
    before = w.sizes()
    async with w.inst() as c:
        r = await c.post(
            "http://hz-1/v1/authorizations",
            json={
                "authorization_id": "times",
                "uscc": w.uscc,
                "institution_id": "hzbank",
                "purposes": ["post_loan"],
                "not_before": not_before,
                "not_after": not_after,
                "document_digest": "a" * 64,
            },
        )
    assert needle in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before


async def test_invalid_observed_time_in_ingest_is_422(shared_world, problem):
    w = shared_world
    before = w.sizes()
    good = {
        "uscc": w.uscc,
        "record_type": "tax_rating",
        "record_id": "hz-1:ok",
        "source": "s",
        "observed_at": "2022-01-01T00:00:00Z",
        "body": {},
    }
    bad = {**good, "record_id": "hz-1:late", "observed_at": "2022-13-01T00:00:00Z"}
    r = await _post(w, "/v1/ingest", operator=True, json={"records": [good, bad]})
    assert "observed_at" in problem(r, 422, "invalid-record")["detail"]
    assert w.sizes() == before  # the batch is one transaction: the good record is not in either


async def test_bad_query_parameters_are_problems(shared_world, problem):
    w = shared_world
    async with w.inst() as c:
        r = await c.get("http://hz-1/v1/proofs/inclusion", params={"index": "abc"})
        problem(r, 422, "invalid-record")
        r = await c.get("http://hz-1/v1/proofs/inclusion", params={"index": 10_000})
        assert "index" in problem(r, 422, "invalid-record")["detail"]
        r = await c.get("http://hz-1/v1/proofs/consistency", params={"old": 5, "new": 2})
        problem(r, 422, "invalid-record")
    async with w.net.operator("hz-1") as c:
        r = await c.get(
            f"http://hz-1/v1/enterprises/{w.uscc}/records", params={"view": "everything"}
        )
        problem(r, 422, "invalid-record")


async def test_unknown_route_and_method_are_problems(shared_world, problem):
    w = shared_world
    async with w.inst() as c:
        r = await c.get("http://hz-1/v1/nothing-here")
        body = problem(r, 404, "not-found", instance="/v1/nothing-here", node_id="hz-1")
        assert set(body) != {"detail"}
        r = await c.delete("http://hz-1/v1/reports")
        problem(r, 405, "method-not-allowed")
        r = await c.post("http://hz-1/v1/authorizations/no-such/revocation", json={"reason": "x"})
        problem(r, 404, "not-found")
        r = await c.get("http://hz-1/v1/institutions/no-such")
        problem(r, 403, "unknown-institution")
    # Unsigned, too.
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.get("http://hf-1/v1/nothing-here")
    problem(r, 404, "not-found", node_id="hf-1")


async def test_duplicates_are_409(shared_world, problem):
    w = shared_world
    before = w.sizes()
    async with w.inst() as c:
        r = await c.post(
            "http://hz-1/v1/authorizations",
            json={
                "authorization_id": "a1",
                "uscc": w.uscc,
                "institution_id": "hzbank",
                "purposes": ["post_loan"],
                "not_before": "2021-01-01T00:00:00Z",
                "not_after": "2099-01-01T00:00:00Z",
                "document_digest": "a" * 64,
            },
        )
    problem(r, 409, "duplicate-entry")
    rec = {
        "uscc": w.uscc,
        "record_type": "registration",
        "record_id": "hf-1:r1",
        "source": "s",
        "observed_at": "2022-01-01T00:00:00Z",
        "body": {},
    }
    r = await _post(w, "/v1/ingest", node="hf-1", operator=True, json={"records": [rec]})
    problem(r, 409, "duplicate-entry")
    assert w.sizes() == before


async def test_an_unexpected_error_is_a_signed_problem_and_counted(world, problem, monkeypatch):
    """An exception no handler expects still ends as an RFC 9457 problem, signed, with no trace."""

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("node.api.institution.make_report", boom)
    r = await world.report()
    problem(r, 500, "internal", node_id="hz-1")
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert "signature" in r.headers and "signature-input" in r.headers
    async with world.inst() as c:
        metrics = (await c.get("http://hz-1/metrics")).text
    assert 'node_requests_total{route="/v1/reports",status="500"} 1.0' in metrics.splitlines()
