"""The seeded three-city world of the node integration tests, as plain code.

``tests/integration/conftest.py`` turns it into fixtures; other test
directories (``tests/security``) and modules import it from here, never from a
``conftest`` module (two conftest files would shadow each other's name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import make_uscc
from node.api.problems import URN
from node.consortium import Manifest, load_manifest
from node.peers.mirror import mirror_once
from support.inproc import Net, b64key, consent_for, make_net, seeded_key

__all__ = [
    "DIGEST",
    "HOME",
    "NODES",
    "PROBLEM_FIELDS",
    "UHF",
    "UHZ",
    "World",
    "assert_problem",
    "authorization_body",
    "make_net",
    "net_dir",
    "records_for",
    "seed_world",
]


NODES = [("hz-1", "hz", "330100"), ("hf-1", "hf", "340100"), ("sh-1", "sh", "310000")]
HOME = "hz-1"
UHF = make_uscc("340100", 12345).code  # a Hefei enterprise with records in three cities
UHZ = make_uscc("330100", 777).code  # a Hangzhou enterprise (for other-enterprise cases)
DIGEST = "a" * 64
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "node_id"}


CITY_OF_ADMIN = {admin: city for _, city, admin in NODES}


def authorization_body(
    authorization_id: str,
    uscc: str,
    institution_id: str = "hzbank",
    *,
    purposes: tuple[str, ...] = ("post_loan",),
    not_before: str = "2021-01-01T00:00:00Z",
    not_after: str = "2099-01-01T00:00:00Z",
    signed: bool = True,
) -> dict[str, Any]:
    """A ``POST /v1/authorizations`` body, with the consent of the enterprise's registry."""
    body: dict[str, Any] = {
        "authorization_id": authorization_id,
        "uscc": uscc,
        "institution_id": institution_id,
        "purposes": list(purposes),
        "not_before": not_before,
        "not_after": not_after,
        "document_digest": DIGEST,
    }
    if signed:
        body["consent"] = consent_for(body, CITY_OF_ADMIN[uscc[2:8]])
    return body


def records_for(uscc: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "hf-1": [
            {
                "uscc": uscc,
                "record_type": "registration",
                "record_id": "hf-1:r1",
                "source": "hf-amr",
                "observed_at": "2019-01-01T00:00:00Z",
                "body": {"name": "合肥示例有限公司"},
            },
            {
                "uscc": uscc,
                "record_type": "admin_penalty",
                "record_id": "hf-1:p1",
                "source": "hf-amr",
                "observed_at": "2021-01-01T00:00:00Z",
                "body": {"amount_minor": 100_000},
            },
            {
                "uscc": uscc,
                "record_id": "hf-1:p1c",
                "supersedes": "hf-1:p1",
                "outcome": "resolved",
                "source": "hf-amr",
                "observed_at": "2021-09-01T00:00:00Z",
                "body": {"status": "resolved"},
            },
        ],
        "sh-1": [
            {
                "uscc": uscc,
                "record_type": "judicial_enforcement",
                "record_id": "sh-1:j1",
                "source": "sh-court",
                "observed_at": "2020-01-01T00:00:00Z",
                "body": {"case": "(2020)沪01执1号"},
            },
        ],
        "hz-1": [
            {
                "uscc": uscc,
                "record_type": "tax_rating",
                "record_id": "hz-1:t1",
                "source": "hz-tax",
                "observed_at": "2022-04-01T00:00:00Z",
                "body": {"rating": "A"},
            },
        ],
    }


@dataclass
class World:
    net: Net
    manifest: Manifest
    inst_key: Ed25519PrivateKey  # hzbank's key
    other_key: Ed25519PrivateKey  # njbank's key
    uscc: str = UHF
    other_uscc: str = UHZ
    home: str = HOME

    def inst(
        self, key: Ed25519PrivateKey | None = None, key_id: str = "inst:hzbank"
    ) -> httpx.AsyncClient:
        return self.net.client(key_id, key or self.inst_key)

    def state(self, node_id: str) -> Any:
        return self.net.states[node_id]

    def sizes(self) -> dict[str, int]:
        return {n: st.ledger.size for n, st in self.net.states.items()}

    async def mirror_all(self) -> None:
        for st in self.net.states.values():
            await mirror_once(st)

    async def authorize(
        self,
        authorization_id: str,
        *,
        uscc: str | None = None,
        institution_id: str = "hzbank",
        purposes: tuple[str, ...] = ("post_loan",),
        not_before: str = "2021-01-01T00:00:00Z",
        not_after: str = "2099-01-01T00:00:00Z",
    ) -> None:
        key = self.inst_key if institution_id == "hzbank" else self.other_key
        body = authorization_body(
            authorization_id,
            uscc or self.uscc,
            institution_id,
            purposes=purposes,
            not_before=not_before,
            not_after=not_after,
        )
        async with self.inst(key, f"inst:{institution_id}") as c:
            r = await c.post(f"http://{HOME}/v1/authorizations", json=body)
        assert r.status_code == 201, r.text

    async def report(
        self, authorization_id: str = "a1", purpose: str = "post_loan", uscc: str | None = None
    ) -> httpx.Response:
        async with self.inst() as c:
            return await c.post(
                f"http://{HOME}/v1/reports",
                json={
                    "uscc": uscc or self.uscc,
                    "purpose": purpose,
                    "authorization_id": authorization_id,
                },
            )

    async def queries(self, node_id: str, uscc: str | None = None) -> list[dict[str, Any]]:
        async with self.net.operator(node_id) as c:
            r = await c.get(f"http://{node_id}/v1/enterprises/{uscc or self.uscc}/queries")
        assert r.status_code == 200, r.text
        return list(r.json()["queries"])


def assert_problem(r: httpx.Response, status: int, slug: str, **fields: Any) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and type (and these extra fields)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["type"] == URN + slug, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    for k, v in fields.items():
        assert body.get(k) == v, (k, body)
    return dict(body)


@contextlib.contextmanager
def net_dir(fallback: Path) -> Iterator[Path]:
    """Where a test network keeps its ledgers: on tmpfs when there is one.

    Every append is fsynced; these tests are about the protocol, not about
    durability (test_crash is), so they need not wait for a disk.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="yrd-node-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def seed_world(net: Net, *, mirror: bool = True) -> World:
    inst_key, other_key = seeded_key("inst/hzbank"), seeded_key("inst/njbank")
    for node_id, rs in records_for(UHF).items():
        async with net.operator(node_id) as c:
            r = await c.post(f"http://{node_id}/v1/ingest", json={"records": rs})
            assert r.status_code == 202, r.text
    async with net.operator(HOME) as c:
        r = await c.post(
            f"http://{HOME}/v1/ingest",
            json={
                "records": [
                    {
                        "uscc": UHZ,
                        "record_type": "registration",
                        "record_id": "hz-1:r9",
                        "source": "hz-amr",
                        "observed_at": "2018-01-01T00:00:00Z",
                        "body": {"name": "杭州示例"},
                    }
                ]
            },
        )
        assert r.status_code == 202, r.text
        for inst, key in (("hzbank", inst_key), ("njbank", other_key)):
            r = await c.post(
                f"http://{HOME}/v1/institutions",
                json={
                    "institution_id": inst,
                    "name": inst,
                    "public_key": b64key(key),
                    "purposes": ["post_loan", "pre_loan"],
                },
            )
            assert r.status_code == 201, r.text
    assert net.manifest_path is not None
    world = World(net, load_manifest(net.manifest_path), inst_key, other_key)
    if mirror:
        await world.mirror_all()
    await world.authorize("a1")
    return world
