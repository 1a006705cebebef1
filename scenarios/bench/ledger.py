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
      peak-RSS figures start from the same state (see :func:`_in_fresh_process`).
    * pymerkle is GPL-3.0: it is imported only inside :func:`_pymerkle_phase`,
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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tqdm import tqdm

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
# launch-2020 yields about 2.85 records per enterprise over all nodes' streams;
# sizing a little under keeps every node's stream in the first N records.
RECORDS_PER_ENTERPRISE = 2.75
PYMERKLE_PROOFS = 200
PYMERKLE_BUDGET_S = 60.0
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


class PeakRss:
    """Peak resident set size of this process while the block runs, sampled by a thread."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self._proc = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self.start = 0
        self.peak = 0

    def _sample(self) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _in_fresh_process(
    isolated: bool, fn: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any]:
    """Run ``fn(*args)`` in a new interpreter (spawned) when ``isolated``, else here.

    A fresh process per append phase makes the peak RSS of the ledger and of
    the baseline comparable: freed memory of one phase (SQLite's page cache,
    Python's arenas) is not counted in, or hidden by, the other.
    """
    if not isolated:
        return fn(*args)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _rate(count: int, seconds: float) -> float | None:
    return count / seconds if count and seconds > 0 else None


def _mib(n_bytes: int) -> float:
    return n_bytes / (1 << 20)


def _db_bytes(path: Path) -> int:
    """The database file plus its WAL, if one is left."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _bar(progress: bool, total: int, desc: str, unit: str) -> tqdm[Any]:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )


# --------------------------------------------------------------------------- phases


def _ledger_phase(
    path: Path, n: int, batch: int, seed: int, algorithm: str, progress: bool
) -> dict[str, Any]:
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    ledger = Ledger.create(path, origin=ORIGIN, signer=signer, algorithm=algorithm)
    gen = [0.0]
    append_s = 0.0
    with PeakRss() as rss, _bar(progress, n, "ledger append", "rec") as bar:
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
        "bytes": _db_bytes(path),
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
    with PeakRss() as rss, _bar(progress, n, "sqlite baseline", "rec") as bar:
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
        "bytes": _db_bytes(path),
    }


def _timed_proofs(
    progress: bool, label: str, args: Sequence[int], make: Callable[[int], list[bytes]]
) -> tuple[list[list[bytes]], list[float], float]:
    """Make one proof per argument; return the proofs, cumulative times after each, and the total."""
    out: list[list[bytes]] = []
    cumulative: list[float] = []
    with _bar(progress, len(args), label, "proof") as bar:
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
    with _bar(progress, n, "root recompute", "entry") as bar:
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


def _entry_chunks(reader: Ledger, n: int, chunk: int) -> Iterator[list[bytes]]:
    """The ledger's entry bytes in index order (the same bytes ``entry_data(i)`` returns)."""
    for start in range(0, n, chunk):
        yield [data for _, data in reader.entries(start, start + chunk)]


def _time_boxed(
    items: Sequence[Any], fn: Callable[[Any], Any], budget_s: float, bar: tqdm[Any]
) -> tuple[list[Any], float]:
    """Apply ``fn`` to items in order until done or ``budget_s`` has passed."""
    out: list[Any] = []
    t0 = time.perf_counter()
    elapsed = 0.0
    for item in items:
        out.append(fn(item))
        bar.update()
        elapsed = time.perf_counter() - t0
        if elapsed > budget_s:
            break
    return out, elapsed


