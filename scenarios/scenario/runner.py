"""Run a scenario against a network, check every expectation, write its report.

:func:`run_scenario` starts the scenario's network in a consortium directory
— local processes, or with ``target="docker"`` one container per node made by
``creditchain compose`` — (or reuses the one running there when its topology
is the same), registers
the scenario's extra institutions, then runs the steps in order. Each step's
action is timed; its expectations are checked right after it (``within: N``
re-checks the non-query ones until they hold or N seconds pass). A step whose
action fails is recorded as failed, its expectations as not met, and the run
goes on. :mod:`scenarios.scenario.report` turns the result into ``results.json``,
``summary.md`` and charts.

Invariants:

* record ids a scenario ingests are made unique per run (``<id>.r<tag>``), so a
  scenario can run again on the same network; expectations use the ids as
  written in the file and the runner maps them;
* nodes a run stopped or killed and did not restart are restarted when the
  run ends, so a shared network is left whole (a rogue node's rewritten
  history, by design, stays);
* every report bundle is verified offline against the manifest checked with
  the consortium root key, and saved under ``bundles/`` of the report directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    CorrectionDraft,
    CorrectionEntry,
    Ledger,
    LedgerError,
    NoteSigner,
    ProofError,
    RecordDraft,
    RecordEntry,
    leaf_hash,
    make_uscc,
    parse_entry,
    utc_now,
    verify_consistency,
    verify_inclusion,
)
from ledger.uscc import SERIAL_LIMIT
from node.bundle import verify_bundle, verify_checkpoint_note
from node.consortium import Manifest, load_manifest
from node.errors import BundleError, ConfigError, NodeError
from node.keys import generate_key_file, load_private_key, public_b64
from scenarios import localnet as net
from scenarios.errors import RunnerError, StepFailedError
from scenarios.model.workloads import SyntheticData
from scenarios.scenario.spec import QUERY_EXPECTATIONS, Scenario, Step, parse_time_offset

__all__ = [
    "Check",
    "QueryOutcome",
    "RunResult",
    "RunnerError",
    "StepResult",
    "default_dir",
    "ensure_docker_network",
    "ensure_network",
    "open_alarms",
    "rewrite_history",
    "run_scenario",
    "wait_mirrored",
]

PAD_SOURCE = "rogue-pad"


# --- results ---------------------------------------------------------------------------------
@dataclass
class Check:
    step: str
    key: str
    expected: Any
    actual: Any
    ok: bool
    message: str = ""
    line: int | None = None

    def sentence(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        what = self.message or f"expected {self.expected!r}, got {self.actual!r}"
        return f"step {self.step}: {self.key}{where}: {what}"


@dataclass
class QueryOutcome:
    alias: str
    step: str
    institution: str
    home_node: str
    enterprise: str
    uscc: str
    purpose: str
    authorization_id: str
    status: str = "error"  # granted | denied | error
    http_status: int | None = None
    reason: str | None = None
    detail: str | None = None
    query_id: str | None = None
    seconds: float = 0.0
    partial: bool | None = None
    missing: list[dict[str, str]] = field(default_factory=list)
    holders: dict[str, int] = field(default_factory=dict)  # node → records it answered with
    cities: dict[str, str] = field(default_factory=dict)  # city → home | answered | missing
    current: list[str] = field(default_factory=list)  # record ids in the current view
    history: list[str] = field(default_factory=list)  # record ids in the history
    bundle_path: str | None = None
    bundle_verified: bool | None = None
    bundle_error: str | None = None


@dataclass
class StepResult:
    index: int
    id: str
    action: str
    line: int | None
    note: str | None
    started_at: str = ""
    seconds: float = 0.0
    ok: bool = True
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    traceback: str | None = None

    @property
    def passed(self) -> bool:
        return self.ok and all(c.ok for c in self.checks)


@dataclass
class RunResult:
    scenario: Scenario
    out_dir: Path
    network: dict[str, Any]
    run_tag: str
    started_at: str
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    queries: list[QueryOutcome] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.steps for c in s.checks]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and all(s.ok for s in self.steps)


# --- the network -------------------------------------------------------------------------------
def default_dir(spec: Scenario) -> Path:
    """``.creditchain`` when it holds (or may hold) this topology, else ``.creditchain-<topology>``."""
    base = net.DEFAULT_DIR
    if not net.consortium_exists(base):
        return base if spec.preset == "launch-2020" else Path(f"{base}-{spec.topology.name}")
    try:
        same = net.load_consortium(base).topology == spec.topology
    except net.NetworkError:
        same = False
    return base if same else Path(f"{base}-{spec.topology.name}")


def _expand(cons: net.Consortium, name: str) -> list[str]:
    if name in cons.node_ids:
        return [name]
    return [n for n in cons.node_ids if cons.topology.city_of_node(n).code == name]


def _apply_latency(cons: net.Consortium, spec: Scenario) -> list[str]:
    """Write the scenario's latency overrides into node settings; returns the nodes changed."""
    wanted: dict[str, dict[str, float]] = {}
    for o in spec.latency:
        for a in _expand(cons, o.a):
            for b in _expand(cons, o.b):
                if a != b:
                    wanted.setdefault(a, {})[b] = o.ms
                    wanted.setdefault(b, {})[a] = o.ms
    changed = []
    for node_id, links in wanted.items():
        path = cons.settings_path(node_id)
        settings = json.loads(path.read_text("utf-8"))
        lat = settings.setdefault("latency_ms", {})
        if all(float(lat.get(p, -1)) == ms for p, ms in links.items()):
            continue
        lat.update(links)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
        os.replace(tmp, path)
        changed.append(node_id)
    return changed


def _start_node(cons: net.Consortium, node_id: str, timeout_s: float) -> int:
    """Start one stopped node on its kept data; wait until it answers."""
    if not net.port_free(cons.ports[node_id]):
        raise StepFailedError(
            f"port {cons.ports[node_id]} of {node_id} is in use by another program"
        )
    pid = _spawn(cons, node_id)
    try:
        net.wait_healthy(cons, {node_id: pid}, timeout_s)
    except net.NetworkError as exc:
        raise StepFailedError(str(exc)) from exc
    return pid


def _stop_node(cons: net.Consortium, node_id: str, sig: int) -> None:
    try:
        net.kill_node(cons, node_id, sig)
    except net.NetworkError as exc:
        raise StepFailedError(str(exc)) from exc
    if node_id in net.running_nodes(cons.dir):
        raise StepFailedError(f"{node_id} did not stop")


def wait_mirrored(
    cons: net.Consortium, timeout_s: float, *, node: str | None = None, size: int | None = None
) -> float:
    """Until every answering node has mirrored every answering peer it does not refuse; returns seconds.

    Unlike :func:`scenarios.localnet.network.wait_mirrored`, links to a refused peer (an open alarm)
    and to nodes that are down are not waited for. With ``node`` and ``size``: until every
    peer has mirrored ``node`` up to ``size``.

    Raises:
        StepFailedError: the timeout passed; names the slowest links.
    """
    t0 = time.monotonic()
    while True:
        infos = {n: i for n, i in net.node_infos(cons).items() if i}
        sizes = {n: int(i["size"]) for n, i in infos.items()}
        lag = []
        for n, info in infos.items():
            for p in info.get("peers", []):
                peer = p["node_id"]
                if peer not in infos or p.get("refused") or (node is not None and peer != node):
                    continue
                have = min(int(p.get("seen_size") or 0), int(p.get("mirrored") or 0))
                need = size if (node is not None and size is not None) else sizes[peer]
                if have < need:
                    lag.append(f"{n} has {have} of {peer}'s {need} entries")
        if not lag:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise StepFailedError(
                f"mirroring did not finish within {timeout_s:.0f} s ({len(lag)} links behind: "
                + "; ".join(lag[:3])
                + ")"
            )
        time.sleep(0.5)


