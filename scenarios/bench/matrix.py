"""``creditchain bench``: the benchmark matrix, node counts × enterprise volumes.

For every cell (a node count N and a volume E) the matrix builds a fresh
network in its own directory through :mod:`scenarios.localnet` (the same
``init_consortium`` / ``up`` / ``down`` as ``creditchain up``, so any speed-up
of seeding or mirroring shows here unchanged) and measures:

* ingest: records/s and enterprises/s of seeding the ledgers, beside plain
  SQLite inserts of the same records (same generator, same pragmas, one
  database per node, the same number of worker processes), run after the
  network is down so neither competes with node processes;
* mirroring: seconds from the nodes being healthy until every node has
  mirrored every peer (no baseline: a plain stack has nothing like it);
* queries (:func:`scenarios.bench.query.measure_queries`): an idle phase
  (background CPU of the network, and of the baseline, with no requests), then
  ``rounds`` pairs of short closed-loop phases, chain and baseline alternating
  (A B A B ...) on the same machine while the network keeps running, so drift
  touches both sides of each pair: capacity per side and the median of the
  per-pair ratios with its spread; then an open loop at ``load`` × the chain's
  median capacity, chain and baseline at the same rate (p50/p95/p99 from the
  scheduled send time). The baseline is the plain FastAPI home with as many
  holder processes as the chain's reports ask, asked concurrently with the
  same record bodies. CPU per report counts the serving processes only (never
  the load generator, whose own CPU per request is reported apart) with the
  idle CPU rate times the phase's seconds taken out (the gross figure is kept
  too); proof and bundle bytes per report beside the baseline's response
  bytes; peak/mean RSS per node process beside the baseline processes'
  (psutil, sampled);
* storage: bytes of every node's ledger and state files per enterprise,
  beside the plain SQLite databases of the ingest baseline.

Node subsets take the preset's nodes in :func:`spread_order`: one node of
each city, cities by falling share of enterprises (ties in preset order),
then second nodes in the same city order, and so on. For ``oct-2021`` that
is sh, sz, hz, nj, hf, tz, cz, sq, then sh-2, sz-2, hz-2 (the first 11 are
exactly ``launch-2020``), nj-2, hf-2, cz-2. ``yrd-41`` has one node per
city, so its first N are its N cities of largest share (sh, sz, hz, nj, nb,
wx, hf, nt, ...). The subset keeps the cities it
touches with their shares rescaled to sum to 1, so a cell's E enterprises
are all on the chain whatever N is; institutions scale with N (at least one
per city).

Invariants: a cell's result is written (atomically) to
``<out>/cells/<cell>/result.json`` only when all of its figures exist, so
``--resume`` re-runs exactly the cells without one; ``results.json`` and
``results.csv`` are rewritten from the per-cell results after every cell, and
with ``report.md``, ``report.html`` and ``charts/`` at the end, interrupted or
not. A network this module starts is stopped before it returns or
raises, interrupted or not. Every expected failure is a :class:`BenchError`
with one plain sentence.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from ledger import parse_json
from scenarios.bench.figures import (
    CSV_COLUMNS,
    FIGURES,
    Figure,
    add_ratios,
    ratio,
    stage_columns,
)
from scenarios.bench.plain_ingest import files_bytes, plain_ingest
from scenarios.bench.plan import (
    DEFAULT_ENTERPRISES,
    DEFAULT_NODES,
    DEFAULT_SEED,
    DEFAULT_WIDE_NODES,
    WIDE_MAX_ENTERPRISES,
    Cell,
    parse_count_list,
    plan_cells,
    spread_order,
    subset_topology,
    topology_yaml,
)
from scenarios.errors import BenchError, TopologyError
from scenarios.model.topology import Topology, load_topology

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_ENTERPRISES",
    "DEFAULT_NODES",
    "DEFAULT_WIDE_NODES",
    "FIGURES",
    "WIDE_MAX_ENTERPRISES",
    "BenchError",
    "BenchInterrupted",
    "Cell",
    "Figure",
    "MatrixConfig",
    "MatrixOutcome",
    "add_ratios",
    "parse_count_list",
    "plan_cells",
    "ratio",
    "run_matrix",
    "spread_order",
    "subset_topology",
]

MIB = 1 << 20


class BenchInterrupted(Exception):  # noqa: N818 - not an error: the user asked to stop
    """The user interrupted the matrix; partial results have been written."""

    def __init__(self, outcome: MatrixOutcome) -> None:
        super().__init__("interrupted")
        self.outcome = outcome


# --- the matrix -------------------------------------------------------------------------
@dataclass(frozen=True)
class MatrixConfig:
    preset: str = "oct-2021"
    nodes: tuple[int, ...] | None = None
    enterprises: tuple[int, ...] | None = None
    duration_s: float = 10.0
    capacity_s: float | None = None  # default: half of duration_s, at least 2 s
    rounds: int = 3  # alternated closed-loop pairs (chain, baseline)
    idle_s: float = 3.0  # the idle phase that measures background CPU
    load: float = 0.5
    concurrency: int = 16
    targets: int = 20
    seed: int = DEFAULT_SEED
    keep_networks: bool = False
    mirror_timeout_s: float = 180.0
    command: str = ""

    @property
    def capacity_seconds(self) -> float:
        return self.capacity_s if self.capacity_s is not None else max(2.0, self.duration_s / 2)


@dataclass
class MatrixOutcome:
    out: Path
    planned: list[Cell]
    rows: list[dict[str, Any]] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    files: list[Path] = field(default_factory=list)


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", "utf-8")
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    for pkg in (
        "yrd-credit-chain",
        "fastapi",
        "uvicorn",
        "httpx",
        "cryptography",
        "http-message-signatures",
        "hdrhistogram",
        "psutil",
        "matplotlib",
        "tqdm",
    ):
        with suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
        if rev.returncode == 0 and rev.stdout.strip():
            out["git"] = rev.stdout.strip()
    except OSError:
        pass
    return out


def _machine() -> dict[str, Any]:
    from scenarios.bench.ledger import _machine as ledger_machine

    info = ledger_machine()
    with suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def load_cell_result(cell_dir: Path, cell_id: str) -> dict[str, Any] | None:
    """The stored result of a finished cell, or None (missing or unreadable: run it again)."""
    path = cell_dir / "result.json"
    try:
        row = parse_json(path.read_text("utf-8"), str(path))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("cell") == cell_id else None


class _Interrupts:
    """SIGINT → KeyboardInterrupt as usual, but remembered: ``network.seed_ledgers`` turns an
    interrupt into a ``NetworkError``, which must still end the matrix as an interruption."""

    def __init__(self) -> None:
        self.seen = threading.Event()
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.seen.set()
        raise KeyboardInterrupt

    def __enter__(self) -> _Interrupts:
        # Not in a worker thread (signals are the main thread's), and not where the parent
        # ignores SIGINT (a background job of a shell): there Ctrl-C is not ours to take.
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def shielded(self) -> Any:
        """Ignore further Ctrl-C while cleaning up (a second one must not leave nodes running)."""
        interrupts = self

        class _Shield:
            def __enter__(self) -> None:
                if interrupts._previous is not None:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)

            def __exit__(self, *exc: object) -> None:
                if interrupts._previous is not None:
                    signal.signal(signal.SIGINT, interrupts._handler)

        return _Shield()


def _stop_network(net: Path) -> None:
    """Stop the nodes of the cell network ``net``, including any started but not yet recorded
    in its run state (an interrupt between spawning a node and writing ``network.json``)."""
    from scenarios.localnet import NetworkError, consortium_exists, down, running_nodes

    if not consortium_exists(net):
        return
    with suppress(NetworkError):
        if running_nodes(net):
            down(net)
    for pid_file in (net / "nodes").glob("*/node.pid"):
        settings = str((pid_file.parent / "settings.json").resolve())
        try:
            proc = psutil.Process(int(pid_file.read_text().strip()))
            if settings not in proc.cmdline():
                continue
            proc.terminate()
            proc.wait(timeout=15)
        except psutil.TimeoutExpired:
            with suppress(psutil.Error):
                proc.kill()
        except (psutil.Error, OSError, ValueError):
            continue


def _run_cell(
    cell: Cell,
    cell_dir: Path,
    topology: Topology,
    config: MatrixConfig,
    partial: dict[str, Any],
    *,
    say: Callable[[str], None],
    bars: bool,
) -> dict[str, Any]:
    """Build, measure and stop one cell's network; fills ``partial`` as figures arrive."""
    from scenarios.bench.query import measure_queries
    from scenarios.localnet import (
        SEED_BATCH,
        SEED_WORKERS,
        find_free_base_port,
        init_consortium,
        running_nodes,
        up,
    )

    t_cell = time.perf_counter()
    net = cell_dir / "net"
    _stop_network(net)  # a previous attempt that was killed outright
    shutil.rmtree(net, ignore_errors=True)
    shutil.rmtree(cell_dir / "plain", ignore_errors=True)
    topo_file = cell_dir / "topology.yaml"
    _write_text(topo_file, topology_yaml(topology))
    partial.update(
        {
            "cell": cell.id,
            "nodes": cell.nodes,
            "enterprises": cell.enterprises,
            "preset": config.preset,
            "node_ids": " ".join(topology.node_ids),
            "capacity_s": config.capacity_seconds,
            "duration_s": config.duration_s,
            "load": config.load,
            "concurrency": config.concurrency,
            "command": config.command,
        }
    )

    cons = init_consortium(net, str(topo_file), base_port=find_free_base_port(cell.nodes))
    result = up(
        net,
        enterprises=cell.enterprises,
        seed=config.seed,
        progress=bars,
        echo=say,
        timeout_s=config.mirror_timeout_s,
    )
    seeded = result.seeded
    if seeded is None or seeded.seconds <= 0:
        raise BenchError(f"cell {cell.id}: the network was not seeded by this run")
    partial.update(
        {
            "records": seeded.records,
            "seed_s": seeded.seconds,
            "ingest_records_per_s": seeded.records / seeded.seconds,
            "ingest_enterprises_per_s": cell.enterprises / seeded.seconds,
            "start_s": result.start_seconds,
            "mirror_catchup_s": result.mirror_seconds,
            "register_s": result.register_seconds,
            "storage_bytes_per_enterprise": files_bytes(
                cons.node_dir(n) / "data" for n in cons.node_ids
            )
            / cell.enterprises,
        }
    )
    say(
        f"{cell.id}: seeded {seeded.records:,} records in {seeded.seconds:.1f} s, mirrored in "
        f"{result.mirror_seconds:.1f} s; measuring reports"
    )

    lifetime: list[float] = []

    def stop_nodes() -> None:
        for pid in running_nodes(net).values():
            with suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                lifetime.append(t.user + t.system)
        _stop_network(net)

    try:
        q = measure_queries(
            cons,
            capacity_s=config.capacity_seconds,
            duration_s=config.duration_s,
            rounds=config.rounds,
            idle_s=config.idle_s,
            concurrency=config.concurrency,
            load=config.load,
            targets=config.targets,
            progress=lambda m: say(f"{cell.id}: {m}"),
            bars=bars,
        )
    finally:
        stop_nodes()

    lat, blat = q["chain_latency"], q["baseline_latency"]
    caps = [p for p in q["phases"] if p["side"] == "chain" and p["round"] is not None]
    spread = q["capacity_ratio"]
    cpu_spread = q["cpu_ratio"]
    chain_use, base_use = q["chain_resources"], q["baseline_resources"]
    nodes_use = list(chain_use["processes"].values())
    base_procs = list(base_use["processes"].values())

    def mean(xs: Sequence[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    partial.update(
        {
            "open_loop_rate": q["open_loop_rate"],
            "targets": q["targets"],
            "cross_city": q["cross_city"],
            "capacity_sent": sum(p["sent"] for p in caps),
            "capacity_ok": sum(p["ok"] for p in caps),
            "capacity_errors": sum(p["errors"] for p in caps),
            "rounds": q["rounds"],
            "capacity_ratio_median": spread["median"],
            "capacity_ratio_min": spread["min"],
            "capacity_ratio_max": spread["max"],
            "capacity_ratio_q1": spread["q1"],
            "capacity_ratio_q3": spread["q3"],
            "cpu_ratio_median": cpu_spread["median"],
            "cpu_ratio_min": cpu_spread["min"],
            "cpu_ratio_max": cpu_spread["max"],
            "cpu_ms_per_report_gross": q["cpu_ms_per_report_gross"],
            "cpu_ms_per_report_gross_baseline": q["cpu_ms_per_report_gross_baseline"],
            "idle_cpu_s_per_s": q["idle_cpu_s_per_s"],
            "idle_cpu_s_per_s_plain": q["idle_cpu_s_per_s_baseline"],
            "client_cpu_ms_per_request": q["client_cpu_ms_per_request"],
            "client_cpu_ms_per_request_baseline": q["client_cpu_ms_per_request_baseline"],
            "client_cpu_share": q["client_cpu_share"],
            "node_cpu_s_per_s_in_baseline_phases": q["node_cpu_s_per_s_in_baseline_phases"],
            "client_cpu_share_baseline": q["client_cpu_share_baseline"],
            "fanout_per_report": q["mean_fanout_per_report"],
            **stage_columns(q["stages"]),
            "baseline_holders": q["baseline_holders"],
            "latency_sent": lat["sent"],
            "latency_ok": lat["ok"],
            "latency_errors": lat["errors"],
            "verified_offline": q["verified_offline"],
            "partial_reports": q["partial_reports"],
            "cities_per_report": q["mean_cities_per_report"],
            "capacity_rps": q["capacity_rps"],
            "capacity_rps_baseline": q["capacity_rps_baseline"],
            "throughput_rps": lat["per_second"],
            "throughput_rps_baseline": blat["per_second"],
            "p50_ms": lat["p50_ms"],
            "p50_ms_baseline": blat["p50_ms"],
            "p95_ms": lat["p95_ms"],
            "p95_ms_baseline": blat["p95_ms"],
            "p99_ms": lat["p99_ms"],
            "p99_ms_baseline": blat["p99_ms"],
            "proof_bytes_per_report": q["mean_proof_bytes_per_report"],
            "proof_bytes_per_report_baseline": q["mean_baseline_bytes_per_report"],
            "bundle_bytes_per_report": q["mean_bundle_bytes_per_report"],
            "bundle_bytes_per_report_baseline": q["mean_baseline_bytes_per_report"],
            "cpu_ms_per_report": q["cpu_ms_per_report"],
            "cpu_ms_per_report_baseline": q["cpu_ms_per_report_baseline"],
            "node_cpu_s": mean([p["cpu_s"] for p in nodes_use]),
            "node_cpu_s_baseline": mean([p["cpu_s"] for p in base_procs]),
            "node_rss_peak_mib": max((p["rss_peak_bytes"] for p in nodes_use), default=0) / MIB,
            "node_rss_peak_mib_baseline": max((p["rss_peak_bytes"] for p in base_procs), default=0)
            / MIB,
            "node_rss_mean_mib": (mean([p["rss_mean_bytes"] for p in nodes_use]) or 0) / MIB,
            "node_rss_mean_mib_baseline": (mean([p["rss_mean_bytes"] for p in base_procs]) or 0)
            / MIB,
            "node_cpu_s_lifetime": mean(lifetime),
            "detail": {
                "stages": q["stages"],
                "phases": q["phases"],
                "node_processes": chain_use["processes"],
                "baseline_processes": base_use["processes"],
                "seeding": seeded.nodes,
            },
        }
    )

    say(f"{cell.id}: plain SQLite ingest baseline")
    plain = plain_ingest(
        topo_file,
        topology.node_ids,
        cell.enterprises,
        config.seed,
        cell_dir / "plain",
        workers=SEED_WORKERS,
        batch=SEED_BATCH,
        progress=bars,
    )
    if plain["records"] != seeded.records:
        raise BenchError(
            f"cell {cell.id}: the plain baseline inserted {plain['records']} records, "
            f"the ledgers {seeded.records}; they must be the same records"
        )
    partial.update(
        {
            "baseline_seed_s": plain["seconds"],
            "baseline_workers": plain["workers"],
            "ingest_records_per_s_baseline": plain["records"] / plain["seconds"],
            "ingest_enterprises_per_s_baseline": cell.enterprises / plain["seconds"],
            "storage_bytes_per_enterprise_baseline": plain["bytes"] / cell.enterprises,
        }
    )
    shutil.rmtree(cell_dir / "plain", ignore_errors=True)
    if not config.keep_networks:
        shutil.rmtree(net, ignore_errors=True)
    partial.update({"cell_seconds": time.perf_counter() - t_cell, "finished_at": _now()})
    return add_ratios(dict(partial))


def _check_out(out: Path, config: MatrixConfig, resume: bool) -> None:
    meta_path = out / "matrix.json"
    if not meta_path.exists():
        if out.exists() and any(out.iterdir()):
            raise BenchError(
                f"{out} is not empty and holds no bench matrix; choose a new --out directory"
            )
        return
    if not resume:
        raise BenchError(
            f"{out} already holds a bench matrix; pass --resume to finish it or choose another --out"
        )
    try:
        meta = parse_json(meta_path.read_text("utf-8"), str(meta_path))
    except (OSError, ValueError) as exc:
        raise BenchError(f"{meta_path} cannot be read ({exc}); choose another --out") from exc
    for key in ("preset", "seed"):
        if meta.get("config", {}).get(key) != getattr(config, key):
            raise BenchError(
                f"{out} was run with --{key} {meta.get('config', {}).get(key)}, not "
                f"{getattr(config, key)}; resume with the same value or choose another --out"
            )


def collect_rows(out: Path) -> list[dict[str, Any]]:
    """Every finished cell's row in ``out``, smallest volume first, then fewest nodes."""
    rows = []
    cells = out / "cells"
    if cells.exists():
        for d in cells.iterdir():
            row = load_cell_result(d, d.name) if d.is_dir() else None
            if row is not None:
                rows.append(row)
    return sorted(rows, key=lambda r: (int(r["enterprises"]), int(r["nodes"])))


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                "" if r.get(c) is None else repr(r[c]) if isinstance(r.get(c), float) else r.get(c)
                for c in CSV_COLUMNS
            ]
        )
    return buf.getvalue()


