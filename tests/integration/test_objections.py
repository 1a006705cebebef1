"""The objection lifecycle: filed by the enterprise at its home node, flagged at the holder,
shown as disputed in reports (verified offline), closed by the holder's written outcome,
and overdue past 20 days on the network's clock. Bad input is a problem and a denied receipt.

The world's enterprise is registered in Hefei (home node hf-1) and has records at hf-1,
sh-1 and hz-1; hzbank asks for reports at hz-1.
"""

from __future__ import annotations

import base64
import copy

import pytest
from support.inproc import registry_key
from support.inproc_world import assert_problem

from ledger import ObjectionEntry, ObjectionOutcomeEntry, parse_entry
from node.bundle import verify_bundle
from node.disputes import sign_objection
from node.errors import BundleError

ENTERPRISE_HOME = "hf-1"


def objection_body(world, objection_id, holder="sh-1", record_id="sh-1:j1", *, city="hf"):
    reason = "the enforcement case was closed after payment"
    return {
        "objection_id": objection_id,
        "uscc": world.uscc,
        "holder": holder,
        "record_id": record_id,
        "reason": reason,
        "consent": sign_objection(
            registry_key(city), objection_id, world.uscc, holder, record_id, reason
        ),
    }


async def file(world, body, home=ENTERPRISE_HOME):
    async with world.net.operator(home) as c:
        return await c.post(f"http://{home}/v1/objections", json=body)


async def decide(world, objection_id, body, holder="sh-1"):
    async with world.net.operator(holder) as c:
        return await c.post(f"http://{holder}/v1/objections/{objection_id}/outcome", json=body)


def receipts(world, node, objection_id):
    return [
        e
        for _, e in world.state(node).ledger.by_subject(world.uscc, ("receipt",))
        if e.query_id == objection_id
    ]


def current(summary, record_id):
    [row] = [r for r in summary.current if r["record_id"] == record_id]
    return row


@pytest.mark.asyncio
async def test_objection_flags_the_record_in_reports_until_upheld(world):
    r = await file(world, objection_body(world, "obj-1"))
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["due_at"] > filed["filed_at"]
    entry = parse_entry(base64.b64decode(filed["objection"]["entry"]))
    assert isinstance(entry, ObjectionEntry) and entry.holder_node == "sh-1"
    assert [e.outcome for e in receipts(world, "sh-1", "obj-1")] == ["granted"]
    assert [e.outcome for e in receipts(world, ENTERPRISE_HOME, "obj-1")] == ["granted"]

    bundle = (await world.report()).json()
    summary = verify_bundle(bundle, world.manifest)
    row = current(summary, "sh-1:j1")
    assert row["disputed"] is True and row["objection"]["status"] == "open"
    assert "disputed" not in current(summary, "hz-1:t1")

    # The mark must match a proven objection entry: dropping either is caught offline.
    for tamper in ("disputes", "objections"):
        bad = copy.deepcopy(bundle)
        [section] = [h for h in bad["report"]["holders"] if h["node_id"] == "sh-1"]
        del section[tamper]
        with pytest.raises(BundleError):
            verify_bundle(bad, world.manifest)

    r = await decide(world, "obj-1", {"outcome": "upheld", "verification": "court file checked"})
    assert r.status_code == 201, r.text
    assert r.json()["delivered"] is True and r.json()["late"] is False
    outcome = parse_entry(base64.b64decode(r.json()["outcome_entry"]["entry"]))
    assert isinstance(outcome, ObjectionOutcomeEntry) and outcome.outcome == "upheld"
    # The home node holds the delivery receipt; the history keeps every step.
    assert [e.purpose for e in receipts(world, ENTERPRISE_HOME, "obj-1")] == [
        "objection",
        "objection-outcome",
    ]
    assert [e.purpose for e in receipts(world, "sh-1", "obj-1")] == [
        "objection",
        "objection-outcome",
    ]

    summary = verify_bundle((await world.report()).json(), world.manifest)
    row = current(summary, "sh-1:j1")
    assert row["disputed"] is False and row["objection"]["status"] == "upheld"

    # The enterprise, through its home node, gets the holder's signed outcome.
    async with world.net.operator(ENTERPRISE_HOME) as c:
        r = await c.get(f"http://{ENTERPRISE_HOME}/v1/objections/obj-1", params={"holder": "sh-1"})
    assert r.status_code == 200, r.text
    assert r.json()["status"]["status"] == "upheld" and r.json()["outcome"]["entry"]


@pytest.mark.asyncio
async def test_corrected_outcome_supersedes_the_record(world):
    assert (await file(world, objection_body(world, "obj-c"))).status_code == 201
    r = await decide(
        world,
        "obj-c",
        {
            "outcome": "corrected",
            "verification": "the case was closed on 2021-03-01",
            "correction": {
                "record_id": "sh-1:j1c",
                "outcome": "resolved",
                "body": {"case": "(2020)沪01执1号", "status": "closed"},
            },
        },
    )
    assert r.status_code == 201, r.text
    summary = verify_bundle((await world.report()).json(), world.manifest)
    ids = [x["record_id"] for x in summary.current]
    assert "sh-1:j1c" in ids and "sh-1:j1" not in ids
    [old] = [x for x in summary.history if x["record_id"] == "sh-1:j1"]
    assert old["objection"]["status"] == "corrected"
    assert old["objection"]["correction_id"] == "sh-1:j1c"


