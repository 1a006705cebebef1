"""Schemathesis against every operation of a node's OpenAPI, in process.

Each generated request (schema-conforming and schema-violating) is sent four
times to Hangzhou's node of the seeded three-city world: unsigned, then signed
by three callers the consortium knows — the node's own operator, a peer node
(Shanghai) and a registered institution (hzbank) — so the validation behind
authentication is reached too. For every answer:

* no 5xx, and the answer conforms to the OpenAPI (status, content type, schema;
  schema-violating requests are refused with a 4xx);
* every 4xx is ``application/problem+json`` with the RFC 9457 fields;
* an unsigned request to an operation that needs a signature is a 401 (a
  schema-violating one may instead be refused before authentication);
* a refused request changes nothing: every ledger's size and every node's
  ``state.db`` are as before, except the audit trail of a denied query (receipts
  with outcome ``denied``), which DESIGN.md requires.

Examples per operation and mode: ``SECURITY_FUZZ_EXAMPLES`` (default 25), so a
CI run takes one to two minutes. The requests sent are counted and printed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from support.inproc_world import NODES, World, make_net, seed_world

from ledger import AlarmEntry, ReceiptEntry, parse_entry
from node.api.problems import URN
from node.http import httpsig

MAX_EXAMPLES = int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "25"))
TARGET = "hz-1"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "node_id"}
STATE_TABLES = {
    "peers": "node_id, size, root, height, note, mirrored, peaks",
    "catalogue": "key, node_id",
    "revoked": "node_id, authorization_id",
    "alarms": "id, node_id, fault, detail, ledger_index, raised_at, resolved_at",
    "cosignatures": "size, witness, line",
}
# A request over the node's limits (body, target, header fields) is refused before its data
# is looked at: 413, 414 and 431 are rejections of invalid data too.
LIMIT_STATUSES = frozenset({413, 414, 431})


@schemathesis.check
def negative_data_rejection_or_limit(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's negative-data check, with the size limits counted as rejections."""
    if response.status_code in LIMIT_STATUSES:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection_or_limit,
]


@dataclass
class FuzzNet:
    portal: BlockingPortal
    world: World
    signed_ops: set[tuple[str, str]]  # (METHOD, path template) of operations that need a signature
    sent: Counter[str] = field(default_factory=Counter)

    def signers(self) -> list[tuple[str, Any]]:
        keys = self.world.net.keys
        return [
            (f"node:{TARGET}", keys[TARGET]),
            ("node:sh-1", keys["sh-1"]),
            ("inst:hzbank", self.world.inst_key),
        ]


def _signed_operations(app: Any) -> set[tuple[str, str]]:
    """Operations whose handler depends on the signature-checking ``caller`` dependency."""
    out = set()
    for route in app.routes:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        if any(getattr(d.call, "__name__", "") == "caller" for d in dependant.dependencies):
            out |= {(m, route.path) for m in route.methods}
    return out


@pytest.fixture(scope="module")
def fuzz_net() -> Iterator[FuzzNet]:
    with start_blocking_portal() as portal, tempfile.TemporaryDirectory(prefix="yrd-fuzz-") as tmp:

        async def build() -> World:
            return await seed_world(make_net(Path(tmp) / "net", NODES))

        world = portal.call(build)
        fuzz = FuzzNet(portal, world, _signed_operations(world.net.nodes[TARGET]))
        try:
            yield fuzz
        finally:
            portal.call(world.net.close)
            total = sum(fuzz.sent.values())
            print(
                f"\nschemathesis: {total} requests sent to {TARGET} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(fuzz.sent.items()))})"
            )


def _node_openapi() -> dict[str, Any]:
    """The node's OpenAPI document, from a throwaway one-node network (it names no secret)."""
    with tempfile.TemporaryDirectory(prefix="yrd-openapi-") as tmp:
        net = make_net(Path(tmp) / "net", NODES[:1])
        try:
            return dict(net.nodes[NODES[0][0]].openapi())
        finally:
            asyncio.run(net.close())


schema = schemathesis.openapi.from_dict(_node_openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    database="none",
)


def _state(world: World) -> dict[str, Any]:
    """Every ledger's size and a digest of every node's state.db rows."""
    out: dict[str, Any] = {}
    for node_id, st in world.net.states.items():
        digest = hashlib.sha256()
        for table, columns in STATE_TABLES.items():
            for row in st.views._q(f"SELECT {columns} FROM {table} ORDER BY 1, 2"):  # noqa: SLF001
                digest.update(repr(row).encode())
        out[node_id] = (st.ledger.size, digest.hexdigest(), len(st.ingest_jobs))
    return out


def _audit_only(world: World, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the only change is denied-query receipts (and alarms they raised) on the ledgers."""
    for node_id, st in world.net.states.items():
        old, new = before[node_id][0], after[node_id][0]
        for _, data in st.ledger.entries(old, new):
            entry = parse_entry(data)
            if not (
                isinstance(entry, ReceiptEntry)
                and entry.outcome == "denied"
                or isinstance(entry, AlarmEntry)
            ):
                return False
        if before[node_id][1] != after[node_id][1] and not st.views.alarms():
            return False
    return True


def _request(case: Any) -> httpx.Request | None:
    """The case as an httpx request (None if the generated data cannot form an HTTP request)."""
    kwargs = case.as_transport_kwargs(base_url=f"http://{TARGET}")
    allowed = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
    try:
        prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
        assert prepared.method is not None and prepared.url is not None
        return httpx.Request(
            prepared.method, prepared.url, headers=list(prepared.headers.items()), content=body
        )
    except (ValueError, requests.RequestException, httpx.InvalidURL, UnicodeError):
        return None


async def _send(fuzz: FuzzNet, request: httpx.Request) -> httpx.Response:
    async with httpx.AsyncClient(transport=fuzz.world.net.transport) as c:
        return await c.send(request)


def _check_problem(response: httpx.Response) -> None:
    assert response.headers.get("content-type", "").startswith("application/problem+json"), (
        response.headers
    )
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == response.status_code and body["type"].startswith(URN), body
    assert isinstance(body["detail"], str) and "Traceback" not in body["detail"]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case: Any, fuzz_net: FuzzNet) -> None:
    fuzz = fuzz_net
    world = fuzz.world
    positive = case.meta is None or not case.meta.generation.mode.is_negative
    needs_signature = (case.method.upper(), case.path) in fuzz.signed_ops
    for key_id, key in [(None, None), *fuzz.signers()]:
        request = _request(case)
        if request is None:
            fuzz.sent["unsendable"] += 1
            return
        if key_id is not None:
            httpsig.RequestSigner(key_id, key).sign(request)
        before = _state(world)
        response = fuzz.portal.call(_send, fuzz, request)
        fuzz.sent[key_id or "unsigned"] += 1
        case.validate_response(response, checks=CHECKS)
        assert response.status_code < 500, (key_id, response.status_code, response.text)
        if response.status_code >= 400:
            _check_problem(response)
            after = _state(world)
            if after != before:
                assert response.json()["type"] == URN + "authorization-invalid" and _audit_only(
                    world, before, after
                ), (
                    f"refused request changed state: {key_id} {request.method} {request.url} -> "
                    f"{response.status_code} {response.text[:300]}; {before} -> {after}"
                )
        if key_id is None and needs_signature:
            if positive:
                assert response.status_code == 401, (
                    request.method,
                    request.url,
                    response.status_code,
                    response.text,
                )
            else:
                assert response.status_code in (400, 401, 404, 405, 413, 415, 422), (
                    response.status_code,
                    response.text,
                )
