"""The benchmark matrix's plan: node counts x enterprise volumes.

Each cell's topology is a spread subset of the preset's cities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from scenarios.errors import BenchError
from scenarios.model.topology import City, Topology

DEFAULT_NODES = (1, 2, 4, 8, 11, 14)

# Wider node counts for a preset that has that many nodes (``yrd-41``), planned at
# the volumes up to ``WIDE_MAX_ENTERPRISES`` only: at 10^5 and 10^6 a cell of 41
# node processes on a small machine measures the machine rather than the chain.
DEFAULT_WIDE_NODES = (28, 41)
WIDE_MAX_ENTERPRISES = 10_000


DEFAULT_ENTERPRISES = (10_000, 100_000, 1_000_000)


DEFAULT_SEED = 2020


# --- parsing and planning --------------------------------------------------------------
_SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_count_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``: positive whole numbers, sorted, duplicates dropped.

    Accepts ``_`` separators and a ``k``/``M`` suffix (``100k``, ``16.82M``).

    Raises:
        BenchError: an empty list, or an item that is not a positive whole number.
    """
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise BenchError(
            f"{what} must be a comma-separated list of positive whole numbers, got {text!r}"
        )
    out = set()
    for item in items:
        raw = item.replace("_", "").lower()
        mult = _SUFFIXES.get(raw[-1:], 1)
        number = raw[:-1] if mult > 1 else raw
        try:
            value = float(number) * mult if mult > 1 else int(number)
        except ValueError:
            raise BenchError(f"{what}: {item!r} is not a whole number") from None
        if not math.isfinite(value) or value != int(value):
            raise BenchError(f"{what}: {item!r} is not a whole number")
        if int(value) < 1:
            raise BenchError(f"{what}: {item!r} must be at least 1")
        out.add(int(value))
    return tuple(sorted(out))


def spread_order(topology: Topology) -> list[str]:
    """The topology's node ids in the order node subsets take them (see the module docstring)."""
    cities = sorted(enumerate(topology.cities), key=lambda ic: (-ic[1].share, ic[0]))
    order: list[str] = []
    for k in range(max(c.nodes for c in topology.cities)):
        order.extend(c.node_ids[k] for _, c in cities if k < c.nodes)
    return order


def subset_topology(topology: Topology, n: int) -> Topology:
    """The first ``n`` nodes of :func:`spread_order` as a topology of their own.

    Raises:
        BenchError: ``n`` is not between 1 and the topology's node count.
    """
    total = len(topology.node_ids)
    if not 1 <= n <= total:
        raise BenchError(f"--nodes {n} is not possible: {topology.name} has {total} nodes")
    chosen = set(spread_order(topology)[:n])
    counts = {c.code: sum(1 for nid in c.node_ids if nid in chosen) for c in topology.cities}
    kept = [c for c in topology.cities if counts[c.code]]
    share = sum(c.share for c in kept)
    shares = [round(c.share / share, 6) for c in kept]
    shares[0] = round(shares[0] + 1.0 - sum(shares), 6)  # sum exactly 1 after rounding
    institutions = max(len(kept), round(topology.institutions * n / total))
    return Topology(
        name=topology.name if n == total else f"{topology.name}-{n}n",
        cities=tuple(
            City(c.code, c.name, c.name_zh, c.admin_code, counts[c.code], s, c.lat, c.lon)
            for c, s in zip(kept, shares, strict=True)
        ),
        institutions=institutions,
        algorithm=topology.algorithm,
    )


def topology_yaml(topology: Topology) -> str:
    """The topology as a file :func:`scenarios.model.topology.load_topology` reads back unchanged."""
    return yaml.safe_dump(
        {
            "name": topology.name,
            "algorithm": topology.algorithm,
            "institutions": topology.institutions,
            "cities": [
                {
                    "code": c.code,
                    "name": c.name,
                    "name_zh": c.name_zh,
                    "admin_code": c.admin_code,
                    "nodes": c.nodes,
                    "share": c.share,
                    "lat": c.lat,
                    "lon": c.lon,
                }
                for c in topology.cities
            ],
        },
        allow_unicode=True,
        sort_keys=False,
    )


@dataclass(frozen=True, slots=True, order=True)
class Cell:
    enterprises: int
    nodes: int

    @property
    def id(self) -> str:
        return f"n{self.nodes:02d}-e{self.enterprises}"


def plan_cells(
    nodes: Sequence[int] | None, enterprises: Sequence[int] | None, preset_nodes: int
) -> list[Cell]:
    """The cells to run, smallest volume first, then fewest nodes.

    ``nodes=None`` means the defaults that fit the preset (:data:`DEFAULT_NODES`
    at every volume, and :data:`DEFAULT_WIDE_NODES` at volumes up to
    :data:`WIDE_MAX_ENTERPRISES`), or, when exactly one volume is asked for, the
    whole preset (``--enterprises 16820000`` is one full-scale cell).
    ``enterprises=None`` means the default volumes.

    Raises:
        BenchError: a node count above the preset's.
    """
    volumes = tuple(enterprises) if enterprises else DEFAULT_ENTERPRISES
    if nodes:
        too_big = [n for n in nodes if n > preset_nodes]
        if too_big:
            raise BenchError(f"--nodes {too_big[0]} is more than the preset's {preset_nodes} nodes")
        return sorted(Cell(e, n) for e in volumes for n in nodes)
    if enterprises and len(enterprises) == 1:
        return [Cell(enterprises[0], preset_nodes)]
    narrow = [n for n in DEFAULT_NODES if n <= preset_nodes]
    wide = [n for n in DEFAULT_WIDE_NODES if n <= preset_nodes]
    return sorted(
        Cell(e, n)
        for e in volumes
        for n in (narrow + wide if e <= WIDE_MAX_ENTERPRISES else narrow)
    )
