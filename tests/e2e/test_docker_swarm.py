"""The compose file ``creditchain compose`` writes, deployed with ``docker stack deploy``.

On a one-node Swarm (initialised by the test when the engine is in no swarm,
and left again at the end; an engine already in a swarm is used as it is):
a two-city topology's compose file — the same generator as the committed
``docker/compose.*.yaml`` — is deployed as a stack; the services seed their
ledgers, mirror each other over the stack's overlay network, and the host
CLI gets a cross-city report through the ports published in host mode,
which it verifies offline. The stack and its volumes are removed at the end.

Skipped, with the reason, when no Docker engine answers, the images cannot be
built, or the engine cannot start a swarm.
"""

from __future__ import annotations

import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenarios.cli import cli
from scenarios.containers.compose import generate
from scenarios.localnet import load_consortium, node_infos, sample_enterprises, verify_bundle_file
from tests.e2e.docker_support import build_images, docker_or_skip, free_port_base

with warnings.catch_warnings():
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.e2e, pytest.mark.docker]

TOPOLOGY = """\
name: swarm-lab
algorithm: sha256
institutions: 4
cities:
  - {code: sh, name: Shanghai, name_zh: 上海, admin_code: "310000", nodes: 1, share: 0.6,
     lat: 31.23, lon: 121.47}
  - {code: hz, name: Hangzhou, name_zh: 杭州, admin_code: "330100", nodes: 1, share: 0.4,
     lat: 30.27, lon: 120.16}
"""
STACK = "yrd-swarm-e2e"
DEPLOY_TIMEOUT_S = 240


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    docker_or_skip()
    build_images()
    state = _docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    joined_here = False
    if state != "active":
        init = _docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        if init.returncode != 0:
            init = _docker("swarm", "init")
        if init.returncode != 0:
            pytest.skip(f"this engine cannot start a one-node swarm: {init.stderr.strip()[-300:]}")
        joined_here = True
    try:
        yield
    finally:
        if joined_here:
            _docker("swarm", "leave", "--force")


def test_stack_deploy_runs_the_network(swarm: None, tmp_path: Path) -> None:
    topo = tmp_path / "swarm-lab.yaml"
    topo.write_text(TOPOLOGY, "utf-8")
    result = generate(
        str(topo),
        out=tmp_path / "compose.yaml",
        config_dir=tmp_path / "config",
        host_port_base=free_port_base(2),
        project=STACK,
        enterprises=1500,
    )
    cons = load_consortium(result.config_dir)
    deploy = _docker("stack", "deploy", "-c", str(result.compose_file), STACK, timeout=180)
    try:
        assert deploy.returncode == 0, deploy.stderr
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while True:
            infos = node_infos(cons)
            mirrored = all(
                i and all(p["seen_size"] and p["mirrored"] == p["seen_size"] for p in i["peers"])
                for i in infos.values()
            )
            if mirrored:
                break
            if time.monotonic() > deadline:
                services = _docker("stack", "ps", STACK, "--no-trunc").stdout
                pytest.fail(
                    f"the stack's nodes did not answer and mirror within {DEPLOY_TIMEOUT_S} s: "
                    f"{infos}\n{services}"
                )
            time.sleep(2)
        assert all(int(i["size"]) > 0 for i in infos.values() if i), (
            "the services did not seed their ledgers"
        )

        sample = sample_enterprises(cons, limit=1, min_cities=2)[0]
        bundle = tmp_path / "bundle.json"
        res = CliRunner().invoke(
            cli,
            [
                "query",
                "--dir",
                str(result.config_dir),
                "--institution",
                "bank-hz-001",
                "--uscc",
                sample.uscc,
                "--purpose",
                "pre_loan",
                "--out",
                str(bundle),
            ],
        )
        assert res.exit_code == 0, res.output
        summary = verify_bundle_file(bundle, cons.manifest_path, cons.root_public_key())
        assert not summary.partial
        assert summary.home_node == "hz-1"
    finally:
        _docker("stack", "rm", STACK)
        deadline = time.monotonic() + 60
        while _docker(
            "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"
        ).stdout.strip():
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        volumes = _docker("volume", "ls", "-q", "--filter", f"name={STACK}_").stdout.split()
        if volumes:
            _docker("volume", "rm", *volumes)
