"""Bounded witnessing: idle rounds cost a 304, only a log's witnesses cosign, followers
still check it, and what a lying or absent witness leaves (node.peers.witnesses)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from support.inproc import Net, make_net
from support.inproc_world import NODES, World, net_dir, seed_world

from node.app import build_state, create_app
from node.bundle import verify_bundle
from node.peers.mirror import mirror_once, schedule
from node.peers.witnesses import witnesses_of

Seen = Counter[tuple[str, str, int]]  # (host, path, status) → exchanges


@contextmanager
def spy(net: Net) -> Iterator[Seen]:
    """Count every exchange through the routing transport by (host, path, status)."""
    assert net.transport is not None
    transport = net.transport
    seen: Seen = Counter()
    original = transport.handle_async_request

    async def counting(request: httpx.Request) -> httpx.Response:
        response = await original(request)
        seen[(request.url.host, request.url.path, response.status_code)] += 1
        return response

    transport.handle_async_request = counting  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del transport.handle_async_request


def paths(seen: Seen, status: int | None = None) -> Counter[str]:
    out: Counter[str] = Counter()
    for (_, path, code), n in seen.items():
        if status is None or code == status:
            out[path] += n
    return out


async def _records(world: World, node: str, *ids: str) -> None:
    async with world.net.operator(node) as c:
        r = await c.post(
            f"http://{node}/v1/ingest",
            json={
                "records": [
                    {
                        "uscc": world.uscc,
                        "record_type": "admin_penalty",
                        "record_id": f"{node}:{i}",
                        "source": "test",
                        "observed_at": "2021-06-01T00:00:00Z",
                        "body": {"n": i},
                    }
                    for i in ids
                ]
            },
        )
    assert r.status_code == 202, r.text


@asynccontextmanager
async def k1_world(tmp_path: Path) -> AsyncIterator[World]:
    """The seeded three-city world with one witness per log: the third node follows."""
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", NODES, settings={"witnesses": 1})
        try:
            yield await seed_world(net)
        finally:
            await net.close()


async def test_an_idle_round_makes_no_consistency_fetch(world):
    await world.mirror_all()  # the first rounds took full answers; now every peer has an ETag
    with spy(world.net) as seen:
        await world.mirror_all()
    assert paths(seen) == Counter({"/v1/checkpoint/consistency": 6}), seen
    assert paths(seen, 304) == Counter({"/v1/checkpoint/consistency": 6})
    for st in world.net.states.values():
        assert all(r["status"] == "ok" and r["pulled"] == 0 for r in st.metrics["last_mirror"])

    await _records(world, "hf-1", "new")
    for st in world.net.states.values():  # past COSIGN_EVERY_S since the last cosignatures
        st.cosigned = {p: (size, at - 60.0) for p, (size, at) in st.cosigned.items()}
    with spy(world.net) as seen:
        await world.mirror_all()
    # hf-1's two witnesses take its new head with the proof in the same answer, pull the
    # new entry and cosign; everything else is a 304.
    assert seen[("hf-1", "/v1/checkpoint/consistency", 200)] == 2
    assert paths(seen)["/v1/proofs/consistency"] == 0
    assert seen[("hf-1", "/v1/entries", 200)] == 2
    assert seen[("hf-1", "/v1/cosignatures", 201)] == 2
    assert paths(seen, 304)["/v1/checkpoint/consistency"] == 4

    with spy(world.net) as seen:
        await world.mirror_all()
    assert paths(seen) == Counter({"/v1/checkpoint/consistency": 6})  # idle again: no re-cosign


async def test_only_a_logs_witnesses_cosign_and_followers_still_route(tmp_path):
    async with k1_world(tmp_path) as w:
        hf = w.state("hf-1")
        [witness] = witnesses_of(w.manifest.nodes, "hf-1", 1)
        follower = ({"hz-1", "sh-1"} - {witness}).pop()
        assert schedule(w.state(witness)).witnessed >= {"hf-1"}
        assert "hf-1" not in schedule(w.state(follower)).witnessed
        lines = hf.views.cosignatures(hf.ledger.head.size)
        assert len(lines) == 1 and w.manifest.node(witness).origin in lines[0]
        # The follower verified and pulled hf-1's log all the same: its catalogue routes.
        view = w.state(follower).views.view("hf-1")
        assert view is not None and view.mirrored == view.size == hf.ledger.size
        assert "hf-1" in w.state(follower).views.holders(w.uscc)


async def test_a_follower_backs_off_while_the_log_is_idle_and_returns_on_news(tmp_path):
    with net_dir(tmp_path) as root:
        net = make_net(
            root / "net",
            NODES,
            settings={"witnesses": 1, "mirror_interval_s": 1.0, "follow_interval_s": 60.0},
        )
        try:
            w = await seed_world(net)
            [witness] = witnesses_of(w.manifest.nodes, "hf-1", 1)
            follower = ({"hz-1", "sh-1"} - {witness}).pop()
            f = w.state(follower)
            with spy(net) as seen:
                await mirror_once(f)
            assert seen[("hf-1", "/v1/checkpoint/consistency", 304)] == 0  # not due yet
            assert "hf-1" not in {r["peer"] for r in f.metrics["last_mirror"]}
            # The witness takes hf-1's new head; gossip shows it to the follower, which
            # then pulls at once instead of waiting out its back-off.
            await _records(w, "hf-1", "late")
            schedule(w.state(witness))._get("hf-1").due = 0.0  # its back-off passed
            await mirror_once(w.state(witness))
            from node.peers.mirror import gossip

            await gossip(f, witness)
            with spy(net) as seen:
                await mirror_once(f)
            assert seen[("hf-1", "/v1/entries", 200)] == 1
            assert f.views.view("hf-1").mirrored == w.state("hf-1").ledger.size
            assert seen[("hf-1", "/v1/cosignatures", 201)] == 0  # a follower never cosigns
        finally:
            await net.close()


@asynccontextmanager
async def forked(world: World, node_id: str) -> AsyncIterator[None]:
    """Swap in a second ledger for ``node_id`` (same key) with other entries."""
    original = world.state(node_id)
    settings = original.settings.with_(data_dir=world.net.root / f"{node_id}-fork")
    state = build_state(settings, transport=world.net.transport)
    app = create_app(settings, state, mirror=False)
    assert world.net.transport is not None
    saved = world.net.transport.transports[node_id]
    world.net.transport.transports[node_id] = httpx.ASGITransport(app=app)
    try:
        await _records(world, node_id, "f1", "f2", "f3", "f4", "f5")
        yield
    finally:
        world.net.transport.transports[node_id] = saved
        await state.close()


async def test_a_witness_that_withholds_cosignatures_leaves_the_fork_to_followers(tmp_path):
    """The lying-witness case 1: hf-1's only witness never cosigns (nor checks). Reports
    still verify (no quorum of cosignatures is required), and when hf-1 forks its log
    the follower raises the alarm from its own consistency check."""
    async with k1_world(tmp_path) as w:
        [witness] = witnesses_of(w.manifest.nodes, "hf-1", 1)
        follower = ({"hz-1", "sh-1"} - {witness}).pop()
        hf = w.state("hf-1")
        hf.views._x("DELETE FROM cosignatures", [])  # withheld: hf-1 holds none
        await _records(w, "hf-1", "more")
        await mirror_once(w.state(follower))
        assert hf.views.cosignatures(hf.ledger.head.size) == []
        async with w.inst() as c:
            r = await c.post(
                f"http://{w.home}/v1/reports",
                json={"uscc": w.uscc, "purpose": "post_loan", "authorization_id": "a1"},
            )
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert "hf-1" in [s["node_id"] for s in bundle["report"]["holders"]]
        verify_bundle(bundle, w.manifest)
        async with forked(w, "hf-1"):
            results = {r["peer"]: r for r in await mirror_once(w.state(follower))}
        assert results["hf-1"]["status"] == "alarm"
        assert w.state(follower).views.refused("hf-1")


async def test_a_witness_set_keeps_a_down_node_and_followers_cover_the_log(tmp_path):
    """The lying-witness case 2: hf-1's only witness is down. The sets are not redrawn
    around it (the assignment depends on the manifest alone), and the follower still
    takes hf-1's new entries and still catches a fork."""
    async with k1_world(tmp_path) as w:
        [witness] = witnesses_of(w.manifest.nodes, "hf-1", 1)
        follower = ({"hz-1", "sh-1"} - {witness}).pop()
        assert w.net.transport is not None
        w.net.transport.down.add(witness)
        try:
            assert schedule(w.state(follower)).witnessed == frozenset(
                n
                for n in ("hz-1", "hf-1", "sh-1")
                if follower in witnesses_of(w.manifest.nodes, n, 1)
            )
            await _records(w, "hf-1", "while-down")
            results = {r["peer"]: r for r in await mirror_once(w.state(follower))}
            assert results["hf-1"]["status"] == "ok" and results["hf-1"]["pulled"] >= 1
            assert results["hf-1"]["cosigned"] is False
            async with forked(w, "hf-1"):
                results = {r["peer"]: r for r in await mirror_once(w.state(follower))}
            assert results["hf-1"]["status"] == "alarm"
        finally:
            w.net.transport.down.discard(witness)
