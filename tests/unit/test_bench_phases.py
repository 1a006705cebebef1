"""The arithmetic of the alternated bench: phase order, median and spread, CPU per request with
the idle background taken out, the summary of phase rows and the fan-out-matched baseline plan."""

from __future__ import annotations

import pytest

from node.bundle import BundleSummary
from scenarios.bench.phases import (
    BASELINE,
    CHAIN,
    PhaseCost,
    alternating_phases,
    cpu_ms_per_request,
    median_spread,
    pair_ratios,
    stage_deltas,
    stage_ms_per_report,
)
from scenarios.bench.query import BaselinePlan, summarise_phases


def test_phases_alternate_chain_first() -> None:
    assert alternating_phases(3) == [
        (CHAIN, 0),
        (BASELINE, 0),
        (CHAIN, 1),
        (BASELINE, 1),
        (CHAIN, 2),
        (BASELINE, 2),
    ]
    assert alternating_phases(1, first=BASELINE) == [(BASELINE, 0), (CHAIN, 0)]


@pytest.mark.parametrize(("rounds", "first"), [(0, CHAIN), (-1, CHAIN), (2, "neither")])
def test_phases_refuse_bad_arguments(rounds: int, first: str) -> None:
    with pytest.raises(ValueError, match="rounds must be|first must be"):
        alternating_phases(rounds, first)


