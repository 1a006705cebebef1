"""Scenarios against containers: ``creditchain scenario run FILE --target docker``.

Skipped, with the reason, when no Docker engine answers or the images cannot
be built here (see ``test_docker.py``). Otherwise, on one container network
per topology (each in its own directory, compose project and free host ports,
always removed with ``down -v`` at the end):

* ``node-outage`` on launch-2020 (11 containers): a cross-city report,
  verified offline; a holder's container killed (SIGKILL) and the report
  partial, naming it; the container started again and the report complete;
* ``container-faults`` on the same network (reused): a holder paused, then
  disconnected from the network (a partition), each time a partial report
  naming it, and after unpause / reconnect a complete one again;
* ``rogue-node`` on its own five-node topology: a container's ledger is
  rewritten with its own key (copied out of its volume and back); every
  witness raises an alarm and refuses it; its old bundle proves the conflict.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenarios.cli import cli
from tests.e2e.test_docker import _build_images, _docker_or_skip

with warnings.catch_warnings():
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images() -> None:
    _docker_or_skip()
    _build_images()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("docker-scenarios")
    yield base
    # Whatever a failed run left: every compose project made under base goes, volumes included.
    for compose in base.glob("*/compose.yaml"):
        project = json.loads((compose.parent / "docker" / "consortium.json").read_text("utf-8"))["project"]
        from scenarios.compose import compose_command

        cmd = compose_command() or ["docker-compose"]
        subprocess.run([*cmd, "-p", project, "-f", str(compose), "down", "-v", "--timeout", "5"],
                       capture_output=True, timeout=300, check=False)
    shutil.rmtree(base, ignore_errors=True)


def _run(file: Path, directory: Path, out: Path, *extra: str) -> dict:
    res = CliRunner().invoke(cli, ["scenario", "run", str(file), "--target", "docker", "--dir", str(directory),
                                   "--out", str(out), *extra])
    results = out / "results.json"
    assert results.exists(), f"no results.json; output:\n{res.output}"
    data = json.loads(results.read_text("utf-8"))
    failed = [c for s in data["steps"] for c in s["expectations"] if not c["ok"]]
    assert res.exit_code == 0 and not failed, f"{file.name} failed: {failed}\n{res.output[-4000:]}"
    return data


def _actions(data: dict) -> list[str]:
    return [s["action"] for s in data["steps"]]


def test_node_outage_and_container_faults_on_launch_2020(images: None, workdir: Path) -> None:
    directory = workdir / "launch-2020"
    outage = _run(ROOT / "scenarios" / "files" / "node-outage.yaml", directory, workdir / "out-outage")
    assert outage["network"]["target"] == "docker" and outage["network"]["created"]
    assert "kill" in _actions(outage) and "restart" in _actions(outage)
    faults = _run(ROOT / "docker" / "scenarios" / "container-faults.yaml", directory, workdir / "out-faults",
                  "--down")
    assert faults["network"]["reused"], "the second scenario must reuse the running containers"
    assert {"pause", "partition", "restart"} <= set(_actions(faults))
    restarts = [s["detail"]["done"] for s in faults["steps"] if s["action"] == "restart"]
    assert restarts == ["unpaused", "reconnected"], restarts


def test_rogue_container_is_caught_by_its_witnesses(images: None, workdir: Path) -> None:
    data = _run(ROOT / "scenarios" / "files" / "rogue-node.yaml", workdir / "rogue", workdir / "out-rogue", "--down")
    rogue = next(s for s in data["steps"] if s["action"] == "rogue")
    assert rogue["detail"]["removed"] and rogue["detail"]["altered"]
    assert rogue["detail"]["new_size"] > rogue["detail"]["old_size"]
