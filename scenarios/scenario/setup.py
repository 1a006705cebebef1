"""Bring up the network a scenario runs on: reuse, create or start it, locally or as containers."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    parse_json,
    utc_now,
)
from node.errors import ConfigError, NodeError
from node.keys import generate_key_file, load_private_key, public_b64
from scenarios import localnet as net
from scenarios.errors import RunnerError, StepFailedError
from scenarios.scenario.spec import Scenario


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
        settings = parse_json(path.read_text("utf-8"), str(path))
        lat = settings.setdefault("latency_ms", {})
        if all(float(lat.get(p, -1)) == ms for p, ms in links.items()):
            continue
        lat.update(links)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
        os.replace(tmp, path)
        changed.append(node_id)
    return changed


def start_node(cons: net.Consortium, node_id: str, timeout_s: float) -> int:
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


def stop_node(cons: net.Consortium, node_id: str, sig: int) -> None:
    try:
        net.kill_node(cons, node_id, sig)
    except net.NetworkError as exc:
        raise StepFailedError(str(exc)) from exc
    if node_id in net.running_nodes(cons.dir):
        raise StepFailedError(f"{node_id} did not stop")


def wait_links_mirrored(
    cons: net.Consortium, timeout_s: float, *, node: str | None = None, size: int | None = None
) -> float:
    """Until each answering node has mirrored each answering peer it does not refuse; returns seconds.

    Unlike :func:`scenarios.localnet.processes.wait_mirrored`, links to a refused peer (an open alarm)
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
            wait_links_mirrored(cons, spec.timeouts["startup"])
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
        wait_links_mirrored(cons, spec.timeouts["startup"])
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


def register_institution(
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
