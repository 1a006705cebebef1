"""What the matrix measures: each figure with its unit, its baseline and how its ratio reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


# --- figures ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    unit: str
    baseline: str | None  # what the baseline is; None: no baseline exists for this figure
    higher_is_better: bool


FIGURES: tuple[Figure, ...] = (
    Figure(
        "ingest_records_per_s",
        "ingest rate, records",
        "records/s",
        "plain SQLite inserts of the same records",
        True,
    ),
    Figure(
        "ingest_enterprises_per_s",
        "ingest rate, enterprises",
        "enterprises/s",
        "plain SQLite inserts of the same records",
        True,
    ),
    Figure("mirror_catchup_s", "mirroring catch-up after start", "s", None, False),
    Figure(
        "capacity_rps",
        "report capacity (closed loop)",
        "reports/s",
        "plain FastAPI two-hop, closed loop",
        True,
    ),
    Figure(
        "throughput_rps",
        "report throughput (open loop)",
        "reports/s",
        "plain FastAPI two-hop at the same arrival rate",
        True,
    ),
    Figure(
        "p50_ms",
        "report latency p50 (open loop)",
        "ms",
        "plain FastAPI two-hop at the same arrival rate",
        False,
    ),
    Figure(
        "p95_ms",
        "report latency p95 (open loop)",
        "ms",
        "plain FastAPI two-hop at the same arrival rate",
        False,
    ),
    Figure(
        "p99_ms",
        "report latency p99 (open loop)",
        "ms",
        "plain FastAPI two-hop at the same arrival rate",
        False,
    ),
    Figure(
        "proof_bytes_per_report",
        "proof bytes per report (proofs and checkpoints)",
        "bytes",
        "plain FastAPI response bytes (the data alone)",
        False,
    ),
    Figure(
        "bundle_bytes_per_report",
        "bundle bytes per report",
        "bytes",
        "plain FastAPI response bytes (the data alone)",
        False,
    ),
    Figure(
        "storage_bytes_per_enterprise",
        "storage per enterprise (ledger and state files)",
        "bytes",
        "plain SQLite databases of the same records",
        False,
    ),
    Figure(
        "cpu_ms_per_report",
        "node CPU per report, idle background taken out (load generator excluded)",
        "ms",
        "plain FastAPI home and holder processes, same fan-out",
        False,
    ),
    Figure(
        "idle_cpu_s_per_s",
        "background CPU of the idle network (all nodes)",
        "CPU-s/s",
        None,
        False,
    ),
    Figure(
        "client_cpu_ms_per_request",
        "load generator CPU per request (the bench process)",
        "ms",
        "the same load generator driving the plain baseline",
        False,
    ),
    Figure(
        "node_cpu_s",
        "CPU seconds per node over the query phases (idle, chain and baseline)",
        "s",
        "per plain FastAPI process, same phases",
        False,
    ),
    Figure(
        "node_rss_peak_mib",
        "peak RSS per node (largest node)",
        "MiB",
        "largest plain FastAPI process",
        False,
    ),
    Figure(
        "node_rss_mean_mib",
        "mean RSS per node",
        "MiB",
        "mean of the plain FastAPI processes",
        False,
    ),
)


# Every scalar of a row, in CSV column order (figures as value, baseline, ratio).
_LEAD = (
    "cell",
    "nodes",
    "enterprises",
    "preset",
    "node_ids",
    "records",
    "seed_s",
    "baseline_seed_s",
    "baseline_workers",
    "start_s",
    "register_s",
    "open_loop_rate",
    "capacity_sent",
    "capacity_ok",
    "capacity_errors",
    "rounds",
    "capacity_ratio_median",
    "capacity_ratio_min",
    "capacity_ratio_max",
    "capacity_ratio_q1",
    "capacity_ratio_q3",
    "cpu_ratio_median",
    "cpu_ratio_min",
    "cpu_ratio_max",
    "cpu_ms_per_report_gross",
    "cpu_ms_per_report_gross_baseline",
    "idle_cpu_s_per_s_plain",
    "client_cpu_share",
    "node_cpu_s_per_s_in_baseline_phases",
    "client_cpu_share_baseline",
    "fanout_per_report",
    "baseline_holders",
    "latency_sent",
    "latency_ok",
    "latency_errors",
    "verified_offline",
    "partial_reports",
    "cities_per_report",
    "cross_city",
    "targets",
    "node_cpu_s_lifetime",
    "capacity_s",
    "duration_s",
    "load",
    "concurrency",
    "cell_seconds",
    "finished_at",
    "command",
)


# Per-stage means of the report path (node.stages), ms per report summed over the nodes:
# (stage, area) in the order a report passes through them.
REPORT_STAGES: tuple[tuple[str, str], ...] = (
    ("request", "report"),
    ("request_verify", "report"),
    ("authorization_check", "report"),
    ("routing", "report"),
    ("holder_call", "report"),
    ("peer_sign", "report"),
    ("peer_transport", "report"),
    ("request", "holder"),
    ("request_verify", "holder"),
    ("holder_verify", "holder"),
    ("holder_proofs", "holder"),
    ("holder_receipt", "holder"),
    ("response_sign", "holder"),
    ("home_verify", "report"),
    ("home_receipt", "report"),
    ("bundle_sign", "report"),
    ("response_sign", "report"),
)

# Background work, seconds per second summed over the nodes: under the chain's load and idle.
BACKGROUND_STAGES: tuple[tuple[str, str], ...] = (
    ("mirror_round", "background"),
    ("request", "background"),
    ("peer_transport", "background"),
)


def stage_column(stage: str, area: str) -> str:
    return f"stage_ms_{stage}_{area}"


def background_column(stage: str, idle: bool) -> str:
    return f"bg_s_per_s_{stage}" + ("_idle" if idle else "")


STAGE_COLUMNS: tuple[str, ...] = tuple(stage_column(s, a) for s, a in REPORT_STAGES) + tuple(
    background_column(s, idle) for s, _ in BACKGROUND_STAGES for idle in (False, True)
)


def stage_columns(stages: dict[str, Any]) -> dict[str, float | None]:
    """The scalar per-stage columns of a row from the bench's stage summary."""
    chain, idle = stages.get("chain", {}), stages.get("idle", {})
    out: dict[str, float | None] = {}
    for s, a in REPORT_STAGES:
        out[stage_column(s, a)] = chain.get(f"{s}/{a}", {}).get("ms_per_report")
    for s, a in BACKGROUND_STAGES:
        out[background_column(s, False)] = chain.get(f"{s}/{a}", {}).get("s_per_s")
        out[background_column(s, True)] = idle.get(f"{s}/{a}", {}).get("s_per_s")
    return out


CSV_COLUMNS: tuple[str, ...] = (
    _LEAD
    + tuple(k for f in FIGURES for k in (f.key, f"{f.key}_baseline", f"{f.key}_ratio"))
    + STAGE_COLUMNS
)


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``; None when either is missing or the baseline is zero or not finite."""
    if (
        value is None
        or baseline is None
        or not math.isfinite(value)
        or not math.isfinite(baseline)
        or baseline == 0
    ):
        return None
    return value / baseline


def add_ratios(row: dict[str, Any]) -> dict[str, Any]:
    """Set ``<figure>_ratio`` from ``<figure>`` and ``<figure>_baseline`` for every figure."""
    for f in FIGURES:
        row.setdefault(f"{f.key}_baseline", None)
        row[f"{f.key}_ratio"] = ratio(row.get(f.key), row.get(f"{f.key}_baseline"))
    return row
