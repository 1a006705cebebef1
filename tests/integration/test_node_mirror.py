"""Mirroring and witnessing: catalogue, cosignatures, equivocation alarms.

A forked node is a second NodeState for the same node id and key with its
own ledger directory and different entries, swapped into the routing
transport after its peers mirrored the original.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from ledger import AlarmEntry, CosignatureVerifier, open_note, parse_entry, verify_consistency
from node.app import build_state, create_app
from node.bundle import verify_bundle
from node.peers.mirror import gossip, mirror_once, mirror_peer


def _checkpoint_parts(note: str) -> tuple[str, list[str]]:
    text, sigs = note.split("\n\n", 1)
    return text + "\n", [line for line in sigs.split("\n") if line]


@pytest.mark.asyncio(loop_scope="module")
async def test_entries_carry_metadata_never_bodies(shared_world, problem):
    async with shared_world.net.operator("hz-1") as c:
        r = await c.get("http://hf-1/v1/entries", params={"start": 0, "end": 100})
    assert r.status_code == 200
    got = r.json()
    assert got["size"] == 3 and [e["index"] for e in got["entries"]] == [0, 1, 2]
    for item in got["entries"]:
        raw = base64.b64decode(item["data"])
        assert b"amount_minor" not in raw and "合肥".encode() not in raw
        entry = parse_entry(raw)
        assert entry.uscc == shared_world.uscc and len(entry.commitment) == 64
    async with shared_world.inst() as c:
        r = await c.get("http://hf-1/v1/entries", params={"start": 0, "end": 100})
    problem(r, 401, "unknown-key")  # hzbank is registered at hz-1 only


@pytest.mark.asyncio(loop_scope="module")
async def test_witness_cosignatures_are_served_and_verify(shared_world):
    async with shared_world.inst() as c:
        r = await c.get("http://hf-1/v1/checkpoint")
    assert r.status_code == 200
    note = r.text
    text, lines = _checkpoint_parts(note)
    hf = shared_world.state("hf-1")
    assert text == hf.ledger.head.note.decode().split("\n\n")[0] + "\n"
    open_note(note.encode(), [hf.ledger.verifier])  # the node's own signature still verifies
    witnesses = {}
    for node_id in ("hz-1", "sh-1"):
        info = shared_world.manifest.node(node_id)
        verifier = CosignatureVerifier(info.origin, base64.b64decode(info.public_key))
        mine = [ln for ln in lines if ln.startswith(f"— {info.origin} ")]
        assert len(mine) == 1, lines
        witnesses[node_id] = verifier.verify_line(text, mine[0])
        opened = open_note(
            note.encode(), [verifier]
        )  # a cosigned note opens with the witness key alone
        assert opened.text == text
    assert all(ts > 1_600_000_000 for ts in witnesses.values())
    assert len(lines) == 3  # the node's signature and two cosignatures


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_cosignatures_are_refused(shared_world, problem):
    hf = shared_world.state("hf-1")
    size = hf.ledger.head.size
    before = hf.views.cosignatures(size)
    hz_origin = shared_world.manifest.node("hz-1").origin
    forged = f"— {hz_origin} " + base64.b64encode(b"\x00" * 76).decode()
    async with shared_world.net.operator(
        "sh-1"
    ) as c:  # sh-1 signs the request but sends hz-1's line
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": before[0]})
        problem(r, 401, "bad-signature")
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": forged})
        assert r.status_code in (401, 422)
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size + 5, "line": before[0]})
        problem(r, 422, "invalid-record")
    async with shared_world.inst() as c:
        r = await c.post("http://hf-1/v1/cosignatures", json={"size": size, "line": before[0]})
    problem(r, 401, "unknown-key")
    assert hf.views.cosignatures(size) == before


@pytest.mark.asyncio(loop_scope="module")
async def test_mirroring_skips_a_peer_that_is_down(shared_world):
    shared_world.net.transport.down.add("sh-1")
    try:
        results = {r["peer"]: r for r in await mirror_once(shared_world.state("hz-1"))}
    finally:
        shared_world.net.transport.down.discard("sh-1")
    assert results["sh-1"]["status"] == "unavailable"
    assert results["hf-1"]["status"] == "ok"
    assert shared_world.state("hz-1").views.alarms() == []


@asynccontextmanager
async def forked(world, node_id: str, records: list[dict]) -> AsyncIterator[object]:
    """Swap in a second ledger for ``node_id`` (same key), holding ``records``."""
    original = world.state(node_id)
    settings = original.settings.with_(data_dir=world.net.root / f"{node_id}-fork")
    state = build_state(settings, transport=world.net.transport)
    app = create_app(settings, state, mirror=False)
    saved = world.net.transport.transports[node_id]
    world.net.transport.transports[node_id] = httpx.ASGITransport(app=app)
    try:
        async with world.net.operator(node_id) as c:
            r = await c.post(f"http://{node_id}/v1/ingest", json={"records": records})
        assert r.status_code == 202, r.text
        yield state
    finally:
        world.net.transport.transports[node_id] = saved
        await state.close()


def _fork_records(uscc: str, n: int) -> list[dict]:
    return [
        {
            "uscc": uscc,
            "record_type": "red_list",
            "record_id": f"hf-1:fork{i}",
            "source": "hf-amr",
            "observed_at": "2022-01-01T00:00:00Z",
            "body": {"honour": i},
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("fork_size", [2, 3, 4])
async def test_equivocation_raises_an_alarm_and_refuses_the_peer(world, problem, fork_size):
    w = world
    hz = w.state("hz-1")
    seen = hz.views.view("hf-1")
    assert seen is not None and seen.size == 3
    async with forked(w, "hf-1", _fork_records(w.uscc, fork_size)) as fork:
        assert fork.ledger.size == fork_size and fork.ledger.head.root != seen.root
        size = hz.ledger.size
        results = {r["peer"]: r for r in await mirror_once(hz)}
        assert results["hf-1"]["status"] == "alarm"
        assert results["sh-1"]["status"] == "ok"

        # The alarm is on hz-1's ledger, with both checkpoints as evidence.
        assert hz.ledger.size == size + 1
        alarms = [e for _, e in hz.ledger.by_subject("hf-1", ("alarm",))]
        assert len(alarms) == 1 and isinstance(alarms[0], AlarmEntry)
        alarm = alarms[0]
        assert (alarm.peer, alarm.fault) == ("hf-1", "equivocation")
        assert (
            seen.note.decode() in alarm.evidence
            and fork.ledger.head.note.decode() in alarm.evidence
        )
        # ...and in its status.
        async with w.inst() as c:
            peers = (await c.get("http://hz-1/v1/peers")).json()
            info = (await c.get("http://hz-1/v1/info")).json()
            metrics = (await c.get("http://hz-1/metrics")).text
        assert {p["node_id"]: p["refused"] for p in peers["peers"]} == {"hf-1": True, "sh-1": False}
        assert [(a["node_id"], a["fault"], a["resolved_at"]) for a in peers["alarms"]] == [
            ("hf-1", "equivocation", None)
        ]
        assert [a["node_id"] for a in info["alarms"]] == ["hf-1"]
        assert "node_open_alarms 1.0" in metrics.splitlines()

        # The next round leaves it alone (no second alarm).
        again = {r["peer"]: r for r in await mirror_once(hz)}
        assert again["hf-1"]["status"] == "refused"
        assert len(hz.ledger.by_subject("hf-1", ("alarm",))) == 1

        # Reports skip it, explicitly.
        r = await w.report()
        assert r.status_code == 200, r.text
        bundle = r.json()
        missing = {m["node_id"]: m["reason"] for m in bundle["report"]["missing"]}
        assert list(missing) == ["hf-1"] and "alarm" in missing["hf-1"]
        assert bundle["report"]["partial"] is True
        assert verify_bundle(bundle, w.manifest).partial is True

        # Its peer requests are refused, and change nothing.
        size = hz.ledger.size
        async with w.net.operator("hf-1") as c:
            r = await c.post(
                "http://hz-1/v1/peer/receipts",
                json={
                    "query_id": "q",
                    "uscc": w.uscc,
                    "institution_id": "hzbank",
                    "purpose": "post_loan",
                    "reason": "x",
                },
            )
            problem(r, 403, "unknown-peer", peer_id="hf-1")
            r = await c.post("http://hz-1/v1/peer/records", json={"query_id": "q"})
            problem(r, 403, "unknown-peer", peer_id="hf-1")
        assert hz.ledger.size == size

        # Only hz-1's operator may resolve.
        async with w.net.operator("sh-1") as c:
            r = await c.post("http://hz-1/v1/peers/hf-1/resolve")
        problem(r, 403, "unknown-peer")
        assert hz.views.refused("hf-1")
        async with w.net.operator("hz-1") as c:
            r = await c.post("http://hz-1/v1/peers/hf-1/resolve")
            assert r.status_code == 200 and r.json() == {"peer_id": "hf-1", "resolved": 1}
            r = await c.post("http://hz-1/v1/peers/evil-1/resolve")
            problem(r, 403, "unknown-peer")
            peers = (await c.get("http://hz-1/v1/peers")).json()
        assert not hz.views.refused("hf-1")
        assert [a["resolved_at"] is not None for a in peers["alarms"]] == [True]
        assert all(not p["refused"] for p in peers["peers"])
        # The alarm entry stays on the ledger: history is append-only.
        assert len(hz.ledger.by_subject("hf-1", ("alarm",))) == 1
        # The operator accepted the node's current log: mirroring resumes.
        results = {r["peer"]: r for r in await mirror_once(hz)}
        assert results["hf-1"]["status"] == "ok" and results["hf-1"]["size"] == fork_size


async def test_holder_answer_from_a_fork_raises_the_alarm(world):
    """A report is where a fork can show first: the holder's signed answer carries
    a checkpoint inconsistent with the one the home node mirrored."""
    w = world
    hz = w.state("hz-1")
    async with forked(w, "hf-1", _fork_records(w.uscc, 4)):
        r = await w.report()
        assert r.status_code == 200, r.text
        missing = {m["node_id"]: m["reason"] for m in r.json()["report"]["missing"]}
        assert list(missing) == ["hf-1"] and "forked log" in missing["hf-1"]
        assert hz.views.refused("hf-1")
        assert [e.fault for _, e in hz.ledger.by_subject("hf-1", ("alarm",))] == ["equivocation"]


async def test_gossip_catches_a_split_view(make_world):
    """hf-1 shows its original log to hz-1 and a fork to sh-1; sh-1 learns of
    the original through hz-1's views and raises the alarm."""
    w = await make_world(mirror=False)
    hz, sh = w.state("hz-1"), w.state("sh-1")
    assert (await mirror_peer(hz, "hf-1"))["status"] == "ok"
    async with forked(w, "hf-1", _fork_records(w.uscc, 3)):
        assert (await mirror_peer(sh, "hf-1"))["status"] == "ok"  # first sight: nothing to compare
        assert not sh.views.refused("hf-1")
        assert await gossip(sh, "hz-1") >= 1
        assert sh.views.refused("hf-1")
        alarm = [e for _, e in sh.ledger.by_subject("hf-1", ("alarm",))]
        assert (
            len(alarm) == 1
            and alarm[0].fault == "equivocation"
            and "hz-1's view" in alarm[0].detail
        )
    assert not hz.views.refused("hf-1")


