"""End to end in real containers: scenarios, faults and the host CLI against compose networks.

Skipped, with the reason, when no Docker engine answers (``docker info``
fails), when neither ``docker compose`` nor ``docker-compose`` is installed, or
when the air-gapped base image is missing and this is not root (building it
needs debootstrap). Otherwise:

1. builds the images with ``docker/build-images.sh`` (incremental: the base is
   reused, the wheelhouse and ``docker build`` skip unchanged work; set
   ``YRD_DOCKER_REUSE_IMAGE=1`` to use an existing node image as it is);
2. runs ``creditchain scenario run scenarios/files/node-outage.yaml --target
   docker``: a compose file and consortium generated in a temporary
   directory (free host ports, a project name of its own, so a network a
   developer runs is never touched), 11 containers that seed their own
   ledgers, a cross-city report verified offline, a holder's container
   killed and the report partial naming it, the container started again on
   its volume and the report complete;
3. on that network: every container healthy (Docker's health check), every
   node mirroring its ten peers, and ``creditchain query --dir`` from the
   host (signed for ``http://<node>:8000``, sent to the published port)
   getting a verified report with records from two cities;
4. ``docker/scenarios/container-faults.yaml`` on the same network: a holder
   paused, then disconnected from the network (a partition), each time a
   partial report naming it, and complete again after unpause and reconnect;
5. ``rogue-node`` on its own five-node network: a ledger rewritten with the
   node's own key in its volume; every witness raises an alarm and refuses it;
6. always ends with ``down -v`` of every project it made.

Docker Engine 20.10 with fuse-overlayfs on 2 cores: ~10 s for ``up -d``,
~60 s until 11 containers answer on a busy host.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from scenarios.cli import cli
from scenarios.containers.compose import compose_command
from scenarios.localnet import Consortium, load_consortium, sample_enterprises, verify_bundle_file
from tests.e2e.docker_support import ROOT, build_images, docker_or_skip, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.e2e, pytest.mark.docker]

NODES = 11
HEALTHY_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    docker_or_skip()
    build_images()
    base = tmp_path_factory.mktemp("docker-e2e")
    yield base
    # Every compose project made under base goes, volumes included, whatever the tests left.
    cmd = compose_command() or ["docker-compose"]
    for compose in base.glob("*/compose.yaml"):
        project = json.loads((compose.parent / "docker" / "consortium.json").read_text("utf-8"))[
            "project"
        ]
        down = run(
            [*cmd, "-p", project, "-f", str(compose), "down", "-v", "--timeout", "5"], timeout=300
        )
        assert down.returncode == 0, f"compose down -v failed:\n{down.stderr[-3000:]}"
        leftover = run(
            ["docker", "volume", "ls", "-q", "--filter", f"name={project}_"], timeout=30
        ).stdout.split()
        assert not leftover, f"volumes left behind by down -v: {leftover}"
    shutil.rmtree(base, ignore_errors=True)


def _scenario(file: Path, directory: Path, out: Path, *extra: str) -> dict[str, Any]:
    res = CliRunner().invoke(
        cli,
        [
            "scenario",
            "run",
            str(file),
            "--target",
            "docker",
            "--dir",
            str(directory),
            "--out",
            str(out),
            *extra,
        ],
    )
    results = out / "results.json"
    assert results.exists(), f"no results.json; output:\n{res.output}"
    data: dict[str, Any] = json.loads(results.read_text("utf-8"))
    failed = [c for s in data["steps"] for c in s["expectations"] if not c["ok"]]
    assert res.exit_code == 0 and not failed, f"{file.name} failed: {failed}\n{res.output[-4000:]}"
    return data


def _actions(data: dict[str, Any]) -> list[str]:
    return [s["action"] for s in data["steps"]]


@pytest.fixture(scope="module")
def outage(workdir: Path) -> dict[str, Any]:
    """node-outage on containers; leaves the launch-2020 network running for the next tests."""
    return _scenario(
        ROOT / "scenarios" / "files" / "node-outage.yaml",
        workdir / "launch-2020",
        workdir / "out-outage",
    )


@pytest.fixture(scope="module")
def cons(outage: dict[str, Any], workdir: Path) -> Consortium:
    return load_consortium(workdir / "launch-2020" / "docker")


def test_node_outage_scenario_passes_on_containers(outage: dict[str, Any]) -> None:
    assert outage["network"]["target"] == "docker" and outage["network"]["created"]
    assert len(outage["network"]["nodes"]) == NODES
    assert {"kill", "restart", "query"} <= set(_actions(outage))
    restart = next(s for s in outage["steps"] if s["action"] == "restart")
    assert restart["detail"]["done"] == "started"


def test_every_container_is_healthy_and_mirrors_its_peers(cons: Consortium) -> None:
    ids = run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={cons.project}"], 30
    ).stdout.split()
    assert len(ids) == NODES

    def health() -> dict[str, str | None]:
        inspected = json.loads(run(["docker", "inspect", *ids], 30).stdout)
        return {
            c["Config"]["Labels"]["com.docker.compose.service"]: (
                c["State"].get("Health") or {}
            ).get("Status")
            for c in inspected
        }

    # A container the scenario restarted is "starting" until its first probe passes (every 5 s).
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while (states := health()) != dict.fromkeys(
        cons.node_ids, "healthy"
    ) and time.monotonic() < deadline:
        time.sleep(2)
    assert states == dict.fromkeys(cons.node_ids, "healthy")
    for node_id in cons.node_ids:
        info = httpx.get(f"{cons.url(node_id)}/v1/info", timeout=10).json()
        assert info["node_id"] == node_id and info["url"] == f"http://{node_id}:8000"
        assert int(info["size"]) > 0, f"{node_id} did not seed its ledger"
        assert len(info["peers"]) == NODES - 1
        assert all(p["seen_size"] for p in info["peers"]), f"{node_id} has not mirrored every peer"


def test_host_cli_gets_a_verified_cross_city_report(cons: Consortium, tmp_path: Path) -> None:
    """`creditchain query --dir <config>` from the host: signed for http://<node>:8000, sent to the
    published port; the containers seeded their ledgers themselves on first start."""
    assert cons.target == "docker" and cons.url("sh-1") != cons.public_url("sh-1")
    samples = sample_enterprises(cons, limit=3, min_cities=2)
    assert samples, "the seeded synthetic data has no enterprise held in two cities"
    runner = CliRunner()
    for sample in samples:
        inst = next(
            i
            for i in cons.institutions
            if cons.topology.city_of_node(i.home_node).code != sample.city
            and "pre_loan" in i.purposes
        )
        bundle_path = tmp_path / f"{sample.uscc}.json"
        res = runner.invoke(
            cli,
            [
                "query",
                "--dir",
                str(cons.dir),
                "--institution",
                inst.institution_id,
                "--uscc",
                sample.uscc,
                "--purpose",
                "pre_loan",
                "--out",
                str(bundle_path),
            ],
        )
        assert res.exit_code == 0, res.output
        summary = verify_bundle_file(bundle_path, cons.manifest_path, cons.root_public_key())
        assert not summary.partial, summary.missing
        cities = {
            cons.topology.city_of_node(n).code for n, count in summary.holders.items() if count
        }
        if len(cities) >= 2:
            break
    else:
        pytest.fail(f"no report of {len(samples)} sampled enterprises held records in two cities")
    verified = runner.invoke(
        cli, ["report", "verify", str(bundle_path), "--manifest", str(cons.manifest_path)]
    )
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("valid: report"), verified.output


def test_paused_and_partitioned_holders_make_partial_reports_until_healed(
    cons: Consortium, workdir: Path
) -> None:
    faults = _scenario(
        ROOT / "docker" / "scenarios" / "container-faults.yaml",
        workdir / "launch-2020",
        workdir / "out-faults",
    )
    assert faults["network"]["reused"], "the second scenario must reuse the running containers"
    assert {"pause", "partition", "restart"} <= set(_actions(faults))
    restarts = [s["detail"]["done"] for s in faults["steps"] if s["action"] == "restart"]
    assert restarts == ["unpaused", "reconnected"], restarts


def test_rogue_container_is_caught_by_its_witnesses(workdir: Path) -> None:
    data = _scenario(
        ROOT / "scenarios" / "files" / "rogue-node.yaml",
        workdir / "rogue",
        workdir / "out-rogue",
        "--down",
    )
    rogue = next(s for s in data["steps"] if s["action"] == "rogue")
    assert rogue["detail"]["removed"] and rogue["detail"]["altered"]
    assert rogue["detail"]["new_size"] > rogue["detail"]["old_size"]