def open_alarms(cons: net.Consortium) -> dict[str, list[str]]:
    """Answering node → the peers it holds an open alarm against."""
    return {
        n: sorted({str(a.get("node_id")) for a in i.get("alarms", [])})
        for n, i in net.node_infos(cons).items()
        if i and i.get("alarms")
    }


def _create(spec: Scenario, directory: Path, *, force: bool) -> net.Consortium:
    topo_file = None
    try:
        if spec.preset is None:
            import yaml

            fd, name = tempfile.mkstemp(prefix="scenario-topology-", suffix=".yaml")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                yaml.safe_dump(spec.topology_raw, f, allow_unicode=True, sort_keys=False)
            topo_file = name
        base = net.find_free_base_port(len(spec.topology.node_ids))
        return net.init_consortium(
            directory, spec.preset or str(topo_file), base_port=base, force=force
        )
    except net.NetworkError as exc:
        raise RunnerError(str(exc)) from exc
    finally:
        if topo_file:
            Path(topo_file).unlink(missing_ok=True)


def ensure_network(
    spec: Scenario,
    directory: Path,
    *,
    echo: Callable[[str], None] = lambda s: None,
    progress: bool = False,
    fresh: bool = False,
) -> tuple[net.Consortium, dict[str, Any]]:
    """Create, start or reuse the scenario's network in ``directory``; returns it and what was done.

    A consortium already in ``directory`` is used only if its topology is the scenario's;
    stopped nodes are started on their kept data. ``fresh`` replaces whatever is there
    (keys and ledgers included). A network with open alarms (left by a rogue step) is
    not reused: the scenario's expectations would not mean what they say.

    Raises:
        RunnerError: another topology is there, the network does not come up, or it has open alarms.
    """
    directory = Path(directory)
    t0 = time.monotonic()
    info: dict[str, Any] = {
        "dir": str(directory.resolve()),
        "topology": spec.topology.name,
        "created": False,
        "reused": False,
        "started": [],
        "latency_changed": [],
        "notes": [],
    }
    exists = net.consortium_exists(directory)
    if exists and fresh:
        if net.running_nodes(directory):
            echo(f"stopping the network in {directory} to re-create it (--fresh)")
            net.down(directory)
        cons = _create(spec, directory, force=True)
        info["created"] = True
        echo(
            f"re-created the {spec.topology.name} consortium in {directory} (ports from "
            f"{min(cons.ports.values())})"
        )
    elif exists:
        try:
            cons = net.load_consortium(directory)
        except net.NetworkError as exc:
            raise RunnerError(str(exc)) from exc
        if cons.topology != spec.topology:
            raise RunnerError(
                f"{directory} holds the {cons.topology.name} network ({len(cons.node_ids)} nodes), "
                f"not this scenario's {spec.topology.name}; pass another --dir, or --fresh to replace it"
            )
    else:
        cons = _create(spec, directory, force=False)
        info["created"] = True
        echo(
            f"created the {spec.topology.name} consortium in {directory} (ports from "
            f"{min(cons.ports.values())})"
        )
    changed = _apply_latency(cons, spec)
    info["latency_changed"] = changed
    alive = net.running_nodes(directory)
    for node_id in changed:
        if node_id in alive:
            echo(f"restarting {node_id} to apply the scenario's link latencies")
            net.kill_node(cons, node_id, signal.SIGTERM)
    alive = net.running_nodes(directory)
    seeding = net.read_state(directory).get("seeding")
    if len(alive) == len(cons.node_ids):
        info["reused"] = True
        echo(f"reusing the {cons.topology.name} network running in {directory}")
    elif not seeding:
        echo(
            f"starting the {cons.topology.name} network in {directory}: seeding {spec.enterprises} "
            "enterprises, "
            f"{len(cons.node_ids)} nodes"
        )
        try:
            res = net.up(
                directory,
                enterprises=spec.enterprises,
                seed=spec.seed,
                timeout_s=spec.timeouts["startup"],
                progress=progress,
                echo=echo,
            )
        except net.NetworkError as exc:
            raise RunnerError(f"the network did not come up: {exc}") from exc
        info["started"] = list(res.started)
        info["notes"] += list(res.notes)
    else:
        # Seeded before: start the stopped nodes on their data. Not through network.up, whose
        # wait for mirroring would also wait for links a witness refuses.
        stopped = [n for n in cons.node_ids if n not in alive]
        echo(
            f"starting {len(stopped)} stopped nodes of the {cons.topology.name} network in {directory}"
        )
        try:
            for node_id in stopped:
                if not net.port_free(cons.ports[node_id]):
                    raise RunnerError(
                        f"port {cons.ports[node_id]} of {node_id} is in use by another program"
                    )
            pids = {n: _spawn(cons, n) for n in stopped}
            net.wait_healthy(cons, pids, spec.timeouts["startup"])
            net.register_institutions(cons)
            wait_mirrored(cons, spec.timeouts["startup"])
        except (net.NetworkError, StepFailedError) as exc:
            raise RunnerError(f"the network did not come up: {exc}") from exc
        info["started"] = stopped
    alarms = open_alarms(cons)
    if alarms:
        against = sorted({p for ps in alarms.values() for p in ps})
        raise RunnerError(
            f"the network in {directory} has open alarms against {', '.join(against)} (raised by "
            f"{len(alarms)} nodes; a rogue step leaves them); run with --fresh to re-create it, "
            "or pass another --dir"
        )
    state = net.read_state(directory)
    info["enterprises"] = int(state.get("seeding", {}).get("enterprises", 0))
    info["seed"] = int(state.get("seeding", {}).get("seed", 0))
    if (info["enterprises"], info["seed"]) != (spec.enterprises, spec.seed):
        info["notes"].append(
            f"the network holds {info['enterprises']} synthetic enterprises (seed {info['seed']}); "
            f"the scenario asks for {spec.enterprises} (seed {spec.seed}) when it starts a network"
        )
    info["nodes"] = {n: cons.url(n) for n in cons.node_ids}
    info["seconds"] = round(time.monotonic() - t0, 2)
    return cons, info


