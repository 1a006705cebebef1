"""``creditchain bench ledger``: one node's ledger against plain SQLite and pymerkle 7.

One run measures, over the same synthetic record stream:

* append rate of :class:`ledger.Ledger` (batches of ``batch``, one signed block
  each) against plain SQLite inserts of the same drafts (same pragmas, one
  transaction per batch, an index on the subject as the ledger has);
* inclusion- and consistency-proof generation at the final size, from a freshly
  reopened ledger (cold tile cache), against pymerkle 7 ``SqliteTree`` (freshly
  reopened: cold subroot cache) and ``InmemoryTree`` built on the same entry bytes.
  pymerkle makes fewer proofs (bounded and time-boxed), so each comparison uses
  our rate over our first k proofs of the same indices; the rate over all
  ``proofs`` is reported on its own row;
* proof verification with :mod:`ledger.merkle` against pymerkle's verifiers, and
  full :func:`ledger.verify_ledger` against recomputing the root alone;
* bytes per record on disk and peak RSS while appending.

Every figure is ``ours`` and ``baseline`` with ``ratio = ours / baseline``; for
rates above 1 means ours is faster, for bytes and MiB above 1 means ours uses more.

Invariants:
    * Records are generated lazily, one batch at a time: memory does not grow
      with ``n`` (pymerkle's ``InmemoryTree`` does, by its design).
    * Generation is timed on its own and excluded from both append rates.
    * Each append phase runs in its own freshly spawned process, so the two
      peak-RSS figures start from the same state (see :func:`in_fresh_process`).
    * pymerkle is GPL-3.0: it is imported only inside :func:`pymerkle_phase`,
      never at module level and never by ``ledger/`` or ``node/``.
    * The same seed gives the same records, indices and old sizes; salts and
      keys are random, so roots differ between runs (not within one).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    CompactRange,
    CorrectionDraft,
    Ledger,
    NoteSigner,
    RecordDraft,
    hasher,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from scenarios.bench.ledger_table import failed_checks, format_table
from scenarios.bench.measure import (
    PeakRss,
    db_bytes,
    in_fresh_process,
    per_second,
    progress_bar,
    to_mib,
)
from scenarios.bench.pymerkle_baseline import PYMERKLE_BUDGET_S, PYMERKLE_PROOFS, pymerkle_phase
from scenarios.errors import BenchError
from scenarios.model.topology import load_topology
from scenarios.model.workloads import SyntheticData

__all__ = [
    "RESULT_FILE",
    "BenchError",
    "cli_run",
    "failed_checks",
    "format_table",
    "run_ledger_bench",
    "synthetic_batches",
    "write_result",
]

RESULT_FILE = "bench-ledger.json"
ORIGIN = "bench.yrd-credit-chain/ledger"
TOPOLOGY = "launch-2020"
# launch-2020 yields about 3.93 records per enterprise over all nodes' streams;
# sizing a little under keeps every node's stream in the first N records.
RECORDS_PER_ENTERPRISE = 3.8
READ_CHUNK = 10_000

Draft = RecordDraft | CorrectionDraft


# --------------------------------------------------------------------------- records


def synthetic_records(n: int, *, seed: int = 2020, topology: str = TOPOLOGY) -> Iterator[Draft]:
    """Exactly ``n`` drafts: every node's stream of the topology in turn, truncated.

    The enterprise count is sized from ``n``; if the streams still run dry, a
    further region with the next seed continues them, so ``n`` is always met.
    """
    topo = load_topology(topology)
    emitted = 0
    round_ = 0
    while emitted < n:
        enterprises = max(len(topo.cities), math.ceil((n - emitted) / RECORDS_PER_ENTERPRISE) + 16)
        data = SyntheticData(topo, enterprises, seed + round_)
        for node_id in topo.node_ids:
            for draft in data.records_for_node(node_id):
                yield draft
                emitted += 1
                if emitted == n:
                    return
        round_ += 1


def synthetic_batches(n: int, batch: int, *, seed: int = 2020) -> Iterator[list[Draft]]:
    """The same ``n`` drafts in lists of ``batch`` (the last may be shorter), built lazily."""
    it = synthetic_records(n, seed=seed)
    while chunk := list(islice(it, batch)):
        yield chunk


def _timed_batches(n: int, batch: int, seed: int, clock: list[float]) -> Iterator[list[Draft]]:
    """Yield batches, adding the time spent generating each to ``clock[0]``."""
    it = synthetic_batches(n, batch, seed=seed)
    while True:
        t0 = time.perf_counter()
        chunk = next(it, None)
        clock[0] += time.perf_counter() - t0
        if chunk is None:
            return
        yield chunk


# --------------------------------------------------------------------------- measuring


# --------------------------------------------------------------------------- phases


def _ledger_phase(
    path: Path, n: int, batch: int, seed: int, algorithm: str, progress: bool
) -> dict[str, Any]:
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    ledger = Ledger.create(path, origin=ORIGIN, signer=signer, algorithm=algorithm)
    gen = [0.0]
    append_s = 0.0
    with PeakRss() as rss, progress_bar(progress, n, "ledger append", "rec") as bar:
        for chunk in _timed_batches(n, batch, seed, gen):
            t0 = time.perf_counter()
            ledger.append(chunk)
            append_s += time.perf_counter() - t0
            bar.update(len(chunk))
    head = ledger.head
    ledger.close()
    if head.size != n:
        raise BenchError(f"the ledger holds {head.size} entries after appending, expected {n}")
    return {
        "append_s": append_s,
        "generate_s": gen[0],
        "blocks": head.height,
        "root": head.root.hex(),
        "rss_start": rss.start,
        "rss_peak": rss.peak,
        "rss_ru_maxrss_mib": _ru_maxrss_mib(),
        "bytes": db_bytes(path),
    }


BASELINE_SCHEMA = """
CREATE TABLE credit_records (
    id INTEGER PRIMARY KEY, uscc TEXT, record_type TEXT, record_id TEXT,
    source TEXT, observed_at TEXT, body TEXT);
