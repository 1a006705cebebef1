"""Measuring helpers of the ledger bench.

Peak RSS in a fresh process, rates, sizes, progress bars.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import psutil
from tqdm import tqdm


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


def in_fresh_process(
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


def per_second(count: int, seconds: float) -> float | None:
    return count / seconds if count and seconds > 0 else None


def to_mib(n_bytes: int) -> float:
    return n_bytes / (1 << 20)


def db_bytes(path: Path) -> int:
    """The database file plus its WAL, if one is left."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def progress_bar(progress: bool, total: int, desc: str, unit: str) -> tqdm[Any]:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )


def mean_of(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
