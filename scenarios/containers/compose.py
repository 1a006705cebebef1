"""Docker Compose files and per-node configuration generated from a topology.

``creditchain compose --preset launch-2020`` writes two things:

* ``docker/compose.launch-2020.yaml``: one service per node (service name and
  hostname = node id), each with its own named volume at ``/data``, its own
  configuration directory bind-mounted read-only at ``/config``, a health
  check, the private bridge network ``yrd``, and a port published on the
  loopback only (``127.0.0.1:<8200+i>:8000``) so host tools reach every node.
  The file is deterministic (no keys, no timestamps) and is committed.
* ``docker/config/launch-2020/``: the consortium root key, and for each node a
  directory with ``settings.json``, ``node.key`` and ``manifest.json`` (the
  manifest signed by the root key, URLs ``http://<node_id>:8000``). It holds
  private keys: it is git-ignored and never committed. Existing keys are
  reused, so re-running the command keeps the ledgers in existing volumes
  valid; ``new_keys=True`` replaces them (then remove the volumes too).

Key access: the container runs as uid 10001 (user ``node`` of the image),
and a node key stays mode 0600. When this runs as root the node's config
directory (0700) and key (0600) are chowned to 10001, so inside the
container only ``node`` can read the key, and on the host only root and
uid 10001. Otherwise the invoking user keeps ownership and a POSIX ACL grants
uid 10001 read access (``setfacl``); with neither, the command fails and
says so, rather than widening the key to world-readable.

Data: the ledger lives in the node's volume at ``/data``, which the image makes 0700 and
owned by ``node``; the container's entrypoint runs under umask 0077, so the ledger, its
SQLite ``-wal``/``-shm`` files and ``state.db`` are 0600 (``scenarios.containers.entrypoint``).

Invariants: never writes a private key with a mode wider than 0600 nor into
the compose file; the compose file names config paths relative to itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import utc_now
from node.consortium import NodeInfo, sign_manifest
from node.datadir import private_umask
from node.keys import generate_key_file, load_private_key, public_b64
from node.peers.client import default_latency_ms
from scenarios.errors import ComposeError
from scenarios.localnet.consortium import make_registries
from scenarios.model.topology import PRESETS, Topology, load_topology

__all__ = [
    "CONTAINER_PORT",
    "CONTAINER_UID",
    "DEFAULT_IMAGE",
    "HOST_PORT_BASE",
    "ComposeError",
    "ComposeResult",
    "compose_command",
    "compose_document",
    "compose_text",
    "generate",
    "host_urls",
    "node_settings",
    "render_compose",
    "write_config",
]

DEFAULT_IMAGE = "yrd-credit-chain/node:latest"
CONTAINER_PORT = 8000
HOST_PORT_BASE = 8200  # node i (1-based) is published at 127.0.0.1:HOST_PORT_BASE + i
CONTAINER_UID = 10001  # user `node` in docker/Dockerfile
NETWORK = "yrd"
ROOT_KEY = "consortium-root.key"
DEFAULT_ENTERPRISES = 2000  # per network, seeded by the containers themselves on first start
DEFAULT_SEED = 2020

# As in docker/Dockerfile (see the reasons there): an HTTP/1.0 GET of /v1/health
# through bash's /dev/tcp, killed after 4 s. No `$` in it: compose would
# interpolate it.
HEALTH_TEST = (
    "timeout",
    "-s",
    "KILL",
    "4",
    "bash",
    "-c",
    f"exec 3<>/dev/tcp/127.0.0.1/{CONTAINER_PORT} "
    "&& printf 'GET /v1/health HTTP/1.0\\r\\n\\r\\n' >&3 "
    "&& head -n 1 <&3 | grep -q ' 200 '",
)


@dataclass(frozen=True, slots=True)
class ComposeResult:
    compose_file: Path
    config_dir: Path
    project: str
    node_ids: tuple[str, ...]
    keys_created: int
    keys_reused: int
    host_urls: dict[str, str]


def compose_command() -> list[str] | None:
    """The compose front end installed here: ``docker compose`` (v2) or ``docker-compose`` (v1).

    Both read the files this module writes; None when neither answers.
    """
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            done = subprocess.run([*cmd, "version"], capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return cmd
    return None


def topology_label(name_or_path: str, topology: Topology) -> str:
    """The name used in file names and the project name: the preset, else the topology's name."""
    raw = name_or_path if name_or_path in PRESETS else topology.name
    label = "".join(c if c.isalnum() or c in "-_." else "-" for c in raw.lower()).strip("-.")
    return label or "custom"


