"""Helpers of the container end-to-end tests: skip reasons, image build, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.containers.compose import DEFAULT_IMAGE, compose_command

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600


def run(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def docker_or_skip() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip(
            "no docker client installed: the container end-to-end test needs a Docker engine"
        )
    try:
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("`docker info` did not answer within 30 s: no usable Docker engine")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"`docker info` failed, no Docker engine answers: {reason}")
    compose = compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    return compose


def image_exists(name: str) -> bool:
    return run(["docker", "image", "inspect", name], timeout=30).returncode == 0


def build_images() -> None:
    if os.environ.get("YRD_DOCKER_REUSE_IMAGE") == "1" and image_exists(DEFAULT_IMAGE):
        return
    suite = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            suite = line.partition("=")[2].strip('"')
    if not image_exists(f"yrd-credit-chain/base:{suite}") and os.geteuid() != 0:
        pytest.skip(
            f"the base image yrd-credit-chain/base:{suite} is missing and building it "
            "(debootstrap) needs root: run docker/build-images.sh as root first"
        )
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        done = run(
            ["bash", str(ROOT / "docker" / "build-images.sh")], timeout=BUILD_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"docker/build-images.sh took more than {BUILD_TIMEOUT_S} s")
    assert done.returncode == 0, (
        f"docker/build-images.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def free_port_base(count: int) -> int:
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