async def test_a_round_takes_checkpoint_and_consistency_proof_in_one_exchange(world, monkeypatch):
    """After the first round, a witness asks for the head and the proof from the size it holds at once."""
    w = world
    hz = w.state("hz-1")
    before = hz.views.view("hf-1")
    assert before is not None and before.size == 3
    async with w.net.operator("hf-1") as c:
        r = await c.post("http://hf-1/v1/ingest", json={"records": _fork_records(w.uscc, 2)})
    assert r.status_code == 202, r.text
    grown = w.state("hf-1").ledger.size
    assert grown > before.size

    paths: list[str] = []
    route = w.net.transport.handle_async_request

    async def spy(request: httpx.Request) -> httpx.Response:
        if request.url.host == "hf-1":
            paths.append(request.url.path)
        return await route(request)

    monkeypatch.setattr(w.net.transport, "handle_async_request", spy)
    result = await mirror_peer(hz, "hf-1")
    assert result["status"] == "ok" and result["size"] == grown
    assert paths[0] == "/v1/checkpoint/consistency"
    assert "/v1/proofs/consistency" not in paths and "/v1/checkpoint" not in paths
    assert hz.views.view("hf-1").size == grown


async def test_checkpoint_with_consistency_proof_verifies(world, problem):
    hf = world.state("hf-1")
    async with world.net.operator("hf-1") as c:
        r = await c.post("http://hf-1/v1/ingest", json={"records": _fork_records(world.uscc, 3)})
        assert r.status_code == 202, r.text
        head = hf.ledger.head
        got = (await c.get("http://hf-1/v1/checkpoint/consistency", params={"old": 2})).json()
        plain = (await c.get("http://hf-1/v1/checkpoint")).text
        above = (
            await c.get("http://hf-1/v1/checkpoint/consistency", params={"old": head.size + 5})
        ).json()
        same = (
            await c.get("http://hf-1/v1/checkpoint/consistency", params={"old": head.size})
        ).json()
        bad = await c.get("http://hf-1/v1/checkpoint/consistency", params={"old": -1})
    assert got["checkpoint"] == plain  # the same note, cosignatures included
    assert (got["old"], got["new"]) == (2, head.size)
    proof = [base64.b64decode(p) for p in got["proof"]]
    assert proof, "a proof from 2 to a larger size is never empty"
    verify_consistency(2, head.size, hf.ledger.root_at(2), head.root, proof, hf.ledger.algorithm)
    # No proof when there is nothing to prove, or when the caller claims more than the log holds.
    assert above["proof"] == [] and above["new"] == head.size
    assert same["proof"] == []
    problem(bad, 422, "invalid-record")


