"""A tiny ``creditchain bench`` run (2 nodes, 200 enterprises, seconds per phase) carries the
honest-bench fields: alternated rounds with their median ratio and spread, node CPU per report
with the idle background taken out, the load generator's own CPU, the fan-out-matched baseline,
in JSON, CSV and the report. Nothing here asserts a timing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e]

ROUNDS = 2
ARGS = [
    "--preset",
    "oct-2021",
    "--nodes",
    "2",
    "--enterprises",
    "200",
    "--duration",
    "1",
    "--capacity-duration",
    "1",
    "--rounds",
    str(ROUNDS),
    "--idle-duration",
    "1",
    "--targets",
    "4",
    "--concurrency",
    "4",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "alt"
    proc = subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "bench", *ARGS, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 1
    return out, rows[0]


def test_rounds_alternate_and_the_ratio_is_their_median(run: tuple[Path, dict[str, Any]]) -> None:
    _, r = run
    phases = r["detail"]["phases"]
    assert phases[0]["phase"] == "idle" and phases[0]["seconds"] > 0
    alternated = [(p["side"], p["round"]) for p in phases[1 : 1 + 2 * ROUNDS]]
    assert alternated == [(s, i) for i in range(ROUNDS) for s in ("chain", "baseline")]
    ratios = sorted(
        a["per_second"] / b["per_second"]
        for a, b in zip(phases[1 : 1 + 2 * ROUNDS : 2], phases[2 : 2 + 2 * ROUNDS : 2], strict=True)
    )
    assert r["rounds"] == ROUNDS
    assert r["capacity_ratio_min"] == pytest.approx(ratios[0])
    assert r["capacity_ratio_max"] == pytest.approx(ratios[-1])
    assert r["capacity_ratio_median"] == pytest.approx(sum(ratios) / 2)
    assert r["capacity_ratio_q1"] <= r["capacity_ratio_median"] <= r["capacity_ratio_q3"]


def test_cpu_per_report_is_the_nodes_minus_the_idle_background(
    run: tuple[Path, dict[str, Any]],
) -> None:
    _, r = run
    phases = r["detail"]["phases"]
    idle = phases[0]
    rate = idle["node_cpu_s"] / idle["seconds"]
    assert r["idle_cpu_s_per_s"] == pytest.approx(rate) and rate >= 0
    chain = [p for p in phases if p["side"] == "chain"]
    net = sum(p["cpu_s"] for p in chain) - rate * sum(p["seconds"] for p in chain)
    assert r["cpu_ms_per_report"] == pytest.approx(
        1000 * max(0.0, net) / sum(p["ok"] for p in chain)
    )
    assert r["cpu_ms_per_report_gross"] >= r["cpu_ms_per_report"] > 0
    assert r["cpu_ms_per_report_baseline"] > 0
    assert r["cpu_ms_per_report_ratio"] == pytest.approx(
        r["cpu_ms_per_report"] / r["cpu_ms_per_report_baseline"]
    )
    # the load generator is measured apart, for both sides
    assert r["client_cpu_ms_per_request"] > 0 and r["client_cpu_ms_per_request_baseline"] > 0
    assert r["client_cpu_share"] > 0 and r["client_cpu_share_baseline"] > 0


def test_the_baseline_has_the_chains_fan_out(run: tuple[Path, dict[str, Any]]) -> None:
    _, r = run
    # two cities: the institution's home asks the enterprise's city node
    assert r["fanout_per_report"] >= 1 and r["baseline_holders"] >= 1
    assert r["cities_per_report"] == pytest.approx(2.0)
    assert r["capacity_errors"] == 0 and r["partial_reports"] == 0


def test_csv_and_report_carry_the_new_fields(run: tuple[Path, dict[str, Any]]) -> None:
    out, r = run
    with (out / "results.csv").open() as f:
        (line,) = list(csv.DictReader(f))
    for col in (
        "capacity_ratio_median",
        "capacity_ratio_min",
        "capacity_ratio_max",
        "cpu_ms_per_report",
        "cpu_ms_per_report_baseline",
        "cpu_ms_per_report_gross",
        "idle_cpu_s_per_s",
        "client_cpu_ms_per_request",
        "client_cpu_ms_per_request_baseline",
        "fanout_per_report",
    ):
        assert float(line[col]) == r[col], col
    md = (out / "report.md").read_text()
    assert "## Headline: node CPU per report and capacity" in md
    from scenarios.bench.report import fmt

    assert (
        f"{fmt(r['capacity_ratio_median'])} [{fmt(r['capacity_ratio_min'])}-"
        f"{fmt(r['capacity_ratio_max'])}]" in md
    )
    assert "load generator CPU per request" in md


def test_per_stage_breakdown_from_the_nodes_metrics(run: tuple[Path, dict[str, Any]]) -> None:
    out, r = run
    from scenarios.bench.figures import REPORT_STAGES, stage_column

    chain = r["detail"]["stages"]["chain"]
    for stage, area in REPORT_STAGES:
        got = chain[f"{stage}/{area}"]
        assert got["calls_per_report"] > 0 and got["ms_per_report"] > 0, (stage, area)
        assert r[stage_column(stage, area)] == got["ms_per_report"]
    # one signature over each bundle; the whole request holds its stages
    assert chain["bundle_sign/report"]["calls_per_report"] == pytest.approx(1.0)
    assert chain["request/report"]["ms_per_report"] > chain["bundle_sign/report"]["ms_per_report"]
    # every phase row carries what its stages added
    assert all("stages" in p for p in r["detail"]["phases"])
    with (out / "results.csv").open() as f:
        (line,) = list(csv.DictReader(f))
    assert float(line["stage_ms_bundle_sign_report"]) == r["stage_ms_bundle_sign_report"]
    assert "## Per-stage breakdown" in (out / "report.md").read_text()