def ensure_docker_network(
    spec: Scenario,
    directory: Path,
    *,
    echo: Callable[[str], None] = lambda s: None,
    fresh: bool = False,
) -> tuple[net.Consortium, dict[str, Any]]:
    """Create, start or reuse the scenario's network as containers; returns it and what was done.

    ``directory/compose.yaml`` and the consortium in ``directory/docker`` are made by
    :func:`scenarios.containers.compose.generate` (host ports chosen free, a project name of the
    directory's own); each container seeds its share of the scenario's enterprises on
    first start. Reuse and ``fresh`` work as for :func:`ensure_network`.

    Raises:
        RunnerError: no Docker engine, no node image, another topology there, or the
            containers do not come up.
    """
    import hashlib
    import shutil
    import subprocess

    from scenarios.containers.compose import DEFAULT_IMAGE, ComposeError, generate
    from scenarios.containers.docker import DockerNetwork, docker_available

    why = docker_available()
    if why:
        raise RunnerError(f"--target docker needs a Docker engine: {why}")
    probe = subprocess.run(
        ["docker", "image", "inspect", DEFAULT_IMAGE], capture_output=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        raise RunnerError(
            f"the node image {DEFAULT_IMAGE} is missing; build it with docker/build-images.sh "
            "(no registry needed)"
        )
    directory = Path(directory)
    config = directory / "docker"
    t0 = time.monotonic()
    info: dict[str, Any] = {
        "dir": str(config.resolve()),
        "target": "docker",
        "topology": spec.topology.name,
        "created": False,
        "reused": False,
        "started": [],
        "latency_changed": [],
        "notes": [],
    }
    cons = None
    if net.consortium_exists(config):
        try:
            cons = net.load_consortium(config)
        except net.NetworkError as exc:
            raise RunnerError(str(exc)) from exc
        if fresh or cons.topology != spec.topology:
            if not fresh:
                raise RunnerError(
                    f"{config} holds the {cons.topology.name} network, not this scenario's "
                    f"{spec.topology.name}; pass another --dir, or --fresh to replace it"
                )
            echo(f"removing the containers and volumes of {config} to re-create it (--fresh)")
            with suppress(net.NetworkError):
                DockerNetwork(cons).down()
            shutil.rmtree(config)
            cons = None
    if cons is None:
        topo_file = None
        try:
            ref = spec.preset
            if ref is None:
                import yaml

                fd, topo_file = tempfile.mkstemp(prefix="scenario-topology-", suffix=".yaml")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    yaml.safe_dump(spec.topology_raw, f, allow_unicode=True, sort_keys=False)
                ref = topo_file
            tag = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]
            project = re.sub(r"[^a-z0-9_-]+", "-", f"yrd-{spec.name}-{tag}".lower())
            base = net.find_free_base_port(len(spec.topology.node_ids)) - 1  # node i at base + i
            generate(
                ref,
                out=directory / "compose.yaml",
                config_dir=config,
                host_port_base=base,
                project=project,
                enterprises=spec.enterprises,
                seed=spec.seed,
            )
            cons = net.load_consortium(config)
        except (ComposeError, net.NetworkError, NodeError) as exc:
            raise RunnerError(f"cannot write the container network's configuration: {exc}") from exc
        finally:
            if topo_file:
                Path(topo_file).unlink(missing_ok=True)
        info["created"] = True
        echo(
            f"created the {spec.topology.name} container network in {config} (project {cons.project}, "
            f"host ports {min(cons.ports.values())}..{max(cons.ports.values())})"
        )
    docker = DockerNetwork(cons)
    changed = _apply_latency(cons, spec)
    info["latency_changed"] = changed
    running = docker.running_nodes()
    for node_id in changed:
        if node_id in running:
            echo(f"restarting {node_id}'s container to apply the scenario's link latencies")
            docker.stop(node_id)
    running = docker.running_nodes()
    try:
        if len(running) == len(cons.node_ids):
            info["reused"] = True
            echo(f"reusing the {cons.topology.name} containers of project {cons.project}")
            net.register_institutions(cons)
        else:
            echo(
                f"starting {len(cons.node_ids) - len(running)} node containers of project {cons.project} "
                f"({spec.enterprises} enterprises, seeded by the containers on first start)"
            )
            docker.up(spec.timeouts["startup"])
            info["started"] = [n for n in cons.node_ids if n not in running]
        wait_mirrored(cons, spec.timeouts["startup"])
    except (net.NetworkError, StepFailedError) as exc:
        raise RunnerError(f"the container network did not come up: {exc}") from exc
    alarms = open_alarms(cons)
    if alarms:
        against = sorted({p for ps in alarms.values() for p in ps})
        raise RunnerError(
            f"the container network in {config} has open alarms against {', '.join(against)}; "
            "run with --fresh to re-create it, or pass another --dir"
        )
    info["enterprises"], info["seed"] = spec.enterprises, spec.seed
    info["project"] = cons.project
    info["nodes"] = {n: cons.url(n) for n in cons.node_ids}
    info["seconds"] = round(time.monotonic() - t0, 2)
    return cons, info


def _spawn(cons: net.Consortium, node_id: str) -> int:
    """Start one node process (the launcher's own start) and record its pid in the run state."""
    pid = net.spawn(cons, node_id)
    state = net.read_state(cons.dir)
    state.setdefault("nodes", {})[node_id] = {
        "pid": pid,
        "port": cons.ports[node_id],
        "url": cons.url(node_id),
        "started_at": utc_now(),
        "log": str(cons.log_path(node_id)),
    }
    net.write_state(cons.dir, state)
    return pid


def _register(
    cons: net.Consortium, inst_id: str, name: str, city: str, node: str, purposes: Sequence[str]
) -> net.Institution:
    """Create (or reuse) the institution's key and register it at its home node."""
    key_path = cons.dir / "keys" / "institutions" / f"{inst_id}.key"
    try:
        key = load_private_key(key_path) if key_path.exists() else generate_key_file(key_path)
    except ConfigError as exc:
        raise StepFailedError(str(exc)) from exc
    inst = net.Institution(inst_id, name, city, node, tuple(purposes), key_path, public_b64(key))
    with net.operator_client(cons, node) as client:
        status, data = client.call(
            node,
            "POST",
            "/v1/institutions",
            {
                "institution_id": inst_id,
                "name": name,
                "public_key": inst.public_key,
                "purposes": list(purposes),
            },
        )
    if status == 409:
        with httpx.Client(timeout=10) as c:
            got = c.get(f"{cons.url(node)}/v1/institutions/{inst_id}").json()
        if got.get("public_key") != inst.public_key:
            raise StepFailedError(
                f"institution {inst_id} is already registered at {node} with another key"
            )
        if sorted(got.get("purposes", [])) != sorted(purposes):
            raise StepFailedError(
                f"institution {inst_id} is already registered at {node} for "
                f"{', '.join(got.get('purposes', []))}, not {', '.join(purposes)}"
            )
    elif status != 201:
        raise StepFailedError(
            f"registering {inst_id} at {node}: {net.problem_sentence(node, status, data)}"
        )
    return inst


