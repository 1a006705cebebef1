"""The consortium directory: its layout, keys, manifest, institutions, node settings and run state."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import AuthorizationEntry, InvalidRecordError, parse_json, parse_uscc, utc_now
from node.consent import sign_consent
from node.consortium import Manifest, NodeInfo, RegistryInfo, load_manifest, sign_manifest
from node.errors import ConfigError
from node.keys import generate_key_file, load_private_key, public_b64
from node.peers.client import default_latency_ms
from scenarios.errors import NetworkError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology

DEFAULT_DIR = Path(".creditchain")


DEFAULT_BASE_PORT = 8100


SAME_CITY_LATENCY_MS = 0.5


MIRROR_INTERVAL_S = 2.0


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

    @property
    def root_key_path(self) -> Path:
        """The consortium root's private key file (it signs every manifest version)."""
        return self.dir / ("consortium-root.key" if self.target == "docker" else "keys/root.key")

    def root_public_key(self) -> str:
        return public_b64(load_private_key(self.root_key_path))

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

    def consent(self, body: Mapping[str, Any]) -> tuple[str, str]:
        """Sign an authorization request ``body`` as its enterprise, through its city's
        registry (``node.consent``); returns (consent signature, the registry's key id).

        Raises:
            NetworkError: no registry of this consortium serves the enterprise's area,
                or its key is missing.
        """
        admin = parse_uscc(str(body["uscc"])).admin_code
        registry = self.manifest.registry_for_admin_code(admin)
        if registry is None:
            raise NetworkError(
                f"no registry of this consortium signs for enterprises of area {admin} "
                "(a consortium made before consents were signed: re-create it with "
                "`creditchain consortium init --force`)"
            )
        path = registry_key_path(self.dir, registry.city)
        try:
            key = load_private_key(path)
        except ConfigError as exc:
            raise NetworkError(f"the key of {registry.key_id} is unusable: {exc}") from exc
        try:
            auth = AuthorizationEntry(
                str(body["authorization_id"]),
                str(body["uscc"]),
                str(body["institution_id"]),
                tuple(body["purposes"]),
                str(body["not_before"]),
                str(body["not_after"]),
                str(body["document_digest"]),
            )
        except InvalidRecordError as exc:
            raise NetworkError(f"the authorization to sign is invalid: {exc}") from exc
        return sign_consent(key, auth), registry.key_id


def registry_key_path(directory: Path, city: str) -> Path:
    """Where a consortium directory keeps a city registry's private key."""
    return directory / "keys" / "registries" / f"{city}.key"


def make_registries(topology: Topology, directory: Path) -> list[RegistryInfo]:
    """One enterprise registry per city: its key (made once, then reused) and manifest entry."""
    _private_dir(directory / "keys")
    _private_dir(directory / "keys" / "registries")
    out = []
    for city in topology.cities:
        path = registry_key_path(directory, city.code)
        key = load_private_key(path) if path.exists() else generate_key_file(path)
        out.append(RegistryInfo(city.code, (city.admin_code,), public_b64(key)))
    return out


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


def write_json(path: Path, data: Any, *, private: bool = False) -> None:
    """Write JSON atomically (temporary file, then rename).

    ``private`` files (report bundles: credit data) are created 0600 whatever the
    umask, and a directory made for them 0700.
    """
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", private=private)


def write_text_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write text atomically; ``private`` as in :func:`write_json`."""
    if private and not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if private:
            os.fchmod(f.fileno(), 0o600)
        f.write(text)
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> Any:
    try:
        return parse_json(path.read_text("utf-8"), f"{what} {path}")
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


def resolve_topology(preset: str) -> tuple[Topology, str]:
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
    topology, _ = resolve_topology(preset)
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
        sign_manifest(
            topology.name, topology.algorithm, root, infos, make_registries(topology, directory)
        )
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
        write_json(node_dir / "settings.json", settings)

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
    write_json(directory / "institutions.json", {"institutions": institutions})
    write_json(
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
        "manifest-history.jsonl",
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
    meta = read_json(directory / "consortium.json", "consortium file")
    ref = str(meta.get("topology", "launch-2020"))
    topology, _ = resolve_topology(ref if ref in PRESETS else str(directory / ref))
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
            for k, v in read_json(directory / "host-urls.json", "host URL map").items()
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
            s = read_json(directory / "nodes" / node_id / "settings.json", f"settings of {node_id}")
            ports[node_id] = int(s["port"])
    raw = read_json(directory / "institutions.json", "institutions file")
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
    state = read_json(path, "run state")
    state.setdefault("nodes", {})
    return dict(state)


def write_state(directory: Path, state: Mapping[str, Any]) -> None:
    write_json(
        Path(directory) / "network.json",
        {**state, "dir": str(Path(directory).resolve()), "updated_at": utc_now()},
    )


def settings_path(directory: Path, node_id: str) -> Path:
    return Path(directory) / "nodes" / node_id / "settings.json"


def pid_alive(pid: int, settings_path: Path) -> bool:
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
        if pid and pid_alive(int(pid), settings_path(directory, node_id)):
            out[node_id] = int(pid)
    return out
