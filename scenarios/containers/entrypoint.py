"""A node container's entrypoint: seed the ledger on first start, then run the node.

``python3 -m scenarios.containers.entrypoint --config /config/settings.json``

``creditchain compose`` writes ``seed.json`` next to each node's settings:
the topology (a preset name, or ``topology.yaml`` beside it), the number of
synthetic enterprises of the whole network and the generator's seed. When
the node's ledger does not exist yet (a fresh volume), this writes the node's
share of the synthetic records into it through the ledger library, exactly
as ``creditchain up`` does for local processes (a temporary file renamed into
place, so a container killed while seeding starts over rather than running on
half a ledger). Then it hands over to ``python -m node``.

Without ``seed.json``, or with 0 enterprises, the node starts on whatever
ledger it has (an empty one is created by the node itself).

Everything runs under umask 0077 (the ledger and its SQLite files are 0600, ``/data`` 0700),
and seeding holds the data directory's lock (``node.datadir``), so a second container on
the same volume neither seeds nor serves it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def seed_if_needed(settings_path: Path) -> str | None:
    """Seed the node's ledger if it has none; returns what was done, or None."""
    from ledger import parse_json
    from node.consortium import load_manifest
    from node.datadir import DataDirLock, make_private
    from node.keys import load_private_key
    from scenarios.localnet import seed_ledger_file
    from scenarios.model.topology import PRESETS, load_topology

    config = settings_path.parent
    plan_path = config / "seed.json"
    if not plan_path.exists():
        return None
    settings = parse_json(settings_path.read_text("utf-8"), str(settings_path))
    plan = parse_json(plan_path.read_text("utf-8"), str(plan_path))
    enterprises, seed = int(plan.get("enterprises", 0)), int(plan.get("seed", 2020))
    data_dir = Path(settings.get("data_dir", "/data"))
    ledger = data_dir / "ledger.db"
    if enterprises <= 0 or ledger.exists():
        return None
    ref = str(plan.get("topology", ""))
    topology = load_topology(ref if ref in PRESETS else str(config / ref))
    manifest = load_manifest(config / Path(settings.get("manifest", "manifest.json")).name)
    key = load_private_key(config / Path(settings.get("key_file", "node.key")).name)
    with DataDirLock.acquire(data_dir):
        if ledger.exists():  # seeded by another process between the check above and the lock
            return None
        result = seed_ledger_file(
            ledger,
            topology=topology,
            manifest=manifest,
            node_id=str(settings["node_id"]),
            key=key,
            enterprises=enterprises,
            seed=seed,
        )
        (data_dir / "seed.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        make_private(data_dir)
    return (
        f"seeded {result['records']} records of {result['enterprises']} enterprises "
        f"in {result['seconds']} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scenarios.containers.entrypoint",
        description="Seed a node's ledger on first start, then run the node.",
    )
    parser.add_argument(
        "--config", required=True, help="the node's settings.json (seed.json beside it)"
    )
    args = parser.parse_args(argv)
    from node.datadir import set_private_umask
    from node.errors import DataDirLockedError

    set_private_umask()  # before seeding writes the ledger
    try:
        done = seed_if_needed(Path(args.config))
    except DataDirLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one sentence, then a non-zero exit
        print(f"error: seeding the ledger failed: {exc}", file=sys.stderr)
        return 2
    if done:
        print(done, file=sys.stderr, flush=True)
    from node.__main__ import main as node_main

    return node_main(["--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
