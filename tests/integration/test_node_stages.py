"""Per-stage instrumentation (node.stages): one report through the in-process world leaves
``node_stage_seconds`` histograms on /metrics for every stage of the report path, counted on
the node that did the work (home or holder) and in the right area, and mirroring counts as
background."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from node.stages import STAGES

HOME_STAGES = {
    "request",
    "request_verify",
    "authorization_check",
    "routing",
    "holder_call",
    "peer_sign",
    "peer_transport",
    "home_verify",
    "home_receipt",
    "bundle_sign",
    "response_sign",
}
HOLDER_STAGES = {
    "request",
    "request_verify",
    "holder_verify",
    "holder_proofs",
    "holder_receipt",
    "response_sign",
}


async def _stages(world, node_id: str) -> dict[tuple[str, str], dict[str, float]]:
    """(stage, area) → {"count", "sum", "buckets"} from the node's /metrics."""
    async with world.inst() as c:
        r = await c.get(f"http://{node_id}/metrics")
    assert r.status_code == 200
    out: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(r.text):
        if family.name != "node_stage_seconds":
            continue
        for s in family.samples:
            key = (s.labels["stage"], s.labels["area"])
            row = out.setdefault(key, {"count": 0.0, "sum": 0.0, "buckets": 0.0})
            if s.name.endswith("_count"):
                row["count"] = s.value
            elif s.name.endswith("_sum"):
                row["sum"] = s.value
            elif s.name.endswith("_bucket"):
                row["buckets"] += 1
    return out


async def test_one_report_fills_every_stage_of_its_path(world):
    before_home = await _stages(world, "hz-1")
    before_holder = await _stages(world, "hf-1")
    r = await world.report()
    assert r.status_code == 200, r.text
    home = await _stages(world, "hz-1")
    holder = await _stages(world, "hf-1")

    def grew(after, before, key) -> float:
        return after.get(key, {}).get("count", 0) - before.get(key, {}).get("count", 0)

    for name in HOME_STAGES:
        key = (name, "report")
        assert key in home, f"no {name} on the home node"
        assert home[key]["buckets"] > 0 and home[key]["count"] >= 1, name
        assert grew(home, before_home, key) >= 1, name
    # two remote holders (hf-1, sh-1): one call and one verification each
    assert grew(home, before_home, ("holder_call", "report")) == 2
    assert grew(home, before_home, ("home_verify", "report")) == 2
    assert grew(home, before_home, ("bundle_sign", "report")) == 1
    assert grew(home, before_home, ("peer_sign", "report")) == 2  # one per signed call
    for name in HOLDER_STAGES:
        key = (name, "holder")
        assert key in holder, f"no {name} on the holder"
        assert holder[key]["count"] >= 1, name
        assert grew(holder, before_holder, key) >= 1, name
    # the holder's work is counted on the holder, not on its caller
    assert ("holder_receipt", "holder") not in home
    assert ("bundle_sign", "report") not in holder


async def test_mirroring_counts_as_background(world):
    assert (await world.report()).status_code == 200
    await world.mirror_all()
    stages = await _stages(world, "hz-1")
    assert stages[("mirror_round", "background")]["count"] >= 1
    assert stages[("peer_transport", "background")]["count"] >= 1
    # with one report and one round, every stage the module documents has been seen
    seen = {name for node in ("hz-1", "hf-1") for name, _ in await _stages(world, node)}
    assert set(STAGES) == seen
