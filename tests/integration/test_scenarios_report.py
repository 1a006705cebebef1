"""The report directory of a scenario run, written from a result built by hand (no network)."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.scenario.report import CITY_LEVELS, write_report
from scenarios.scenario.runner import Check, QueryOutcome, RunResult, StepResult
from scenarios.scenario.spec import parse_scenario

SPEC = """\
name: hand-made
description: two queries, one of them denied
topology: launch-2020
enterprises: {named: {a: {city: hz, new: true}}}
steps:
  - query: {as: first, institution: bank-sh-001, enterprise: a, purpose: pre_loan}
    expect: {status: granted, cities_touched: [sh, hz]}
  - kill: sz-2
  - query: {as: second, institution: bank-sh-001, enterprise: a, purpose: pre_loan, authorization: none}
    expect: {status: denied}
"""


def make_result(out: Path) -> RunResult:
    spec = parse_scenario(SPEC, "hand.yaml")
    result = RunResult(
        spec,
        out,
        {"dir": "/tmp/x", "enterprises": 3000, "seed": 2020, "seconds": 1.5},
        "abc123",
        "2021-10-31T08:00:00Z",
        seconds=4.2,
    )
    s0, s1, s2 = spec.steps
    result.steps = [
        StepResult(
            0,
            s0.id,
            "query",
            s0.line,
            None,
            seconds=0.8,
            detail={"status": "granted", "seconds": 0.8},
            checks=[
                Check(s0.id, "status", "granted", "granted", True, line=7),
                Check(s0.id, "cities_touched", ["sh", "hz"], ["hz", "sh", "sz"], True, line=7),
            ],
        ),
        StepResult(
            1,
            s1.id,
            "kill",
            s1.line,
            None,
            seconds=0.1,
            detail={"node": "sz-2", "signal": "SIGKILL"},
        ),
        StepResult(
            2,
            s2.id,
            "query",
            s2.line,
            None,
            seconds=0.3,
            detail={"status": "granted", "seconds": 0.3},
            checks=[
                Check(
                    s2.id, "status", "denied", "granted", False, "expected denied, got granted", 10
                )
            ],
        ),
    ]
    result.queries = [
        QueryOutcome(
            "first",
            s0.id,
            "bank-sh-001",
            "sh-1",
            "a",
            "91330100XXXXXXXXXX",
            "pre_loan",
            "auth-1",
            status="granted",
            seconds=0.8,
            partial=True,
            missing=[{"node_id": "sz-2", "reason": "unavailable"}],
            holders={"hz-1": 2},
            cities={"sh": "home", "hz": "answered", "sz": "missing"},
        ),
        QueryOutcome(
            "second",
            s2.id,
            "bank-sh-001",
            "sh-1",
            "a",
            "91330100XXXXXXXXXX",
            "pre_loan",
            "none",
            status="denied",
            reason="unknown",
            seconds=0.3,
            cities={"sh": "home"},
        ),
    ]
    return result


def test_report_directory(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = make_result(out)
    assert not result.ok and len(result.failures) == 1
    write_report(result)
    data = json.loads((out / "results.json").read_text("utf-8"))
    assert data["ok"] is False
    assert data["counts"] == {
        "steps": 3,
        "steps_failed": 1,
        "expectations": 3,
        "passed": 2,
        "failed": 1,
    }
    assert [s["id"] for s in data["steps"]] == ["1-query", "2-kill", "3-query"]
    assert data["failures"] == ["step 3-query: status (line 10): expected denied, got granted"]
    assert data["queries"][0]["cities"] == {"sh": "home", "hz": "answered", "sz": "missing"}
    summary = (out / "summary.md").read_text("utf-8")
    assert summary.startswith("# Scenario hand-made: FAIL")
    assert (
        "| 3-query | status | 10 | denied | granted | **FAIL**: expected denied, got granted |"
        in summary
    )
    assert "| 2 | 2-kill | kill |" in summary
    for chart in ("latency.png", "cities.png"):
        png = (out / chart).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000


def test_report_without_queries(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = make_result(out)
    result.queries = []
    write_report(result)
    assert (out / "latency.png").stat().st_size > 2000
    assert (out / "cities.png").stat().st_size > 2000


def test_city_levels_order() -> None:
    assert CITY_LEVELS == {"": 0, "home": 1, "answered": 2, "missing": 3}
