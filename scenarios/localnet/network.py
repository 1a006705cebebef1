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

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import PURPOSES, InvalidUsccError, Ledger, LedgerError, NoteSigner, parse_uscc, utc_now
from ledger.store import fsync_path
from node.bundle import BundleSummary, verify_bundle
from node.consortium import Manifest, NodeInfo, load_manifest, sign_manifest
from node.errors import BundleError, ConfigError
from node.http import httpsig
from node.keys import generate_key_file, load_private_key, public_b64
from node.peers.client import default_latency_ms
from scenarios.errors import MirrorStalledError, NetworkError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology
from scenarios.model.workloads import SyntheticData

__all__ = [
    "DEFAULT_DIR",
    "Consortium",
    "Institution",
    "MirrorStalledError",
    "NetworkError",
    "NodeStatus",
    "QueryResult",
    "SeedResult",
    "UpResult",
    "down",
    "find_free_base_port",
    "init_consortium",
    "kill_node",
    "load_consortium",
    "network_status",
    "query_report",
    "sample_enterprises",
    "seed_ledgers",
    "set_catalogue_mode",
    "up",
    "verify_bundle_file",
    "wait_mirrored",
]

DEFAULT_DIR = Path(".creditchain")
DEFAULT_BASE_PORT = 8100
SAME_CITY_LATENCY_MS = 0.5
MIRROR_INTERVAL_S = 2.0
SEED_BATCH = 1000
SEED_WORKERS = 2
# Records per enterprise in the synthetic data (measured: 57,092 records for
# 20,000 enterprises on launch-2020); only sizes the progress bar.
RECORDS_PER_ENTERPRISE = 2.85
# From this many enterprises on, seeding sets the nodes to the compact catalogue
# (node.catalogue): full mirroring pulls every peer entry into every node, which
# takes minutes at 10^5 enterprises and cannot finish at the chain's 16.82 million.
COMPACT_CATALOGUE_FROM = 100_000
_STOP_TIMEOUT_S = 15.0
_INSTITUTION_KINDS = (
    # (id prefix, name suffix, purposes); every fourth institution of a city is a guarantor
    ("bank", "Commercial Bank", ("pre_loan", "post_loan", "credit_line")),
    ("guar", "Credit Guarantee Co.", ("guarantee", "pre_loan", "post_loan")),
)


# --- the consortium directory ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Institution:
    institution_id: str
    name: str
    city: str
    home_node: str
    purposes: tuple[str, ...]
    key_file: Path
    public_key: str

    def key(self) -> Ed25519PrivateKey:
        return load_private_key(self.key_file)


@dataclass(frozen=True)
class Consortium:
    """A consortium directory, loaded: topology, manifest, ports and institutions."""

    dir: Path
    topology: Topology
    topology_ref: str  # preset name, or the path of the copied topology file
    preset: str  # what the user named: a preset or the original file
    manifest: Manifest
    ports: Mapping[str, int]
    institutions: tuple[Institution, ...]
    # "local": processes started by `creditchain up`; "docker": containers from `creditchain compose`,
    # whose manifest names http://<node>:8000 while the host reaches them on published ports.
    target: str = "local"
    host_urls: Mapping[str, str] = field(default_factory=dict)
    project: str = ""
    compose_file: str = ""

    @property
    def node_ids(self) -> tuple[str, ...]:
        return self.topology.node_ids

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def state_path(self) -> Path:
        return self.dir / "network.json"

    def node(self, node_id: str) -> NodeInfo:
        if not self.manifest.has(node_id):
            raise NetworkError(
                f"there is no node {node_id!r} in this consortium; nodes are {', '.join(self.node_ids)}"
            )
        return self.manifest.node(node_id)

    def url(self, node_id: str) -> str:
        """Where this host reaches the node (a published port for containers)."""
        return self.host_urls.get(node_id) or self.node(node_id).url

    def public_url(self, node_id: str) -> str:
        """The node's URL in the manifest: what signed requests name in ``@authority``."""
        return self.node(node_id).url

    def transport(self) -> httpx.BaseTransport | None:
        """For containers: a transport that sends requests addressed to a node's public URL to
        the port published on this host (None when the two are the same)."""
        if not self.host_urls:
            return None
        routes = {
            httpx.URL(self.public_url(n)).netloc: httpx.URL(u) for n, u in self.host_urls.items()
        }
        return PublishedPortTransport(routes)

    def node_dir(self, node_id: str) -> Path:
        return self.dir / node_id if self.target == "docker" else self.dir / "nodes" / node_id

    def settings_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "settings.json"

    def ledger_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "data" / "ledger.db"

    def pid_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "node.pid"

    def seed_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "seed.json"

    def log_path(self, node_id: str) -> Path:
        return self.dir / "logs" / f"{node_id}.log"

    def node_key_path(self, node_id: str) -> Path:
        if self.target == "docker":
            return self.node_dir(node_id) / "node.key"
        return self.dir / "keys" / "nodes" / f"{node_id}.key"

    def node_key(self, node_id: str) -> Ed25519PrivateKey:
        return load_private_key(self.node_key_path(node_id))

    def root_public_key(self) -> str:
        root = self.dir / ("consortium-root.key" if self.target == "docker" else "keys/root.key")
        return public_b64(load_private_key(root))

    def institution(self, institution_id: str) -> Institution:
        for inst in self.institutions:
            if inst.institution_id == institution_id:
                return inst
        examples = ", ".join(i.institution_id for i in self.institutions[:3])
        raise NetworkError(
            f"unknown institution {institution_id!r}; this consortium has {len(self.institutions)} "
            f"(e.g. {examples}; run `creditchain institutions` for all)"
        )

    def city_name(self, node_id: str) -> str:
        return self.topology.city_of_node(node_id).name


