"""The bounded soak: open-loop reports at a fraction of capacity.

Memory slope per node, and a receipt on both ledgers for every request sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    LedgerError,
    ReceiptEntry,
    parse_entry,
)
from node.bundle import verify_bundle
from node.errors import BundleError
from node.http import httpsig
from scenarios import localnet as net
from scenarios.bench.query import ProcSampler, closed_loop, open_loop
from scenarios.errors import ReliabilityError
from scenarios.reliability.checks import (
    closing,
    open_readonly,
)
from scenarios.reliability.common import (
    cross_city_targets,
    local_network,
    machine_facts,
)


# --- soak ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SoakConfig:
    """Parameters of :func:`run_soak` (the CLI options).

    A node's memory growth is flagged as unbounded when the least-squares
    slope of its RSS exceeds ``max_slope_mib_per_min`` *and* the growth that
    slope implies over the fitted window exceeds ``min_growth_mib``. The
    defaults are generous: 2 MiB/min is 20 MiB over ten minutes, about a
    quarter of an idle node's RSS, where a node whose caches and nonce window
    have filled should be near 0; the 16 MiB floor keeps a short soak's noise
    (a MiB or two of caches filling, which looks steep over 30 s) from being
    called unbounded. The fit skips the first ``warmup`` fraction of the soak.

    Growth that the node's own database files explain is not held against
    it: SQLite keeps the pages of a growing ledger in its page cache (up to
    ``PAGE_CACHE_MIB`` per ledger), about ``PAGE_CACHE_FACTOR`` bytes of RSS
    per byte of file. A node is flagged only if, beyond that, its RSS also
    grew by more than ``min_growth_mib``.
    """

    preset: str = "oct-2021"
    nodes: int | None = None
    duration_s: float = 600.0
    load: float = 0.5
    capacity_s: float = 20.0
    concurrency: int = 8
    enterprises: int = 2000
    seed: int = 7
    targets: int = 40
    sample_every_s: float = 5.0
    warmup: float = 0.2
    max_slope_mib_per_min: float = 2.0
    min_growth_mib: float = 16.0
    verify_every: int = 10
    timeout_s: float = 600.0


#: The ledger's SQLite page cache (``cache_size`` in ledger/store.py), and the RSS it takes
#: per byte of cached file: 1.28–1.42 measured over 14 nodes of a 10-minute soak.
PAGE_CACHE_MIB = 64.0


PAGE_CACHE_FACTOR = 1.5


def data_files_mib(cons: net.Consortium) -> dict[str, float]:
    """Size of each node's data directory (ledger, state, WAL files) in MiB."""
    out = {}
    for node_id in cons.node_ids:
        data = cons.ledger_path(node_id).parent
        out[node_id] = (
            sum(f.stat().st_size for f in data.iterdir() if f.is_file()) / 2**20
            if data.is_dir()
            else 0.0
        )
    return out


def fit_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    slope, _ = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    return slope