@pytest.mark.asyncio
async def test_deadline_runs_on_the_network_clock(world):
    assert (await file(world, objection_body(world, "obj-late"))).status_code == 201
    async with world.net.operator("sh-1") as c:
        r = await c.get("http://sh-1/v1/objections", params={"status": "overdue"})
        assert r.status_code == 200 and r.json()["objections"] == []
        r = await c.put("http://sh-1/v1/clock", json={"offset_s": 21 * 86400})
        assert r.status_code == 200, r.text
        r = await c.get("http://sh-1/v1/objections", params={"status": "overdue"})
        assert [o["objection_id"] for o in r.json()["objections"]] == ["obj-late"]
        # The clock only moves forward.
        r = await c.put("http://sh-1/v1/clock", json={"offset_s": 0})
        assert_problem(r, 422, "invalid-record")
        info = (await c.get("http://sh-1/v1/info")).json()
    assert info["objections"]["overdue"] == 1 and info["clock"]["offset_s"] == 21 * 86400
    before = world.state("sh-1").ledger.head.header.time
    r = await decide(world, "obj-late", {"outcome": "unverifiable", "verification": "no file"})
    assert r.status_code == 201 and r.json()["late"] is True
    assert world.state("sh-1").ledger.head.header.time >= before  # block times monotonic
    summary = verify_bundle((await world.report()).json(), world.manifest)
    row = current(summary, "sh-1:j1")
    assert row["objection"]["status"] == "unverifiable" and row["objection"]["late"] is True


@pytest.mark.asyncio
async def test_objection_on_an_unknown_record_is_refused_with_receipts(world):
    r = await file(world, objection_body(world, "obj-x", record_id="sh-1:nope"))
    assert_problem(r, 404, "objection-unknown-record", reason="unknown-record")
    assert [e.outcome for e in receipts(world, "sh-1", "obj-x")] == ["denied"]
    assert [e.outcome for e in receipts(world, ENTERPRISE_HOME, "obj-x")] == ["denied"]


@pytest.mark.parametrize("how", ["unsigned", "other-registry", "other-record"])
@pytest.mark.asyncio
async def test_objection_not_by_the_enterprise_is_refused(world, how):
    body = objection_body(world, "obj-f", city="hz" if how == "other-registry" else "hf")
    if how == "unsigned":
        body["consent"] = ""
    if how == "other-record":  # a signature for another record does not carry over
        body["record_id"] = "hz-1:t1"
        body["holder"] = "hz-1"
    r = await file(world, body)
    assert_problem(r, 403, "objection-not-by-enterprise", reason="not-enterprise")
    assert [e.outcome for e in receipts(world, ENTERPRISE_HOME, "obj-f")] == ["denied"]
    assert world.state("sh-1").ledger.store.ref("objection:obj-f") is None


@pytest.mark.asyncio
async def test_an_institution_cannot_object_for_the_enterprise(world):
    body = objection_body(world, "obj-i")
    body["consent"] = base64.b64encode(world.inst_key.sign(b"objection")).decode()
    async with world.inst() as c:
        r = await c.post(f"http://{world.home}/v1/objections", json=body)
    # hz-1 is not the Hefei enterprise's home node; at hf-1 the bank's signature is refused.
    assert_problem(r, 403, "unknown-peer")
    r = await file(world, body)
    assert_problem(r, 403, "objection-not-by-enterprise")


@pytest.mark.asyncio
async def test_an_outcome_for_a_closed_objection_is_refused(world):
    assert (await file(world, objection_body(world, "obj-2"))).status_code == 201
    ok = {"outcome": "upheld", "verification": "checked"}
    assert (await decide(world, "obj-2", ok)).status_code == 201
    r = await decide(world, "obj-2", {"outcome": "unverifiable", "verification": "again"})
    assert_problem(r, 409, "objection-closed", reason="closed")
    assert [e.outcome for e in receipts(world, "sh-1", "obj-2")] == ["granted", "granted", "denied"]
    r = await decide(world, "obj-none", ok)
    assert_problem(r, 404, "not-found")


@pytest.mark.asyncio
async def test_a_record_under_an_open_objection_is_not_objected_to_twice(world):
    assert (await file(world, objection_body(world, "obj-a"))).status_code == 201
    r = await file(world, objection_body(world, "obj-b"))
    assert_problem(r, 409, "objection-refused", reason="already-disputed")
    assert [e.outcome for e in receipts(world, "sh-1", "obj-b")] == ["denied"]
    assert [e.outcome for e in receipts(world, ENTERPRISE_HOME, "obj-b")] == ["denied"]