def host_urls(topology: Topology, host_port_base: int = HOST_PORT_BASE) -> dict[str, str]:
    """Where the host reaches each node: the loopback port compose publishes."""
    return {
        n: f"http://127.0.0.1:{host_port_base + i}"
        for i, n in enumerate(topology.node_ids, start=1)
    }


def node_settings(
    topology: Topology, node_id: str, *, mirror_interval_s: float = 2.0
) -> dict[str, Any]:
    """settings.json of one node as the container sees it (paths under /config and /data)."""
    city = topology.city_of_node(node_id).code
    latency = {
        peer: round(
            default_latency_ms(topology.distance_km(city, topology.city_of_node(peer).code)), 3
        )
        for peer in topology.node_ids
        if peer != node_id
    }
    return {
        "node_id": node_id,
        "data_dir": "/data",
        "key_file": "/config/node.key",
        "manifest": "/config/manifest.json",
        "host": "0.0.0.0",
        "port": CONTAINER_PORT,
        "public_url": f"http://{node_id}:{CONTAINER_PORT}",
        "mirror_interval_s": mirror_interval_s,
        "latency_ms": latency,
    }


def _relative(path: Path, start: Path) -> str:
    rel = os.path.relpath(path.resolve(), start.resolve())
    return rel if rel.startswith("..") else f"./{rel}"


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    rel = _relative(path, Path.cwd())
    return str(path.resolve()) if rel.startswith("..") else rel.removeprefix("./")


def compose_document(
    topology: Topology,
    *,
    label: str,
    compose_dir: Path,
    config_dir: Path,
    image: str = DEFAULT_IMAGE,
    host_port_base: int = HOST_PORT_BASE,
    project: str | None = None,
) -> dict[str, Any]:
    """The compose file as a mapping (compose spec; docker-compose 1.27+ and compose v2).

    Volumes get explicit names (``<project>_<node>-data``) so two topologies
    with the same node ids never share a ledger, whatever project name compose
    picks.
    """
    project = project or f"yrd-{label}"
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for i, node_id in enumerate(topology.node_ids, start=1):
        volume = f"{node_id}-data"
        services[node_id] = {
            "image": image,
            "hostname": node_id,
            "restart": "unless-stopped",
            "read_only": True,
            "tmpfs": ["/tmp"],
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "volumes": [
                {"type": "volume", "source": volume, "target": "/data"},
                {
                    "type": "bind",
                    "source": _relative(config_dir / node_id, compose_dir),
                    "target": "/config",
                    "read_only": True,
                },
            ],
            # Long syntax, mode host: under `docker stack deploy` the port is bound on the node
            # running the task, not through the routing mesh (IPVS, which some kernels lack).
            # `docker stack deploy` refuses host_ip, so the port is on every interface: that is
            # what other hosts need; on a shared machine, firewall it.
            "ports": [
                {
                    "target": CONTAINER_PORT,
                    "published": host_port_base + i,
                    "protocol": "tcp",
                    "mode": "host",
                }
            ],
            "networks": [NETWORK],
            "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
            "healthcheck": {
                "test": ["CMD", *HEALTH_TEST],
                "interval": "5s",
                "timeout": "5s",
                "retries": 3,
                "start_period": "60s",
            },
        }
        volumes[volume] = {"name": f"{project}_{volume}"}
    return {
        "services": services,
        # No driver: compose makes a bridge network, `docker stack deploy` an overlay one.
        "networks": {NETWORK: {}},
        "volumes": volumes,
    }


