"""A running network follows manifest version 2 live, and refuses what cannot follow.

Three city nodes in one process: the operator posts version n+1 to each node, which
checks the root's signature and the chain, keeps it in its history file and switches
peers, keys and URLs without a restart. Reports name the version they were made
under; a bundle from before still verifies against its own version.
"""

from __future__ import annotations

import dataclasses
import json
import stat

import pytest
from support.inproc import seeded_key
from support.inproc_world import HOME, assert_problem

from node.app import build_state
from node.bundle import verify_bundle, verify_bundle_in_history
from node.consortium import ManifestHistory, parse_manifest, sign_manifest
from node.errors import BundleError, ConfigError

ROOT = seeded_key("root")


def _next(current, *, nodes=None, version=None, prev=None, root=ROOT, algorithm=None):
    data = sign_manifest(
        current.name,
        algorithm or current.algorithm,
        root,
        list(nodes if nodes is not None else current.nodes),
        current.registries,
        version=version or current.version + 1,
        prev=prev or current.digest,
    )
    return parse_manifest(data)


async def _post(world, node_id, manifest):
    async with world.net.operator(node_id) as c:
        return await c.post(f"http://{node_id}/v1/manifest", json=json.loads(manifest.raw))


async def test_every_node_follows_version_two_live(world) -> None:
    v1 = world.manifest
    before = await world.report()
    assert before.status_code == 200, before.text
    old_bundle = before.json()
    assert old_bundle["report"]["manifest_version"] == 1

    moved = [
        dataclasses.replace(n, url="http://sh-1") if n.node_id == "sh-1" else n for n in v1.nodes
    ]
    v2 = _next(v1, nodes=moved)
    for node_id in world.net.states:
        r = await _post(world, node_id, v2)
        assert r.status_code == 200, r.text
        assert r.json() == {"version": 2, "applied": True, "nodes": 3, "digest": v2.digest}
        st = world.state(node_id)
        assert st.manifest.version == 2 and st.peers.manifest.digest == v2.digest
        path = st.settings.manifest_history_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [m.version for m in ManifestHistory(st.history.versions).versions] == [1, 2]

    again = await _post(world, HOME, v2)
    assert again.status_code == 200 and again.json()["applied"] is False

    async with world.net.client("node:x", seeded_key("nobody")) as anyone:
        r = await anyone.get(f"http://{HOME}/v1/manifest")
    assert r.status_code == 200 and parse_manifest(r.content).digest == v2.digest
    async with world.net.operator(HOME) as c:
        r1 = await c.get(f"http://{HOME}/v1/manifest", params={"version": 1})
        health = await c.get(f"http://{HOME}/v1/health")
        missing = await c.get(f"http://{HOME}/v1/manifest", params={"version": 7})
    assert parse_manifest(r1.content).digest == v1.digest
    assert health.json()["manifest_version"] == 2
    assert_problem(missing, 404, "not-found")

    after = await world.report()
    assert after.status_code == 200, after.text
    new_bundle = after.json()
    assert new_bundle["report"]["manifest_version"] == 2
    history = ManifestHistory((v1, v2))
    assert verify_bundle_in_history(new_bundle, history).holders
    assert verify_bundle_in_history(old_bundle, history).holders
    with pytest.raises(BundleError) as info:
        verify_bundle(new_bundle, v1)
    assert info.value.reason == "manifest-version"
    assert "made under manifest version 2, not version 1" in str(info.value)


async def test_refused_versions_change_nothing(world, tmp_path) -> None:
    v1 = world.manifest
    st = world.state(HOME)
    cases = {
        "not newer": parse_manifest(
            sign_manifest(v1.name, v1.algorithm, ROOT, list(v1.nodes)[:2], v1.registries)
        ),
        "skips version 2": _next(v1, version=3),
        "as its predecessor": _next(v1, prev="0" * 64),
        "one consortium keeps one suite": _next(v1, algorithm="sm3"),
        "removes node hz-1, the node reading it": _next(
            v1, nodes=[n for n in v1.nodes if n.node_id != HOME]
        ),
    }
    for phrase, manifest in cases.items():
        r = await _post(world, HOME, manifest)
        body = assert_problem(r, 409, "manifest-refused")
        assert phrase in body["detail"], body
    thief = seeded_key("thief")
    stolen = sign_manifest(v1.name, v1.algorithm, thief, list(v1.nodes), version=2, prev=v1.digest)
    async with world.net.operator(HOME) as c:
        r = await c.post(f"http://{HOME}/v1/manifest", json=json.loads(stolen))
        junk = await c.post(f"http://{HOME}/v1/manifest", json={"manifest": 1, "signature": "x"})
    assert "not the trusted one" in assert_problem(r, 409, "manifest-refused")["detail"]
    assert_problem(junk, 409, "manifest-refused")
    rekeyed = [
        dataclasses.replace(n, public_key=world.state("sh-1").info.public_key)
        if n.node_id == HOME
        else n
        for n in v1.nodes
        if n.node_id != "sh-1"
    ]
    r = await _post(world, HOME, _next(v1, nodes=rekeyed))
    assert "changes this node's key" in assert_problem(r, 409, "manifest-refused")["detail"]

    async with world.inst() as c:
        r = await c.post(f"http://{HOME}/v1/manifest", json=json.loads(_next(v1).raw))
    assert_problem(r, 403, "unknown-peer")
    assert st.manifest.digest == v1.digest and st.manifest.version == 1
    assert not st.settings.manifest_history_path.exists()


async def test_a_restarted_node_resumes_the_version_it_applied(world) -> None:
    v1 = world.manifest
    v2 = _next(v1)
    assert (await _post(world, HOME, v2)).status_code == 200
    settings = world.state(HOME).settings
    await world.state(HOME).close()
    world.net.states.pop(HOME)
    again = build_state(settings, transport=world.net.transport)
    try:
        assert again.manifest.digest == v2.digest
        assert [m.version for m in again.history.versions] == [1, 2]
    finally:
        await again.close()


async def test_a_node_started_on_a_newer_manifest_file_follows_it(world) -> None:
    v1 = world.manifest
    v2 = _next(v1)
    settings = world.state(HOME).settings
    assert (await _post(world, HOME, v2)).status_code == 200
    await world.state(HOME).close()
    world.net.states.pop(HOME)
    v3 = _next(v2)
    settings.manifest.write_bytes(v3.raw)  # the operator updated the file while it was down
    again = build_state(settings, transport=world.net.transport)
    try:
        assert again.manifest.digest == v3.digest
        assert [m.version for m in again.history.versions] == [1, 2, 3]
    finally:
        await again.close()
    settings.manifest.write_bytes(_next(v1, prev="0" * 64).raw)  # a version 2 of another chain
    with pytest.raises(ConfigError, match="differs from the one this node applied"):
        build_state(settings, transport=world.net.transport)