def write_outputs(
    outcome: MatrixOutcome, config: MatrixConfig, started_at: str, *, report: bool = True
) -> list[Path]:
    """results.json, results.csv and (with ``report``) report.md, report.html and charts/ from the
    finished cells."""
    from scenarios.bench.report import write_report

    out = outcome.out
    rows = collect_rows(out)
    outcome.rows = rows
    done = {r["cell"] for r in rows}
    results = {
        "tool": "creditchain bench",
        "command": config.command,
        "config": {**asdict(config), "capacity_s": config.capacity_seconds},
        "machine": _machine(),
        "versions": _versions(),
        "started_at": started_at,
        "written_at": _now(),
        "interrupted": outcome.interrupted,
        "cells_planned": [c.id for c in outcome.planned],
        "cells_missing": [c.id for c in outcome.planned if c.id not in done],
        "cells_failed": outcome.failed,
        "figures": [asdict(f) for f in FIGURES],
        "rows": rows,
    }
    _write_json(out / "results.json", results)
    _write_text(out / "results.csv", csv_text(rows))
    files = [
        out / "results.json",
        out / "results.csv",
        *(write_report(out, results) if report else []),
    ]
    outcome.files = files
    return files


def run_matrix(
    out: Path,
    config: MatrixConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = lambda s: None,
) -> MatrixOutcome:
    """Run every cell not yet finished in ``out``; write per-cell and aggregate results.

    Raises:
        BenchError: bad arguments or ``out`` holds something else.
        BenchInterrupted: Ctrl-C; networks are stopped and partial results written first.
    """
    from tqdm import tqdm

    from scenarios.localnet import NetworkError

    try:
        base = load_topology(config.preset)
    except (TopologyError, OSError) as exc:
        raise BenchError(f"--preset: {exc}") from exc
    cells = plan_cells(config.nodes, config.enterprises, len(base.node_ids))
    for cell in cells:
        if cell.enterprises < len(subset_topology(base, cell.nodes).cities):
            raise BenchError(
                f"--enterprises {cell.enterprises} is too few for {cell.nodes} nodes "
                "(at least one enterprise per city)"
            )
    out = Path(out)
    _check_out(out, config, resume)
    started_at = _now()
    _write_json(
        out / "matrix.json",
        {"config": {**asdict(config)}, "started_at": started_at, "cells": [c.id for c in cells]},
    )
    outcome = MatrixOutcome(out, cells)
    bar = tqdm(
        total=len(cells),
        desc="bench cells",
        unit="cell",
        disable=not progress,
        dynamic_ncols=True,
        position=0,
        leave=True,
    )

    def say(message: str) -> None:
        if progress:
            tqdm.write(message, file=sys.stderr)
        else:
            echo(message)

    current: dict[str, Any] = {}
    with _Interrupts() as interrupts:
        try:
            for cell in cells:
                cell_dir = out / "cells" / cell.id
                if resume and load_cell_result(cell_dir, cell.id) is not None:
                    outcome.skipped.append(cell.id)
                    say(f"{cell.id}: done in an earlier run, skipped")
                    bar.update(1)
                    continue
                bar.set_postfix_str(cell.id)
                say(f"{cell.id}: {cell.nodes} nodes, {cell.enterprises:,} enterprises")
                current = {"dir": cell_dir, "row": {}}
                (cell_dir / "partial.json").unlink(missing_ok=True)
                try:
                    row = _run_cell(
                        cell,
                        cell_dir,
                        subset_topology(base, cell.nodes),
                        config,
                        current["row"],
                        say=say,
                        bars=progress,
                    )
                except (NetworkError, BenchError) as exc:
                    if interrupts.seen.is_set():
                        raise KeyboardInterrupt from exc
                    with interrupts.shielded():
                        _stop_network(cell_dir / "net")
                    logs = cell_dir / "net" / "logs"
                    where = f", their logs are in {logs}" if logs.is_dir() else ""
                    outcome.failed[cell.id] = f"{exc}; the cell's nodes were stopped{where}"
                    _write_json(
                        cell_dir / "error.json",
                        {"cell": cell.id, "error": outcome.failed[cell.id], "at": _now()},
                    )
                    say(f"{cell.id}: FAILED: {outcome.failed[cell.id]}")
                else:
                    _write_json(cell_dir / "result.json", row)
                    (cell_dir / "error.json").unlink(missing_ok=True)
                    outcome.ran.append(cell.id)
                current = {}
                bar.update(1)
                with interrupts.shielded():  # the charts are drawn once, at the end
                    write_outputs(outcome, config, started_at, report=False)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            with interrupts.shielded():
                bar.close()
                if current:
                    _stop_network(current["dir"] / "net")
                    if current["row"]:
                        _write_json(
                            current["dir"] / "partial.json",
                            {**current["row"], "interrupted_at": _now()},
                        )
                write_outputs(outcome, config, started_at)
    if outcome.interrupted:
        raise BenchInterrupted(outcome)
    return outcome