def render_compose(
    doc: dict[str, Any],
    *,
    label: str,
    topology: Topology,
    compose_file: str,
    config_dir: str,
    project: str,
    host_port_base: int = HOST_PORT_BASE,
    argv: Sequence[str] = (),
) -> str:
    """YAML text of ``doc`` with a header saying how to create the config and start it."""
    first = host_port_base + 1
    last = host_port_base + len(topology.node_ids)
    command = (
        " ".join(["creditchain compose", *argv])
        if argv
        else f"creditchain compose --preset {label}"
    )
    size = f"{len(topology.node_ids)} nodes, {len(topology.cities)} cities"
    header = f"""\
# yrd-credit-chain: the {label} network ({size}) as containers.
# Generated by `{command}`; do not edit by hand.
#
# 1. Build the images (no registry needed):   docker/build-images.sh
# 2. Create the node keys and configuration (never committed; git-ignored):
#        {command}
#    It writes {config_dir}/<node>/{{settings.json,node.key,manifest.json}},
#    mounted read-only at /config. Without it, `up` fails: "bind source path does not exist".
# 3. Start (docker-compose v1 ignores a `name:` key, so pass the project name):
#        docker compose -p {project} -f {compose_file} up -d      (or: docker-compose -p ...)
#    Node i answers on http://127.0.0.1:{first}..{last} (GET /v1/health, /v1/info).
# 4. Stop and delete the ledgers:  docker compose -p {project} -f {compose_file} down -v
"""
    body = yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True
    )
    return header + body


