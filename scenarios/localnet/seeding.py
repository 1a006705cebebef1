"""Seeding: each node's ledger filled with its synthetic enterprises before the nodes start.

In worker processes, with a progress bar.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, LedgerError, NoteSigner, utc_now
from ledger.store import fsync_path
from node.consortium import Manifest, load_manifest
from node.keys import load_private_key
from scenarios.errors import NetworkError
from scenarios.localnet.consortium import (
    Consortium,
    read_json,
    write_json,
)
from scenarios.model.topology import PRESETS, Topology, load_topology
from scenarios.model.workloads import SyntheticData

SEED_BATCH = 1000


SEED_WORKERS = 2


# Records per enterprise in the synthetic data (measured: 78,628 records for
# 20,000 enterprises on launch-2020, 388,905 for 100,000 on oct-2021); only sizes
# the progress bar.
RECORDS_PER_ENTERPRISE = 3.9


# From this many enterprises on, seeding sets the nodes to the compact catalogue
# (node.catalogue): full mirroring pulls every peer entry into every node, which
# takes minutes at 10^5 enterprises and cannot finish at the chain's 16.82 million.
COMPACT_CATALOGUE_FROM = 100_000


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
    write_json(root / "nodes" / node_id / "seed.json", result)
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
        settings = read_json(path, "node settings")
        if settings.get("catalogue") != mode:
            write_json(path, {**settings, "catalogue": mode})


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