# --- targets: how faults reach a node ----------------------------------------------------------------
class _LocalTarget:
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
        _stop_node(self.cons, node, sig)
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
            "pid": _start_node(self.cons, node, self.startup_s),
            "done": "started",
        }

    def rewrite(self, node: str, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        if node in self.running():
            _stop_node(self.cons, node, signal.SIGTERM)
        try:
            return fn(self.cons.ledger_path(node))
        finally:
            _start_node(self.cons, node, self.startup_s)

    def down(self) -> None:
        net.down(self.cons.dir)


class _DockerTarget:
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


# --- running -------------------------------------------------------------------------------------
@dataclass
class _Auth:
    authorization_id: str
    institution: str
    home_node: str
    uscc: str
    purposes: list[str]
    not_before: str
    not_after: str


def _when(text: str, now: datetime) -> str:
    kind = parse_time_offset(text)
    if kind is None:
        raise StepFailedError(f"bad time {text!r}")
    if kind[0] == "time":
        return text
    return (now + timedelta(seconds=kind[1])).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Run:
    def __init__(
        self,
        spec: Scenario,
        cons: net.Consortium,
        out: Path,
        echo: Callable[[str], None],
        target: _LocalTarget | _DockerTarget | None = None,
    ) -> None:
        self.spec = spec
        self.cons = cons
        self.target = target or _LocalTarget(cons, spec.timeouts["startup"])
        self.out = out
        self.echo = echo
        self.tag = secrets.token_hex(3)
        self.manifest: Manifest = self._trusted_manifest()
        self.data: SyntheticData = net.synthetic_data(cons)
        self.usccs: dict[str, str] = {}
        self.homes: dict[str, str] = {}  # uscc → the enterprise's home node
        self.holders: dict[str, set[str]] = {}  # uscc → nodes known to hold its records
        self.record_ids: dict[str, str] = {}  # logical id → id on the ledger
        self.auths: dict[str, _Auth] = {}
        self.queries: dict[str, QueryOutcome] = {}
        self.disturbed: set[str] = set()  # nodes this run stopped and has not restarted
        self.rogues: list[str] = []
        self.http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self.http.close()

    def _trusted_manifest(self) -> Manifest:
        try:
            return load_manifest(self.cons.manifest_path, root_key=self.cons.root_public_key())
        except ConfigError as exc:
            raise RunnerError(f"the consortium manifest does not verify: {exc}") from exc

    # --- names ---------------------------------------------------------------------------------
    def resolve_enterprises(self) -> None:
        for name, e in self.spec.named.items():
            where = f"enterprises.named.{name} (line {e.line})"
            if e.uscc:
                uscc = e.uscc
                city = self.cons.topology.city(e.city) if e.city else None
                home = city.node_ids[0] if city else self.cons.node_ids[0]
                holders: set[str] = set()
            elif e.new:
                city = self.cons.topology.city(str(e.city))
                uscc = make_uscc(city.admin_code, secrets.randbelow(SERIAL_LIMIT)).code
                home = e.node or city.node_ids[0]
                holders = set()
            elif e.index is not None:
                if e.index >= self.data.counts[str(e.city)]:
                    raise RunnerError(
                        f"{where}: {e.city} has {self.data.counts[str(e.city)]} enterprises in this "
                        f"network, no index {e.index}"
                    )
                ent = self.data.enterprise(str(e.city), e.index)
                uscc, home = ent.uscc, ent.home_node
                holders = self.actual_holders(uscc, self.data.holders(str(e.city), e.index))
            else:
                found = None
                n = 0
                for i in range(self.data.counts[str(e.city)]):
                    hs = self.data.holders(str(e.city), i)
                    if len({self.cons.topology.city_of_node(h).code for h in hs}) < e.min_cities:
                        continue
                    # The synthetic plan names a branch node even when the branch drew no
                    # records; count only enterprises whose holders really hold some.
                    ent = self.data.enterprise(str(e.city), i)
                    real = self.actual_holders(ent.uscc, hs)
                    if len({self.cons.topology.city_of_node(h).code for h in real}) < e.min_cities:
                        continue
                    if n == e.pick:
                        found = (ent, real)
                        break
                    n += 1
                if found is None:
                    raise RunnerError(
                        f"{where}: {e.city} has fewer than {(e.pick or 0) + 1} enterprises with records "
                        f"in {e.min_cities} cities"
                    )
                uscc, home, holders = found[0].uscc, found[0].home_node, found[1]
            self.usccs[name] = uscc
            self.homes[uscc] = home
            self.holders.setdefault(uscc, set()).update(holders)

    def actual_holders(self, uscc: str, planned: Sequence[str]) -> set[str]:
        """The planned holders that do hold records of ``uscc`` (asked as each node's operator)."""
        out = set()
        for node in planned:
            try:
                if self.node_records(node, uscc, "history"):
                    out.add(node)
            except (StepFailedError, net.NetworkError) as exc:
                raise RunnerError(f"cannot read {node}'s records of {uscc}: {exc}") from exc
        return out

    def uscc(self, ref: str) -> str:
        if ref in self.usccs:
            return self.usccs[ref]
        self.homes.setdefault(ref, self.city_home(ref))
        self.holders.setdefault(ref, set())
        return ref

    def city_home(self, uscc: str) -> str:
        admin = uscc[2:8]
        for c in self.cons.topology.cities:
            if c.admin_code == admin:
                return c.node_ids[0]
        return self.cons.node_ids[0]

    def record_id(self, ref: str, uscc: str | None = None, node: str | None = None) -> str:
        if ref in self.record_ids:
            return self.record_ids[ref]
        try:
            return ref.format(uscc=uscc or "", node=node or "")
        except (KeyError, IndexError, ValueError):
            return ref

    def institution(self, inst_id: str) -> net.Institution:
        try:
            return self.cons.institution(inst_id)
        except net.NetworkError as exc:
            raise StepFailedError(str(exc)) from exc

    # --- node access -------------------------------------------------------------------------------
    def up_nodes(self) -> dict[str, dict[str, Any]]:
        return {n: i for n, i in net.node_infos(self.cons).items() if i}

    def receipts(self, node: str, uscc: str) -> list[dict[str, Any]]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "GET", f"/v1/enterprises/{uscc}/queries")
        if status != 200:
            raise StepFailedError(net.problem_sentence(node, status, data))
        return list(data.get("queries", []))

    def node_records(self, node: str, uscc: str, view: str) -> list[dict[str, Any]]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "GET", f"/v1/enterprises/{uscc}/records?view={view}")
        if status != 200:
            raise StepFailedError(net.problem_sentence(node, status, data))
        return list(data.get("records", []))

    def checkpoint(self, node: str) -> str:
        try:
            r = self.http.get(self.cons.url(node) + "/v1/checkpoint")
        except httpx.HTTPError as exc:
            raise StepFailedError(f"{node} does not answer: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise StepFailedError(f"{node} answered {r.status_code} for its checkpoint")
        return r.text

    def proof(self, node: str, path: str, params: dict[str, int]) -> list[bytes] | None:
        import base64

        try:
            r = self.http.get(self.cons.url(node) + path, params=params)
        except httpx.HTTPError as exc:
            raise StepFailedError(f"{node} does not answer: {type(exc).__name__}") from exc
        if r.status_code != 200:
            return None
        return [base64.b64decode(p) for p in r.json()["proof"]]

    def wait_mirrored(
        self, timeout_s: float, *, node: str | None = None, size: int | None = None
    ) -> float:
        return wait_mirrored(self.cons, timeout_s, node=node, size=size)

    # --- actions -------------------------------------------------------------------------------
    def do_ingest(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        now = datetime.now(UTC).replace(microsecond=0)
        city = self.cons.topology.city_of_node(node).code
        records = []
        mapping = {}
        for r in a["records"]:
            uscc = self.uscc(r["enterprise"])
            actual = f"{r['id']}.r{self.tag}"
            mapping[r["id"]] = actual
            records.append(
                {
                    "uscc": uscc,
                    "record_type": r["type"],
                    "record_id": actual,
                    "source": r.get("source") or f"{city}-scenario",
                    "observed_at": _when(r["observed_at"], now),
                    "body": r["body"],
                }
            )
        return self._ingest(node, records, mapping, a.get("mirror", True))

    def do_correct(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        now = datetime.now(UTC).replace(microsecond=0)
        uscc = self.uscc(a["enterprise"])
        actual = f"{a['id']}.r{self.tag}"
        supersedes = self.record_id(a["supersedes"], uscc, node)
        city = self.cons.topology.city_of_node(node).code
        record = {
            "uscc": uscc,
            "record_id": actual,
            "supersedes": supersedes,
            "outcome": a["outcome"],
            "source": a.get("source") or f"{city}-scenario",
            "observed_at": _when(a["observed_at"], now),
            "body": a["body"],
        }
        return self._ingest(node, [record], {a["id"]: actual}, a.get("mirror", True))

    def _ingest(
        self, node: str, records: list[dict[str, Any]], mapping: dict[str, str], mirror: bool
    ) -> dict[str, Any]:
        with net.operator_client(self.cons, node) as client:
            status, data = client.call(node, "POST", "/v1/ingest", {"records": records})
        if status not in (200, 201, 202):
            raise StepFailedError(net.problem_sentence(node, status, data))
        self.record_ids.update(mapping)
        for r in records:
            self.holders.setdefault(r["uscc"], set()).add(node)
        detail: dict[str, Any] = {
            "node": node,
            "records": [r["record_id"] for r in records],
            "size": data.get("size"),
        }
        if mirror:
            detail["mirror_seconds"] = round(
                self.wait_mirrored(
                    self.spec.timeouts["mirror"], node=node, size=int(data.get("size") or 0)
                ),
                2,
            )
        return detail

    def _file_auth(
        self,
        inst: net.Institution,
        uscc: str,
        purposes: Sequence[str],
        valid_from: str,
        valid_until: str,
    ) -> _Auth:
        now = datetime.now(UTC).replace(microsecond=0)
        not_before, not_after = _when(valid_from, now), _when(valid_until, now)
        auth_id = f"auth-{inst.institution_id}-{uscc}-{secrets.token_hex(3)}"
        text = net.consent_document(uscc, inst, purposes, not_before, not_after, auth_id)
        import hashlib

        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        consent = self.cons.dir / "consents" / f"{auth_id}.txt"
        consent.parent.mkdir(parents=True, exist_ok=True)
        consent.write_text(text, "utf-8")
        with net.NodeClient(self.cons, f"inst:{inst.institution_id}", inst.key()) as client:
            status, data = client.call(
                inst.home_node,
                "POST",
                "/v1/authorizations",
                {
                    "authorization_id": auth_id,
                    "uscc": uscc,
                    "institution_id": inst.institution_id,
                    "purposes": list(purposes),
                    "not_before": not_before,
                    "not_after": not_after,
                    "document_digest": digest,
                },
            )
        if status != 201:
            raise StepFailedError(
                f"filing the authorization failed: "
                f"{net.problem_sentence(inst.home_node, status, data)}"
            )
        return _Auth(
            auth_id,
            inst.institution_id,
            inst.home_node,
            uscc,
            list(purposes),
            not_before,
            not_after,
        )

    def do_authorize(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        inst = self.institution(a["institution"])
        auth = self._file_auth(
            inst, self.uscc(a["enterprise"]), a["purposes"], a["valid_from"], a["valid_until"]
        )
        self.auths[a["as"]] = auth
        return dataclasses.asdict(auth)

    def do_revoke(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        auth = self.auths.get(a["authorization"])
        if auth is None:
            raise StepFailedError(
                f"authorization {a['authorization']!r} was not filed (its step failed)"
            )
        inst = self.institution(auth.institution)
        if a.get("by") == "operator":
            client = net.NodeClient(
                self.cons, f"node:{auth.home_node}", self.cons.node_key(auth.home_node)
            )
        else:
            client = net.NodeClient(self.cons, f"inst:{inst.institution_id}", inst.key())
        with client:
            status, data = client.call(
                auth.home_node,
                "POST",
                f"/v1/authorizations/{auth.authorization_id}/revocation",
                {"reason": a["reason"]},
            )
        if status != 201:
            raise StepFailedError(net.problem_sentence(auth.home_node, status, data))
        return {"authorization_id": auth.authorization_id, "revoked_at": data.get("revoked_at")}

    def do_query(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        inst = self.institution(a["institution"])
        uscc = self.uscc(a["enterprise"])
        ref = a.get("authorization", "auto")
        if ref == "auto":
            auth_id = self._file_auth(inst, uscc, [a["purpose"]], "now", "+365d").authorization_id
        elif ref == "none":
            auth_id = f"never-filed-{self.tag}-{step.index}"
        elif isinstance(ref, dict):
            auth_id = ref["id"]
        else:
            if ref not in self.auths:
                raise StepFailedError(f"authorization {ref!r} was not filed (its step failed)")
            auth_id = self.auths[ref].authorization_id
        q = QueryOutcome(
            step.alias,
            step.id,
            inst.institution_id,
            inst.home_node,
            a["enterprise"],
            uscc,
            a["purpose"],
            auth_id,
        )
        self.queries[q.alias] = q
        q.cities = {self.cons.topology.city_of_node(inst.home_node).code: "home"}
        t0 = time.perf_counter()
        try:
            with net.NodeClient(
                self.cons,
                f"inst:{inst.institution_id}",
                inst.key(),
                timeout_s=self.spec.timeouts["query"],
            ) as client:
                status, data = client.call(
                    inst.home_node,
                    "POST",
                    "/v1/reports",
                    {"uscc": uscc, "purpose": a["purpose"], "authorization_id": auth_id},
                )
        except net.NetworkError as exc:
            q.seconds = time.perf_counter() - t0
            q.status, q.detail = "error", str(exc)
            return self._query_detail(q)
        q.seconds = time.perf_counter() - t0
        q.http_status = status
        if status == 200 and isinstance(data, dict):
            q.status = "granted"
            self._read_bundle(q, data)
        elif (
            status == 403
            and isinstance(data, dict)
            and str(data.get("type", "")).endswith("authorization-invalid")
        ):
            q.status = "denied"
            q.reason = str(data.get("reason") or "")
            q.detail = str(data.get("detail") or "")
            m = re.search(r"query ([0-9a-f]{16,64})", q.detail)
            q.query_id = m.group(1) if m else None
        else:
            q.status = "error"
            q.detail = net.problem_sentence(inst.home_node, status, data)
            q.reason = (
                str(data.get("type", "")).rsplit(":", 1)[-1] if isinstance(data, dict) else None
            )
        return self._query_detail(q)

    def _query_detail(self, q: QueryOutcome) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(q).items() if k not in ("current", "history")}

    def _read_bundle(self, q: QueryOutcome, bundle: dict[str, Any]) -> None:
        path = self.out / "bundles" / f"{q.alias}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", "utf-8")
        q.bundle_path = str(path)
        report = bundle.get("report", {})
        q.query_id = str(report.get("query_id") or "") or None
        try:
            summary = verify_bundle(bundle, self.manifest)
            q.bundle_verified = True
            q.partial = summary.partial
            q.missing = [dict(m) for m in summary.missing]
            q.holders = dict(summary.holders)
            q.current = [str(r["record_id"]) for r in summary.current]
            q.history = [str(r["record_id"]) for r in summary.history]
        except (BundleError, LedgerError, KeyError, TypeError, ValueError, AttributeError) as exc:
            q.bundle_verified = False
            q.bundle_error = f"{type(exc).__name__}: {exc}"
            q.partial = bool(report.get("partial"))
            q.missing = [dict(m) for m in report.get("missing", [])]
            q.holders = {
                str(h.get("node_id")): len(h.get("records", [])) for h in report.get("holders", [])
            }
        topo = self.cons.topology
        for node_id in q.holders:
            q.cities[topo.city_of_node(node_id).code] = "answered"
        for m in q.missing:
            c = topo.city_of_node(str(m.get("node_id"))).code
            if q.cities.get(c) != "answered":
                q.cities[c] = "missing"

    def do_register(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        city = self.cons.topology.city(a["city"])
        node = a.get("node") or city.node_ids[0]
        inst = _register(
            self.cons,
            a["institution"],
            a.get("name") or f"{city.name} scenario institution {a['institution']}",
            city.code,
            node,
            a["purposes"],
        )
        self.cons = dataclasses.replace(self.cons, institutions=self.cons.institutions + (inst,))
        return {"institution": inst.institution_id, "node": node, "public_key": inst.public_key}

    def _fault(self, node: str, kind: str) -> dict[str, Any]:
        detail = self.target.fault(node, kind)
        self.disturbed.add(node)
        return detail

    def do_stop(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "stop")

    def do_kill(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "kill")

    def do_pause(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "pause")

    def do_partition(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return self._fault(a["node"], "partition")

    def do_restart(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        t0 = time.monotonic()
        detail: dict[str, Any] = self.target.recover(node)
        self.disturbed.discard(node)
        detail["healthy_seconds"] = round(time.monotonic() - t0, 2)
        if a.get("mirror", True):
            detail["mirror_seconds"] = round(self.wait_mirrored(self.spec.timeouts["mirror"]), 2)
        return detail

    def do_rogue(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        node = a["node"]
        alter = {self.record_id(r["record"], node=node): r["body"] for r in a.get("alter") or []}
        remove = {self.record_id(r, node=node) for r in a.get("remove") or []}
        detail = self.target.rewrite(
            node,
            lambda path: rewrite_history(
                self.cons, node, alter, remove, a.get("pad"), tag=self.tag, path=path
            ),
        )
        self.rogues.append(node)
        return detail

    def do_wait_mirrored(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return {
            "seconds": round(
                self.wait_mirrored(a.get("timeout") or self.spec.timeouts["mirror"]), 2
            )
        }

    def do_wait(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        time.sleep(float(a["seconds"]))
        return {"slept": a["seconds"]}

    def do_check(self, step: Step, a: dict[str, Any]) -> dict[str, Any]:
        return {}

    def restore(self) -> list[str]:
        notes = []
        running = self.target.running()
        for node in sorted(self.disturbed):
            if node in running:
                continue
            try:
                self.target.recover(node)
                notes.append(f"brought back {node}, which the scenario left down")
            except (StepFailedError, net.NetworkError) as exc:
                notes.append(f"could not bring back {node}: {exc}")
        return notes


# --- rogue history --------------------------------------------------------------------------------
def rewrite_history(
    cons: net.Consortium,
    node_id: str,
    alter: Mapping[str, Any],
    remove: set[str],
    pad: int | None,
    *,
    tag: str = "",
    path: Path | None = None,
) -> dict[str, Any]:
    """Rebuild a stopped node's ledger (at ``path``, default its local ledger file) with the
    same key but a different history.

    Entries are copied in order (records with their original salts, so the copy
    is identical up to the first change); records in ``remove`` are left out,
    those in ``alter`` get their body fields replaced; then ``pad`` filler
    records are appended (default: enough that the new log is longer than the
    old one, as a node that keeps operating would be). The old file is kept
    beside it as ``ledger.db.before-rogue-<time>``.
    """
    from ledger.store import Store

    path = path or cons.ledger_path(node_id)
    old = Ledger.open(path, readonly=True)
    tmp = path.with_name("ledger.db.rogue")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    signer = NoteSigner(old.origin, cons.node_key(node_id))
    Ledger.create(tmp, origin=old.origin, signer=signer, algorithm=old.algorithm).close()
    queue: list[bytes] = []

    def salts(n: int) -> bytes:
        out = b"".join(queue)
        queue.clear()
        if len(out) != n:
            raise LedgerError(f"rogue rewrite: {n} salt bytes asked, {len(out)} prepared")
        return out

    new = Ledger(Store(tmp), signer=signer, salt=salts)
    altered, removed, first_change = [], [], None
    subject = None
    try:
        size = old.size
        for start in range(0, size, 1000):
            batch: list[Any] = []
            for index, data in old.entries(start, min(size, start + 1000)):
                entry = parse_entry(data)
                if isinstance(entry, RecordEntry | CorrectionEntry):
                    salt, body = old.body(index)
                    if entry.record_id in remove:
                        removed.append(entry.record_id)
                        first_change = index if first_change is None else first_change
                        subject = subject or entry.uscc
                        continue
                    if entry.record_id in alter:
                        body = (
                            {**body, **alter[entry.record_id]}
                            if isinstance(body, dict)
                            else alter[entry.record_id]
                        )
                        altered.append(entry.record_id)
                        first_change = index if first_change is None else first_change
                        subject = subject or entry.uscc
                    queue.append(salt)
                    if isinstance(entry, RecordEntry):
                        batch.append(
                            RecordDraft(
                                entry.uscc,
                                entry.record_type,
                                entry.record_id,
                                entry.source,
                                entry.observed_at,
                                body,
                            )
                        )
                    else:
                        batch.append(
                            CorrectionDraft(
                                entry.uscc,
                                entry.record_id,
                                entry.supersedes,
                                entry.outcome,
                                entry.source,
                                entry.observed_at,
                                body,
                            )
                        )
                else:
                    batch.append(entry)
            if batch:
                new.append(batch)
        missing = (set(alter) | remove) - set(altered) - set(removed)
        if missing:
            raise StepFailedError(f"{node_id} holds no record {', '.join(sorted(missing))}")
        count = pad if pad is not None else max(1, size - new.size + 1)
        if count:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fillers = [
                RecordDraft(
                    str(subject),
                    "tax_rating",
                    f"{PAD_SOURCE}-{tag}-{k}",
                    PAD_SOURCE,
                    now,
                    {"note": "appended by the rogue node after rewriting its history"},
                )
                for k in range(count)
            ]
            queue.extend(os.urandom(16) for _ in fillers)
            new.append(fillers)
        new_size, new_height = new.size, new.height
    except BaseException:
        new.close()
        old.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        raise
    new.close()
    old.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"ledger.db.before-rogue-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, str(backup) + suffix)
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(tmp) + suffix)
        if src.exists():
            os.replace(src, str(path) + suffix)
    return {
        "node": node_id,
        "old_size": size,
        "new_size": new_size,
        "new_height": new_height,
        "altered": altered,
        "removed": removed,
        "padded": count,
        "first_changed_index": first_change,
        "backup": str(backup),
    }


# --- expectations -----------------------------------------------------------------------------------
def _check_query(run: _Run, step: Step, key: str, want: Any, q: QueryOutcome) -> Check:
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    granted = q.status == "granted"
    not_granted = f"the query was {q.status}" + (
        f" ({q.reason or q.detail})" if q.status != "granted" else ""
    )
    if key == "status":
        return result(
            q.status == want,
            q.status,
            f"expected {want}, got {q.status}" + (f": {q.detail}" if q.detail else ""),
        )
    if key == "reason":
        ok = q.reason is not None and (q.reason == want or str(want) in str(q.reason))
        return result(
            ok, q.reason, f"expected denial reason {want!r}, got {q.reason!r} ({q.status})"
        )
    if key == "max_seconds":
        return result(
            q.seconds <= float(want),
            round(q.seconds, 3),
            f"took {q.seconds:.2f} s, more than {want} s",
        )
    if key == "bundle_verifies":
        got = bool(q.bundle_verified)
        return result(
            got == want,
            got,
            f"expected the bundle to {'verify' if want else 'fail'}; "
            + (q.bundle_error or not_granted if not got else "it verified"),
        )
    if key in ("receipts_on", "in_query_history"):
        if not q.query_id:
            return result(False, None, f"the query has no query id ({not_granted})")
        nodes = (
            list(want) if key == "receipts_on" else [run.homes.get(q.uscc, run.city_home(q.uscc))]
        )
        if key == "in_query_history" and not want:
            return result(True, None)
        found: dict[str, str] = {}
        for n in nodes:
            try:
                rows = [r for r in run.receipts(n, q.uscc) if r.get("query_id") == q.query_id]
            except (StepFailedError, net.NetworkError) as exc:
                found[n] = f"error: {exc}"
                continue
            found[n] = ", ".join(f"{r['role']} {r['outcome']}" for r in rows) or "none"
        bad = [n for n, v in found.items() if v == "none" or v.startswith("error")]
        return result(not bad, found, f"no receipt of query {q.query_id} on {', '.join(bad)}")
    if not granted:
        return result(False, None, f"{key} needs a granted report; {not_granted}")
    if key == "partial":
        return result(
            q.partial == want,
            q.partial,
            f"expected partial {want}, got {q.partial} (missing: "
            f"{', '.join(m['node_id'] for m in q.missing) or 'none'})",
        )
    if key == "missing":
        named = sorted(m["node_id"] for m in q.missing)
        return result(
            set(named) == set(want), named, f"expected missing {sorted(want)}, got {named}"
        )
    if key == "missing_reason":
        reasons = {m["node_id"]: m.get("reason", "") for m in q.missing}
        ok = bool(reasons) and all(str(want).lower() in r.lower() for r in reasons.values())
        return result(
            ok,
            reasons,
            f"expected every missing holder's reason to mention {want!r}, got {reasons or 'none missing'}",
        )
    if key == "holders_include":
        lacking = [n for n in want if n not in q.holders]
        return result(
            not lacking,
            sorted(q.holders),
            f"{', '.join(lacking)} did not answer (answered: "
            f"{', '.join(sorted(q.holders)) or 'none'})",
        )
    if key == "all_holders":
        known = run.holders.get(q.uscc, set())
        lacking = sorted(known - set(q.holders))
        ok = (not lacking) == bool(want)
        return result(
            ok,
            {"known": sorted(known), "answered": sorted(q.holders)},
            f"holders {', '.join(lacking)} did not answer" if lacking else "every holder answered",
        )
    if key == "cities_touched":
        touched = set(q.cities)
        lacking = [c for c in want if c not in touched]
        return result(
            not lacking,
            sorted(touched),
            f"did not touch {', '.join(lacking)} (touched: {', '.join(sorted(touched))})",
        )
    if key == "records_min":
        return result(
            len(q.history) >= int(want),
            len(q.history),
            f"{len(q.history)} records, fewer than {want}",
        )
    ids = {r: run.record_id(r, q.uscc) for r in want}
    if key == "records_present":
        lacking = [r for r, i in ids.items() if i not in q.current]
        return result(not lacking, q.current, f"not in the current view: {', '.join(lacking)}")
    if key == "records_absent":
        there = [r for r, i in ids.items() if i in q.current]
        return result(not there, q.current, f"still in the current view: {', '.join(there)}")
    if key == "superseded":
        bad = [r for r, i in ids.items() if i not in q.history or i in q.current]
        return result(
            not bad,
            {"current": q.current, "history": q.history},
            f"not superseded (must be in the history and out of the current view): {', '.join(bad)}",
        )
    if key == "history_includes":
        lacking = [r for r, i in ids.items() if i not in q.history]
        return result(not lacking, q.history, f"not in the history: {', '.join(lacking)}")
    return result(False, None, f"unknown expectation {key}")


def _check_general(run: _Run, step: Step, key: str, want: Any) -> Check:
    line = step.expect_lines.get(key)

    def result(ok: bool, actual: Any, message: str = "") -> Check:
        return Check(step.id, key, want, actual, ok, "" if ok else message, line)

    cons = run.cons
    if key in ("nodes_up", "nodes_down", "no_alarms", "alarms", "refused"):
        infos = net.node_infos(cons)
        up = sorted(n for n, i in infos.items() if i)
        if key == "nodes_up":
            need = list(cons.node_ids) if want == "all" else list(want)
            down = [n for n in need if n not in up]
            return result(not down, up, f"not answering: {', '.join(down)}")
        if key == "nodes_down":
            alive = [n for n in want if n in up]
            return result(
                not alive,
                [n for n in cons.node_ids if n not in up],
                f"still answering: {', '.join(alive)}",
            )
        if key == "no_alarms":
            raised = {
                n: [a.get("node_id") for a in i.get("alarms", [])]
                for n, i in infos.items()
                if i and i.get("alarms")
            }
            return result(bool(not raised) == bool(want), raised, f"open alarms: {raised}")
        if key == "alarms":
            target = want["against"]
            witnesses = sorted(
                n
                for n, i in infos.items()
                if i
                and n != target
                and any(a.get("node_id") == target for a in i.get("alarms", []))
            )
            return result(
                len(witnesses) >= want["witnesses_min"],
                witnesses,
                f"{len(witnesses)} witnesses raised an alarm against {target} "
                f"({', '.join(witnesses) or 'none'}), fewer than {want['witnesses_min']}",
            )
        target = want["node"]
        by = sorted(
            n
            for n, i in infos.items()
            if i
            and any(p.get("node_id") == target and p.get("refused") for p in i.get("peers", []))
        )
        return result(
            len(by) >= want["by_min"],
            by,
            f"{len(by)} nodes refuse {target} ({', '.join(by) or 'none'}), "
            f"fewer than {want['by_min']}",
        )
    if key == "records":
        uscc = run.uscc(want["enterprise"])
        rows = run.node_records(want["node"], uscc, want.get("view", "current"))
        ids = [str(r["record_id"]) for r in rows]
        lacking = [
            r for r in want.get("present", []) if run.record_id(r, uscc, want["node"]) not in ids
        ]
        there = [r for r in want.get("absent", []) if run.record_id(r, uscc, want["node"]) in ids]
        msg = "; ".join(
            s
            for s in (
                f"missing {', '.join(lacking)}" if lacking else "",
                f"present but should not be: {', '.join(there)}" if there else "",
            )
            if s
        )
        return result(
            not lacking and not there,
            ids,
            f"{want['node']}'s {want.get('view', 'current')} view: {msg}",
        )
    if key == "query_history":
        uscc = run.uscc(want["enterprise"])
        node = want.get("node") or run.homes.get(uscc) or run.city_home(uscc)
        rows = run.receipts(node, uscc)
        by_id: dict[str, list[str]] = {}
        for r in rows:
            by_id.setdefault(str(r.get("query_id")), []).append(str(r.get("outcome")))
        problems = []
        seen = {}
        for alias in want["includes"]:
            q = run.queries.get(alias)
            if q is None or not q.query_id:
                problems.append(f"{alias} has no query id")
                continue
            outcomes = by_id.get(q.query_id, [])
            seen[alias] = outcomes
            expected = want.get("outcome") or (
                q.status if q.status in ("granted", "denied") else None
            )
            if not outcomes:
                problems.append(f"{alias} is not listed")
            elif expected and expected not in outcomes:
                problems.append(f"{alias} is listed as {', '.join(outcomes)}, not {expected}")
        return result(
            not problems,
            {"node": node, "queries": len(rows), "found": seen},
            f"{node}'s query history of {uscc}: " + "; ".join(problems),
        )
    if key == "institutions":
        insts = list(cons.institutions)

        def registered(inst: net.Institution) -> bool:
            # A busy node may be slow to answer: retry a transport failure before
            # calling the institution unregistered.
            for attempt in range(3):
                try:
                    r = run.http.get(
                        f"{cons.url(inst.home_node)}/v1/institutions/{inst.institution_id}",
                        timeout=30,
                    )
                except httpx.HTTPError:
                    time.sleep(1 + attempt)
                    continue
                return r.status_code == 200 and r.json().get("public_key") == inst.public_key
            return False

        with ThreadPoolExecutor(max_workers=16) as pool:
            found = dict(
                zip([i.institution_id for i in insts], pool.map(registered, insts), strict=True)
            )
        count = sum(found.values())
        problems = []
        reg = want.get("registered")
        if reg == "all" and count != len(insts):
            problems.append(
                f"{count} of {len(insts)} institutions are registered at their home node; not: "
                + ", ".join([i for i, ok in found.items() if not ok][:5])
            )
        elif isinstance(reg, int) and count < reg:
            problems.append(f"{count} institutions are registered, fewer than {reg}")
        lacking = [i for i in want.get("include", []) if not found.get(i)]
        if lacking:
            problems.append(f"not registered: {', '.join(lacking)}")
        return result(
            not problems, {"registered": count, "institutions": len(insts)}, "; ".join(problems)
        )
    if key == "bundle":
        return _check_bundle(run, step, want, result)
    if key == "checkpoint_conflict":
        return _check_conflict(run, want, result)
    return result(False, None, f"unknown expectation {key}")


def _load_bundle(run: _Run, alias: str) -> tuple[QueryOutcome, dict[str, Any]]:
    q = run.queries.get(alias)
    if q is None or not q.bundle_path:
        raise StepFailedError(
            f"query {alias} has no saved bundle ({q.status if q else 'it did not run'})"
        )
    return q, json.loads(Path(q.bundle_path).read_text("utf-8"))


def _check_bundle(
    run: _Run, step: Step, want: dict[str, Any], result: Callable[..., Check]
) -> Check:
    q, bundle = _load_bundle(run, want["query"])
    try:
        verify_bundle(bundle, run.manifest)
        ok, why = True, "verifies"
    except (BundleError, LedgerError, KeyError, TypeError, ValueError) as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    node = want.get("with_current_checkpoint_of")
    if node and ok:
        # The holder's records in the bundle, checked against the tree it serves now: fresh inclusion
        # proofs of the same entries at the same indices against its current signed checkpoint.
        sections = [h for h in bundle["report"]["holders"] if h["node_id"] == node]
        if not sections:
            return result(False, None, f"bundle {want['query']} holds no records of {node}")
        header = verify_checkpoint_note(
            run.manifest, node, run.checkpoint(node), run.manifest.algorithm
        )
        import base64

        failed = []
        for item in sections[0]["records"]:
            index = int(item["index"])
            entry_b = base64.b64decode(item["entry"])
            proof = run.proof(node, "/v1/proofs/inclusion", {"index": index, "size": header.size})
            try:
                if proof is None:
                    raise ProofError(f"{node} gives no inclusion proof for index {index}")
                verify_inclusion(
                    leaf_hash(entry_b, run.manifest.algorithm),
                    index,
                    header.size,
                    proof,
                    header.root,
                    run.manifest.algorithm,
                )
            except (ProofError, LedgerError):
                failed.append(index)
        ok = not failed
        why = (
            f"all {len(sections[0]['records'])} records of {node} are in its current tree (size "
            f"{header.size})"
            if ok
            else f"records at {failed} of {node} are not in its current tree (size {header.size})"
        )
    return result(
        ok == want["verifies"],
        why,
        f"expected the bundle to {'verify' if want['verifies'] else 'fail'}: {why}",
    )


def _check_conflict(run: _Run, want: dict[str, Any], result: Callable[..., Check]) -> Check:
    node = want["node"]
    q, bundle = _load_bundle(run, want["bundle"])
    sections = [h for h in bundle["report"]["holders"] if h["node_id"] == node]
    if not sections:
        return result(False, None, f"bundle {want['bundle']} holds no checkpoint of {node}")
    alg = run.manifest.algorithm
    old = verify_checkpoint_note(run.manifest, node, sections[0]["checkpoint"], alg)
    new = verify_checkpoint_note(run.manifest, node, run.checkpoint(node), alg)
    if old.size == new.size:
        conflict = old.root != new.root
        why = f"both signed at size {old.size}, {'different' if conflict else 'the same'} roots"
    elif old.size < new.size:
        proof = run.proof(node, "/v1/proofs/consistency", {"old": old.size, "new": new.size})
        try:
            if proof is None:
                raise ProofError("no consistency proof served")
            verify_consistency(old.size, new.size, old.root, new.root, proof, alg)
            conflict, why = False, f"size {old.size} → {new.size} is consistent"
        except (ProofError, LedgerError) as exc:
            conflict, why = (
                True,
                f"no valid consistency proof from size {old.size} to {new.size}: {exc}",
            )
    else:
        conflict, why = (
            True,
            f"{node} now signs a smaller tree ({new.size}) than it signed before ({old.size})",
        )
    return result(conflict, why, f"expected {node}'s checkpoints to conflict: {why}")


# --- the run ------------------------------------------------------------------------------------------
def _run_step(run: _Run, step: Step) -> StepResult:
    res = StepResult(
        step.index,
        step.id,
        step.action,
        step.line,
        step.note,
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    t0 = time.perf_counter()
    try:
        res.detail = getattr(run, f"do_{step.action}")(step, step.args)
    except (StepFailedError, net.NetworkError, NodeError, LedgerError, OSError) as exc:
        res.ok, res.error = False, str(exc)
    except (
        Exception
    ) as exc:  # a bug in the runner or an answer it cannot read: keep going, keep the evidence
        res.ok, res.error = False, f"{type(exc).__name__}: {exc}"
        res.traceback = traceback.format_exc()
    res.seconds = time.perf_counter() - t0
    if not res.ok:
        res.checks.append(
            Check(step.id, "step", "completes", res.error, False, res.error or "failed", step.line)
        )
    q = run.queries.get(step.alias) if step.action == "query" else None
    query_keys = [k for k in step.expect if step.action == "query" and k in _QUERY_KEYS]
    general = [k for k in step.expect if k not in query_keys]
    if q is not None:
        for k in query_keys:
            res.checks.append(
                _safe(partial(_check_query, run, step, k, step.expect[k], q), step, k)
            )
    else:
        for k in query_keys:
            res.checks.append(
                Check(
                    step.id,
                    k,
                    step.expect[k],
                    None,
                    False,
                    "not checked: the query did not run",
                    step.expect_lines.get(k),
                )
            )
    deadline = time.monotonic() + (step.within or 0.0)
    while True:
        checks = [
            _safe(partial(_check_general, run, step, k, step.expect[k]), step, k) for k in general
        ]
        if all(c.ok for c in checks) or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    res.checks.extend(checks)
    return res


def _safe(fn: Callable[[], Check], step: Step, key: str) -> Check:
    try:
        return fn()
    except (
        StepFailedError,
        net.NetworkError,
        NodeError,
        LedgerError,
        OSError,
        KeyError,
        ValueError,
    ) as exc:
        return Check(
            step.id,
            key,
            step.expect.get(key),
            None,
            False,
            f"could not check: {exc}",
            step.expect_lines.get(key),
        )


_QUERY_KEYS = frozenset(QUERY_EXPECTATIONS)


@contextmanager
def _closing(run: _Run) -> Iterator[_Run]:
    try:
        yield run
    finally:
        run.close()


def run_scenario(
    spec: Scenario,
    *,
    directory: Path | None = None,
    out: Path | None = None,
    target: str = "local",
    echo: Callable[[str], None] = lambda s: None,
    progress: bool = False,
    down_after: bool = False,
    fresh: bool = False,
) -> RunResult:
    """Run every step of ``spec`` and write its report to ``out``.

    Raises:
        RunnerError: the target is not supported, or the network cannot be started or reused.
    """
    from scenarios.scenario.report import write_report

    if target not in ("local", "docker"):
        raise RunnerError(f"--target must be local or docker, got {target!r}")
    directory = Path(directory) if directory is not None else default_dir(spec)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out is not None else Path("scenario-results") / f"{spec.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tgt: _LocalTarget | _DockerTarget
    if target == "docker":
        cons, info = ensure_docker_network(spec, directory, echo=echo, fresh=fresh)
        tgt = _DockerTarget(cons, spec.timeouts["startup"], out)
    else:
        cons, info = ensure_network(spec, directory, echo=echo, progress=progress, fresh=fresh)
        tgt = _LocalTarget(cons, spec.timeouts["startup"])
    for note in info.get("notes", []):
        echo(f"note: {note}")
    try:
        extra = []
        for e in spec.institutions:
            try:
                extra.append(_register(cons, e.institution_id, e.name, e.city, e.node, e.purposes))
            except (StepFailedError, net.NetworkError) as exc:
                raise RunnerError(f"institutions line {e.line}: {exc}") from exc
        known = {i.institution_id for i in cons.institutions}
        cons = dataclasses.replace(
            cons,
            institutions=cons.institutions
            + tuple(i for i in extra if i.institution_id not in known),
        )
        run = _Run(spec, cons, out, echo, tgt)
        result = RunResult(spec, out, info, run.tag, started)
        with _closing(run):
            run.resolve_enterprises()
            result.network["enterprises_named"] = dict(run.usccs)
            for step in spec.steps:
                res = _run_step(run, step)
                result.steps.append(res)
                passed = sum(c.ok for c in res.checks)
                mark = "ok" if res.passed else "FAIL"
                what = _step_summary(step, res, run)
                echo(
                    f"[{step.index + 1}/{len(spec.steps)}] {step.id}: {what} ({res.seconds:.2f} s) "
                    f"{passed}/{len(res.checks)} checks {mark}"
                )
            result.queries = list(run.queries.values())
            result.cleanup = run.restore()
            result.network["record_ids"] = dict(run.record_ids)
            result.network["rogues"] = list(run.rogues)
    finally:
        if down_after:
            with suppress(net.NetworkError):
                tgt.down()
    result.seconds = time.monotonic() - t0
    write_report(result)
    return result


def _step_summary(step: Step, res: StepResult, run: _Run) -> str:
    if not res.ok:
        return f"{step.action} failed: {res.error}"
    if step.action == "query":
        q = run.queries.get(step.alias)
        if q is None:
            return "query"
        extra = f", missing {', '.join(m['node_id'] for m in q.missing)}" if q.missing else ""
        why = f" ({q.reason})" if q.reason else ""
        return f"query {q.status}{why}, {len(q.holders)} holders, {len(q.history)} records{extra}"
    if step.action in ("ingest", "correct"):
        return f"{step.action} {len(res.detail.get('records', []))} record(s) at {res.detail.get('node')}"
    if step.action == "rogue":
        return (
            f"{res.detail.get('node')} rewrote its history: {res.detail.get('old_size')} → "
            f"{res.detail.get('new_size')} "
            f"entries, altered {len(res.detail.get('altered', []))}, removed "
            f"{len(res.detail.get('removed', []))}"
        )
    return step.action
