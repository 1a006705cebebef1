"""Topologies: the cities of a consortium and their nodes, from presets or files.

A topology file is YAML of the shape of ``scenarios/presets/*.yaml``. Node ids
are ``<city code>-<n>``; every node of a city serves that city's
administrative code.

Invariants: city codes and admin codes are unique; shares sum to 1. A file is read
within the limits of :mod:`scenarios.yamlfile` (size, depth, aliases expanded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from scenarios.errors import TopologyError
from scenarios.yamlfile import YamlLimitError, load_bounded, read_yaml_text

__all__ = ["PRESETS", "City", "Topology", "load_topology"]

PRESETS = ("launch-2020", "oct-2021", "yrd-41")


@dataclass(frozen=True, slots=True)
class City:
    code: str
    name: str
    name_zh: str
    admin_code: str
    nodes: int
    share: float
    lat: float
    lon: float

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(f"{self.code}-{i + 1}" for i in range(self.nodes))


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    cities: tuple[City, ...]
    institutions: int = 24
    algorithm: str = "sha256"
    full_scale_enterprises: int | None = None

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n for c in self.cities for n in c.node_ids)

    def city(self, code: str) -> City:
        for c in self.cities:
            if c.code == code:
                return c
        raise KeyError(code)

    def city_of_node(self, node_id: str) -> City:
        return self.city(node_id.rsplit("-", 1)[0])

    def distance_km(self, a: str, b: str) -> float:
        """Great-circle distance between two cities (haversine)."""
        ca, cb = self.city(a), self.city(b)
        p1, p2 = math.radians(ca.lat), math.radians(cb.lat)
        dp, dl = p2 - p1, math.radians(cb.lon - ca.lon)
        x = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6371.0 * math.asin(math.sqrt(x))

    def with_node_counts(self, total: int) -> Topology:
        """The same cities with ``total`` nodes spread by share (for benches)."""
        if total < 1:
            raise TopologyError(f"node count must be at least 1, got {total}")
        ranked = sorted(self.cities, key=lambda c: -c.share)
        counts = {c.code: 0 for c in self.cities}
        for i in range(total):
            counts[ranked[i % len(ranked)].code] += 1
        cities = [c for c in self.cities if counts[c.code]]
        total_share = sum(c.share for c in cities)
        return Topology(
            name=f"{self.name}-{total}n",
            cities=tuple(
                City(
                    c.code,
                    c.name,
                    c.name_zh,
                    c.admin_code,
                    counts[c.code],
                    c.share / total_share,
                    c.lat,
                    c.lon,
                )
                for c in cities
            ),
            institutions=self.institutions,
            algorithm=self.algorithm,
        )


def _city(raw: object, where: str) -> City:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where} must be a mapping")
    try:
        city = City(
            code=str(raw["code"]),
            name=str(raw["name"]),
            name_zh=str(raw.get("name_zh", raw["name"])),
            admin_code=str(raw["admin_code"]),
            nodes=int(raw.get("nodes", 1)),
            share=float(raw["share"]),
            lat=float(raw.get("lat", 31.0)),
            lon=float(raw.get("lon", 120.0)),
        )
    except KeyError as exc:
        raise TopologyError(f"{where} lacks the field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise TopologyError(f"{where} has a bad value: {exc}") from exc
    if not city.code.isalnum() or not city.code.islower():
        raise TopologyError(f"{where}.code must be lower-case letters/digits, got {city.code!r}")
    if len(city.admin_code) != 6 or not city.admin_code.isdigit():
        raise TopologyError(f"{where}.admin_code must be 6 digits, got {city.admin_code!r}")
    if city.nodes < 1 or not 0 < city.share <= 1:
        raise TopologyError(f"{where}: nodes must be >= 1 and share in (0, 1]")
    return city


def parse_topology(raw: object, source: str) -> Topology:
    if not isinstance(raw, dict) or "cities" not in raw:
        raise TopologyError(f"{source}: a topology needs a 'cities' list")
    cities = tuple(_city(c, f"{source}: cities[{i}]") for i, c in enumerate(raw["cities"] or []))
    if not cities:
        raise TopologyError(f"{source}: 'cities' is empty")
    for attr in ("code", "admin_code"):
        seen = [getattr(c, attr) for c in cities]
        if len(set(seen)) != len(seen):
            raise TopologyError(f"{source}: city {attr}s must be unique, got {seen}")
    total = sum(c.share for c in cities)
    if abs(total - 1.0) > 0.005:
        raise TopologyError(f"{source}: city shares must sum to 1, they sum to {total:.3f}")
    return Topology(
        name=str(raw.get("name", Path(source).stem)),
        cities=cities,
        institutions=int(raw.get("institutions", 24)),
        algorithm=str(raw.get("algorithm", "sha256")),
        full_scale_enterprises=raw.get("full_scale_enterprises"),
    )


def load_topology(name_or_path: str) -> Topology:
    """A preset by name (``launch-2020``, ``oct-2021``, ``yrd-41``) or a YAML file path."""
    if name_or_path in PRESETS:
        text = (
            resources.files("scenarios").joinpath(f"presets/{name_or_path}.yaml").read_text("utf-8")
        )
        source = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise TopologyError(
                f"{name_or_path!r} is neither a preset ({', '.join(PRESETS)}) nor a file"
            )
        source = str(path)
        try:
            text = read_yaml_text(path)
        except (OSError, ValueError) as exc:
            raise TopologyError(f"{source} cannot be read: {exc}") from exc
    try:
        raw = load_bounded(text)
    except YamlLimitError as exc:
        raise TopologyError(f"{source}:{exc.line}: {exc.problem}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(s for s in (exc.context, exc.problem) if s)
        line = f":{mark.line + 1}" if mark else ""
        raise TopologyError(f"{source}{line}: not valid YAML: {what}") from exc
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from exc
    return parse_topology(raw, source)
