"""The local network: a consortium directory, seeded ledgers, one process per node.

``creditchain consortium init`` / ``up`` / ``status`` / ``down`` / ``query``
are thin wrappers over the functions here, which the end-to-end tests call
directly. A consortium directory (default ``./.creditchain``) holds::

    consortium.json            topology (preset name or topology.yaml), base port, counts
    topology.yaml              copy of a custom topology file (FILE presets only)
    manifest.json              the consortium manifest, signed by the root key
    institutions.json          the simulated query institutions (id, city, home node, purposes, key)
    keys/root.key              consortium root (regulator) key        } Ed25519 PKCS#8 PEM,
    keys/nodes/<node>.key      one per node (operator key id node:<id>) } files 0600,
    keys/institutions/<id>.key one per institution (key id inst:<id>)  } directories 0700
    nodes/<node>/settings.json the node's settings (``python -m node --config``)
    nodes/<node>/data/         ledger.db and state.db
    nodes/<node>/seed.json     what seeding wrote into the ledger
    nodes/<node>/node.pid      pid of the running node process
    network.json               run state: dir, ports, pids, seeding parameters
    logs/<node>.log            the node's stdout and stderr
    consents/<auth>.txt        consent documents behind filed authorizations
    reports/<query>.json       report bundles saved by ``creditchain query``

Invariants: keys are never overwritten (``init --force`` deletes the whole
consortium first, data included, because new keys cannot sign old ledgers);
seeding writes each ledger to a temporary file renamed into place when
complete, so an interrupted seeding never leaves a half-seeded ledger that
looks finished; a node process is only ever signalled after checking that the
pid still runs ``python -m node`` with this directory's settings file.
Every expected failure raises :class:`NetworkError` with one plain sentence.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import parse_json, utc_now
from node.datadir import private_umask
from scenarios.errors import NetworkError
from scenarios.localnet.client import register_institutions
from scenarios.localnet.consortium import (
    DEFAULT_BASE_PORT,
    DEFAULT_DIR,
    Consortium,
    consortium_exists,
    init_consortium,
    load_consortium,
    pid_alive,
    port_free,
    read_state,
    resolve_topology,
    running_nodes,
    settings_path,
    write_state,
)
from scenarios.localnet.processes import node_infos, spawn, wait_healthy, wait_mirrored
from scenarios.localnet.seeding import SeedResult, needs_seed, seed_ledgers
from scenarios.model.topology import PRESETS
from scenarios.model.workloads import SyntheticData

__all__ = [
    "NodeStatus",
    "UpResult",
    "down",
    "kill_node",
    "network_status",
    "up",
]

_STOP_TIMEOUT_S = 15.0


# --- up / down / status ----------------------------------------------------------------
@dataclass
class UpResult:
    cons: Consortium
    already_running: bool = False
    initialized: bool = False
    seeded: SeedResult | None = None
    started: list[str] = field(default_factory=list)
    start_seconds: float = 0.0
    mirror_seconds: float = 0.0
    registered: tuple[int, int] = (0, 0)
    register_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    statuses: list[NodeStatus] = field(default_factory=list)


DEFAULT_ENTERPRISES = 20000
DEFAULT_SEED = 2020


# Under a private umask (0077): the ledgers seeded here, the node logs and the saved state
# are their owner's alone from the moment they exist, whatever umask the caller had.
@private_umask()
def up(
    directory: Path = DEFAULT_DIR,
    *,
    preset: str | None = None,
    enterprises: int | None = None,
    seed: int | None = None,
    base_port: int | None = None,
    timeout_s: float = 180.0,
    progress: bool = True,
    echo: Callable[[str], None] = lambda s: None,
) -> UpResult:
    """Init (if needed), seed (if empty), start, wait healthy and mirrored, register institutions.

    Running again while the network runs changes nothing; after ``down`` (or
    with some nodes killed) it starts the stopped nodes on their kept data.
    """
    directory = Path(directory)
    result_init = False
    if not consortium_exists(directory):
        cons = init_consortium(
            directory, preset or "launch-2020", base_port=base_port or DEFAULT_BASE_PORT
        )
        result_init = True
        echo(
            f"created the {cons.topology.name} consortium in {directory}: {len(cons.node_ids)} node keys, "
            f"{len(cons.institutions)} institution keys, signed manifest"
        )
    else:
        cons = load_consortium(directory)
        if preset is not None:
            resolve_topology(preset)  # an unknown preset is named as such, not as a mismatch
        if preset is not None and _preset_key(preset) != _preset_key(cons.preset):
            raise NetworkError(
                f"{directory} holds the {cons.preset} consortium, not {preset}; use another --dir "
                f"or replace it with `creditchain consortium init --force --preset {preset}`"
            )
        if base_port is not None and base_port != cons.ports[cons.node_ids[0]]:
            raise NetworkError(
                f"{directory} uses ports from {cons.ports[cons.node_ids[0]]}; to change them, "
                "re-create it with `creditchain consortium init --force --base-port N`"
            )
    result = UpResult(cons, initialized=result_init)
    state = read_state(directory)
    # Seeding parameters are fixed by the first `up` that seeds; later runs keep the data.
    seeding = state.get("seeding") or {
        "enterprises": enterprises or DEFAULT_ENTERPRISES,
        "seed": DEFAULT_SEED if seed is None else seed,
    }
    if state.get("seeding") and (
        (enterprises is not None and enterprises != seeding["enterprises"])
        or (seed is not None and seed != seeding["seed"])
    ):
        result.notes.append(
            f"this network was seeded with {seeding['enterprises']} enterprises (seed {seeding['seed']}); "
            "its data is kept, so --enterprises and --seed are ignored"
        )
    alive = running_nodes(directory)
    if len(alive) == len(cons.node_ids):
        result.already_running = True
        result.statuses = network_status(cons)
        return result

    try:
        SyntheticData(cons.topology, int(seeding["enterprises"]), int(seeding["seed"]))
    except ValueError as exc:
        raise NetworkError(f"--enterprises: {exc}") from exc
    to_seed = [n for n in cons.node_ids if n not in alive and needs_seed(cons, n)]
    state["seeding"] = seeding
    state["preset"] = cons.preset
    write_state(directory, state)
    if to_seed:
        result.seeded = seed_ledgers(
            cons, to_seed, int(seeding["enterprises"]), int(seeding["seed"]), progress=progress
        )
        echo(
            f"seeded {result.seeded.records:,} records into {len(to_seed)} ledgers in "
            f"{result.seeded.seconds:.1f} s "
            f"({result.seeded.rate:,.0f} records/s)"
        )

    to_start = [n for n in cons.node_ids if n not in alive]
    for node_id in to_start:
        if not port_free(cons.ports[node_id]):
            raise NetworkError(
                f"port {cons.ports[node_id]} (for node {node_id}) is in use by another program; stop it, "
                "or re-create the consortium with `creditchain consortium init --force --base-port N`"
            )
    t0 = time.monotonic()
    pids = dict(alive)
    nodes_state = state.setdefault("nodes", {})
    for node_id in to_start:
        pid = spawn(cons, node_id)
        pids[node_id] = pid
        nodes_state[node_id] = {
            "pid": pid,
            "port": cons.ports[node_id],
            "url": cons.url(node_id),
            "started_at": utc_now(),
            "log": str(cons.log_path(node_id)),
        }
    write_state(directory, state)
    result.started = to_start
    echo(
        f"started {len(to_start)} node process{'es' if len(to_start) != 1 else ''}; waiting until healthy"
    )
    wait_healthy(cons, {n: pids[n] for n in to_start}, timeout_s=min(timeout_s, 90.0))
    result.start_seconds = time.monotonic() - t0
    echo(
        f"healthy after {result.start_seconds:.1f} s; waiting until every node has mirrored every peer"
    )
    result.mirror_seconds = wait_mirrored(cons, timeout_s, progress=progress)
    # Registered after mirroring: while nodes pull their peers' entries they answer slowly.
    # A ledger keeps its institution entries: register again only where that has not succeeded yet.
    t1 = time.monotonic()
    done = set(state.get("institutions_registered", [])) - set(to_seed)
    result.registered = register_institutions(cons, [n for n in cons.node_ids if n not in done])
    result.register_seconds = time.monotonic() - t1
    if result.registered[
        0
    ]:  # the new institution entries: one more mirroring round, and all views agree
        result.mirror_seconds += wait_mirrored(cons, timeout_s)
    state["institutions_registered"] = list(cons.node_ids)
    write_state(directory, state)
    result.statuses = network_status(cons)
    return result


def _preset_key(p: str) -> str:
    return p if p in PRESETS else str(Path(p).resolve())


@dataclass
class NodeStatus:
    node_id: str
    city: str
    url: str
    pid: int | None
    info: dict[str, Any] | None
    seeded: dict[str, Any] | None

    @property
    def up(self) -> bool:
        return self.info is not None

    @property
    def enterprises(self) -> int | None:
        # /v1/info reports enterprises only once a node counts them; fall back to what seeding wrote.
        live = int(self.info.get("enterprises") or 0) if self.info else 0
        if live:
            return live
        return int(self.seeded["enterprises"]) if self.seeded else None


def network_status(cons: Consortium) -> list[NodeStatus]:
    alive = running_nodes(cons.dir)
    infos = node_infos(cons)
    out = []
    for node_id in cons.node_ids:
        seeded = None
        if cons.seed_path(node_id).exists():
            try:
                seeded = parse_json(cons.seed_path(node_id).read_text("utf-8"), "seed")
            except (OSError, ValueError):
                seeded = None
        out.append(
            NodeStatus(
                node_id,
                cons.city_name(node_id),
                cons.url(node_id),
                alive.get(node_id),
                infos.get(node_id),
                seeded,
            )
        )
    return out


def kill_node(cons: Consortium, node_id: str, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to one running node (tests: SIGKILL a holder). Returns its pid."""
    pid = running_nodes(cons.dir).get(node_id)
    if pid is None:
        raise NetworkError(f"node {node_id} is not running")
    os.kill(pid, sig)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while pid_alive(pid, cons.settings_path(node_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


def down(directory: Path = DEFAULT_DIR, *, timeout_s: float = _STOP_TIMEOUT_S) -> dict[str, str]:
    """Stop every node of ``directory`` (SIGTERM, then SIGKILL after ``timeout_s``); data is kept.

    Returns node → how it stopped ("stopped", "killed").
    """
    directory = Path(directory)
    if not consortium_exists(directory):
        raise NetworkError(f"there is no consortium in {directory}; nothing to stop")
    alive = running_nodes(directory)
    outcome: dict[str, str] = {}
    for pid in alive.values():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    remaining = dict(alive)
    while remaining and time.monotonic() < deadline:
        for node_id, pid in list(remaining.items()):
            if not pid_alive(pid, settings_path(directory, node_id)):
                outcome[node_id] = "stopped"
                del remaining[node_id]
        if remaining:
            time.sleep(0.1)
    for node_id, pid in remaining.items():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        outcome[node_id] = "killed"
    for node_id, pid in remaining.items():
        end = time.monotonic() + 5
        while pid_alive(pid, settings_path(directory, node_id)) and time.monotonic() < end:
            time.sleep(0.05)
    state = read_state(directory)
    for node_id in state.get("nodes", {}):
        state["nodes"][node_id]["pid"] = None
        (directory / "nodes" / node_id / "node.pid").unlink(missing_ok=True)
    if state.get("nodes"):
        write_state(directory, state)
    return outcome