def test_median_spread_of_odd_and_even_counts() -> None:
    assert median_spread([3.0, 1.0, 2.0]) == {
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
        "q1": 1.5,
        "q3": 2.5,
        "n": 3,
    }
    s = median_spread([4.0, 1.0, 3.0, 2.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0 and s["n"] == 4
    assert s["q1"] == pytest.approx(1.75) and s["q3"] == pytest.approx(3.25)


def test_median_spread_skips_missing_values_and_handles_none_or_one() -> None:
    assert median_spread([None, 5.0, None]) == {
        "median": 5.0,
        "min": 5.0,
        "max": 5.0,
        "q1": 5.0,
        "q3": 5.0,
        "n": 1,
    }
    empty = median_spread([])
    assert empty["n"] == 0 and empty["median"] is None and empty["max"] is None


def test_pair_ratios_by_round() -> None:
    assert pair_ratios({0: 10.0, 1: 12.0, 2: 9.0}, {0: 100.0, 1: 0.0}) == [0.1, None, None]


def test_cpu_per_request_takes_the_idle_background_out() -> None:
    phases = [PhaseCost(cpu_s=3.0, seconds=5.0, requests=100), PhaseCost(2.0, 5.0, 100)]
    # (5.0 CPU-s - 0.2 CPU-s/s * 10 s) / 200 requests = 15 ms
    assert cpu_ms_per_request(phases, idle_cpu_per_s=0.2) == pytest.approx(15.0)
    assert cpu_ms_per_request(phases) == pytest.approx(25.0)  # gross
    # an idle rate above the phase's own CPU gives 0, never a negative cost
    assert cpu_ms_per_request([PhaseCost(0.1, 5.0, 10)], idle_cpu_per_s=1.0) == 0.0
    assert cpu_ms_per_request([PhaseCost(1.0, 5.0, 0)]) is None


def test_stage_deltas_and_per_report_means() -> None:
    before = {("bundle_sign", "report"): (0.5, 100.0), ("mirror_round", "background"): (2.0, 4.0)}
    after = {
        ("bundle_sign", "report"): (0.7, 200.0),
        ("mirror_round", "background"): (3.0, 6.0),
        ("holder_receipt", "holder"): (0.4, 100.0),  # new since the first scrape
        ("routing", "report"): (0.1, 1.0),
    }
    before[("routing", "report")] = (0.2, 5.0)  # went down: the node restarted
    d = stage_deltas(before, after)
    assert d[("bundle_sign", "report")] == pytest.approx((0.2, 100.0))
    assert d[("holder_receipt", "holder")] == (0.4, 100.0)
    assert d[("routing", "report")] == (0.1, 1.0)
    s = stage_ms_per_report(d, reports=100, seconds=10.0)
    assert s["bundle_sign/report"]["ms_per_report"] == pytest.approx(2.0)
    assert s["bundle_sign/report"]["ms_per_call"] == pytest.approx(2.0)
    assert s["holder_receipt/holder"]["calls_per_report"] == 1.0
    assert s["mirror_round/background"]["s_per_s"] == pytest.approx(0.1)
    assert stage_ms_per_report(d, reports=0, seconds=0)["routing/report"]["ms_per_report"] is None


def _phase(side: str, r: int | None, rate: float, cpu_s: float, client_s: float) -> dict:
    return {
        "phase": f"{side}-x",
        "side": side,
        "round": r,
        "sent": int(rate * 2),
        "ok": int(rate * 2),
        "errors": 0,
        "seconds": 2.0,
        "per_second": rate,
        "cpu_s": cpu_s,
        "other_cpu_s": 0.1,
        "client_cpu_s": client_s,
        "client_cpu_share": client_s / 2.0,
        "p50_ms": 10.0 if side == CHAIN else 2.0,
        "p95_ms": 20.0 if side == CHAIN else 4.0,
        "p99_ms": 30.0 if side == CHAIN else 5.0,
    }


def test_summarise_phases_gives_medians_spread_and_net_cpu() -> None:
    phases = [
        {"phase": "idle", "side": "idle", "round": None, "seconds": 2.0},
        _phase(CHAIN, 0, 50.0, 1.2, 0.5),
        _phase(BASELINE, 0, 200.0, 0.8, 0.8),
        _phase(CHAIN, 1, 40.0, 1.2, 0.4),
        _phase(BASELINE, 1, 100.0, 0.8, 0.4),
        _phase(CHAIN, 2, 45.0, 1.2, 0.45),
        _phase(BASELINE, 2, 150.0, 0.8, 0.6),
        _phase(CHAIN, None, 20.0, 0.6, 0.2),
        _phase(BASELINE, None, 20.0, 0.1, 0.05),
    ]
    out = summarise_phases(phases, {CHAIN: 0.1, BASELINE: 0.0})
    ratio = out["capacity_ratio"]
    assert ratio["n"] == 3
    assert ratio["median"] == pytest.approx(0.3)  # 0.25, 0.4, 0.3
    assert ratio["min"] == pytest.approx(0.25) and ratio["max"] == pytest.approx(0.4)
    assert out["capacity_rps"] == 45.0 and out["capacity_rps_baseline"] == 150.0
    chain_ok = 100 + 80 + 90 + 40
    chain_cpu = 1.2 * 3 + 0.6 - 0.1 * 8.0
    assert out["cpu_ms_per_report"] == pytest.approx(1000 * chain_cpu / chain_ok)
    assert out["cpu_ms_per_report_gross"] == pytest.approx(1000 * (1.2 * 3 + 0.6) / chain_ok)
    assert out["cpu_ms_per_report_baseline"] == pytest.approx(1000 * 2.5 / (400 + 200 + 300 + 40))
    assert out["idle_cpu_s_per_s"] == 0.1
    assert out["client_cpu_ms_per_request"] == pytest.approx(1000 * 1.55 / chain_ok)
    assert out["client_cpu_share_baseline"] == pytest.approx(0.4)
    assert out["p50_ratio"] == 5.0 and out["p99_ratio"] == 6.0
    assert out["cpu_ratio"]["n"] == 3
    # the network's CPU while the baseline ran: 0.1 CPU-s in each 2-s baseline phase
    assert out["node_cpu_s_per_s_in_baseline_phases"] == pytest.approx(0.05)


def _summary(home: str, holders: dict[str, int], records: list[tuple[str, str]]) -> BundleSummary:
    return BundleSummary(
        query_id="q",
        uscc="U1",
        purpose="post_loan",
        institution_id="i",
        home_node=home,
        partial=False,
        missing=[{"node_id": "cz-1", "reason": "unavailable"}],
        holders=holders,
        history=[
            {
                "node_id": node,
                "index": i,
                "record_type": "registration",
                "record_id": rid,
                "observed_at": "2021-01-01T00:00:00Z",
                "body": {"n": i},
            }
            for i, (node, rid) in enumerate(records)
        ],
    )


def test_baseline_plan_matches_the_chain_fan_out_and_bodies() -> None:
    plan = BaselinePlan()
    s = _summary(
        "hz-1", {"hz-1": 1, "sh-1": 1, "sz-1": 2}, [("hz-1", "a"), ("sh-1", "b"), ("sz-1", "c")]
    )
    plan.add_bundle(0, s)
    # sh-1, sz-1 and the unavailable cz-1 were asked over HTTP; hz-1 answered itself
    assert plan.asks[0] == ([0, 1, 2], True)
    assert len(plan.slots) == 3
    assert [r[2] for r in plan.home.values()] == ["a"]
    assert [r[2] for r in plan.slots[1].values()] == ["b"]  # sorted: cz-1, sh-1, sz-1
    assert plan.slots[1][("U1", "b")][4] == '{"n": 1}'
    plan.add_bundle(1, _summary("sh-1", {"hf-1": 0}, []))
    assert plan.asks[1] == ([0, 1], False) and len(plan.slots) == 3
    assert plan.fanout() == pytest.approx(2.5)
