"""A container network made by ``creditchain compose``, driven from the host.

:class:`DockerNetwork` wraps ``docker compose`` (v2) or ``docker-compose``
(v1) and ``docker`` for one compose project: bring it up and wait until every
node answers, and the faults the scenario runner injects into one node's
container — stop (SIGTERM), kill (SIGKILL), pause (cgroup freezer),
partition (disconnected from the project's network) — and bringing it back
(start, unpause, reconnect with its hostname as alias). It also copies a
stopped node's ledger out of its volume (``docker cp``) and back (a one-off
container as the node's user), which is
how a rogue node rewrites its history.

Every failure is a :class:`scenarios.errors.NetworkError` with one sentence.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from scenarios import localnet as net
from scenarios.containers.compose import CONTAINER_UID, compose_command

__all__ = ["DockerNetwork", "docker_available"]

LEDGER_FILES = ("ledger.db", "ledger.db-wal", "ledger.db-shm")


def docker_available() -> str | None:
    """None when a Docker engine and a compose front end answer; else why not (one sentence)."""
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return "no docker client is installed"
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        return f"`docker info` failed: {(info.stderr.strip().splitlines() or ['no output'])[-1]}"
    if compose_command() is None:
        return "neither `docker compose` nor `docker-compose` is installed"
    return None


class DockerNetwork:
    """One compose project's node containers (see the module docstring)."""

    def __init__(self, cons: net.Consortium) -> None:
        if cons.target != "docker":
            raise net.NetworkError(
                f"{cons.dir} is not a container network (made by `creditchain compose`)"
            )
        compose = compose_command()
        if compose is None:
            raise net.NetworkError("neither `docker compose` nor `docker-compose` is installed")
        if not cons.compose_file or not Path(cons.compose_file).exists():
            raise net.NetworkError(
                f"the compose file {cons.compose_file or '(none)'} of {cons.dir} is missing; "
                "re-run `creditchain compose`"
            )
        self.cons = cons
        self._compose = [*compose, "-p", cons.project, "-f", cons.compose_file]
        self._ids: dict[str, str] = {}
        self._network: str | None = None

    # --- plumbing ---------------------------------------------------------------------------
    def _run(self, args: Sequence[str], what: str, timeout_s: float = 120.0) -> str:
        try:
            done = subprocess.run(
                list(args), capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise net.NetworkError(f"{what} did not finish within {timeout_s:.0f} s") from None
        if done.returncode != 0:
            last = (
                done.stderr.strip().splitlines()
                or done.stdout.strip().splitlines()
                or ["no output"]
            )[-1]
            raise net.NetworkError(f"{what} failed: {last}")
        return done.stdout

    def compose(self, *args: str, timeout_s: float = 300.0) -> str:
        return self._run([*self._compose, *args], f"`compose {' '.join(args)}`", timeout_s)

    def container(self, node_id: str) -> str:
        """The id of ``node_id``'s container (created by ``up``)."""
        self.cons.node(node_id)  # NetworkError for an unknown node
        if node_id not in self._ids:
            cid = self.compose("ps", "-q", node_id, timeout_s=60).strip()
            if not cid:
                raise net.NetworkError(
                    f"{node_id} has no container; start the network first "
                    f"(`{' '.join(self._compose)} up -d`)"
                )
            self._ids[node_id] = cid.splitlines()[0]
        return self._ids[node_id]

    def network(self) -> str:
        """The project's private network (``<project>_yrd``), as docker names it."""
        if self._network is None:
            out = self._run(
                [
                    "docker",
                    "network",
                    "ls",
                    "--filter",
                    f"label=com.docker.compose.project={self.cons.project}",
                    "--format",
                    "{{.Name}}",
                ],
                "listing the project's networks",
            )
            names = [n for n in out.split() if n]
            if not names:
                raise net.NetworkError(
                    f"compose project {self.cons.project} has no network; is it up?"
                )
            self._network = names[0]
        return self._network

    def state(self, node_id: str) -> dict[str, object]:
        """Docker's view of the container: status, paused, and the networks it is attached to."""
        out = self._run(
            [
                "docker",
                "inspect",
                "--format",
                "{{json .State}}|{{json .NetworkSettings.Networks}}",
                self.container(node_id),
            ],
            f"inspecting {node_id}'s container",
            60,
        )
        state_raw, _, nets_raw = out.strip().partition("|")
        state = json.loads(state_raw)
        nets = json.loads(nets_raw) or {}
        return {
            "status": state.get("Status"),
            "running": bool(state.get("Running")),
            "paused": bool(state.get("Paused")),
            "networks": sorted(nets),
        }

    # --- the network ----------------------------------------------------------------------
    def up(self, timeout_s: float = 300.0) -> float:
        """``up -d``, then wait until every node answers and registers its institutions.

        Returns the seconds it took.
        """
        t0 = time.monotonic()
        self.compose("up", "-d", timeout_s=timeout_s)
        self.wait_answering(self.cons.node_ids, max(1.0, timeout_s - (time.monotonic() - t0)))
        net.register_institutions(self.cons)
        return time.monotonic() - t0

    def down(self, *, volumes: bool = True) -> None:
        self.compose("down", *(["-v"] if volumes else []), "--remove-orphans", timeout_s=300)
        self._ids.clear()
        self._network = None

    def wait_answering(self, node_ids: Sequence[str], timeout_s: float) -> float:
        """Until every node in ``node_ids`` answers ``/v1/info`` from the host; returns seconds."""
        t0 = time.monotonic()
        while True:
            infos = net.node_infos(self.cons, node_ids)
            silent = [n for n in node_ids if not infos.get(n)]
            if not silent:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout_s:
                raise net.NetworkError(
                    f"{len(silent)} node containers did not answer within {timeout_s:.0f} s: "
                    f"{', '.join(silent)} (see `docker logs`)"
                )
            time.sleep(1.0)

    def running_nodes(self) -> set[str]:
        """Nodes whose container runs, is not paused and is attached to the project network."""
        out = set()
        for node_id in self.cons.node_ids:
            try:
                st = self.state(node_id)
            except net.NetworkError:
                continue
            if st["running"] and not st["paused"] and st["networks"]:
                out.add(node_id)
        return out

    # --- faults -----------------------------------------------------------------------------
    def stop(self, node_id: str) -> None:
        """SIGTERM, then SIGKILL after 10 s (``docker stop``)."""
        self._run(
            ["docker", "stop", "-t", "10", self.container(node_id)], f"stopping {node_id}", 60
        )

    def kill(self, node_id: str) -> None:
        """SIGKILL (``docker kill``); ``restart: unless-stopped`` does not bring it back."""
        self._run(["docker", "kill", self.container(node_id)], f"killing {node_id}", 60)

    def pause(self, node_id: str) -> None:
        """Freeze every process of the container: it holds its connections but answers nothing."""
        self._run(["docker", "pause", self.container(node_id)], f"pausing {node_id}", 60)

    def partition(self, node_id: str) -> None:
        """Disconnect the container from the project network: no peer (nor the host) reaches it."""
        self._run(
            ["docker", "network", "disconnect", self.network(), self.container(node_id)],
            f"disconnecting {node_id} from {self.network()}",
            60,
        )

    def recover(self, node_id: str, timeout_s: float = 180.0) -> str:
        """Undo whatever fault the node is in (start, unpause, reconnect); wait until it answers.

        Returns what was done ("started", "unpaused", "reconnected" or "" when it was running).
        """
        st = self.state(node_id)
        done = ""
        if st["paused"]:
            self._run(["docker", "unpause", self.container(node_id)], f"unpausing {node_id}", 60)
            done = "unpaused"
        elif not st["running"]:
            self._run(["docker", "start", self.container(node_id)], f"starting {node_id}", 120)
            done = "started"
        if not st["networks"]:
            self._run(
                [
                    "docker",
                    "network",
                    "connect",
                    "--alias",
                    node_id,
                    self.network(),
                    self.container(node_id),
                ],
                f"reconnecting {node_id} to {self.network()}",
                60,
            )
            done = "reconnected" if not done else f"{done}, reconnected"
        self.wait_answering([node_id], timeout_s)
        return done

    # --- the ledger in the volume ---------------------------------------------------------
    def copy_ledger_out(self, node_id: str, dest: Path) -> Path:
        """Copy a stopped node's ledger files into ``dest``; returns ``dest/ledger.db``."""
        if self.state(node_id)["running"]:
            raise net.NetworkError(f"{node_id} is running; stop it before copying its ledger")
        dest.mkdir(parents=True, exist_ok=True)
        cid = self.container(node_id)
        for name in LEDGER_FILES:
            try:
                self._run(
                    ["docker", "cp", f"{cid}:/data/{name}", str(dest / name)],
                    f"copying {name} out of {node_id}",
                    120,
                )
            except net.NetworkError:
                if name == "ledger.db":
                    raise
        return dest / "ledger.db"

    def copy_ledger_in(self, node_id: str, src: Path) -> None:
        """Replace a stopped node's ledger with the files in ``src``.

        A one-off container of the node's image, running as the node's user with the
        node's volumes and ``src`` mounted read-only, removes the old ledger files
        (a stale ``-wal`` must never meet the new file) and copies the new ones in,
        so they belong to the container user. (``docker cp`` would make them root's,
        and ``docker cp -a`` needs the user in the host's passwd database.)
        """
        import os

        if self.state(node_id)["running"]:
            raise net.NetworkError(f"{node_id} is running; stop it before replacing its ledger")
        if not (src / "ledger.db").exists():
            raise net.NetworkError(f"{src / 'ledger.db'} does not exist")
        os.chmod(src, 0o755)
        present = [name for name in LEDGER_FILES if (src / name).exists()]
        for name in present:
            os.chmod(src / name, 0o644)
        cid = self.container(node_id)
        image = self._run(
            ["docker", "inspect", "--format", "{{.Config.Image}}", cid],
            f"inspecting {node_id}'s container",
            60,
        ).strip()
        script = (
            "rm -f "
            + " ".join(f"/data/{n}" for n in LEDGER_FILES)
            + " && "
            + " && ".join(f"cp /replacement/{n} /data/{n}" for n in present)
        )
        self._run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                f"{CONTAINER_UID}:{CONTAINER_UID}",
                "--volumes-from",
                cid,
                "-v",
                f"{src.resolve()}:/replacement:ro",
                "--entrypoint",
                "bash",
                image,
                "-c",
                script,
            ],
            f"copying the new ledger into {node_id}'s volume",
            180,
        )