class PublishedPortTransport(httpx.BaseTransport):
    """Sends a request addressed to ``http://<node>:8000`` to the port the host publishes.

    The request keeps its URL's authority in the ``Host`` header and in its
    RFC 9421 signature (signed before the transport runs), so a container
    node, which checks ``@authority`` against its public URL, accepts it.
    """

    def __init__(self, routes: Mapping[bytes, httpx.URL]) -> None:
        self._routes = dict(routes)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self._routes.get(request.url.netloc)
        if target is not None:
            request.url = request.url.copy_with(
                scheme=target.scheme, host=target.host, port=target.port
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise NetworkError(f"{what} {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise NetworkError(f"{what} {path} cannot be read: {exc}") from exc


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (with SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_free_base_port(count: int, start: int = 20000, end: int = 32000, tries: int = 200) -> int:
    """A base port ``p`` with ``p .. p+count-1`` all free (for tests and crowded hosts).

    The range stays below Linux's ephemeral ports (32768-60999), which outgoing
    connections take: a node started later on one of those would find it taken.
    """
    import random

    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(start, end - count)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise NetworkError(f"found no {count} consecutive free ports between {start} and {end}")


def _load_topology(preset: str) -> tuple[Topology, str]:
    try:
        return load_topology(preset), preset
    except TopologyError as exc:
        raise NetworkError(f"unknown preset or bad topology file: {exc}") from exc
    except OSError as exc:
        raise NetworkError(f"cannot read topology {preset}: {exc.strerror}") from exc


def institution_plan(topology: Topology) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(id, name, city code, home node, purposes) for the preset's institution count.

    Institutions are spread over the cities by enterprise share (largest
    remainder, at least one per city when there are enough) and over a city's
    nodes round-robin.
    """
    total = max(0, topology.institutions)
    if total == 0:
        return []
    raw = [(c, total * c.share) for c in topology.cities]
    counts = {c.code: int(q) for c, q in raw}
    if total >= len(topology.cities):
        for c in topology.cities:
            counts[c.code] = max(1, counts[c.code])
    rest = total - sum(counts.values())
    order = sorted(raw, key=lambda cq: -(cq[1] - int(cq[1])))
    i = 0
    while rest > 0:
        counts[order[i % len(order)][0].code] += 1
        rest -= 1
        i += 1
    while rest < 0:  # the minimum of one per city overshot: take from the largest
        big = max(topology.cities, key=lambda c: counts[c.code])
        counts[big.code] -= 1
        rest += 1
    plan: list[tuple[str, str, str, str, tuple[str, ...]]] = []
    for city in topology.cities:
        for k in range(1, counts[city.code] + 1):
            prefix, noun, purposes = _INSTITUTION_KINDS[1 if k % 4 == 0 else 0]
            home = city.node_ids[(k - 1) % city.nodes]
            plan.append(
                (
                    f"{prefix}-{city.code}-{k:03d}",
                    f"{city.name} {noun} {k}",
                    city.code,
                    home,
                    purposes,
                )
            )
    return plan


def consortium_exists(directory: Path) -> bool:
    return (directory / "consortium.json").exists() or (directory / "manifest.json").exists()


def init_consortium(
    directory: Path,
    preset: str = "launch-2020",
    *,
    base_port: int = DEFAULT_BASE_PORT,
    force: bool = False,
    check_ports: bool = True,
) -> Consortium:
    """Create keys, the signed manifest, institutions and node settings in ``directory``.

    Raises:
        NetworkError: unknown preset, a consortium already there (without
            ``force``), a running network, a port out of range or in use.
    """
    directory = Path(directory)
    topology, _ = _load_topology(preset)
    nodes = topology.node_ids
    if not 1024 <= base_port <= 65535 - len(nodes) + 1:
        raise NetworkError(
            f"--base-port must leave room for {len(nodes)} ports in 1024..65535, got {base_port}"
        )
    if consortium_exists(directory):
        if not force:
            raise NetworkError(
                f"{directory} already holds a consortium; use --force to replace it "
                "(this deletes its keys and ledgers) or choose another --dir"
            )
        if running_nodes(directory):
            raise NetworkError(
                f"the network in {directory} is running; stop it with `creditchain down` first"
            )
        _remove_consortium(directory)
    if check_ports:
        for i, node_id in enumerate(nodes):
            if not port_free(base_port + i):
                raise NetworkError(
                    f"port {base_port + i} (for node {node_id}) is in use; choose another --base-port"
                )

    directory.mkdir(parents=True, exist_ok=True)
    keys = _private_dir(directory / "keys")
    _private_dir(keys / "nodes")
    _private_dir(keys / "institutions")
    root = generate_key_file(keys / "root.key")
    topology_ref = preset
    if preset not in PRESETS:
        shutil.copyfile(preset, directory / "topology.yaml")
        topology_ref = "topology.yaml"

    infos: list[NodeInfo] = []
    for i, node_id in enumerate(nodes):
        city = topology.city_of_node(node_id)
        key = generate_key_file(keys / "nodes" / f"{node_id}.key")
        infos.append(
            NodeInfo(
                node_id,
                city.code,
                city.name,
                (city.admin_code,),
                f"http://127.0.0.1:{base_port + i}",
                public_b64(key),
            )
        )
    (directory / "manifest.json").write_bytes(
        sign_manifest(topology.name, topology.algorithm, root, infos)
    )

    for i, node_id in enumerate(nodes):
        city = topology.city_of_node(node_id)
        latency = {
            peer: SAME_CITY_LATENCY_MS
            if topology.city_of_node(peer).code == city.code
            else round(
                default_latency_ms(
                    topology.distance_km(city.code, topology.city_of_node(peer).code)
                ),
                2,
            )
            for peer in nodes
            if peer != node_id
        }
        node_dir = directory / "nodes" / node_id
        settings = {
            "node_id": node_id,
            "data_dir": "data",
            "key_file": os.path.relpath(keys / "nodes" / f"{node_id}.key", node_dir),
            "manifest": os.path.relpath(directory / "manifest.json", node_dir),
            "host": "127.0.0.1",
            "port": base_port + i,
            "public_url": f"http://127.0.0.1:{base_port + i}",
            "mirror_interval_s": MIRROR_INTERVAL_S,
            "peer_timeout_s": 10.0,  # 11 processes on 2 cores: a busy peer is slow, not gone
            "latency_ms": latency,
            "log_level": "warning",  # info logs every peer request (httpx)
        }
        _write_json(node_dir / "settings.json", settings)

    institutions = []
    for inst_id, name, city_code, home, purposes in institution_plan(topology):
        key = generate_key_file(keys / "institutions" / f"{inst_id}.key")
        institutions.append(
            {
                "institution_id": inst_id,
                "name": name,
                "city": city_code,
                "home_node": home,
                "purposes": list(purposes),
                "key_file": f"keys/institutions/{inst_id}.key",
                "public_key": public_b64(key),
            }
        )
    _write_json(directory / "institutions.json", {"institutions": institutions})
    _write_json(
        directory / "consortium.json",
        {
            "preset": preset if preset in PRESETS else str(Path(preset).resolve()),
            "topology": topology_ref,
            "name": topology.name,
            "base_port": base_port,
            "nodes": len(nodes),
            "institutions": len(institutions),
            "created_at": utc_now(),
        },
    )
    return load_consortium(directory)


def _remove_consortium(directory: Path) -> None:
    """Delete what :func:`init_consortium` and :func:`up` created (only those paths)."""
    for name in ("keys", "nodes", "logs", "consents", "reports"):
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in (
        "manifest.json",
        "consortium.json",
        "institutions.json",
        "network.json",
        "topology.yaml",
    ):
        (directory / name).unlink(missing_ok=True)


def load_consortium(directory: Path) -> Consortium:
    """Read a consortium directory made by :func:`init_consortium`."""
    directory = Path(directory)
    if not consortium_exists(directory):
        raise NetworkError(
            f"there is no consortium in {directory}; run `creditchain up` "
            "(or `creditchain consortium init`) first, or pass --dir"
        )
    meta = _read_json(directory / "consortium.json", "consortium file")
    ref = str(meta.get("topology", "launch-2020"))
    topology, _ = _load_topology(ref if ref in PRESETS else str(directory / ref))
    try:
        manifest = load_manifest(directory / "manifest.json")
    except ConfigError as exc:
        raise NetworkError(str(exc)) from exc
    target = str(meta.get("target", "local"))
    urls: dict[str, str] = {}
    ports = {}
    if target == "docker":
        urls = {
            str(k): str(v)
            for k, v in _read_json(directory / "host-urls.json", "host URL map").items()
        }
        missing = [n for n in topology.node_ids if n not in urls]
        if missing:
            raise NetworkError(
                f"{directory / 'host-urls.json'} names no host URL for {', '.join(missing)}; "
                "re-run `creditchain compose`"
            )
        ports = {n: int(httpx.URL(urls[n]).port or 80) for n in topology.node_ids}
    else:
        for node_id in topology.node_ids:
            s = _read_json(
                directory / "nodes" / node_id / "settings.json", f"settings of {node_id}"
            )
            ports[node_id] = int(s["port"])
    raw = _read_json(directory / "institutions.json", "institutions file")
    institutions = tuple(
        Institution(
            str(i["institution_id"]),
            str(i["name"]),
            str(i["city"]),
            str(i["home_node"]),
            tuple(i["purposes"]),
            directory / str(i["key_file"]),
            str(i["public_key"]),
        )
        for i in raw["institutions"]
    )
    return Consortium(
        directory,
        topology,
        ref,
        str(meta.get("preset", ref)),
        manifest,
        ports,
        institutions,
        target=target,
        host_urls=urls,
        project=str(meta.get("project", "")),
        compose_file=str(meta.get("compose_file", "")),
    )


# --- run state ---------------------------------------------------------------------
def read_state(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "network.json"
    if not path.exists():
        return {"nodes": {}}
    state = _read_json(path, "run state")
    state.setdefault("nodes", {})
    return dict(state)


def write_state(directory: Path, state: Mapping[str, Any]) -> None:
    _write_json(
        Path(directory) / "network.json",
        {**state, "dir": str(Path(directory).resolve()), "updated_at": utc_now()},
    )


def _settings_path(directory: Path, node_id: str) -> Path:
    return Path(directory) / "nodes" / node_id / "settings.json"


def _pid_alive(pid: int, settings_path: Path) -> bool:
    """Whether ``pid`` is a live ``python -m node`` process for this settings file."""
    try:  # reap it if it is our own exited child (a zombie otherwise looks alive)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return str(settings_path.resolve()) in proc.cmdline()
    except psutil.Error:
        return False


def running_nodes(directory: Path) -> dict[str, int]:
    """node id → pid of the node processes of ``directory`` that are alive."""
    out = {}
    for node_id, entry in read_state(directory).get("nodes", {}).items():
        pid = entry.get("pid")
        if pid and _pid_alive(int(pid), _settings_path(directory, node_id)):
            out[node_id] = int(pid)
    return out


# --- seeding -------------------------------------------------------------------------
@dataclass
class SeedResult:
    nodes: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # node → {records, enterprises, seconds}
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(int(n["records"]) for n in self.nodes.values())

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


_progress_queue: Any = None


def _seed_worker_init(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means


def _seed_node(
    directory: str, node_id: str, topology_ref: str, enterprises: int, seed: int
) -> dict[str, Any]:
    """Worker: seed one node of a consortium directory (see :func:`seed_ledger_file`)."""
    root = Path(directory)
    topology = load_topology(topology_ref if topology_ref in PRESETS else str(root / topology_ref))
    manifest = load_manifest(root / "manifest.json")
    key = load_private_key(root / "keys" / "nodes" / f"{node_id}.key")
    result = seed_ledger_file(
        root / "nodes" / node_id / "data" / "ledger.db",
        topology=topology,
        manifest=manifest,
        node_id=node_id,
        key=key,
        enterprises=enterprises,
        seed=seed,
    )
    _write_json(root / "nodes" / node_id / "seed.json", result)
    return result


def seed_ledger_file(
    final: Path,
    *,
    topology: Topology,
    manifest: Manifest,
    node_id: str,
    key: Ed25519PrivateKey,
    enterprises: int,
    seed: int,
) -> dict[str, Any]:
    """Write one node's synthetic records into a fresh ledger (temporary file, then rename).

    An existing ledger (a node ran before seeding) is appended to in place. Used
    by the local network's process pool and by a container's first start.
    """
    t0 = time.perf_counter()
    info = manifest.node(node_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    in_place = final.exists()  # an existing empty ledger (a node ran before seeding): append to it
    path = final if in_place else final.with_name(final.name + ".seeding")
    if not in_place:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    signer = NoteSigner(info.origin, key)
    # A fresh file is bulk-loaded (no fsync per block) under a temporary name, then
    # made durable and verified from disk (Ledger.finish_bulk) before it is renamed.
    ledger = (
        Ledger.open(path, signer=signer)
        if in_place
        else Ledger.create(
            path, origin=info.origin, signer=signer, algorithm=manifest.algorithm, bulk=True
        )
    )
    records = 0
    companies = 0
    last_uscc = None
    batch: list[Any] = []
    try:
        for draft in SyntheticData(topology, enterprises, seed).records_for_node(node_id):
            if draft.uscc != last_uscc:  # a node's stream is grouped by enterprise
                companies += 1
                last_uscc = draft.uscc
            batch.append(draft)
            if len(batch) >= SEED_BATCH:
                ledger.append(batch)
                records += len(batch)
                if _progress_queue is not None:
                    _progress_queue.put(len(batch))
                batch = []
        if batch:
            ledger.append(batch)
            records += len(batch)
            if _progress_queue is not None:
                _progress_queue.put(len(batch))
        ledger.finish_bulk()
        height, size = ledger.height, ledger.size
    finally:
        ledger.close()
    if not in_place:
        # Closing the last connection checkpoints the WAL away; should one remain, it moves
        # with the file. The main file moves last: its presence marks the seeding complete.
        for suffix in ("-wal", "-shm"):
            if Path(str(path) + suffix).exists():
                os.replace(str(path) + suffix, str(final) + suffix)
        os.replace(path, final)
        fsync_path(final)  # the rename, too, survives a crash
    seconds = time.perf_counter() - t0
    return {
        "node_id": node_id,
        "records": records,
        "enterprises": companies,
        "entries": size,
        "height": height,
        "seconds": round(seconds, 3),
        "enterprises_total": enterprises,
        "seed": seed,
        "at": utc_now(),
    }


def needs_seed(cons: Consortium, node_id: str) -> bool:
    """A node needs seeding when its ledger does not exist or holds no entries."""
    path = cons.ledger_path(node_id)
    if not path.exists():
        return True
    try:
        ledger = Ledger.open(path, readonly=True)
    except LedgerError:
        return False  # not ours to judge: the node will refuse to start and say why
    try:
        return ledger.size == 0
    finally:
        ledger.close()


def catalogue_mode(enterprises: int) -> str:
    """The catalogue mode a network of ``enterprises`` runs with (see COMPACT_CATALOGUE_FROM)."""
    return "compact" if enterprises >= COMPACT_CATALOGUE_FROM else "full"


def set_catalogue_mode(cons: Consortium, node_ids: Iterable[str], mode: str) -> None:
    """Write the catalogue mode into the settings of ``node_ids`` (read when a node starts).

    Raises:
        NetworkError: an unknown mode.
    """
    from node.settings import CATALOGUE_MODES

    if mode not in CATALOGUE_MODES:
        raise NetworkError(
            f"catalogue mode must be one of {', '.join(CATALOGUE_MODES)}, got {mode!r}"
        )
    for node_id in node_ids:
        path = cons.settings_path(node_id)
        settings = _read_json(path, "node settings")
        if settings.get("catalogue") != mode:
            _write_json(path, {**settings, "catalogue": mode})


def seed_ledgers(
    cons: Consortium,
    node_ids: Sequence[str],
    enterprises: int,
    seed: int,
    *,
    workers: int = SEED_WORKERS,
    progress: bool = True,
    catalogue: str | None = None,
) -> SeedResult:
    """Bulk-load synthetic records into the ledgers of ``node_ids`` through the ledger library.

    One node per task in a process pool (largest first); a tqdm bar counts records.
    The nodes' catalogue mode is set too: ``catalogue``, or by volume when None
    (:func:`catalogue_mode`).

    Raises:
        NetworkError: a worker failed (the message names the node) or the user interrupted.
    """
    if not node_ids:
        return SeedResult()
    set_catalogue_mode(cons, node_ids, catalogue or catalogue_mode(enterprises))
    try:
        data = SyntheticData(cons.topology, enterprises, seed)
    except ValueError as exc:
        raise NetworkError(str(exc)) from exc
    order = sorted(node_ids, key=lambda n: -data.node_enterprise_count(n))
    estimate = int(RECORDS_PER_ENTERPRISE * sum(data.node_enterprise_count(n) for n in order))
    from tqdm import tqdm

    ctx = multiprocessing.get_context("spawn")  # no fork of a possibly threaded parent
    queue = ctx.Queue()
    result = SeedResult()
    t0 = time.perf_counter()
    bar = tqdm(
        total=estimate,
        unit="rec",
        unit_scale=True,
        desc=f"seeding {len(order)} ledgers",
        disable=not progress,
        dynamic_ncols=True,
        leave=True,
    )
    # multiprocessing.Pool rather than ProcessPoolExecutor: on failure or Ctrl-C the
    # workers are terminated at once instead of finishing their (possibly long) ledgers.
    pool = ctx.Pool(
        processes=max(1, min(workers, len(order))), initializer=_seed_worker_init, initargs=(queue,)
    )
    ok = False
    try:
        tasks = {
            node_id: pool.apply_async(
                _seed_node, (str(cons.dir), node_id, cons.topology_ref, enterprises, seed)
            )
            for node_id in order
        }
        while tasks:
            time.sleep(0.1)
            _drain(queue, bar)
            for node_id, task in list(tasks.items()):
                if not task.ready():
                    continue
                del tasks[node_id]
                try:
                    result.nodes[node_id] = task.get()
                except Exception as exc:
                    raise NetworkError(f"seeding {node_id} failed: {exc}") from exc
        _drain(queue, bar)
        bar.total = bar.n
        bar.refresh()
        ok = True
    except KeyboardInterrupt:
        raise NetworkError(
            "seeding was interrupted; run `creditchain up` again to finish it "
            "(ledgers already seeded are kept)"
        ) from None
    finally:
        if ok:
            pool.close()
        else:
            pool.terminate()
        pool.join()
        bar.close()
        queue.close()
        queue.join_thread()
    result.seconds = time.perf_counter() - t0
    return result


def _drain(queue: Any, bar: Any) -> None:
    import queue as _q

    while True:
        try:
            bar.update(queue.get_nowait())
        except _q.Empty:
            return


# --- node processes ------------------------------------------------------------------
def spawn(cons: Consortium, node_id: str) -> int:
    """Start ``python -m node`` for one node: its own session, output to its log file."""
    log = cons.log_path(node_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"--- {utc_now()} starting {node_id} on port {cons.ports[node_id]}\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NODE_")
    }  # NODE_* would override settings
    env["PYTHONUNBUFFERED"] = "1"
    # -P: do not put the current directory on sys.path (a stray ./node must not shadow the package).
    argv = [
        sys.executable,
        "-P",
        "-m",
        "node",
        "--config",
        str(cons.settings_path(node_id).resolve()),
    ]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # posix_spawn, not subprocess.Popen: the node outlives this process, and a
    # Popen object for a still-running child warns when collected.
    pid = os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
    cons.pid_path(node_id).write_text(f"{pid}\n")
    return pid


def _log_tail(cons: Consortium, node_id: str, lines: int = 3) -> str:
    try:
        text = cons.log_path(node_id).read_text("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    tail = [ln for ln in text if not ln.startswith("---")][-lines:]
    return " | ".join(t.strip() for t in tail)


def _get(client: httpx.Client, url: str) -> dict[str, Any] | None:
    try:
        r = client.get(url)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        data = r.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def wait_healthy(cons: Consortium, pids: Mapping[str, int], timeout_s: float) -> float:
    """Wait until every node in ``pids`` answers /v1/health; returns the seconds waited."""
    t0 = time.monotonic()
    waiting = set(pids)
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            for node_id in sorted(waiting):
                if not _pid_alive(pids[node_id], cons.settings_path(node_id)):
                    tail = _log_tail(cons, node_id)
                    raise NetworkError(
                        f"node {node_id} exited while starting ({tail or 'no output'}); "
                        f"see {cons.log_path(node_id)}"
                    )
                h = _get(client, cons.url(node_id) + "/v1/health")
                if h and h.get("node_id") == node_id:
                    waiting.discard(node_id)
            if not waiting:
                break
            if time.monotonic() - t0 > timeout_s:
                raise NetworkError(
                    f"nodes {', '.join(sorted(waiting))} did not become healthy within {timeout_s:.0f} s; "
                    f"see their logs in {cons.dir / 'logs'}"
                )
            time.sleep(0.2)
    return time.monotonic() - t0


def node_infos(
    cons: Consortium, node_ids: Iterable[str] | None = None, timeout_s: float = 3.0
) -> dict[str, dict[str, Any] | None]:
    """GET /v1/info of each node in parallel; None for a node that does not answer."""
    ids = list(node_ids if node_ids is not None else cons.node_ids)
    with (
        httpx.Client(timeout=timeout_s) as client,
        ThreadPoolExecutor(max_workers=max(1, len(ids))) as pool,
    ):
        answers = list(pool.map(lambda n: _get(client, cons.url(n) + "/v1/info"), ids))
    return dict(zip(ids, answers, strict=True))


def mirror_lag(infos: Mapping[str, dict[str, Any] | None]) -> list[tuple[str, str, int, int]]:
    """(node, peer, entries the node has of the peer, peer's size) for every lagging pair."""
    sizes = {n: int(i["size"]) for n, i in infos.items() if i}
    lag = []
    for n, info in infos.items():
        if not info:
            continue
        for p in info.get("peers", []):
            peer = p["node_id"]
            if peer not in sizes:
                continue
            have = min(int(p.get("seen_size") or 0), int(p.get("mirrored") or 0))
            if have != sizes[peer]:
                lag.append((n, peer, have, sizes[peer]))
    return lag


def wait_mirrored(
    cons: Consortium,
    timeout_s: float,
    node_ids: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> float:
    """Wait until every node has seen and mirrored every peer's current tree; returns seconds waited.

    A big network mirrors for minutes (every node pulls every peer's entry
    metadata), so ``timeout_s`` bounds the time *without progress*, not the
    total. With ``progress`` a tqdm bar counts mirrored entries.

    Raises:
        NetworkError: no progress for ``timeout_s`` (names the slowest links) or a node stopped answering.
    """
    from tqdm import tqdm

    ids = list(node_ids or cons.node_ids)
    t0 = last_move = time.monotonic()
    least_behind = math.inf  # progress is a new low of the entries still to mirror
    bar = None
    silent_since: dict[str, float] = {}
    try:
        while True:
            # A node busy catching up (millions of catalogue rows) may take seconds to answer:
            # it has stopped only when it stays silent for timeout_s.
            infos = node_infos(cons, ids, timeout_s=10.0)
            now = time.monotonic()
            silent = [n for n, i in infos.items() if i is None]
            for n in ids:
                if n in silent:
                    silent_since.setdefault(n, now)
                else:
                    silent_since.pop(n, None)
            gone = [n for n in silent if now - silent_since[n] > timeout_s]
            if gone:
                raise NetworkError(
                    f"nodes {', '.join(gone)} stopped answering while the network was mirroring; "
                    f"see their logs in {cons.dir / 'logs'}"
                )
            if silent:
                time.sleep(0.5)
                continue
            lag = mirror_lag(infos)
            if not silent and not lag:
                if bar is not None:
                    bar.update(bar.total - bar.n)
                return time.monotonic() - t0
            behind = sum(size - have for _, _, have, size in lag)
            if bar is None and progress and behind > 20_000:
                bar = tqdm(
                    total=behind,
                    unit="entry",
                    unit_scale=True,
                    desc="mirroring",
                    dynamic_ncols=True,
                )
            if bar is not None:
                bar.total = max(bar.total, bar.n + behind)
                bar.update(max(0, bar.total - behind - bar.n))
            if behind < least_behind:
                least_behind, last_move = behind, time.monotonic()
            if time.monotonic() - last_move > timeout_s:
                worst = sorted(lag, key=lambda t: t[2] - t[3])[:3]
                detail = "; ".join(
                    f"{n} has {have} of {p}'s {size} entries" for n, p, have, size in worst
                )
                raise MirrorStalledError(
                    f"mirroring made no progress for {timeout_s:.0f} s ({len(lag)} links "
                    f"behind: {detail})"
                )
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.close()


# --- signed HTTP as an operator or institution -------------------------------------------
class NodeClient:
    """Signed requests to the consortium's nodes; responses must be signed by the node asked."""

    def __init__(
        self, cons: Consortium, key_id: str, key: Ed25519PrivateKey, timeout_s: float = 60.0
    ) -> None:
        self.cons = cons
        self._keys = {f"node:{n.node_id}": n.key() for n in cons.manifest.nodes}
        self._client = httpx.Client(
            auth=httpsig.RequestSigner(key_id, key), timeout=timeout_s, transport=cons.transport()
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, node_id: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One signed exchange; returns (status, decoded JSON). Raises NetworkError if the node
        does not answer or its answer is not signed by it."""
        url = self.cons.public_url(node_id) + path  # sent to cons.url(node_id) by cons.transport()
        content = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            response = self._client.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise NetworkError(
                f"node {node_id} at {self.cons.url(node_id)} did not answer in time"
            ) from None
        except httpx.HTTPError:
            raise NetworkError(
                f"node {node_id} at {self.cons.url(node_id)} is not answering; "
                "is the network up? (`creditchain status`)"
            ) from None
        sent = response.request
        try:
            key_id = httpsig.verify_response(
                response.status_code,
                dict(response.headers),
                response.content,
                sent.headers["signature-input"],
                sent.headers["signature"],
                self._keys,
            )
        except httpsig.HttpSignatureError as exc:
            raise NetworkError(f"the answer from {node_id} is not properly signed: {exc}") from exc
        if key_id != f"node:{node_id}":
            raise NetworkError(
                f"the answer from {node_id} is signed by {key_id}, not by node:{node_id}"
            )
        try:
            data = response.json() if response.content else None
        except ValueError:
            raise NetworkError(
                f"node {node_id} answered {response.status_code} with a body that is not JSON"
            ) from None
        return response.status_code, data


def problem_sentence(node_id: str, status: int, data: Any) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    title = data.get("title") if isinstance(data, dict) else None
    return f"{node_id} refused ({status} {title or 'error'}): {detail or 'no detail given'}"


def register_institutions(
    cons: Consortium, node_ids: Iterable[str] | None = None
) -> tuple[int, int]:
    """Register the institutions homed at ``node_ids`` (default all) at their home node.

    Operator-signed; idempotent (409 = already there). Returns (newly registered, already registered).
    """
    only = set(cons.node_ids if node_ids is None else node_ids)
    by_node: dict[str, list[Institution]] = {}
    for inst in cons.institutions:
        if inst.home_node in only:
            by_node.setdefault(inst.home_node, []).append(inst)

    def one_node(node_id: str) -> tuple[int, int]:
        new = old = 0
        with NodeClient(cons, f"node:{node_id}", cons.node_key(node_id), timeout_s=30.0) as client:
            for inst in by_node[node_id]:
                status, data = client.call(
                    node_id,
                    "POST",
                    "/v1/institutions",
                    {
                        "institution_id": inst.institution_id,
                        "name": inst.name,
                        "public_key": inst.public_key,
                        "purposes": list(inst.purposes),
                    },
                )
                if status == 201:
                    new += 1
                elif status == 409:
                    old += 1
                else:
                    raise NetworkError(
                        f"registering {inst.institution_id}: {problem_sentence(node_id, status, data)}"
                    )
        return new, old

    if not by_node:
        return 0, 0
    with ThreadPoolExecutor(max_workers=len(by_node)) as pool:
        counts = list(pool.map(one_node, sorted(by_node)))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


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
            _load_topology(preset)  # an unknown preset is named as such, not as a mismatch
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
                seeded = json.loads(cons.seed_path(node_id).read_text("utf-8"))
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
    while _pid_alive(pid, cons.settings_path(node_id)) and time.monotonic() < deadline:
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
            if not _pid_alive(pid, _settings_path(directory, node_id)):
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
        while _pid_alive(pid, _settings_path(directory, node_id)) and time.monotonic() < end:
            time.sleep(0.05)
    state = read_state(directory)
    for node_id in state.get("nodes", {}):
        state["nodes"][node_id]["pid"] = None
        (directory / "nodes" / node_id / "node.pid").unlink(missing_ok=True)
    if state.get("nodes"):
        write_state(directory, state)
    return outcome


# --- queries ---------------------------------------------------------------------------
@dataclass
class QueryResult:
    bundle: dict[str, Any]
    summary: BundleSummary
    path: Path
    authorization: dict[str, Any] | None  # set when this call filed a new authorization
    seconds: float


def consent_document(
    uscc: str,
    inst: Institution,
    purposes: Sequence[str],
    not_before: str,
    not_after: str,
    authorization_id: str,
) -> str:
    return (
        "AUTHORIZATION TO QUERY CREDIT INFORMATION (simulated)\n"
        f"Authorization id: {authorization_id}\n"
        f"Enterprise (unified social credit code): {uscc}\n"
        f"authorizes: {inst.name} ({inst.institution_id})\n"
        "to obtain its credit records from the Yangtze River Delta credit chain\n"
        f"for the purposes: {', '.join(purposes)}\n"
        f"valid from {not_before} until {not_after}.\n"
        "Signed and sealed on behalf of the enterprise (synthetic document for the simulator).\n"
    )


def file_authorization(
    cons: Consortium, inst: Institution, uscc: str, purposes: Sequence[str], *, days: int = 365
) -> dict[str, Any]:
    """File an authorization for ``inst`` at its home node, signed by the institution's key."""
    now = datetime.now(UTC).replace(microsecond=0)
    not_before = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    not_after = (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if (
        cons.target == "docker"
    ):  # containers start knowing no institution; registration is idempotent
        register_institutions(cons, [inst.home_node])
    authorization_id = f"auth-{inst.institution_id}-{uscc}-{uuid.uuid4().hex[:6]}"
    text = consent_document(uscc, inst, purposes, not_before, not_after, authorization_id)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    consent_path = cons.dir / "consents" / f"{authorization_id}.txt"
    consent_path.parent.mkdir(parents=True, exist_ok=True)
    consent_path.write_text(text, "utf-8")
    with NodeClient(cons, f"inst:{inst.institution_id}", inst.key()) as client:
        status, data = client.call(
            inst.home_node,
            "POST",
            "/v1/authorizations",
            {
                "authorization_id": authorization_id,
                "uscc": uscc,
                "institution_id": inst.institution_id,
                "purposes": list(purposes),
                "not_before": not_before,
                "not_after": not_after,
                "document_digest": digest,
            },
        )
    if status != 201:
        raise NetworkError(
            f"filing the authorization failed: {problem_sentence(inst.home_node, status, data)}"
        )
    return {
        "authorization_id": authorization_id,
        "document": str(consent_path),
        "document_digest": digest,
        "not_before": not_before,
        "not_after": not_after,
        "index": data.get("index"),
        "node_id": inst.home_node,
    }


def check_uscc(cons: Consortium, uscc: str) -> None:
    """One sentence if ``uscc`` is invalid or registered where no node of this consortium serves."""
    try:
        parsed = parse_uscc(uscc)
    except InvalidUsccError as exc:
        raise NetworkError(str(exc)) from exc
    if not cons.manifest.nodes_for_admin_code(parsed.admin_code):
        raise NetworkError(
            f"USCC {uscc} is registered in administrative area {parsed.admin_code}, "
            "which no node of this consortium serves"
        )


def query_report(
    cons: Consortium,
    institution_id: str,
    uscc: str,
    purpose: str,
    *,
    authorization_id: str | None = None,
    out: Path | None = None,
    timeout_s: float = 60.0,
    on_filed: Callable[[dict[str, Any]], None] | None = None,
) -> QueryResult:
    """Ask the institution's home node for a report, verify it offline, save the bundle."""
    inst = cons.institution(institution_id)
    check_uscc(cons, uscc)
    if purpose not in PURPOSES:
        raise NetworkError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    if purpose not in inst.purposes:
        raise NetworkError(
            f"institution {institution_id} is registered for {', '.join(inst.purposes)}, not {purpose}"
        )
    filed = None
    if authorization_id is None:
        filed = file_authorization(cons, inst, uscc, [purpose])
        authorization_id = filed["authorization_id"]
        if on_filed is not None:
            on_filed(filed)
    t0 = time.perf_counter()
    with NodeClient(cons, f"inst:{inst.institution_id}", inst.key(), timeout_s=timeout_s) as client:
        status, bundle = client.call(
            inst.home_node,
            "POST",
            "/v1/reports",
            {"uscc": uscc, "purpose": purpose, "authorization_id": authorization_id},
        )
    seconds = time.perf_counter() - t0
    if status != 200:
        raise NetworkError(problem_sentence(inst.home_node, status, bundle))
    manifest = _trusted_manifest(cons)
    try:
        summary = verify_bundle(bundle, manifest)
    except BundleError as exc:
        raise NetworkError(f"the report from {inst.home_node} does not verify: {exc}") from exc
    path = out or cons.dir / "reports" / f"{summary.query_id}.json"
    _write_json(Path(path), bundle)
    return QueryResult(bundle, summary, Path(path), filed, seconds)


def _trusted_manifest(cons: Consortium) -> Manifest:
    try:
        return load_manifest(cons.manifest_path, root_key=cons.root_public_key())
    except ConfigError as exc:
        raise NetworkError(str(exc)) from exc


def verify_bundle_file(
    bundle_path: Path, manifest_path: Path, root_key: str | None = None
) -> BundleSummary:
    """Offline verification of a saved bundle; NetworkError names the problem in one sentence."""
    try:
        manifest = load_manifest(Path(manifest_path), root_key=root_key)
    except ConfigError as exc:
        raise NetworkError(f"the manifest cannot be used: {exc}") from exc
    try:
        bundle = json.loads(Path(bundle_path).read_text("utf-8"))
    except FileNotFoundError:
        raise NetworkError(f"{bundle_path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkError(f"{bundle_path} cannot be read: {exc}") from exc
    except ValueError as exc:
        raise NetworkError(f"{bundle_path} is not JSON ({exc})") from exc
    if not isinstance(bundle, dict):
        raise NetworkError(f"{bundle_path} is not a report bundle (expected a JSON object)")
    try:
        return verify_bundle(bundle, manifest)
    except BundleError as exc:
        raise NetworkError(f"the bundle does not verify: {exc.detail} ({exc.reason})") from exc
    except LedgerError as exc:  # verify_bundle lets some decode errors through unwrapped
        raise NetworkError(f"the bundle does not verify: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NetworkError(f"the bundle is malformed: {type(exc).__name__} {exc}") from exc


# --- finding enterprises to query ---------------------------------------------------------
NEGATIVE_TYPES = ("admin_penalty", "judicial_enforcement", "black_list")


@dataclass(frozen=True, slots=True)
class EnterpriseSample:
    uscc: str
    city: str
    index: int
    holders: tuple[str, ...]
    records: tuple[str, ...]  # "holder:record_type", "+resolved" when a correction supersedes it


def synthetic_data(cons: Consortium) -> SyntheticData:
    if cons.target == "docker":  # the containers seed themselves with the plan in consortium.json
        seeding = _read_json(cons.dir / "consortium.json", "consortium file").get("seeding")
    else:
        seeding = read_state(cons.dir).get("seeding")
    if not seeding:
        raise NetworkError(
            f"the network in {cons.dir} has not been seeded yet; run `creditchain up` first"
        )
    return SyntheticData(cons.topology, int(seeding["enterprises"]), int(seeding["seed"]))


def _holdings(
    ledgers: dict[str, Ledger | None], cons: Consortium, uscc: str, holders: Sequence[str]
) -> tuple[str, ...]:
    """What each holder's ledger says about ``uscc`` (metadata only: types and corrections)."""
    from ledger import CorrectionEntry, RecordEntry

    out = []
    for node_id in holders:
        if node_id not in ledgers:
            path = cons.ledger_path(node_id)
            try:
                ledgers[node_id] = Ledger.open(path, readonly=True) if path.exists() else None
            except LedgerError:
                ledgers[node_id] = None
        ledger = ledgers[node_id]
        if ledger is None:
            continue
        rows = [e for _, e in ledger.by_subject(uscc, ("record", "correction"))]
        corrected = {e.supersedes: e.outcome for e in rows if isinstance(e, CorrectionEntry)}
        for e in rows:
            if isinstance(e, RecordEntry):
                mark = f" ({corrected[e.record_id]})" if e.record_id in corrected else ""
                out.append(f"{node_id}:{e.record_type}{mark}")
    return tuple(out)


def sample_enterprises(
    cons: Consortium,
    city: str | None = None,
    *,
    limit: int = 5,
    min_cities: int = 2,
    negative: bool = False,
) -> list[EnterpriseSample]:
    """Enterprises of the seeded synthetic data held in at least ``min_cities`` cities.

    Cities are visited round-robin. With ``negative``, only enterprises with a
    penalty, an enforcement or a black-list entry (the post-loan story of
    DESIGN.md §1). Record types come from the ledgers themselves (read-only).
    """
    data = synthetic_data(cons)
    if negative and cons.target == "docker":
        raise NetworkError(
            "choosing enterprises with negative records reads the ledger files, which live in the "
            "containers' volumes; leave out --negative for a container network"
        )
    codes = [c.code for c in cons.topology.cities]
    if city is not None and city not in codes:
        raise NetworkError(f"unknown city {city!r}; cities are {', '.join(codes)}")

    def candidates(code: str) -> Iterator[tuple[int, tuple[str, ...]]]:
        for i in range(data.counts[code]):
            holders = tuple(data.holders(code, i))
            if len({h.rsplit("-", 1)[0] for h in holders}) >= min_cities:
                yield i, holders

    streams = {code: candidates(code) for code in ([city] if city else codes)}
    ledgers: dict[str, Ledger | None] = {}
    found: list[EnterpriseSample] = []
    try:
        while streams and len(found) < limit:
            for code in list(streams):
                for i, holders in streams[code]:
                    uscc = data.enterprise(code, i).uscc
                    records = _holdings(ledgers, cons, uscc, holders)
                    if negative and not any(
                        r.split(":")[1].split(" ")[0] in NEGATIVE_TYPES for r in records
                    ):
                        continue
                    found.append(EnterpriseSample(uscc, code, i, holders, records))
                    break
                else:
                    del streams[code]
                if len(found) >= limit:
                    break
    finally:
        for ledger in ledgers.values():
            if ledger is not None:
                ledger.close()
    return found


@contextmanager
def operator_client(cons: Consortium, node_id: str) -> Iterator[NodeClient]:
    """A client signing as the node's operator (``node:<id>``): ingest, registration."""
    client = NodeClient(cons, f"node:{node_id}", cons.node_key(node_id))
    try:
        yield client
    finally:
        client.close()
