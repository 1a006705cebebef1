"""What the crash harness and the soak share.

A local network of their own, its cross-city targets, and where results go.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml

from scenarios import localnet as net
from scenarios.errors import ReliabilityError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology

CLIENT_TIMEOUT_S = 30.0


# --- the network ---------------------------------------------------------------------------
def _topology_ref(preset: str, nodes: int | None, workdir: Path) -> tuple[str, Topology]:
    """The preset, or a topology file with ``nodes`` nodes spread over its cities by share."""
    try:
        topology = load_topology(preset)
    except TopologyError as exc:
        raise ReliabilityError(f"unknown preset or bad topology file: {exc}") from exc
    if nodes is None or nodes == len(topology.node_ids):
        return (preset if preset in PRESETS else str(Path(preset).resolve())), topology
    try:
        small = topology.with_node_counts(nodes)
    except TopologyError as exc:
        raise ReliabilityError(str(exc)) from exc
    path = workdir / f"topology-{nodes}n.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        "name": small.name,
        "algorithm": small.algorithm,
        "institutions": small.institutions,
        "cities": [
            {
                "code": c.code,
                "name": c.name,
                "name_zh": c.name_zh,
                "admin_code": c.admin_code,
                "nodes": c.nodes,
                "share": c.share,
                "lat": c.lat,
                "lon": c.lon,
            }
            for c in small.cities
        ],
    }
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return str(path), small


@contextmanager
def local_network(
    workdir: Path,
    preset: str,
    nodes: int | None,
    enterprises: int,
    seed: int,
    echo: Callable[[str], None],
    timeout_s: float = 300.0,
) -> Iterator[net.Consortium]:
    """A freshly initialized, seeded and running network in ``workdir/network``; always stopped on exit."""
    ref, topology = _topology_ref(preset, nodes, workdir)
    directory = workdir / "network"
    if net.consortium_exists(directory):
        raise ReliabilityError(
            f"{directory} already holds a consortium; give an empty --out or work directory"
        )
    n = len(topology.node_ids)
    try:
        net.init_consortium(directory, ref, base_port=_base_port(n))
        echo(
            f"starting {topology.name}: {n} node processes, {enterprises:,} enterprises, in {directory}"
        )
        try:
            result = net.up(
                directory, enterprises=enterprises, seed=seed, progress=False, timeout_s=timeout_s
            )
            yield result.cons
        finally:
            net.down(directory)
    except net.NetworkError as exc:
        raise ReliabilityError(f"the local network failed: {exc}") from exc


def _base_port(count: int) -> int:
    """Free ports below the kernel's ephemeral range.

    So no outgoing connection takes one before a node binds it.
    """
    low = 32768
    with suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if low - count > 20000:
        return net.find_free_base_port(count, start=20000, end=low)
    return net.find_free_base_port(count)


def verifier_keys(cons: net.Consortium) -> dict[str, str]:
    return {n: cons.node(n).note_verifier().key_string() for n in cons.node_ids}


def cross_city_targets(
    cons: net.Consortium, rng: random.Random, n: int
) -> list[tuple[net.Institution, str]]:
    """(institution, enterprise) pairs, the enterprise held in two cities other than the institution's."""
    samples = net.sample_enterprises(cons, None, limit=max(2, n), min_cities=2)
    if not samples:
        raise ReliabilityError(
            "the seeded data has no enterprise held in two cities; seed more enterprises"
        )
    out = []
    for i in range(n):
        s = samples[i % len(samples)]
        insts = [x for x in cons.institutions if x.city != s.city and "post_loan" in x.purposes]
        if not insts:
            raise ReliabilityError(
                "no institution outside the enterprises' cities is registered for post_loan"
            )
        out.append((rng.choice(insts), s.uscc))
    return out


def machine_facts(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The host, with its load average before and after: other work on it shows in the figures."""
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }


# --- output ----------------------------------------------------------------------------------
def write_results(result: Mapping[str, Any], out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


def remove_workdir(path: Path) -> None:
    with suppress(OSError):
        shutil.rmtree(path)
