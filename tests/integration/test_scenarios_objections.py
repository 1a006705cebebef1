"""Scenario files with objection steps: checked on load, naming the line and the field;
``creditchain status`` names overdue objections and the network clock's offset.

No node process is started here (the shipped scenarios run in tests/e2e/test_scenarios.py).
"""

from __future__ import annotations

import textwrap

import pytest

from scenarios.cli.consortium import _clock_and_objections
from scenarios.localnet import NodeStatus
from scenarios.scenario.spec import ScenarioError, load_scenario, parse_scenario

HEAD = """\
name: tiny
topology: launch-2020
enterprises:
  named:
    e: {city: sz, new: true}
steps:
  - ingest: {node: hf-1, records: [{enterprise: e, type: admin_penalty, id: p, body: {a: 1}}]}
"""


def problems(steps: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(HEAD + textwrap.indent(textwrap.dedent(steps), "  "), "bad.yaml")
    return [str(p) for p in info.value.problems]


def test_the_shipped_objection_scenario_covers_every_outcome_and_the_deadline() -> None:
    spec = load_scenario("objection-20-days")
    outcomes = {s.args["outcome"] for s in spec.steps if s.action == "decide"}
    assert outcomes == {"corrected", "upheld", "unverifiable"}
    [clock] = [s for s in spec.steps if s.action == "advance_clock"]
    assert clock.args["days"] > 20 and "overdue_objections" in clock.expect
    lines = [s for s in load_scenario("mybank-post-loan").steps if s.action == "credit_line"]
    assert [s.args["action"] for s in lines] == ["freeze", "restore"]
    assert {s.args["amount_minor"] for s in lines} == {15_000_000}  # ¥150,000 in fen


def test_a_decision_needs_an_objection_filed_before_it() -> None:
    [p] = problems("- decide: {objection: nope, outcome: upheld, verification: v}\n")
    assert "bad.yaml:8" in p and "objection 'nope' is not filed by an earlier object step" in p


def test_a_corrected_outcome_needs_its_correction_and_only_it_has_one() -> None:
    found = problems(
        """\
        - object: {as: o, enterprise: e, holder: hf-1, record: p, reason: wrong}
        - decide: {objection: o, outcome: corrected, verification: v}
        - decide: {objection: o, outcome: upheld, verification: v,
                   correction: {id: c, body: {a: 2}}}
        """
    )
    assert any("a corrected outcome needs its correction" in p for p in found), found
    assert any("only a corrected outcome carries a correction" in p for p in found), found


def test_objection_expectations_are_checked_on_load() -> None:
    found = problems(
        """\
        - object: {as: o, enterprise: e, holder: hf-1, record: p, reason: wrong}
          expect: {objection: {objection: o, status: maybe}}
        - advance_clock: {days: -1}
        """
    )
    assert any("status: must be one of open" in p for p in found), found
    assert any("days: must be >= 0" in p for p in found), found


def test_status_names_overdue_objections_and_a_clock_disagreement() -> None:
    def status(node: str, offset: int, overdue: list[dict[str, str]]) -> NodeStatus:
        info = {
            "clock": {"offset_s": offset},
            "objections": {"open": len(overdue), "overdue": len(overdue), "overdue_ids": overdue},
        }
        return NodeStatus(node, "sh", "http://x", None, info, None)

    late = {
        "objection_id": "obj-1",
        "uscc": "U",
        "record_id": "r",
        "due_at": "2021-10-21T00:00:00Z",
    }
    lines = _clock_and_objections([status("sh-1", 21 * 86400, [late]), status("sh-2", 0, [])])
    assert lines[0].startswith("network clock: nodes disagree on the offset: sh-1 21 d, sh-2 0 d")
    assert "OVERDUE objection obj-1 at sh-1 on record r of U: the reply was due" in lines[1]
    agreed = _clock_and_objections([status("sh-1", 86400, []), status("sh-2", 86400, [])])
    assert agreed == ["network clock: advanced 1 days for simulation"]