def memory_figures(
    samples: Sequence[tuple[float, Mapping[str, float]]],
    node_ids: Sequence[str],
    cfg: SoakConfig,
    exited: Sequence[str] = (),
    file_growth_mib: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per node: RSS at start, end and max, the fitted slope after the warm-up, and the unbounded flag.

    ``samples`` are ``(seconds since the soak started, node → RSS in MiB)``;
    ``file_growth_mib`` is how much each node's data files grew meanwhile.
    """
    files = file_growth_mib or {}
    out = {}
    end = samples[-1][0] if samples else 0.0
    for node_id in node_ids:
        series = [(t, row[node_id]) for t, row in samples if node_id in row]
        fitted = [(t / 60, v) for t, v in series if t >= cfg.warmup * end]
        slope = fit_slope(fitted)
        growth = None if slope is None else slope * (fitted[-1][0] - fitted[0][0])
        cached = PAGE_CACHE_FACTOR * min(PAGE_CACHE_MIB, max(0.0, files.get(node_id, 0.0)))
        unexplained = (series[-1][1] - series[0][1]) - cached if series else 0.0
        out[node_id] = {
            "start_mib": round(series[0][1], 1) if series else None,
            "end_mib": round(series[-1][1], 1) if series else None,
            "max_mib": round(max(v for _, v in series), 1) if series else None,
            "slope_mib_per_min": None if slope is None else round(slope, 3),
            "fitted_growth_mib": None if growth is None else round(growth, 2),
            "samples": len(series),
            "file_growth_mib": round(files.get(node_id, 0.0), 2),
            "unexplained_growth_mib": round(unexplained, 2),
            "unbounded": (
                slope is not None
                and growth is not None
                and slope > cfg.max_slope_mib_per_min
                and growth > cfg.min_growth_mib
                and unexplained > cfg.min_growth_mib
            ),
            "exited": node_id in exited,
        }
    return out


def _receipts_since(path: Path, start: int) -> list[ReceiptEntry]:
    with closing(open_readonly(path)) as ledger:
        out = []
        for first in range(start, ledger.size, 5000):
            for _, data in ledger.entries(first, first + 5000):
                entry = parse_entry(data)
                if isinstance(entry, ReceiptEntry):
                    out.append(entry)
        return out


@dataclass
class _Sent:
    requests: int = 0
    ok: dict[str, tuple[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # query id → (home, answering holders)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    partial: int = 0
    partial_examples: list[str] = field(default_factory=list)
    verified_offline: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    institution_id: str
    home_node: str
    uscc: str
    authorization_id: str


def _soak_targets(cons: net.Consortium, n: int, seed: int) -> list[_Target]:
    """``n`` cross-city (institution, enterprise) pairs, each with an authorization filed at the home node."""
    out = []
    for inst, uscc in cross_city_targets(cons, random.Random(seed), n):
        try:
            filed = net.file_authorization(cons, inst, uscc, ["post_loan"])
        except net.NetworkError as exc:
            raise ReliabilityError(
                f"could not file the authorizations the soak uses: {exc}"
            ) from exc
        out.append(
            _Target(inst.institution_id, inst.home_node, uscc, str(filed["authorization_id"]))
        )
    return out


async def _soak_load(
    cons: net.Consortium,
    targets: Sequence[_Target],
    cfg: SoakConfig,
    echo: Callable[[str], None],
    on_soak_start: Callable[[], None],
) -> tuple[_Sent, list[dict[str, Any]], float]:
    sent = _Sent()
    clients = {}
    for inst_id in sorted({t.institution_id for t in targets}):
        inst = cons.institution(inst_id)
        clients[inst_id] = httpx.AsyncClient(
            auth=httpsig.RequestSigner(f"inst:{inst_id}", inst.key()),
            timeout=120,
            limits=httpx.Limits(max_connections=cfg.concurrency * 2),
        )

    def error(kind: str, detail: str) -> bool:
        sent.errors[kind] += 1
        if len(sent.error_examples) < 20:
            sent.error_examples.append(f"{kind}: {detail[:300]}")
        return False

    async def report(i: int) -> bool:
        t = targets[i % len(targets)]
        sent.requests += 1
        try:
            r = await clients[t.institution_id].post(
                cons.url(t.home_node) + "/v1/reports",
                json={
                    "uscc": t.uscc,
                    "purpose": "post_loan",
                    "authorization_id": t.authorization_id,
                },
            )
        except httpx.HTTPError as exc:
            return error("unanswered", f"{t.home_node}: {type(exc).__name__} {exc}")
        if r.status_code != 200:
            return error(f"status {r.status_code}", f"{t.home_node}: {r.text}")
        try:
            bundle = r.json()
            report = bundle["report"]
            holders = tuple(str(h["node_id"]) for h in report["holders"])
            sent.ok[str(report["query_id"])] = (t.home_node, holders)
            if report["partial"]:
                sent.partial += 1
                if len(sent.partial_examples) < 20:
                    sent.partial_examples += [
                        f"query {report['query_id']} at {t.home_node}: missing {m['node_id']} "
                        f"({str(m['reason'])[:200]})"
                        for m in report["missing"]
                    ]
            if i % cfg.verify_every == 0:
                verify_bundle(bundle, cons.manifest)
                sent.verified_offline += 1
        except (BundleError, LedgerError, KeyError, TypeError, ValueError) as exc:
            return error("bad report", f"{t.home_node}: {exc}")
        return True

    try:
        echo(f"capacity: closed loop, {cfg.concurrency} workers, {cfg.capacity_s:.0f} s")
        for i in range(len(targets)):
            await report(i)
        cap = await closed_loop("capacity", report, cfg.concurrency, cfg.capacity_s)
        capacity = cap.rate
        rate = max(0.2, capacity * cfg.load)
        echo(
            f"capacity {capacity:.1f} reports/s; soak: open loop at {rate:.2f}/s for {cfg.duration_s:.0f} s"
        )
        on_soak_start()
        soak = await open_loop("soak", report, rate, cfg.duration_s)
    finally:
        for c in clients.values():
            await c.aclose()
    return sent, [cap.summary(), soak.summary()], rate


def run_soak(
    cfg: SoakConfig, workdir: Path, echo: Callable[[str], None] = lambda s: None
) -> dict[str, Any]:
    """Run the bounded soak in ``workdir`` (a new network in ``workdir/network``); returns the results."""
    if cfg.duration_s <= 0 or not 0 < cfg.load <= 1:
        raise ReliabilityError(
            f"need a positive duration and 0 < load <= 1, got {cfg.duration_s} s and {cfg.load}"
        )
    t_start = time.monotonic()
    load_before = os.getloadavg()
    with local_network(
        workdir, cfg.preset, cfg.nodes, cfg.enterprises, cfg.seed, echo, cfg.timeout_s
    ) as cons:
        echo(f"filing {cfg.targets} authorizations")
        targets = _soak_targets(cons, cfg.targets, cfg.seed)
        net.wait_mirrored(
            cons, timeout_s=cfg.timeout_s
        )  # every holder knows the new authorizations' home
        starts = {}
        for node_id in cons.node_ids:
            with closing(open_readonly(cons.ledger_path(node_id))) as ledger:
                starts[node_id] = ledger.size
        pids = net.running_nodes(cons.dir)
        sampler = ProcSampler(pids, cfg.sample_every_s)
        files_before: dict[str, float] = {}

        def soak_starts() -> None:
            files_before.update(data_files_mib(cons))
            sampler.start()

        try:
            sent, phases, rate = asyncio.run(_soak_load(cons, targets, cfg, echo, soak_starts))
        finally:
            if sampler.started:
                sampler.stop()
        files_after = data_files_mib(cons)
        file_growth = {n: files_after[n] - files_before.get(n, files_after[n]) for n in files_after}
        alive = net.running_nodes(cons.dir)
        homes: Counter[str] = Counter()
        home_ids: dict[str, str] = {}
        holder_ids: set[tuple[str, str]] = set()
        for node_id in cons.node_ids:
            for e in _receipts_since(cons.ledger_path(node_id), starts[node_id]):
                if e.role == "home" and e.home_node == node_id:
                    homes[node_id] += 1
                    home_ids[e.query_id] = node_id
                elif e.role == "holder" and e.holder_node == node_id:
                    holder_ids.add((e.query_id, node_id))
        preset_name, node_count = cons.topology.name, len(cons.node_ids)
    home_found = sum(1 for q, (home, _) in sent.ok.items() if home_ids.get(q) == home)
    expected_holder = {
        (q, h) for q, (home, holders) in sent.ok.items() for h in holders if h != home
    }
    holder_found = len(expected_holder & holder_ids)
    errors = sum(sent.errors.values())
    memory = memory_figures(sampler.series, sampler.names, cfg, sorted(sampler.gone), file_growth)
    slopes = [m["slope_mib_per_min"] for m in memory.values() if m["slope_mib_per_min"] is not None]
    receipts = {
        "requests_sent": sent.requests,
        "reports_ok": len(sent.ok),
        "home_receipts_found": home_found,
        "home_receipts_on_ledgers": sum(homes.values()),
        "holder_receipts_expected": len(expected_holder),
        "holder_receipts_found": holder_found,
        "lost": (len(sent.ok) - home_found) + (len(expected_holder) - holder_found),
    }
    problems = []
    if errors:
        problems.append(
            f"{errors} requests failed ({', '.join(f'{k}: {v}' for k, v in sent.errors.items())})"
        )
    if sent.partial:
        problems.append(f"{sent.partial} reports were partial on a network with no fault injected")
    if receipts["lost"]:
        problems.append(
            f"{receipts['lost']} receipts of answered reports are missing from the ledgers"
        )
    if receipts["home_receipts_on_ledgers"] != sent.requests:
        problems.append(
            f"{sent.requests} requests sent, {receipts['home_receipts_on_ledgers']} home receipts "
            "on the ledgers"
        )
    grown = [n for n, m in memory.items() if m["unbounded"]]
    if grown:
        problems.append(
            f"RSS grows faster than {cfg.max_slope_mib_per_min} MiB/min (and by more than "
            f"{cfg.min_growth_mib} MiB beyond what its growing database files explain) on "
            f"{', '.join(grown)}"
        )
    down = [n for n in pids if n not in alive]
    if down:
        problems.append(f"node processes exited during the soak: {', '.join(down)}")
    return {
        "command": "soak",
        "ok": not problems,
        "problems": problems,
        "preset": preset_name,
        "nodes": node_count,
        "duration_s": cfg.duration_s,
        "load": cfg.load,
        "capacity_per_s": phases[0]["per_second"],
        "open_loop_rate_per_s": round(rate, 3),
        "phases": phases,
        "errors": errors,
        "error_kinds": dict(sent.errors),
        "error_examples": sent.error_examples,
        "partial_reports": sent.partial,
        "partial_examples": sent.partial_examples,
        "verified_offline": sent.verified_offline,
        "receipts": receipts,
        "memory": {
            "sample_every_s": cfg.sample_every_s,
            "samples": len(sampler.series),
            "warmup_fraction": cfg.warmup,
            "max_slope_mib_per_min": cfg.max_slope_mib_per_min,
            "min_growth_mib": cfg.min_growth_mib,
            "max_fitted_slope_mib_per_min": max(slopes) if slopes else None,
            "nodes": memory,
            "series": [
                {"t_s": round(t, 1), **{n: round(v, 2) for n, v in row.items()}}
                for t, row in sampler.series
            ],
        },
        "config": asdict(cfg),
        "machine": machine_facts(load_before),
        "seconds": round(time.monotonic() - t_start, 1),
    }