def _pymerkle_phase(
    ledger_path: Path,
    db_path: Path,
    batch: int,
    material: dict[str, Any],
    count: int,
    budget_s: float,
    progress: bool,
) -> dict[str, Any]:
    """pymerkle 7 on the same entry bytes: build, roots, proofs, verification.

    pymerkle is imported here and only here (GPL-3.0; see the module docstring).
    Its indices and sizes are 1-based; leaf and node hashing are RFC 6962
    (0x00/0x01 prefixes) by default, so its roots must equal ours.
    """
    try:
        import pymerkle
        from pymerkle import InmemoryTree, SqliteTree
    except ImportError as exc:
        raise BenchError(
            "pymerkle is not installed (pip install 'pymerkle>=7,<8'), or pass --skip-pymerkle"
        ) from exc

    n, root = material["size"], material["root"]
    indices, old_sizes = material["indices"][:count], material["old_sizes"][:count]
    out: dict[str, Any] = {
        "version": pymerkle.__version__,
        "proofs_requested": count,
        "budget_s": budget_s,
    }

    reader = Ledger.open(ledger_path, readonly=True)

    def build(tree: Any, label: str) -> float:
        """Feed ``tree`` every entry in chunks; the time spent in append_entries only."""
        spent = 0.0
        with _bar(progress, n, f"pymerkle {label} build", "leaf") as bar:
            for entries in _entry_chunks(reader, n, batch):
                t0 = time.perf_counter()
                tree.append_entries(entries)
                spent += time.perf_counter() - t0
                bar.update(len(entries))
        return spent

    sqlite_tree = SqliteTree(str(db_path))
    out["sqlite_build_s"] = build(sqlite_tree, "SqliteTree")
    sqlite_tree.close()
    inmem = InmemoryTree()
    out["inmemory_build_s"] = build(inmem, "InmemoryTree")
    reader.close()
    out["sqlite_bytes"] = _db_bytes(db_path)

    # Differential check of roots, on its own SqliteTree instance so the one
    # that answers proofs starts with a cold subroot cache, as ours does.
    with SqliteTree(str(db_path)) as check:
        sqlite_root = check.get_root()
    inmem_root = inmem.get_root()
    out["roots"] = {
        "ours": root.hex(),
        "sqlitetree": sqlite_root.hex(),
        "inmemorytree": inmem_root.hex(),
    }
    out["roots_agree"] = sqlite_root == root and inmem_root == root

    timed: dict[str, tuple[list[Any], float]] = {}
    with SqliteTree(str(db_path)) as tree:
        for kind, items, fn in (
            ("sqlite_inclusion", indices, lambda i: tree.prove_inclusion(i + 1)),
            ("sqlite_consistency", old_sizes, lambda m: tree.prove_consistency(m)),
        ):
            with _bar(progress, len(items), f"pymerkle {kind.replace('_', ' ')}", "proof") as bar:
                timed[kind] = _time_boxed(items, fn, budget_s, bar)
    for kind, items, fn in (
        ("inmemory_inclusion", indices, lambda i: inmem.prove_inclusion(i + 1)),
        ("inmemory_consistency", old_sizes, lambda m: inmem.prove_consistency(m)),
    ):
        with _bar(progress, len(items), f"pymerkle {kind.replace('_', ' ')}", "proof") as bar:
            timed[kind] = _time_boxed(items, fn, budget_s, bar)
    for kind, (done, seconds) in timed.items():
        out[f"{kind}_s"] = seconds
        out[f"{kind}_count"] = len(done)

    # Differential check of proofs. Inclusion: pymerkle's path is the leaf
    # itself followed by exactly our RFC 9162 path. Consistency: pymerkle's
    # path has another layout (it carries the old tree's subroots too), so its
    # proofs are checked against our old and new roots instead.
    ours_inc, leaves = material["inclusion"], material["leaves"]
    ours_con, old_roots = material["consistency"], material["old_roots"]
    inc_agree = con_agree = True
    for kind in ("sqlite_inclusion", "inmemory_inclusion"):
        for k, proof in enumerate(timed[kind][0]):
            inc_agree &= proof.path[1:] == ours_inc[k] and proof.path[0] == leaves[k]
    for kind in ("sqlite_consistency", "inmemory_consistency"):
        for k, proof in enumerate(timed[kind][0]):
            con_agree &= (
                proof.retrieve_prior_state() == old_roots[k] and proof.compute_root() == root
            )
    out["inclusion_paths_agree"] = inc_agree
    out["consistency_proofs_reach_our_roots"] = con_agree
    out["consistency_hashes_mean"] = _mean([len(p.path) for p in timed["inmemory_consistency"][0]])
    out["ours_consistency_hashes_mean_same_sizes"] = _mean(
        [len(p) for p in ours_con[: len(timed["inmemory_consistency"][0])]]
    )

    # pymerkle's verifiers on its own (InmemoryTree) proofs, against our roots.
    inc_proofs = timed["inmemory_inclusion"][0]
    t0 = time.perf_counter()
    for k, proof in enumerate(inc_proofs):
        pymerkle.verify_inclusion(leaves[k], root, proof, index=indices[k] + 1, size=n)
    out["verify_inclusion_s"] = time.perf_counter() - t0
    out["verify_inclusion_count"] = len(inc_proofs)
    con_proofs = timed["inmemory_consistency"][0]
    t0 = time.perf_counter()
    for k, proof in enumerate(con_proofs):
        pymerkle.verify_consistency(
            old_roots[k], root, proof, prior_size=old_sizes[k], later_size=n
        )
    out["verify_consistency_s"] = time.perf_counter() - t0
    out["verify_consistency_count"] = len(con_proofs)
    # Same proofs, our verifier, for a like-for-like count.
    t0 = time.perf_counter()
    for k in range(len(inc_proofs)):
        verify_inclusion(leaves[k], indices[k], n, ours_inc[k], root)
    out["ours_verify_inclusion_same_count_s"] = time.perf_counter() - t0
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


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
        "memory_total_mib": round(_mib(psutil.virtual_memory().total)),
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
        ours = _in_fresh_process(
            isolated, _ledger_phase, ledger_path, n, batch, seed, algorithm, progress
        )
        base = _in_fresh_process(
            isolated, _baseline_phase, run_dir / "baseline.db", n, batch, seed, progress
        )
        proof, material = _proof_phase(ledger_path, n, proofs, seed + 1, algorithm, progress)
        verified = _verify_phase(ledger_path, algorithm, progress)
        pm: dict[str, Any] | None = None
        if pymerkle_skip_reason is None:
            count = min(proofs, pymerkle_proofs)
            pm = _pymerkle_phase(
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
        return None if pm is None else _rate(pm[f"{kind}_count"], pm[f"{kind}_s"])

    def first_k(pm_kind: str) -> int:
        """How many proofs pymerkle made of this kind (or would have, when skipped)."""
        return min(proofs, pymerkle_proofs) if pm is None else int(pm[f"{pm_kind}_count"])

    def ours_first(kind: str, pm_kind: str) -> float | None:
        """Our rate over our first k proofs: the same indices, from the same cold start."""
        k = first_k(pm_kind)
        return _rate(k, material[f"{kind}_cum"][k - 1]) if k else None

    append_rate = _rate(n, ours["append_s"])
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
            _rate(n, base["insert_s"]),
            "SQLite inserts (same pragmas, 1 txn/batch)",
        ),
        _figure(
            "append_vs_sqlitetree",
            "append vs pymerkle build",
            "records/s",
            append_rate,
            None if pm is None else _rate(n, pm["sqlite_build_s"]),
            "pymerkle SqliteTree.append_entries",
        ),
        _figure(
            "generation",
            "record generation (excluded)",
            "records/s",
            _rate(n, ours["generate_s"]),
            None,
            "-",
        ),
        _figure(
            "inclusion",
            f"inclusion proofs (all {proofs:,})",
            "proofs/s",
            _rate(proofs, proof["inclusion_s"]),
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
            _rate(proofs, proof["consistency_s"]),
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
            _rate(proofs, proof["verify_inclusion_s"]),
            pm_rate("verify_inclusion"),
            "pymerkle.verify_inclusion",
        ),
        _figure(
            "verify_consistency",
            "verify consistency",
            "proofs/s",
            _rate(proofs, proof["verify_consistency_s"]),
            pm_rate("verify_consistency"),
            "pymerkle.verify_consistency",
        ),
        _figure(
            "verify_ledger",
            "verify_ledger (full)",
            "entries/s",
            _rate(n, verified["verify_s"]),
            _rate(n, verified["root_recompute_s"]),
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
            _mib(ours["rss_peak"]),
            _mib(base["rss_peak"]),
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
    return kib / 1024 if sys.platform != "darwin" else _mib(kib)


def write_result(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``result`` as ``out_dir/bench-ledger.json``; returns the path."""
    path = Path(out_dir) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("MiB", "bytes") or value < 100:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def format_table(result: dict[str, Any]) -> str:
    """The result as a plain-text table: figure, ours, baseline, ratio (ours / baseline)."""
    pm = result["pymerkle"]
    if "skipped" in pm:
        pm_note = f"pymerkle {pm['skipped']}"
    else:
        pm_note = (
            f"pymerkle {pm['version']}: "
            f"{pm['sqlite_inclusion_count']}/{pm['sqlite_consistency_count']} SqliteTree and "
            f"{pm['inmemory_inclusion_count']}/{pm['inmemory_consistency_count']} InmemoryTree "
            "inclusion/consistency proofs "
            f"(of {pm['proofs_requested']} asked, {pm['budget_s']:.0f} s budget each)"
        )
    m = result["machine"]
    lines = [
        f"bench ledger: n={result['n']:,} batch={result['batch']:,} proofs={result['proofs']:,} "
        f"algorithm={result['algorithm']} seed={result['seed']}",
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, SQLite {m['sqlite']}",
        pm_note,
        "",
    ]
    header = ("figure", "unit", "ours", "baseline", "ratio", "baseline is")
    rows = [header] + [
        (
            f["figure"],
            f["unit"],
            _fmt(f["ours"], f["unit"]),
            _fmt(f["baseline"], f["unit"]),
            "-" if f["ratio"] is None else f"{f['ratio']:.3g}",
            f["baseline_name"],
        )
        for f in result["figures"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 3, 4}
    for k, r in enumerate(rows):
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    checks = result["checks"]
    d = checks["differential"]
    lines.append("")
    lines.append(f"differential: {d['message']}")
    if "inclusion_paths_agree" in d:
        lines.append(
            f"  inclusion paths equal ours: {_yes(d['inclusion_paths_agree'])}; "
            "pymerkle consistency proofs reach our old and new roots: "
            f"{_yes(d['consistency_proofs_reach_our_roots'])}"
        )
    lines.append(
        "verify_ledger: "
        f"{'ok' if checks['verify_ledger_ok'] else 'FAULTS ' + '; '.join(checks['verify_ledger_faults'])}; "
        f"root recompute {'ok' if checks['root_recompute_ok'] else 'MISMATCH'}"
    )
    det = result["details"]
    lines.append(
        f"append {det['ledger']['append_s']:.1f} s over {det['ledger']['blocks']:,} blocks "
        f"(generation {det['ledger']['generate_s']:.1f} s, excluded); baseline inserts "
        f"{det['baseline']['insert_s']:.1f} s; "
        f"wall {result['wall_s']:.0f} s"
    )
    if "json_path" in result:
        lines.append(f"wrote {result['json_path']}")
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


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


def failed_checks(result: dict[str, Any]) -> list[str]:
    """Names of the checks in ``result`` that did not pass (skipped ones are not failures)."""
    checks = result["checks"]
    failed = [name for name in ("verify_ledger_ok", "root_recompute_ok") if not checks[name]]
    d = checks["differential"]
    failed += [
        name
        for name in ("roots_agree", "inclusion_paths_agree", "consistency_proofs_reach_our_roots")
        if d.get(name) is False
    ]
    return failed
