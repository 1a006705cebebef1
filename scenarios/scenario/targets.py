"""Fault targets: stop, kill, pause and restart a node, on local processes or on containers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from scenarios import localnet as net
from scenarios.errors import StepFailedError
from scenarios.scenario.setup import (
    start_node,
    stop_node,
)


# --- targets: how faults reach a node ----------------------------------------------------------------
class LocalTarget:
    """Node processes started by the launcher: signals, and the ledger file in place."""

    name = "local"

    def __init__(self, cons: net.Consortium, startup_s: float) -> None:
        self.cons = cons
        self.startup_s = startup_s

    def running(self) -> set[str]:
        return set(net.running_nodes(self.cons.dir))

    def fault(self, node: str, kind: str) -> dict[str, Any]:
        if kind == "partition":
            raise StepFailedError(
                "partition needs --target docker: local nodes share the host's loopback, so there is "
                "no network to cut them off from"
            )
        if kind == "pause":
            pid = net.running_nodes(self.cons.dir).get(node)
            if pid is None:
                raise StepFailedError(f"{node} is not running")
            os.kill(pid, signal.SIGSTOP)
            return {"node": node, "signal": "SIGSTOP", "pid": pid}
        sig = signal.SIGKILL if kind == "kill" else signal.SIGTERM
        stop_node(self.cons, node, sig)
        return {"node": node, "signal": sig.name}

    def recover(self, node: str) -> dict[str, Any]:
        pid = net.running_nodes(self.cons.dir).get(node)
        if pid is not None:
            import psutil

            with suppress(psutil.Error):
                if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                    os.kill(pid, signal.SIGCONT)
                    net.wait_healthy(self.cons, {node: pid}, self.startup_s)
                    return {"node": node, "pid": pid, "done": "continued"}
            raise StepFailedError(f"{node} is running; stop, kill or pause it first")
        return {
            "node": node,
            "pid": start_node(self.cons, node, self.startup_s),
            "done": "started",
        }

    def rewrite(self, node: str, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        if node in self.running():
            stop_node(self.cons, node, signal.SIGTERM)
        try:
            return fn(self.cons.ledger_path(node))
        finally:
            start_node(self.cons, node, self.startup_s)

    def down(self) -> None:
        net.down(self.cons.dir)


class DockerTarget:
    """Node containers of a compose project: docker stop/kill/pause/network disconnect."""

    name = "docker"

    def __init__(self, cons: net.Consortium, startup_s: float, out: Path) -> None:
        from scenarios.containers.docker import DockerNetwork

        self.cons = cons
        self.startup_s = startup_s
        self.out = out
        self.docker = DockerNetwork(cons)

    def running(self) -> set[str]:
        return self.docker.running_nodes()

    def fault(self, node: str, kind: str) -> dict[str, Any]:
        if node not in self.running():
            raise StepFailedError(f"{node} is not running (or already paused or cut off)")
        getattr(self.docker, kind)(node)
        return {"node": node, "docker": kind}

    def recover(self, node: str) -> dict[str, Any]:
        if node in self.running():
            raise StepFailedError(f"{node} is running; stop, kill, pause or partition it first")
        return {"node": node, "done": self.docker.recover(node, self.startup_s)}

    def rewrite(self, node: str, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Stop the container, rewrite a copy of its ledger on the host, copy it back, start it."""
        if node in self.running():
            self.docker.stop(node)
        work = self.out / f"rogue-{node}"
        try:
            path = self.docker.copy_ledger_out(node, work)
            detail = fn(path)
            self.docker.copy_ledger_in(node, work)
            return detail
        finally:
            self.docker.recover(node, self.startup_s)

    def down(self) -> None:
        self.docker.down()
