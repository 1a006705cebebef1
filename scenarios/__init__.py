"""scenarios: the simulator's harness around the nodes — everything a user runs.

Rooms (each a sub-package, imported on first use so that ``creditchain --help`` stays instant)::

    cli/         the ``creditchain`` command line: a lazy click group, one error class
    model/       topologies and presets of the region, deterministic synthetic workloads
    localnet/    a local network: consortium directory, keys, seeding, node processes,
                 health and mirroring waits, the signed node client, queries
    scenario/    scenario files (YAML timelines with expectations), the runner, its report
    bench/       the benchmarks: ledger, query, the node x volume matrix, their reports
    reliability/ the crash harness and the bounded soak
    containers/  docker compose files, the container entrypoint, the docker target
    errors.py    the one error root, ``ScenariosError``

Arrows point one way: ``scenarios -> node -> ledger``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "bench",
    "cli",
    "containers",
    "errors",
    "localnet",
    "model",
    "reliability",
    "scenario",
]


def __getattr__(name: str) -> ModuleType:
    if name not in __all__:
        raise AttributeError(f"module 'scenarios' has no attribute {name!r}")
    return importlib.import_module(f"scenarios.{name}")
