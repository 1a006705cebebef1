"""verification_steps: the checks of verify_bundle by name, pass or fail, never raising."""

from __future__ import annotations

import base64
import copy

from node.bundle import verification_steps, verify_bundle


async def test_a_good_bundle_passes_every_named_step(world):
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    steps, summary = verification_steps(bundle, world.manifest)
    assert summary == verify_bundle(bundle, world.manifest)
    assert all(s.ok for s in steps)
    names = [s.name for s in steps]
    assert names[:2] == ["bundle structure", "home node's signature"]
    assert "authorization: inclusion" in names and "authorization: enterprise consent" in names
    for holder, count in summary.holders.items():
        assert f"{holder}: checkpoint" in names
        assert f"{holder}: receipt and counts" in names
        assert sum(n.startswith(f"{holder}: record ") for n in names) == count
    assert names[-2:] == ["home receipt", "missing holders"]


async def test_a_tampered_bundle_names_the_failing_step(world):
    r = await world.report()
    bundle = r.json()
    edited = copy.deepcopy(bundle)
    section = next(h for h in edited["report"]["holders"] if h["node_id"] == "hf-1")
    section["records"][0]["body"] = {"amount_minor": 1}
    steps, summary = verification_steps(edited, world.manifest)
    assert summary is None
    # The report's signature no longer covers the edit: the second step fails, nothing after.
    assert [s.ok for s in steps] == [True, False]
    assert steps[-1].name == "home node's signature" and steps[-1].reason == "bad-signature"

    # Re-signed by the home node itself: only the record's commitment catches the edit.
    key = world.net.keys[world.home]
    from ledger import canonical_bytes

    edited["signature"] = base64.b64encode(key.sign(canonical_bytes(edited["report"]))).decode()
    steps, summary = verification_steps(edited, world.manifest)
    assert summary is None and all(s.ok for s in steps[:-1])
    assert steps[-1].name == "hf-1: record 0" and steps[-1].reason == "bad-body"
    assert "commitment" in steps[-1].detail


def test_garbage_fails_at_the_structure_step(world):
    steps, summary = verification_steps({"nothing": 1}, world.manifest)
    assert summary is None and len(steps) == 1
    assert steps[0].name == "bundle structure" and not steps[0].ok
