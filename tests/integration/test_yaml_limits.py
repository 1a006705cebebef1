"""YAML files the command line reads are bounded: alias expansion, nesting depth, size.

The reproduction: nine levels of nine-way aliases (under 500 bytes) stand for 9^9
values; ``creditchain scenario validate`` walked them for over a minute and 1.5 GB.
Now the loader counts the expanded values while composing and stops at the alias
that passes the budget, naming its line, for scenario files and topology files alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.cli import invoke

import scenarios.model.topology
from scenarios.model.topology import load_topology
from scenarios.scenario.spec import ScenarioError, load_scenario, shipped_scenarios
from scenarios.yamlfile import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_VALUES,
    YamlLimitError,
    load_bounded,
    read_yaml_text,
)


def alias_bomb(tail: list[str]) -> str:
    """Nine levels of nine-way aliases (``a0`` … ``a8``); ``a5``'s line (6) passes the budget."""
    lines = ["a0: &a0 [" + ",".join(["x"] * 9) + "]"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines + tail) + "\n"


SCENARIO_BOMB = alias_bomb(["name: bomb", "topology: launch-2020", "steps: *a8"])
TOPOLOGY_BOMB = alias_bomb(["name: bomb", "cities: *a8"])
BOMB_LINE = 6  # a5 = [*a4 × 9]: 9^5 = 59,049 values per *a4, the second passes 100,000
# Merge keys are aliases too: PyYAML's flatten_mapping alone would copy 9^8 pairs.
MERGE_BOMB = "\n".join(
    ["m0: &m0 {" + ", ".join(f"k{i}: v" for i in range(9)) + "}"]
    + [f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 9)}]}}" for n in range(1, 9)]
)
PRESETS_DIR = Path(scenarios.model.topology.__file__).parent.parent / "presets"


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def test_scenario_validate_refuses_an_alias_bomb_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(SCENARIO_BOMB)
    assert len(SCENARIO_BOMB) < 500
    code, _, err = invoke(["scenario", "validate", str(path)])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"error: {path}:{BOMB_LINE}: alias *a4 takes the document past"), line
    assert f"{MAX_YAML_VALUES:,} values with its aliases expanded" in line


def test_topology_option_refuses_an_alias_bomb_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY_BOMB)
    directory = tmp_path / "cc"
    code, _, err = invoke(["consortium", "init", "--preset", str(path), "--dir", str(directory)])
    assert code == 1
    line = one_line(err)
    assert f"{path}:{BOMB_LINE}: alias *a4 takes the document past" in line, line
    assert not directory.exists()


def test_scenario_validate_refuses_deep_nesting_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\ntopology: launch-2020\nsteps:\n  " + "[" * 100_000 + "\n")
    code, _, err = invoke(["scenario", "validate", str(path)])
    assert code == 2
    assert one_line(err).startswith(
        f"error: {path}:4: values nest more than {MAX_YAML_DEPTH} levels deep"
    )


def test_scenario_validate_refuses_a_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n# " + "x" * MAX_YAML_BYTES + "\n")
    code, _, err = invoke(["scenario", "validate", str(path)])
    assert code == 2
    assert f"larger than {MAX_YAML_BYTES:,} bytes" in one_line(err)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (TOPOLOGY_BOMB, BOMB_LINE, "alias *a4 takes the document past"),
        (MERGE_BOMB, 5, "alias *m3 takes the document past"),  # 19 values in m0, 2k in m3
        ("a: &a [1, *a]\n", 1, "alias *a refers to a value that contains it"),
        ("x:\n  " + "- " * (MAX_YAML_DEPTH + 5) + "1\n", 2, "values nest more than"),
        ("[" * 100_000, 1, f"values nest more than {MAX_YAML_DEPTH} levels deep"),
    ],
    ids=["alias-bomb", "merge-key-bomb", "self-reference", "block-nesting", "flow-nesting"],
)
def test_loader_refuses(text: str, line: int, problem: str) -> None:
    with pytest.raises(YamlLimitError) as refused:
        load_bounded(text)
    assert refused.value.line == line
    assert str(refused.value.problem).startswith(problem), refused.value.problem


def test_loader_limits_hold_at_the_loaders_callers(tmp_path: Path) -> None:
    scenario, topology = tmp_path / "s.yaml", tmp_path / "t.yaml"
    scenario.write_text(SCENARIO_BOMB)
    topology.write_text(TOPOLOGY_BOMB)
    with pytest.raises(ScenarioError) as bad_scenario:
        load_scenario(scenario)
    assert [p.line for p in bad_scenario.value.problems] == [BOMB_LINE]
    with pytest.raises(ValueError, match=f"{topology}:{BOMB_LINE}: alias"):
        load_topology(str(topology))


def test_anchors_within_the_budget_still_work() -> None:
    """Every shipped scenario and preset loads as plain ``yaml.safe_load`` reads it
    (launch-2020 uses ``<<: *cross-city`` merge keys)."""
    files = [*shipped_scenarios().values(), *PRESETS_DIR.glob("*.yaml")]
    assert any("<<: *" in p.read_text() for p in files)
    for path in files:
        text = read_yaml_text(path)
        assert load_bounded(text) == yaml.safe_load(text), path
