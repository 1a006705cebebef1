"""End to end in real containers: the launch-2020 network under docker compose.

Skipped, with the reason, when no Docker engine answers (``docker info``
fails), when neither ``docker compose`` nor ``docker-compose`` is installed, or
when the air-gapped base image is missing and this is not root (building it
needs debootstrap). Otherwise:

1. builds the images with ``docker/build-images.sh`` (incremental: the base is
   reused, the wheelhouse and ``docker build`` skip unchanged work; set
   ``YRD_DOCKER_REUSE_IMAGE=1`` to use an existing node image as it is);
2. generates keys, manifest, settings and a compose file for ``launch-2020`` in
   a temporary directory, on free loopback ports and a project name of its
   own, so a network a developer has running is never touched;
3. brings the 11 containers up, waits until every one is healthy, checks every
   node's ``/v1/info`` and that every node mirrors all ten peers;
4. kills one container, checks it is down, starts it again, waits until it is
   healthy and checks its ledger survived in its volume;
5. always ends with ``down -v`` (containers, network and volumes removed).

The whole test is bounded (about 10 minutes at most, far less when the images
exist). Docker engine 20.10 with fuse-overlayfs on 2 cores was measured at
~20 s for ``up -d`` and ~50 s until all 11 were healthy on a busy host.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarios.compose import DEFAULT_IMAGE, compose_command, generate

# `docker` is registered in pyproject.toml's pytest markers; until it is, the
# unknown-mark warning (an error under filterwarnings=error) is silenced here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
PRESET = "launch-2020"
NODES = 11
KILLED = "hz-1"

BUILD_TIMEOUT_S = 480
UP_TIMEOUT_S = 180
HEALTHY_TIMEOUT_S = 240
MIRROR_TIMEOUT_S = 90
RESTART_TIMEOUT_S = 120
DOWN_TIMEOUT_S = 120


def _run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _docker_or_skip() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker client installed: the container end-to-end test needs a Docker engine")
    try:
        info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("`docker info` did not answer within 30 s: no usable Docker engine")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"`docker info` failed, no Docker engine answers: {reason}")
    compose = compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    return compose


def _image_exists(name: str) -> bool:
    return _run(["docker", "image", "inspect", name], timeout=30).returncode == 0


def _build_images() -> None:
    if os.environ.get("YRD_DOCKER_REUSE_IMAGE") == "1" and _image_exists(DEFAULT_IMAGE):
        return
    suite = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            suite = line.partition("=")[2].strip('"')
    if not _image_exists(f"yrd-credit-chain/base:{suite}") and os.geteuid() != 0:
        pytest.skip(f"the base image yrd-credit-chain/base:{suite} is missing and building it "
                    "(debootstrap) needs root: run docker/build-images.sh as root first")
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        done = _run(["bash", str(ROOT / "docker" / "build-images.sh")], timeout=BUILD_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"docker/build-images.sh took more than {BUILD_TIMEOUT_S} s")
    assert done.returncode == 0, f"docker/build-images.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _free_port_base(count: int) -> int:
    """A base such that base+1 .. base+count are free on 127.0.0.1 now."""
    for base in range(28100, 60000, 100):
        socks = []
        try:
            for port in range(base + 1, base + count + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of loopback ports")


@dataclass
class Network:
    compose: list[str]
    project: str
    compose_file: Path
    urls: dict[str, str]
    config_dir: Path

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return _run([*self.compose, "-p", self.project, "-f", str(self.compose_file), *args], timeout=timeout)

    def containers(self) -> dict[str, str]:
        """node id (compose service) → container id, stopped ones included."""
        done = _run(["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.project}"],
                    timeout=30)
        ids = done.stdout.split()
        if not ids:
            return {}
        inspected = json.loads(_run(["docker", "inspect", *ids], timeout=30).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c["Id"] for c in inspected}

    def states(self) -> dict[str, dict[str, Any]]:
        """node id → {running, health} of each container."""
        ids = self.containers()
        if not ids:
            return {}
        inspected = json.loads(_run(["docker", "inspect", *ids.values()], timeout=30).stdout)
        by_id = {c["Id"]: c["State"] for c in inspected}
        return {node: {"running": by_id[cid]["Running"],
                       "health": (by_id[cid].get("Health") or {}).get("Status")} for node, cid in ids.items()}

    def logs(self) -> str:
        done = self.run("logs", "--tail", "15", "--no-color", timeout=60)
        return done.stdout[-6000:]


def _wait(what: str, check: Callable[[], object], timeout_s: float, net: Network, interval_s: float = 2.0) -> object:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"{what}: not reached within {timeout_s:.0f} s; states {net.states()}\nlogs:\n{net.logs()}")


def _info(url: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{url}/v1/info", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    compose = _docker_or_skip()
    t0 = time.monotonic()
    _build_images()
    build_s = time.monotonic() - t0
    workdir = tmp_path_factory.mktemp("docker-e2e")
    project = f"yrd-e2e-{uuid.uuid4().hex[:8]}"
    result = generate(PRESET, out=workdir / "compose.yaml", config_dir=workdir / "config",
                      host_port_base=_free_port_base(NODES), project=project)
    net = Network(compose, project, result.compose_file, result.host_urls, result.config_dir)
    try:
        t1 = time.monotonic()
        up = net.run("up", "-d", timeout=UP_TIMEOUT_S)
        assert up.returncode == 0, f"compose up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        up_s = time.monotonic() - t1
        _wait(f"all {NODES} containers healthy",
              lambda: (lambda s: len(s) == NODES and all(v["health"] == "healthy" for v in s.values()))(net.states()),
              HEALTHY_TIMEOUT_S, net)
        print(f"\nimages {build_s:.1f} s, up -d {up_s:.1f} s, all healthy after {time.monotonic() - t1:.1f} s")
        yield net
    finally:
        down = net.run("down", "-v", "--timeout", "5", timeout=DOWN_TIMEOUT_S)
        shutil.rmtree(workdir / "config", ignore_errors=True)
        assert down.returncode == 0, f"compose down -v failed:\n{down.stderr[-3000:]}"
        leftover = _run(["docker", "volume", "ls", "-q", "--filter", f"name={project}"], timeout=30).stdout.split()
        assert not leftover, f"volumes left behind by down -v: {leftover}"


def test_every_node_answers_and_mirrors_its_peers(network: Network) -> None:
    assert set(network.containers()) == set(network.urls)
    for node_id, url in network.urls.items():
        info = _info(url)
        assert info is not None, f"{node_id}: GET {url}/v1/info failed"
        assert info["node_id"] == node_id
        assert info["url"] == f"http://{node_id}:8000"
        peers = info["peers"]
        assert isinstance(peers, list) and len(peers) == NODES - 1

    def all_mirrored() -> bool:
        for url in network.urls.values():
            info = _info(url)
            if info is None or any(p["seen_size"] is None for p in info["peers"]):
                return False
        return True

    _wait("every node has accepted a checkpoint of every peer", all_mirrored, MIRROR_TIMEOUT_S, network)


def test_killed_node_comes_back_with_its_ledger(network: Network) -> None:
    url = network.urls[KILLED]
    before = _info(url)
    assert before is not None
    container = network.containers()[KILLED]

    killed = _run(["docker", "kill", container], timeout=60)
    assert killed.returncode == 0, killed.stderr
    _wait(f"{KILLED} down", lambda: not network.states()[KILLED]["running"], 30, network, interval_s=1)
    time.sleep(3)  # restart policy unless-stopped: a killed container must stay down
    assert network.states()[KILLED]["running"] is False
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/v1/health", timeout=3)
    others = [u for n, u in network.urls.items() if n != KILLED]
    assert all(_info(u) is not None for u in others[:3]), "the other nodes must keep answering"

    started = _run(["docker", "start", container], timeout=60)
    assert started.returncode == 0, started.stderr
    _wait(f"{KILLED} healthy again", lambda: network.states()[KILLED]["health"] == "healthy",
          RESTART_TIMEOUT_S, network)
    after = _info(url)
    assert after is not None
    # Same identity and a ledger that kept (at least) everything it had: the volume survived.
    assert after["note_verifier"] == before["note_verifier"]
    assert int(after["size"]) >= int(before["size"])
    if after["size"] == before["size"]:
        assert after["root"] == before["root"]


def test_host_cli_gets_a_verified_cross_city_report(network: Network, tmp_path: Path) -> None:
    """`creditchain query --dir <config>` from the host: signed for http://<node>:8000, sent to the
    published port; the containers seeded their ledgers themselves on first start."""
    from click.testing import CliRunner

    from scenarios.cli import cli
    from scenarios.network import load_consortium, sample_enterprises, verify_bundle_file

    cons = load_consortium(network.config_dir)
    assert cons.target == "docker" and cons.url("sh-1") != cons.public_url("sh-1")
    samples = sample_enterprises(cons, limit=3, min_cities=2)
    assert samples, "the seeded synthetic data has no enterprise held in two cities"
    runner = CliRunner()
    for sample in samples:
        inst = next(i for i in cons.institutions
                    if cons.topology.city_of_node(i.home_node).code != sample.city and "pre_loan" in i.purposes)
        bundle_path = tmp_path / f"{sample.uscc}.json"
        res = runner.invoke(cli, ["query", "--dir", str(network.config_dir), "--institution", inst.institution_id,
                                  "--uscc", sample.uscc, "--purpose", "pre_loan", "--out", str(bundle_path)])
        assert res.exit_code == 0, res.output
        summary = verify_bundle_file(bundle_path, cons.manifest_path, cons.root_public_key())
        assert not summary.partial, summary.missing
        cities = {cons.topology.city_of_node(n).code for n, count in summary.holders.items() if count}
        if len(cities) >= 2:
            break
    else:
        pytest.fail(f"no report of {len(samples)} sampled enterprises held records in two cities")
    verified = runner.invoke(cli, ["report", "verify", str(bundle_path), "--manifest", str(cons.manifest_path)])
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("valid: report"), verified.output
