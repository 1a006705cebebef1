"""The independent tree: pymerkle 7 fed the same entries.

Its roots and proofs are compared with ours (a differential check, time-boxed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ledger import (
    Ledger,
    verify_inclusion,
)
from scenarios.bench.measure import (
    db_bytes,
    mean_of,
    progress_bar,
)
from scenarios.errors import BenchError

PYMERKLE_PROOFS = 200


PYMERKLE_BUDGET_S = 60.0


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


def pymerkle_phase(
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
        with progress_bar(progress, n, f"pymerkle {label} build", "leaf") as bar:
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
    out["sqlite_bytes"] = db_bytes(db_path)

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
            with progress_bar(
                progress, len(items), f"pymerkle {kind.replace('_', ' ')}", "proof"
            ) as bar:
                timed[kind] = _time_boxed(items, fn, budget_s, bar)
    for kind, items, fn in (
        ("inmemory_inclusion", indices, lambda i: inmem.prove_inclusion(i + 1)),
        ("inmemory_consistency", old_sizes, lambda m: inmem.prove_consistency(m)),
    ):
        with progress_bar(
            progress, len(items), f"pymerkle {kind.replace('_', ' ')}", "proof"
        ) as bar:
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
    out["consistency_hashes_mean"] = mean_of(
        [len(p.path) for p in timed["inmemory_consistency"][0]]
    )
    out["ours_consistency_hashes_mean_same_sizes"] = mean_of(
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