CREATE INDEX credit_records_uscc ON credit_records (uscc);
"""


def _baseline_rows(
    start: int, drafts: Sequence[Draft]
) -> list[tuple[int, str, str, str, str, str, str]]:
    return [
        (
            start + i,
            d.uscc,
            d.record_type if isinstance(d, RecordDraft) else "correction",
            d.record_id,
            d.source,
            d.observed_at,
            json.dumps(d.body),
        )
        for i, d in enumerate(drafts)
    ]


def _baseline_phase(path: Path, n: int, batch: int, seed: int, progress: bool) -> dict[str, Any]:
    """Plain SQLite: the ledger's pragmas, one transaction per batch, no hashing or signing."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA cache_size=-65536")
    db.executescript(BASELINE_SCHEMA)
    sql = (
        "INSERT INTO credit_records (id, uscc, record_type, record_id, source, observed_at, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    gen = [0.0]
    insert_s = 0.0
    done = 0
    with PeakRss() as rss, progress_bar(progress, n, "sqlite baseline", "rec") as bar:
        for chunk in _timed_batches(n, batch, seed, gen):
            t0 = time.perf_counter()
            rows = _baseline_rows(done, chunk)
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")
            insert_s += time.perf_counter() - t0
            done += len(chunk)
            bar.update(len(chunk))
    db.close()
    return {
        "insert_s": insert_s,
        "generate_s": gen[0],
        "rss_start": rss.start,
        "rss_peak": rss.peak,
        "rss_ru_maxrss_mib": _ru_maxrss_mib(),
        "bytes": db_bytes(path),
    }


def _timed_proofs(
    progress: bool, label: str, args: Sequence[int], make: Callable[[int], list[bytes]]
) -> tuple[list[list[bytes]], list[float], float]:
    """Make one proof per argument; return the proofs, cumulative times after each, and the total."""
    out: list[list[bytes]] = []
    cumulative: list[float] = []
    with progress_bar(progress, len(args), label, "proof") as bar:
        t0 = time.perf_counter()
        for a in args:
            out.append(make(a))
            cumulative.append(time.perf_counter() - t0)
            bar.update()
        total = time.perf_counter() - t0
    return out, cumulative, total


def _proof_phase(
    path: Path, n: int, proofs: int, seed: int, algorithm: str, progress: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our proofs from a freshly opened ledger, then their verification.

    Returns the measurements and the material pymerkle is compared against.
    """
    rng = random.Random(seed)
    indices = [rng.randrange(n) for _ in range(proofs)]
    old_sizes = [rng.randrange(1, n) for _ in range(proofs)]
    reader = Ledger.open(path, readonly=True)  # cold tile cache
    size, root = reader.size, reader.head.root

    # Cumulative times after each proof let pymerkle, which makes fewer proofs,
    # be compared with our first k proofs of the same indices from the same cold start.
    inclusion, inclusion_cum, inclusion_s = _timed_proofs(
        progress, "inclusion proofs", indices, reader.inclusion_proof
    )
    consistency, consistency_cum, consistency_s = _timed_proofs(
        progress, "consistency proofs", old_sizes, reader.consistency_proof
    )

    # Verification inputs, gathered untimed: leaf hashes re-hashed from the
    # stored entry bytes (not read from tiles), old roots from the tree.
    h = hasher(algorithm)
    leaves = [h.leaf(reader.entry_data(i)) for i in indices]
    old_roots = [reader.root_at(m) for m in old_sizes]
    reader.close()

    t0 = time.perf_counter()
    for i, leaf, proof in zip(indices, leaves, inclusion, strict=True):
        verify_inclusion(leaf, i, size, proof, root, algorithm)
    verify_inclusion_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for m, old_root, proof in zip(old_sizes, old_roots, consistency, strict=True):
        verify_consistency(m, size, old_root, root, proof, algorithm)
    verify_consistency_s = time.perf_counter() - t0

    measured = {
        "inclusion_s": inclusion_s,
        "consistency_s": consistency_s,
        "verify_inclusion_s": verify_inclusion_s,
        "verify_consistency_s": verify_consistency_s,
        "inclusion_hashes_mean": sum(map(len, inclusion)) / proofs,
        "consistency_hashes_mean": sum(map(len, consistency)) / proofs,
    }
    material = {
        "size": size,
        "root": root,
        "indices": indices,
        "old_sizes": old_sizes,
        "inclusion": inclusion,
        "consistency": consistency,
        "inclusion_cum": inclusion_cum,
        "consistency_cum": consistency_cum,
        "leaves": leaves,
        "old_roots": old_roots,
    }
    return measured, material


def _verify_phase(path: Path, algorithm: str, progress: bool) -> dict[str, Any]:
    """Full verify_ledger, and the least a verifier must do: re-hash entries into the root."""
    t0 = time.perf_counter()
    report = verify_ledger(path)
    verify_s = time.perf_counter() - t0

    reader = Ledger.open(path, readonly=True)
    n, root = reader.size, reader.head.root
    h = hasher(algorithm)
    compact = CompactRange(h)
    with progress_bar(progress, n, "root recompute", "entry") as bar:
        t0 = time.perf_counter()
        for start in range(0, n, READ_CHUNK):
            rows = reader.entries(start, start + READ_CHUNK)
            compact.extend(h.leaf(data) for _, data in rows)
            bar.update(len(rows))
        root_s = time.perf_counter() - t0
    reader.close()
    return {
        "verify_s": verify_s,
        "verify_ok": report.ok,
        "verify_faults": [str(f) for f in report.faults],
        "root_recompute_s": root_s,
        "root_recompute_ok": compact.root() == root,
    }


# --------------------------------------------------------------------------- result


def _figure(
    key: str, figure: str, unit: str, ours: float | None, baseline: float | None, baseline_name: str
) -> dict[str, Any]:
    ratio = ours / baseline if ours is not None and baseline else None
    return {
        "key": key,
        "figure": figure,
        "unit": unit,
        "ours": ours,
        "baseline": baseline,
        "ratio": ratio,
        "baseline_name": baseline_name,
    }


def _machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_total_mib": round(to_mib(psutil.virtual_memory().total)),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def run_ledger_bench(
    n: int,
    batch: int,
    proofs: int,
    workdir: str | Path,
    algorithm: str = "sha256",
    with_pymerkle: bool = True,
    progress: bool = False,
    *,
    out: str | Path | None = None,
    seed: int = 2020,
    pymerkle_proofs: int = PYMERKLE_PROOFS,
    pymerkle_budget_s: float = PYMERKLE_BUDGET_S,
    keep: bool = False,
    isolated: bool = True,
) -> dict[str, Any]:
    """Run every measurement once and return the result (also written to ``out`` if given).

    Args:
        n: records to append (at least 2, so consistency proofs exist).
        batch: records per append batch (one block, one transaction).
        proofs: inclusion and consistency proofs of each kind for our ledger.
        workdir: directory for the databases; a fresh subdirectory is used
            and removed afterwards unless ``keep``.
        algorithm: ``"sha256"`` or ``"sm3"``; pymerkle has no SM3 and is
            skipped under it.
        with_pymerkle: compare against pymerkle 7 (GPL; imported lazily).
        progress: show tqdm bars on stderr.
        out: directory to write ``bench-ledger.json`` into.
        seed: seeds the records, proof indices and old sizes.
        pymerkle_proofs: at most this many pymerkle proofs of each kind.
        pymerkle_budget_s: stop each pymerkle proof loop after this long.
        keep: keep the databases.
        isolated: run each append phase in a freshly spawned process, so
            their peak RSS figures start from the same state.

    Returns:
        A JSON-ready dict: parameters, machine, ``figures`` (ours, baseline,
        ratio = ours / baseline), ``details`` (raw timings), ``checks``.

    Raises:
        BenchError: bad arguments, or pymerkle asked for and not installed.
    """
    if n < 2:
        raise BenchError(f"n must be at least 2 (consistency proofs need an older tree), got {n}")
    if batch < 1 or proofs < 1:
        raise BenchError(f"batch and proofs must be at least 1, got {batch} and {proofs}")
    hasher(algorithm)  # ValueError names the bad algorithm
    pymerkle_skip_reason = None
    if not with_pymerkle:
        pymerkle_skip_reason = "skipped on request"
    elif algorithm != "sha256":
        pymerkle_skip_reason = f"pymerkle 7 has no {algorithm}"
    Path(workdir).mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-ledger-", dir=workdir))
    started = time.time()
    try:
        ledger_path = run_dir / "ledger.db"
        ours = in_fresh_process(
            isolated, _ledger_phase, ledger_path, n, batch, seed, algorithm, progress
        )
        base = in_fresh_process(
            isolated, _baseline_phase, run_dir / "baseline.db", n, batch, seed, progress
        )
        proof, material = _proof_phase(ledger_path, n, proofs, seed + 1, algorithm, progress)
        verified = _verify_phase(ledger_path, algorithm, progress)
        pm: dict[str, Any] | None = None
        if pymerkle_skip_reason is None:
            count = min(proofs, pymerkle_proofs)
            pm = pymerkle_phase(
                ledger_path,
                run_dir / "pymerkle.db",
                batch,
                material,
                count,
                pymerkle_budget_s,
                progress,
            )
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)

    def pm_rate(kind: str) -> float | None:
        return None if pm is None else per_second(pm[f"{kind}_count"], pm[f"{kind}_s"])

    def first_k(pm_kind: str) -> int:
        """How many proofs pymerkle made of this kind (or would have, when skipped)."""
        return min(proofs, pymerkle_proofs) if pm is None else int(pm[f"{pm_kind}_count"])

    def ours_first(kind: str, pm_kind: str) -> float | None:
        """Our rate over our first k proofs: the same indices, from the same cold start."""
        k = first_k(pm_kind)
        return per_second(k, material[f"{kind}_cum"][k - 1]) if k else None

    append_rate = per_second(n, ours["append_s"])
    inc_sqlite, inc_inmem = (
        f"first {first_k(k):,}" for k in ("sqlite_inclusion", "inmemory_inclusion")
    )
    con_sqlite, con_inmem = (
        f"first {first_k(k):,}" for k in ("sqlite_consistency", "inmemory_consistency")
    )
    figures = [
        _figure(
            "append",
            "append",
            "records/s",
            append_rate,
            per_second(n, base["insert_s"]),
            "SQLite inserts (same pragmas, 1 txn/batch)",
        ),
        _figure(
            "append_vs_sqlitetree",
            "append vs pymerkle build",
            "records/s",
            append_rate,
            None if pm is None else per_second(n, pm["sqlite_build_s"]),
            "pymerkle SqliteTree.append_entries",
        ),
        _figure(
            "generation",
            "record generation (excluded)",
            "records/s",
            per_second(n, ours["generate_s"]),
            None,
            "-",
        ),
        _figure(
            "inclusion",
            f"inclusion proofs (all {proofs:,})",
            "proofs/s",
            per_second(proofs, proof["inclusion_s"]),
            None,
            "-",
        ),
        _figure(
            "inclusion_vs_sqlitetree",
            f"inclusion proofs ({inc_sqlite})",
            "proofs/s",
            ours_first("inclusion", "sqlite_inclusion"),
            pm_rate("sqlite_inclusion"),
            "pymerkle SqliteTree",
        ),
        _figure(
            "inclusion_vs_inmemorytree",
            f"inclusion proofs ({inc_inmem})",
            "proofs/s",
            ours_first("inclusion", "inmemory_inclusion"),
            pm_rate("inmemory_inclusion"),
            "pymerkle InmemoryTree",
        ),
        _figure(
            "consistency",
            f"consistency proofs (all {proofs:,})",
            "proofs/s",
            per_second(proofs, proof["consistency_s"]),
            None,
            "-",
        ),
        _figure(
            "consistency_vs_sqlitetree",
            f"consistency proofs ({con_sqlite})",
            "proofs/s",
            ours_first("consistency", "sqlite_consistency"),
            pm_rate("sqlite_consistency"),
            "pymerkle SqliteTree",
        ),
        _figure(
            "consistency_vs_inmemorytree",
            f"consistency proofs ({con_inmem})",
            "proofs/s",
            ours_first("consistency", "inmemory_consistency"),
            pm_rate("inmemory_consistency"),
            "pymerkle InmemoryTree",
        ),
        _figure(
            "verify_inclusion",
            "verify inclusion",
            "proofs/s",
            per_second(proofs, proof["verify_inclusion_s"]),
            pm_rate("verify_inclusion"),
            "pymerkle.verify_inclusion",
        ),
        _figure(
            "verify_consistency",
            "verify consistency",
            "proofs/s",
            per_second(proofs, proof["verify_consistency_s"]),
            pm_rate("verify_consistency"),
            "pymerkle.verify_consistency",
        ),
        _figure(
            "verify_ledger",
            "verify_ledger (full)",
            "entries/s",
            per_second(n, verified["verify_s"]),
            per_second(n, verified["root_recompute_s"]),
            "root recompute only",
        ),
        _figure(
            "bytes_per_record",
            "bytes per record",
            "bytes",
            ours["bytes"] / n,
            base["bytes"] / n,
            "SQLite inserts",
        ),
        _figure(
            "peak_rss",
            "peak RSS while appending",
            "MiB",
            to_mib(ours["rss_peak"]),
            to_mib(base["rss_peak"]),
            "SQLite inserts" + (" (each in a fresh process)" if isolated else ""),
        ),
    ]
    if pm is None:
        differential: dict[str, Any] = {
            "message": f"pymerkle {pymerkle_skip_reason}",
            "roots_agree": None,
        }
    elif pm["roots_agree"]:
        differential = {"message": "roots agree", "roots_agree": True}
    else:
        r = pm["roots"]
        differential = {
            "message": (
                f"root mismatch: ours {r['ours']}, SqliteTree {r['sqlitetree']}, "
                f"InmemoryTree {r['inmemorytree']}"
            ),
            "roots_agree": False,
        }
    if pm is not None:
        differential["inclusion_paths_agree"] = pm["inclusion_paths_agree"]
        differential["consistency_proofs_reach_our_roots"] = pm[
            "consistency_proofs_reach_our_roots"
        ]
    result: dict[str, Any] = {
        "bench": "ledger",
        "n": n,
        "batch": batch,
        "proofs": proofs,
        "algorithm": algorithm,
        "seed": seed,
        "topology": TOPOLOGY,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": time.time() - started,
        "machine": _machine(),
        "figures": figures,
        "checks": {
            "verify_ledger_ok": verified["verify_ok"],
            "verify_ledger_faults": verified["verify_faults"],
            "root_recompute_ok": verified["root_recompute_ok"],
            "differential": differential,
        },
        "pymerkle": pm if pm is not None else {"skipped": pymerkle_skip_reason},
        "details": {
            "ledger": ours,
            "baseline": base,
            "proofs": proof,
            "verify": {k: v for k, v in verified.items() if k != "verify_faults"},
            "isolated_append_phases": isolated,
        },
    }
    if out is not None:
        result["json_path"] = str(Path(out) / RESULT_FILE)
        write_result(result, out)
    return result


def _ru_maxrss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else to_mib(kib)


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``result`` as ``out_dir/bench-ledger.json``; returns the path."""
    path = Path(out_dir) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def cli_run(
    n: int,
    batch: int,
    proofs: int,
    out: Path,
    algorithm: str,
    skip_pymerkle: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """What ``creditchain bench ledger`` does: run in a temporary directory, print the table, write JSON.

    Raises:
        BenchError: after printing, if a check failed (verify_ledger, roots, proofs).
    """
    with tempfile.TemporaryDirectory(prefix="creditchain-bench-") as tmp:
        result = run_ledger_bench(
            n, batch, proofs, tmp, algorithm, not skip_pymerkle, sys.stderr.isatty(), out=out
        )
    echo(format_table(result))
    failed = failed_checks(result)
    if failed:
        raise BenchError(f"the benchmark's checks failed: {', '.join(failed)}")
    return result
