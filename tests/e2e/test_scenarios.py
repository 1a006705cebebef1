"""Every shipped scenario, run by the runner against real node processes: all expectations pass
and the report directory is complete.

The scenarios on the launch-2020 topology share one network (started by the
first of them, reused by the rest, stopped at the end); oct-2021 and the rogue
node's lab topology get their own, stopped as soon as their scenario ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scenarios import localnet as net
from scenarios.scenario.runner import run_scenario
from scenarios.scenario.spec import load_scenario, shipped_scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Topology name → its consortium directory; every network started here is stopped at the end."""
    root = tmp_path_factory.mktemp("scenario-networks")
    dirs: dict[str, Path] = {}
    yield lambda topology: dirs.setdefault(topology, root / topology)
    for d in dirs.values():
        if net.consortium_exists(d) and net.running_nodes(d):
            net.down(d)


# The scenarios with their own network first (each stops it when done), then the ones that share
# launch-2020, so at most one network runs at a time.
ORDER = sorted(shipped_scenarios(), key=lambda n: (load_scenario(n).preset == "launch-2020", n))


@pytest.mark.parametrize("name", ORDER)
def test_shipped_scenario_passes(
    name: str, network_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = load_scenario(name)
    shared = spec.preset == "launch-2020"
    directory = network_dir(spec.topology.name)
    out = tmp_path / "report"
    result = run_scenario(spec, directory=directory, out=out, down_after=not shared)

    assert result.ok, "\n".join(c.sentence() for c in result.failures) + "".join(
        f"\nstep {s.id} failed: {s.error}" for s in result.steps if not s.ok
    )
    assert not result.cleanup  # the scenario left every node it stopped running again

    data = json.loads((out / "results.json").read_text("utf-8"))
    assert data["ok"] is True
    assert [s["id"] for s in data["steps"]] == [s.id for s in spec.steps]
    assert all(s["passed"] for s in data["steps"])
    expected_checks = sum(len(s.expect) for s in spec.steps)
    assert data["counts"]["expectations"] == expected_checks == data["counts"]["passed"]
    queries = [s for s in spec.steps if s.action == "query"]
    assert len(data["queries"]) == len(queries)
    for q in data["queries"]:
        assert q["seconds"] > 0
        if q["status"] == "granted":
            assert (out / "bundles" / f"{q['alias']}.json").stat().st_size > 0
    summary = (out / "summary.md").read_text("utf-8")
    assert summary.startswith(f"# Scenario {spec.name}: PASS")
    for step in spec.steps:
        assert f"| {step.id} |" in summary
    for chart in ("latency.png", "cities.png"):
        png = (out / chart).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 2000, chart
    if not shared:
        assert not net.running_nodes(directory)


def test_cli_run_says_the_network_is_still_up_and_down_stops_it(tmp_path: Path) -> None:
    from support.cli import invoke

    directory = tmp_path / "net"

    def run(out: str, *extra: str) -> str:
        args = ["scenario", "run", "unauthorized-query", "--dir", str(directory)]
        code, stdout, stderr = invoke([*args, "--out", str(tmp_path / out), *extra])
        assert code == 0, stdout + stderr
        return stdout

    try:
        first = run("r1")
        running = net.running_nodes(directory)
        assert running
        assert f"stop them with: creditchain down --dir {directory.resolve()}" in first
        assert f"{len(running)} node processes" in first
        second = run("r2", "--down")
        assert "still running" not in second
        assert not net.running_nodes(directory)
    finally:
        if net.consortium_exists(directory) and net.running_nodes(directory):
            net.down(directory)
