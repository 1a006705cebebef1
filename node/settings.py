"""NodeSettings: everything one node process needs, built once at start.

Read from a JSON file named by ``NODE_CONFIG`` and/or ``NODE_*`` environment
variables (environment wins). Paths are resolved relative to the file.

Invariants: frozen; validated on construction; holds paths, never key bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ledger import parse_json
from node.errors import ConfigError

__all__ = ["CATALOGUE_MODES", "NodeSettings"]

CATALOGUE_MODES = ("full", "compact")


@dataclass(frozen=True, slots=True)
class NodeSettings:
    node_id: str
    data_dir: Path
    key_file: Path
    manifest: Path
    host: str = "127.0.0.1"
    port: int = 8100
    public_url: str = ""  # how peers reach this node; default http://host:port
    mirror_interval_s: float = 2.0
    # Each log is witnessed by this many peers (node.peers.witnesses): they poll it every
    # mirror_interval_s and cosign its new heads. Every other node follows it for the catalogue,
    # polling less often while its head does not move, down to once per follow_interval_s.
    witnesses: int = 3
    follow_interval_s: float = 30.0
    peer_timeout_s: float = 5.0
    # Every peer exchange is read under a byte cap and an overall deadline (node.peers.client):
    # a holder that streams for ever or trickles a byte a second is named in `missing`.
    peer_deadline_s: float = 30.0
    peer_max_record_bytes: int = 8 << 20  # one page of a holder's answer (500 records ≈ 0.7 MiB)
    peer_max_bytes: int = 2 << 20  # anything else: checkpoints, proofs, entries, catalogue
    window_s: int = 300
    max_body_bytes: int = 1 << 20
    # A holder answers with at most records_per_page records per exchange and pages the
    # rest; beyond max_records_per_holder the holder's section says it is truncated,
    # with counts, keeping current records and corrections first (node.reports).
    records_per_page: int = 500
    max_records_per_holder: int = 100_000
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # one-way delay to each peer
    loss: float = 0.0  # probability a peer exchange needs a retransmission
    synthetic: Mapping[str, Any] = field(
        default_factory=dict
    )  # {preset|topology, enterprises, seed}
    log_level: str = "info"
    # How peers are mirrored (node.peers.mirror): "full" pulls and hashes every peer entry;
    # "compact" takes per-peer catalogue deltas with sampled proofs (node.catalogue).
    catalogue: str = "full"
    # Slow clients (node.http.server): a whole request head must arrive within header_timeout_s
    # of connecting (or of the first byte of the next request on a kept-alive connection); past
    # max_connections open connections a new one is answered 503 and closed at once.
    header_timeout_s: float = 10.0
    max_connections: int = 512
    # ... and a request's whole body within body_timeout_s of its head.
    body_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.node_id or not all(c.isalnum() or c in "-_." for c in self.node_id):
            raise ConfigError(
                f"node_id must be letters, digits, '-', '_' or '.', got {self.node_id!r}"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        if not 0.0 <= self.loss < 1.0:
            raise ConfigError(f"loss must be in [0, 1), got {self.loss}")
        if self.mirror_interval_s < 0 or self.peer_timeout_s <= 0 or self.window_s <= 0:
            raise ConfigError(
                "mirror_interval_s must be >= 0; peer_timeout_s and window_s must be > 0"
            )
        if self.witnesses < 1 or not (
            math.isfinite(self.follow_interval_s) and self.follow_interval_s >= 0
        ):
            raise ConfigError(
                f"witnesses must be >= 1 and follow_interval_s a finite number >= 0, got "
                f"{self.witnesses} and {self.follow_interval_s}"
            )
        if self.peer_deadline_s <= 0 or self.peer_max_bytes < 1 or self.peer_max_record_bytes < 1:
            raise ConfigError("peer_deadline_s, peer_max_bytes, peer_max_record_bytes must be > 0")
        if self.records_per_page < 1 or self.max_records_per_holder < 1:
            raise ConfigError("records_per_page and max_records_per_holder must be >= 1")
        if self.catalogue not in CATALOGUE_MODES:
            raise ConfigError(
                f"catalogue must be one of {', '.join(CATALOGUE_MODES)}, got {self.catalogue!r}"
            )
        if not (math.isfinite(self.header_timeout_s) and self.header_timeout_s > 0) or (
            self.max_connections < 1
        ):
            raise ConfigError(
                f"header_timeout_s must be a finite number > 0 and max_connections >= 1, got "
                f"{self.header_timeout_s} and {self.max_connections}"
            )
        if not (math.isfinite(self.body_timeout_s) and self.body_timeout_s > 0):
            raise ConfigError(
                f"body_timeout_s must be a finite number > 0, got {self.body_timeout_s}"
            )
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def manifest_history_path(self) -> Path:
        """Every manifest version this node has applied, one signed file per line."""
        return self.data_dir / "manifests.jsonl"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.db"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = (
                str(v) if isinstance(v, Path) else dict(v) if isinstance(v, Mapping) else v
            )
        return out

    def with_(self, **changes: Any) -> NodeSettings:
        return replace(self, **changes)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base: Path | None = None) -> NodeSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        args: dict[str, Any] = dict(raw)
        for name in ("data_dir", "key_file", "manifest"):
            if name not in args:
                raise ConfigError(f"setting {name!r} is required")
            p = Path(str(args[name]))
            args[name] = p if p.is_absolute() or base is None else (base / p)
        try:
            for name, conv in (
                ("port", int),
                ("mirror_interval_s", float),
                ("witnesses", int),
                ("follow_interval_s", float),
                ("peer_timeout_s", float),
                ("peer_deadline_s", float),
                ("peer_max_record_bytes", int),
                ("peer_max_bytes", int),
                ("window_s", int),
                ("max_body_bytes", int),
                ("records_per_page", int),
                ("max_records_per_holder", int),
                ("loss", float),
                ("header_timeout_s", float),
                ("max_connections", int),
            ):
                if name in args:
                    args[name] = conv(args[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad setting value: {exc}") from exc
        return cls(**args)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeSettings:
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        base = None
        if "NODE_CONFIG" in env:
            path = Path(env["NODE_CONFIG"])
            try:
                raw = parse_json(path.read_text("utf-8"), str(path))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
            base = path.parent
        for f in fields(cls):
            key = "NODE_" + f.name.upper()
            if key in env:
                value: Any = env[key]
                if f.name in ("latency_ms", "synthetic"):
                    try:
                        value = parse_json(value, key)
                    except ValueError as exc:
                        raise ConfigError(f"{key} must be JSON: {exc}") from exc
                raw[f.name] = value
        return cls.from_mapping(raw, base)
