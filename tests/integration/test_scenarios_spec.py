"""Scenario files: every shipped file validates; a bad file gets errors naming the line and the field.

No node process is started here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenarios.cli import cli
from scenarios.scenario.spec import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    parse_time_offset,
    resolve_scenario_path,
    shipped_scenarios,
)

SHIPPED = [
    "dispute-and-correction",
    "launch-2020",
    "mybank-post-loan",
    "node-outage",
    "objection-20-days",
    "oct-2021",
    "post-loan-monitoring",
    "pre-loan-due-diligence",
    "rogue-node",
    "unauthorized-query",
]

GOOD = """\
name: tiny
topology: launch-2020
enterprises:
  count: 3000
  named:
    borrower: {city: hz, new: true}
steps:
  - authorize: {as: consent, institution: bank-hz-001, enterprise: borrower, purposes: [post_loan]}
  - query: {institution: bank-hz-001, enterprise: borrower, purpose: post_loan, authorization: consent}
    expect: {status: granted}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(textwrap.dedent(text), "bad.yaml")
    return [str(p) for p in info.value.problems]


def one(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --- the shipped files ---------------------------------------------------------------------------
def test_every_scenario_the_issue_names_is_shipped() -> None:
    assert sorted(shipped_scenarios()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_validates(name: str) -> None:
    spec = load_scenario(name)
    assert spec.name == name
    assert spec.steps
    assert len({s.id for s in spec.steps}) == len(spec.steps)
    assert any(s.action == "query" for s in spec.steps)
    assert spec.enterprises <= 5000  # every scenario runs in well under a couple of minutes


def test_shipped_topologies_match_the_issue() -> None:
    assert len(load_scenario("launch-2020").topology.node_ids) == 11
    oct21 = load_scenario("oct-2021").topology
    assert len(oct21.node_ids) == 14 and oct21.institutions == 326
    four = next(s for s in load_scenario("pre-loan-due-diligence").steps if s.action == "query")
    assert set(four.expect["cities_touched"]) == {"sz", "nj", "hz", "hf"}


def test_a_good_file_parses() -> None:
    spec = parse_scenario(GOOD, "good.yaml")
    assert [s.action for s in spec.steps] == ["authorize", "query"]
    q = spec.steps[1]
    assert q.id == "2-query" and q.alias == "2-query" and q.line == 9
    assert q.args["authorization"] == "consent"
    assert q.expect_lines == {"status": 10}
    assert spec.steps[0].args["valid_until"] == "+365d"  # defaults filled in


def test_resolve_by_name_or_path(tmp_path: Path) -> None:
    assert resolve_scenario_path("node-outage").name == "node-outage.yaml"
    f = tmp_path / "x.yaml"
    f.write_text(GOOD)
    assert resolve_scenario_path(f) == f
    with pytest.raises(ScenarioError, match="no such file, nor a shipped scenario"):
        resolve_scenario_path("no-such-scenario")


# --- bad files: line and field ---------------------------------------------------------------------
def test_yaml_syntax_error_names_the_line() -> None:
    msg = one("""\
        name: x
        topology: launch-2020
        steps:
          - query: {institution: bank-hz-001, enterprise: a
          - wait: 1
        """)
    assert msg.startswith("bad.yaml:5: not valid YAML")


def test_unknown_field_names_line_field_and_suggests() -> None:
    msg = one(
        GOOD.replace(
            "    expect: {status: granted}", "    expect: {status: granted, partail: false}"
        )
    )
    assert msg == "bad.yaml:10: steps[1].expect.partail: unknown field; did you mean 'partial'?"


def test_bad_enum_value_names_line_and_field() -> None:
    msg = one(GOOD.replace("purpose: post_loan,", "purpose: postloan,"))
    assert msg.startswith("bad.yaml:9: steps[1].query.purpose: must be one of pre_loan, post_loan")
    assert "did you mean 'post_loan'" in msg


def test_missing_required_field_names_the_mapping() -> None:
    msg = one(
        GOOD.replace(
            "  - query: {institution: bank-hz-001, enterprise: borrower, purpose: post_loan,",
            "  - query: {institution: bank-hz-001, enterprise: borrower,",
        )
    )
    assert msg.startswith("bad.yaml:9: steps[1].query: missing required field 'purpose'")


def test_unknown_node_city_and_institution() -> None:
    found = problems("""\
        name: x
        topology: launch-2020
        enterprises:
          named:
            a: {city: zz, new: true}
        steps:
          - kill: hz-9
          - query: {institution: bank-xx-001, enterprise: a, purpose: pre_loan}
        """)
    assert found[0].startswith(
        "bad.yaml:5: enterprises.named.a.city: no city 'zz' in topology launch-2020"
    )
    assert found[1].startswith(
        "bad.yaml:7: steps[0].kill.node: no node 'hz-9' in topology launch-2020"
    )
    assert "did you mean 'hz-2'?" in found[1]
    assert found[2].startswith(
        "bad.yaml:8: steps[1].query.institution: unknown institution 'bank-xx-001'"
    )
    assert len(found) == 3


def test_references_must_be_defined_before_use() -> None:
    found = problems("""\
        name: x
        topology: launch-2020
        enterprises: {named: {a: {city: hz, new: true}}}
        steps:
          - revoke: {authorization: later}
          - expect:
              bundle: {query: q, verifies: true}
          - query: {as: q, institution: bank-hz-001, enterprise: b, purpose: pre_loan, authorization: later}
          - authorize: {as: later, institution: bank-hz-001, enterprise: a, purposes: [pre_loan]}
        """)
    assert found[0].startswith(
        "bad.yaml:5: steps[0].revoke.authorization: authorization 'later' is not defined"
    )
    assert found[1].startswith(
        "bad.yaml:7: steps[1].expect.bundle.query: query 'q' is not defined by an earlier"
    )
    assert found[2].startswith("bad.yaml:8: steps[2].query.enterprise: unknown enterprise 'b'")
    assert found[3].startswith(
        "bad.yaml:8: steps[2].query.authorization: authorization 'later' is not defined"
    )


def test_query_expectations_only_on_query_steps() -> None:
    msg = one("""\
        name: x
        topology: launch-2020
        steps:
          - kill: sz-2
            expect:
              nodes_down: [sz-2]
              partial: true
        """)
    assert (
        msg
        == "bad.yaml:7: steps[0].expect.partial: 'partial' is a query expectation; this step is a kill"
    )


def test_record_bodies_refuse_floats_at_their_line() -> None:
    msg = one("""\
        name: x
        topology: launch-2020
        enterprises: {named: {a: {city: hz, new: true}}}
        steps:
          - ingest:
              node: hz-1
              records:
                - enterprise: a
                  type: admin_penalty
                  id: p1
                  body:
                    authority: somewhere
                    amount: 12.5
        """)
    assert msg.startswith(
        "bad.yaml:13: steps[0].ingest.records[0].body.amount: floats are not allowed"
    )


def test_record_bodies_must_fit_their_items_schema_at_validate_time() -> None:
    msg = one("""\
        name: x
        topology: launch-2020
        enterprises: {named: {a: {city: hz, new: true}}}
        steps:
          - ingest:
              node: hz-1
              records:
                - enterprise: a
                  type: registration
                  id: r1
                  body: {name: x, industry: e-commerce}
        """)
    assert msg.startswith(
        "bad.yaml:11: steps[0].ingest.records[0].body: the body of a registration"
    )
    assert '"e-commerce" is not one of' in msg


def test_duplicate_keys_are_an_error() -> None:
    msg = one("""\
        name: x
        topology: launch-2020
        steps:
          - wait: 1
        name: y
        """)
    assert msg == "bad.yaml:5: name: duplicate key (first given on line 1)"


def test_one_action_per_step_and_wrong_types() -> None:
    found = problems("""\
        name: x
        topology: launch-2020
        steps:
          - kill: sz-2
            restart: sz-2
          - wait: soon
          - stepz: 1
          - 42
        """)
    assert found[0] == "bad.yaml:4: steps[0]: a step has one action, this one has 2: kill, restart"
    assert found[1] == "bad.yaml:6: steps[1].wait.seconds: must be a number, got text"
    assert found[2].startswith(
        "bad.yaml:7: steps[2].stepz: unknown action or field; did you mean 'steps'?"
    ) or found[2].startswith("bad.yaml:7: steps[2].stepz: unknown action or field")
    assert found[3].startswith("bad.yaml:8: steps[3]: a step must be a mapping")


def test_inline_topology_errors_point_into_the_cities() -> None:
    msg = one("""\
        name: x
        topology:
          name: lab
          cities:
            - {code: sh, name: Shanghai, admin_code: "310000", share: 0.5}
            - {code: hz, name: Hangzhou, admin_code: "3301", share: 0.5}
        steps:
          - wait: 1
        """)
    assert msg.startswith("bad.yaml:6: topology.cities[1]: ")
    assert "admin_code must be 6 digits" in msg


def test_unknown_preset_and_missing_sections() -> None:
    found = problems("""\
        topology: launch-2030
        """)
    assert any(p.startswith("bad.yaml:1: topology: unknown preset 'launch-2030'") for p in found)
    assert any("missing required field 'name'" in p for p in found)
    assert any("missing required field 'steps'" in p for p in found)


def test_times_and_authorization_windows() -> None:
    assert parse_time_offset("now") == ("offset", 0)
    assert parse_time_offset("-30d") == ("offset", -30 * 86400)
    assert parse_time_offset("+2h") == ("offset", 7200)
    assert parse_time_offset("2021-10-31T08:00:00Z") == ("time", 0)
    assert parse_time_offset("2021-10-31") is None
    msg = one(
        GOOD.replace(
            "purposes: [post_loan]}", "purposes: [post_loan], valid_from: -1d, valid_until: -2d}"
        )
    )
    assert msg.startswith(
        "bad.yaml:8: steps[0].authorize.valid_until: must be later than valid_from"
    )
    msg = one(GOOD.replace("purposes: [post_loan]}", "purposes: [guarantee]}"))
    assert (
        msg == "bad.yaml:8: steps[0].authorize.purposes: institution bank-hz-001 is registered for "
        "pre_loan, post_loan, credit_line, not guarantee"
    )


# --- the command line ---------------------------------------------------------------------------------
def test_cli_validate_shipped_and_bad(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["scenario", "validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") == len(SHIPPED)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("purpose: post_loan,", "purpose: postloan,"))
    result = runner.invoke(cli, ["scenario", "validate", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}:9: steps[1].query.purpose: must be one of")
    assert "Traceback" not in result.output


def test_cli_run_rejects_a_bad_file_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntopology: launch-2020\nsteps:\n  - kill: hz-7\n")
    result = CliRunner().invoke(cli, ["scenario", "run", str(bad), "--dir", str(tmp_path / "cc")])
    assert result.exit_code == 2
    assert "bad.yaml:4: steps[0].kill.node: no node 'hz-7'" in result.stderr
    assert not (tmp_path / "cc").exists()


def test_cli_run_docker_target_without_an_engine_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scenarios.containers.docker

    monkeypatch.setattr(
        scenarios.containers.docker, "docker_available", lambda: "`docker info` failed: no engine"
    )
    result = CliRunner().invoke(
        cli,
        [
            "scenario",
            "run",
            "node-outage",
            "--target",
            "docker",
            "--dir",
            str(tmp_path / "cc"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "--target docker needs a Docker engine: `docker info` failed: no engine" in result.stderr
    assert not (tmp_path / "cc").exists()


def test_the_container_scenarios_validate_too() -> None:
    root = Path(__file__).parents[2] / "docker" / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert files, root
    for path in files:
        assert load_scenario(str(path)).steps, path
