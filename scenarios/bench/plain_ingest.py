"""The ingest baseline: the same synthetic records into plain SQLite tables.

In the same worker processes as the ledger seeding, with no ledger.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scenarios.model.topology import load_topology

# --- the plain SQLite ingest baseline --------------------------------------------------
_PLAIN_SCHEMA = """
CREATE TABLE credit_records (
    id INTEGER PRIMARY KEY, uscc TEXT, record_type TEXT, record_id TEXT,
    source TEXT, observed_at TEXT, body TEXT);
CREATE INDEX credit_records_uscc ON credit_records (uscc);
"""


def _plain_worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means


def _plain_seed_node(
    topology_file: str, node_id: str, enterprises: int, seed: int, db_path: str, batch: int
) -> dict[str, Any]:
    """Worker: the node's synthetic records into a plain table, the ledger's pragmas, one txn per batch."""
    from scenarios.model.workloads import SyntheticData

    data = SyntheticData(load_topology(topology_file), enterprises, seed)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_PLAIN_SCHEMA)
    sql = (
        "INSERT INTO credit_records (uscc, record_type, record_id, source, observed_at, body) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    rows: list[tuple[str, str, str, str, str, str]] = []
    records = 0

    def flush() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows)
        db.execute("COMMIT")
        rows.clear()

    for d in data.records_for_node(node_id):
        rows.append(
            (
                d.uscc,
                getattr(d, "record_type", "correction"),
                d.record_id,
                d.source,
                d.observed_at,
                json.dumps(d.body, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            )
        )
        records += 1
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    db.close()
    return {"node_id": node_id, "records": records, "bytes": files_bytes([Path(db_path).parent])}


def plain_ingest(
    topology_file: Path,
    node_ids: Sequence[str],
    enterprises: int,
    seed: int,
    workdir: Path,
    *,
    workers: int,
    batch: int,
    progress: bool,
) -> dict[str, Any]:
    """Insert every node's records into plain SQLite, one database per node, ``workers`` processes."""
    from tqdm import tqdm

    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    results = []
    bar = tqdm(
        total=len(node_ids),
        desc="plain SQLite ingest",
        unit="db",
        disable=not progress,
        dynamic_ncols=True,
        leave=False,
    )
    pool = ctx.Pool(processes=max(1, min(workers, len(node_ids))), initializer=_plain_worker_init)
    ok = False
    try:
        tasks = []
        for node_id in node_ids:
            d = workdir / node_id
            d.mkdir(parents=True, exist_ok=True)
            tasks.append(
                pool.apply_async(
                    _plain_seed_node,
                    (str(topology_file), node_id, enterprises, seed, str(d / "plain.db"), batch),
                )
            )
        for task in tasks:
            while not task.ready():
                task.wait(0.2)
            results.append(task.get())
            bar.update(1)
        ok = True
    finally:
        if ok:
            pool.close()
        else:
            pool.terminate()
        pool.join()
        bar.close()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "records": sum(r["records"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "workers": max(1, min(workers, len(node_ids))),
    }


def files_bytes(dirs: Iterable[Path]) -> int:
    """Bytes of the regular files under ``dirs`` (SQLite ``-shm`` index files excluded)."""
    total = 0
    for d in dirs:
        if not d.exists():
            continue
        for p in d.rglob("*"):
            if p.is_file() and not p.name.endswith("-shm"):
                total += p.stat().st_size
    return total