@pytest.mark.parametrize("mode", ["full", "compact"])
async def test_a_round_past_its_deadline_witnesses_and_leaves_catch_up_to_the_next(
    make_world, mode
):
    """A round's catch-up budget bounds it: the checkpoint is still witnessed and
    cosigned, no page is taken, and the next round goes on from there."""
    w = await make_world(mirror=False)
    for st in w.net.states.values():
        st.settings = st.settings.with_(catalogue=mode)
    sh = w.state("sh-1")
    results = await mirror_once(sh, deadline=time.monotonic() - 1)
    assert {r["peer"]: (r["status"], r["pulled"], r["cosigned"]) for r in results} == {
        "hz-1": ("ok", 0, True),
        "hf-1": ("ok", 0, True),
    }
    for peer in ("hz-1", "hf-1"):
        view = sh.views.view(peer)
        assert (
            view is not None and view.size == w.state(peer).ledger.size > 0 and view.mirrored == 0
        )
    results = await mirror_once(sh)
    assert all(r["status"] == "ok" for r in results)
    for peer in ("hz-1", "hf-1"):
        view = sh.views.view(peer)
        assert view is not None and view.mirrored == view.size == w.state(peer).ledger.size
    assert sh.views.holders(w.uscc) >= {
        "hz-1"
    }  # the catalogue caught up: routed to a holder in another city