def _grant_container_access(path: Path, *, directory: bool) -> None:
    """Let uid CONTAINER_UID read ``path`` without making it readable by anyone else."""
    if os.geteuid() == 0:
        os.chown(path, CONTAINER_UID, CONTAINER_UID)
        return
    setfacl = shutil.which("setfacl")
    if setfacl is None:
        raise ComposeError(
            f"the container user (uid {CONTAINER_UID}) must be able to read {path}, "
            "but this is not root and setfacl is missing: "
            "run the command as root (sudo), or install the acl package"
        )
    perm = "rx" if directory else "r"
    try:
        subprocess.run(
            [setfacl, "-m", f"u:{CONTAINER_UID}:{perm}", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise ComposeError(
            f"setfacl could not grant uid {CONTAINER_UID} access to {path}: "
            f"{exc.stderr.strip() or exc}"
        ) from exc


def _write_text(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)  # never narrowed by the umask into something unreadable
    os.replace(tmp, path)


def write_config(
    topology: Topology,
    config_dir: Path,
    *,
    new_keys: bool = False,
    mirror_interval_s: float = 2.0,
    topology_ref: str = "",
    enterprises: int = DEFAULT_ENTERPRISES,
    seed: int = DEFAULT_SEED,
    project: str = "",
    compose_file: Path | None = None,
    host_port_base: int = HOST_PORT_BASE,
) -> tuple[int, int]:
    """Keys, signed manifest, settings and seed plan for every node, and the consortium files
    the host CLI reads (``consortium.json``, ``institutions.json``, ``host-urls.json``);
    returns (keys created, keys reused).

    ``topology_ref`` is a preset name or a topology file (copied next to each
    node's settings, so a container can seed itself from it).
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config_dir, 0o755)
    root_path = config_dir / ROOT_KEY
    key_paths = [root_path] + [config_dir / n / "node.key" for n in topology.node_ids]
    if new_keys:
        for p in key_paths:
            p.unlink(missing_ok=True)
    created = reused = 0

    def key_at(path: Path) -> Ed25519PrivateKey:
        nonlocal created, reused
        if path.exists():
            reused += 1
            return load_private_key(path)
        created += 1
        return generate_key_file(path)

    root = key_at(root_path)
    keys = {}
    for node_id in topology.node_ids:
        node_dir = config_dir / node_id
        node_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(node_dir, 0o700)
        keys[node_id] = key_at(node_dir / "node.key")

    nodes = [
        NodeInfo(
            node_id=n,
            city=topology.city_of_node(n).code,
            city_name=topology.city_of_node(n).name,
            admin_codes=(topology.city_of_node(n).admin_code,),
            url=f"http://{n}:{CONTAINER_PORT}",
            public_key=public_b64(keys[n]),
        )
        for n in topology.node_ids
    ]
    registries = make_registries(topology, config_dir)
    manifest = sign_manifest(topology.name, topology.algorithm, root, nodes, registries)
    (config_dir / "manifest.json").write_bytes(manifest)
    in_preset = topology_ref in PRESETS
    plan = {
        "topology": topology_ref if in_preset else "topology.yaml",
        "enterprises": enterprises,
        "seed": seed,
    }
    for node_id in topology.node_ids:
        node_dir = config_dir / node_id
        settings = node_settings(topology, node_id, mirror_interval_s=mirror_interval_s)
        _write_text(
            node_dir / "settings.json", json.dumps(settings, indent=2, sort_keys=True) + "\n", 0o644
        )
        _write_text(node_dir / "seed.json", json.dumps(plan, indent=2) + "\n", 0o644)
        readable = [node_dir / "settings.json", node_dir / "seed.json", node_dir / "manifest.json"]
        if not in_preset and topology_ref:
            shutil.copyfile(topology_ref, node_dir / "topology.yaml")
            os.chmod(node_dir / "topology.yaml", 0o644)
            readable.append(node_dir / "topology.yaml")
        (node_dir / "manifest.json").write_bytes(manifest)
        os.chmod(node_dir / "manifest.json", 0o644)
        key = node_dir / "node.key"
        os.chmod(key, 0o600)
        for p in (*readable, key):
            _grant_container_access(p, directory=False)
        _grant_container_access(node_dir, directory=True)
    if not in_preset and topology_ref:
        shutil.copyfile(topology_ref, config_dir / "topology.yaml")
    _write_institutions(topology, config_dir)
    meta = {
        "target": "docker",
        "preset": topology_ref
        if in_preset
        else str(Path(topology_ref).resolve())
        if topology_ref
        else topology.name,
        "topology": plan["topology"] if topology_ref else topology.name,
        "name": topology.name,
        "project": project,
        "compose_file": str(compose_file.resolve()) if compose_file else "",
        "host_port_base": host_port_base,
        "nodes": len(topology.node_ids),
        "seeding": {"enterprises": enterprises, "seed": seed},
        "created_at": utc_now(),
    }
    _write_text(config_dir / "consortium.json", json.dumps(meta, indent=2) + "\n", 0o644)
    return created, reused


def _write_institutions(topology: Topology, config_dir: Path) -> None:
    """The preset's institutions, with keys kept on the host (``keys/institutions``), as
    :func:`scenarios.localnet.consortium.init_consortium` makes them; existing keys are reused."""
    from scenarios.localnet import institution_plan

    keys = config_dir / "keys" / "institutions"
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(config_dir / "keys", 0o700)
    os.chmod(keys, 0o700)
    institutions = []
    for inst_id, name, city_code, home, purposes in institution_plan(topology):
        path = keys / f"{inst_id}.key"
        key = load_private_key(path) if path.exists() else generate_key_file(path)
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
    _write_text(
        config_dir / "institutions.json",
        json.dumps({"institutions": institutions}, indent=2) + "\n",
        0o644,
    )


def _command_line(
    name_or_path: str,
    out: Path | None,
    config_dir: Path | None,
    image: str,
    host_port_base: int,
    project: str | None,
) -> list[str]:
    """The options that reproduce a run (defaults left out), for the compose file's header."""
    argv = ["--preset", name_or_path]
    for flag, value, default in (
        ("--out", out, None),
        ("--config-dir", config_dir, None),
        ("--image", image, DEFAULT_IMAGE),
        ("--host-port-base", host_port_base, HOST_PORT_BASE),
        ("--project", project, None),
    ):
        if value != default:
            argv += [flag, str(value)]
    return argv


def compose_text(
    name_or_path: str,
    *,
    out: Path | None = None,
    config_dir: Path | None = None,
    image: str = DEFAULT_IMAGE,
    host_port_base: int = HOST_PORT_BASE,
    project: str | None = None,
) -> tuple[Topology, Path, Path, str, str]:
    """The compose file for a preset or topology file, touching no file.

    Returns (topology, compose file path, config dir, project, YAML text);
    relative paths are taken from the working directory.
    """
    topology = load_topology(name_or_path)
    label = topology_label(name_or_path, topology)
    argv = _command_line(name_or_path, out, config_dir, image, host_port_base, project)
    out = out or Path("docker") / f"compose.{label}.yaml"
    config_dir = config_dir or Path("docker") / "config" / label
    project = project or f"yrd-{label}"
    last_port = host_port_base + len(topology.node_ids)
    if host_port_base < 1023 or last_port > 65535:
        raise ComposeError(f"host ports {host_port_base + 1}..{last_port} must lie in 1024..65535")
    doc = compose_document(
        topology,
        label=label,
        compose_dir=out.parent,
        config_dir=config_dir,
        image=image,
        host_port_base=host_port_base,
        project=project,
    )
    text = render_compose(
        doc,
        label=label,
        topology=topology,
        compose_file=str(out),
        config_dir=_display(config_dir),
        project=project,
        host_port_base=host_port_base,
        argv=argv,
    )
    return topology, out, config_dir, project, text


# Under a private umask (0077): a file this writes is its owner's alone unless given a wider
# mode on purpose (the settings, manifest and seed plan the container user must read: 0644).
@private_umask()
def generate(
    name_or_path: str,
    *,
    out: Path | None = None,
    config_dir: Path | None = None,
    image: str = DEFAULT_IMAGE,
    host_port_base: int = HOST_PORT_BASE,
    project: str | None = None,
    new_keys: bool = False,
    mirror_interval_s: float = 2.0,
    enterprises: int = DEFAULT_ENTERPRISES,
    seed: int = DEFAULT_SEED,
) -> ComposeResult:
    """Write the compose file and the node configuration for a preset or topology file.

    Each node seeds its own ledger with its share of ``enterprises`` synthetic
    enterprises the first time its container starts on an empty volume.
    """
    if enterprises < 0:
        raise ComposeError(f"--enterprises must be 0 or more, got {enterprises}")
    topology, out, config_dir, project, text = compose_text(
        name_or_path,
        out=out,
        config_dir=config_dir,
        image=image,
        host_port_base=host_port_base,
        project=project,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        created, reused = write_config(
            topology,
            config_dir,
            new_keys=new_keys,
            mirror_interval_s=mirror_interval_s,
            topology_ref=name_or_path,
            enterprises=enterprises,
            seed=seed,
            project=project,
            compose_file=out,
            host_port_base=host_port_base,
        )
        _write_text(out, text, 0o644)  # no secret in it; meant to be committed
        urls = host_urls(topology, host_port_base)
        _write_text(config_dir / "host-urls.json", json.dumps(urls, indent=2) + "\n", 0o644)
    except OSError as exc:
        raise ComposeError(
            f"cannot write {out} or the configuration under {config_dir}: {exc}"
        ) from exc
    return ComposeResult(out, config_dir, project, topology.node_ids, created, reused, urls)
