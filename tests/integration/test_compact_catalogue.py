"""The compact catalogue mode (node.catalogue): complete, routed right, checked, still witnessing.

The three-city world of conftest, with every node switched to
``catalogue="compact"`` before anything is mirrored, plus a few enterprises
of each city held at their home node and, for some, at a branch elsewhere.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from support.inproc_world import HOME, World, seed_world

from ledger import AlarmEntry, make_uscc
from node.app import build_state, create_app
from node.bundle import verify_bundle
from node.catalogue import CHECK_ALL, DEFAULT_SAMPLING, Sampling
from node.errors import ConfigError
from node.peers.mirror import mirror_once
from node.reports import route
from node.views import uscc_key

CITY_ADMIN = {"hz-1": "330100", "hf-1": "340100", "sh-1": "310000"}


def _record(uscc: str, node: str, n: int, record_type: str = "tax_rating") -> dict[str, Any]:
    return {
        "uscc": uscc,
        "record_type": record_type,
        "record_id": f"{node}:x{n}",
        "source": f"{node[:2]}-tax",
        "observed_at": "2021-05-01T00:00:00Z",
        "body": {"n": n},
    }


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests that reach one node, by path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


def _compact(net: Any) -> None:
    for st in net.states.values():
        st.settings = st.settings.with_(catalogue="compact")


async def _extra_records(w: World) -> dict[str, set[str]]:
    """Ten enterprises per city at their home node; every other one also at the next city's node.

    Returns node → the USCCs of other cities it holds records about.
    """
    nodes = list(CITY_ADMIN)
    foreign: dict[str, set[str]] = {n: set() for n in nodes}
    batches: dict[str, list[dict[str, Any]]] = {n: [] for n in nodes}
    for k, home in enumerate(nodes):
        branch = nodes[(k + 1) % len(nodes)]
        for i in range(10):
            uscc = make_uscc(CITY_ADMIN[home], 5000 + 100 * k + i).code
            batches[home].append(_record(uscc, home, 100 * k + i, "registration"))
            if i % 2 == 0:
                batches[branch].append(_record(uscc, branch, 100 * k + i))
                foreign[branch].add(uscc)
    for node, rs in batches.items():
        async with w.net.operator(node) as c:
            r = await c.post(f"http://{node}/v1/ingest", json={"records": rs})
        assert r.status_code == 202, r.text
    # The world's enterprise (Hefei) is held at hz-1 and sh-1 as well.
    foreign["hz-1"].add(w.uscc)
    foreign["sh-1"].add(w.uscc)
    return foreign


@pytest.fixture
async def compact_world(net3: Any) -> AsyncIterator[tuple[World, dict[str, set[str]]]]:
    _compact(net3)
    w = await seed_world(net3, mirror=False)
    foreign = await _extra_records(w)
    await w.mirror_all()
    yield w, foreign


async def test_catalogue_is_complete_without_pulling_entries(net3):
    _compact(net3)
    w = await seed_world(net3, mirror=False)
    foreign = await _extra_records(w)
    counters = {n: Counting(t) for n, t in net3.transport.transports.items()}
    net3.transport.transports.update(counters)
    for st in net3.states.values():
        await mirror_once(st, sampling=Sampling(listed=1.0, drawn=0.0))  # check every listed row

    for node, st in net3.states.items():
        for peer, peer_st in net3.states.items():
            if peer == node:
                continue
            view = st.views.view(peer)
            assert view is not None and view.mirrored == view.size == peer_st.ledger.size
            # Exactly the peer's cross-city enterprises, hashed.
            rows = st.views._q("SELECT key FROM catalogue WHERE node_id = ?", (peer,))
            assert {bytes(r[0]) for r in rows} == {uscc_key(u) for u in foreign[peer]}, (node, peer)
    hz = w.state("hz-1")
    assert hz.views.holders(w.uscc) == {"sh-1"}  # hf-1 is Hefei's own node: routed by admin code
    assert w.state("hf-1").views.holders(w.uscc) == {"hz-1", "sh-1"}
    # Each witness read the listed entries of each peer (one per enterprise), not the peer's log.
    for peer, counter in counters.items():
        fetched = counter.paths.count("/v1/entries")
        assert fetched == 2 * len(foreign[peer]), (peer, fetched)
        assert fetched < net3.states[peer].ledger.size
        assert counter.paths.count("/v1/catalogue") == 2
    assert hz.views.catalogue_size() == sum(len(v) for k, v in foreign.items() if k != "hz-1")


async def test_reports_route_to_every_holder(compact_world):
    w, foreign = compact_world
    hz = w.state(HOME)
    assert route(hz, w.uscc) == ["hf-1", "hz-1", "sh-1"]
    r = await w.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["report"]["partial"] is False
    got = {s["node_id"]: len(s["records"]) for s in bundle["report"]["holders"]}
    assert got == {"hf-1": 3, "sh-1": 1, "hz-1": 1}
    assert verify_bundle(bundle, w.manifest).partial is False

    # A Shanghai enterprise with a branch at hz-1 (the home node itself) and one without.
    with_branch = sorted(u for u in foreign["hz-1"] if u[2:8] == CITY_ADMIN["sh-1"])[0]
    assert route(hz, with_branch) == ["hz-1", "sh-1"]
    alone = make_uscc(CITY_ADMIN["sh-1"], 5000 + 200 + 1).code
    assert route(hz, alone) == ["sh-1"]
    # A Hangzhou enterprise with a branch in Hefei, seen from Shanghai: the catalogue names hf-1.
    hz_branch = sorted(u for u in foreign["hf-1"] if u[2:8] == CITY_ADMIN["hz-1"])[0]
    assert route(w.state("sh-1"), hz_branch) == ["hf-1", "hz-1"]


async def test_revocations_reach_other_holders(compact_world, problem):
    w, _ = compact_world
    async with w.inst() as c:
        r = await c.post(
            f"http://{HOME}/v1/authorizations/a1/revocation", json={"reason": "withdrawn"}
        )
    assert r.status_code == 201, r.text
    for node in ("hf-1", "sh-1"):
        assert not w.state(node).views.is_revoked(HOME, "a1")
    await w.mirror_all()
    for node in ("hf-1", "sh-1"):
        assert w.state(node).views.is_revoked(HOME, "a1")


async def test_forged_catalogue_row_raises_an_alarm(compact_world):
    w, _ = compact_world
    hz, sh = w.state("hz-1"), w.state("sh-1")
    # sh-1 appends a Shanghai enterprise's record (not a catalogue row) but lists it as one.
    uscc = make_uscc(CITY_ADMIN["sh-1"], 9999).code
    async with w.net.operator("sh-1") as c:
        r = await c.post(
            "http://sh-1/v1/ingest", json={"records": [_record(uscc, "sh-1", 9999, "registration")]}
        )
    assert r.status_code == 202, r.text
    index = sh.ledger.size - 1
    sh.views.add_outbound([(index, uscc_key(uscc), None)], sh.ledger.size)
    results = {
        r["peer"]: r for r in await mirror_once(hz, sampling=Sampling(listed=1.0, drawn=0.0))
    }
    assert results["sh-1"]["status"] == "alarm"
    alarms = [e for _, e in hz.ledger.by_subject("sh-1", ("alarm",))]
    assert (
        len(alarms) == 1
        and isinstance(alarms[0], AlarmEntry)
        and alarms[0].fault == "catalogue-mismatch"
    )
    assert f"entry {index}" in alarms[0].detail and any(
        f"entry {index}:" in e for e in alarms[0].evidence
    )
    assert hz.views.refused("sh-1")
    assert uscc_key(uscc) not in {bytes(r[0]) for r in hz.views._q("SELECT key FROM catalogue")}
    assert hz.views.view("sh-1").mirrored < sh.ledger.size  # the page was not applied


async def test_omitted_catalogue_rows_raise_an_alarm(compact_world):
    w, _ = compact_world
    hz, sh = w.state("hz-1"), w.state("sh-1")
    # A page range made only of cross-city records, none of them listed: any sample shows it.
    start = sh.ledger.size
    rs = [_record(make_uscc(CITY_ADMIN["hf-1"], 7000 + i).code, "sh-1", 7000 + i) for i in range(3)]
    async with w.net.operator("sh-1") as c:
        r = await c.post("http://sh-1/v1/ingest", json={"records": rs})
    assert r.status_code == 202, r.text
    assert sh.ledger.size == start + 3
    sh.views.add_outbound([], sh.ledger.size)  # marks the range scanned, with no rows
    # Default sampling checks none of three entries most of the time: the lie passes...
    assert DEFAULT_SAMPLING.count(DEFAULT_SAMPLING.drawn, 3, random.Random(1)) == 0
    # ...checking every index catches it.
    results = {r["peer"]: r for r in await mirror_once(hz, sampling=CHECK_ALL)}
    assert results["sh-1"]["status"] == "alarm"
    faults = [e.fault for _, e in hz.ledger.by_subject("sh-1", ("alarm",))]
    assert faults == ["catalogue-mismatch"]
    assert "missing from the catalogue page" in hz.views.alarms()[0].detail


@asynccontextmanager
async def _forked(w: World, node_id: str) -> AsyncIterator[Any]:
    original = w.state(node_id)
    settings = original.settings.with_(data_dir=w.net.root / f"{node_id}-fork")
    state = build_state(settings, transport=w.net.transport)
    app = create_app(settings, state, mirror=False)
    saved = w.net.transport.transports[node_id]
    w.net.transport.transports[node_id] = httpx.ASGITransport(app=app)
    try:
        async with w.net.operator(node_id) as c:
            r = await c.post(
                f"http://{node_id}/v1/ingest",
                json={"records": [_record(w.uscc, node_id, 900 + i) for i in range(30)]},
            )
        assert r.status_code == 202, r.text
        yield state
    finally:
        w.net.transport.transports[node_id] = saved
        await state.close()


async def test_equivocation_is_still_detected(compact_world):
    w, _ = compact_world
    hz = w.state("hz-1")
    seen = hz.views.view("hf-1")
    assert seen is not None and seen.mirrored == seen.size
    async with _forked(w, "hf-1") as fork:
        assert fork.ledger.size > seen.size and fork.ledger.root_at(seen.size) != seen.root
        results = {r["peer"]: r for r in await mirror_once(hz)}
    assert results["hf-1"]["status"] == "alarm"
    assert results["sh-1"]["status"] == "ok"
    alarms = [e for _, e in hz.ledger.by_subject("hf-1", ("alarm",))]
    assert [a.fault for a in alarms if isinstance(a, AlarmEntry)] == ["equivocation"]
    assert hz.views.refused("hf-1")


async def test_catalogue_route_is_for_nodes_only(compact_world, problem):
    w, _ = compact_world
    async with w.inst() as c:
        r = await c.get("http://sh-1/v1/catalogue", params={"start": 0, "end": 10})
    problem(r, 401, "unknown-key")  # hzbank is registered at hz-1 only
    async with httpx.AsyncClient(transport=w.net.transport) as c:
        r = await c.get("http://sh-1/v1/catalogue", params={"start": 0, "end": 10})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    async with w.net.operator("hz-1") as c:
        r = await c.get("http://sh-1/v1/catalogue", params={"start": 5, "end": 2})
        problem(r, 422, "invalid-record")
        r = await c.get("http://sh-1/v1/catalogue", params={"start": 0, "end": 10**9})
    assert r.status_code == 200
    page = r.json()
    assert page["end"] == page["size"] == w.state("sh-1").ledger.size
    assert {i for i, _ in page["records"]} <= set(range(page["end"]))


async def test_a_page_beyond_the_log_scans_nothing_past_it(compact_world):
    """A ``start`` past the log's end is an empty page; the scanner stops at the log's end.

    It used to walk the scan counter up to ``start`` (SCAN_CHUNK entries per query), so a
    page at 2^62 kept the catalogue's one scanner thread busy for ever.
    """
    from node.catalogue import SCAN_CHUNK

    w, _ = compact_world
    sh = w.state("sh-1")
    size = sh.ledger.size
    async with w.net.operator("hz-1") as c:
        for start in (size + 3 * SCAN_CHUNK, 2**62):
            r = await c.get("http://sh-1/v1/catalogue", params={"start": start, "end": start + 5})
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["records"] == [] and page["revoked"] == [] and page["end"] == start
    assert sh.views.counter("outbound_scanned") <= size
    async with w.net.operator("hz-1") as c:  # beyond a log index at all: refused, not a 500
        r = await c.get("http://sh-1/v1/catalogue", params={"start": 2**63, "end": 2**63})
    assert r.status_code == 422, r.text


def test_catalogue_setting_is_validated(net3):
    st = next(iter(net3.states.values()))
    with pytest.raises(ConfigError, match="catalogue must be one of full, compact"):
        st.settings.with_(catalogue="partial")
