"""``creditchain bench query``: verified cross-city reports against a running network,
beside a plain FastAPI two-hop baseline measured in the same run.

Phases:

1. *capacity* — closed loop for ``capacity_s``, ``concurrency`` workers:
   institutions ask their home node for reports on enterprises registered in
   another city (every report signed, authorized, routed, verified, receipted
   on both ledgers). Every ``verify_every``-th bundle is also verified offline
   by the client, and its proof and bundle bytes are counted.
2. *latency* — open loop for ``duration_s`` at ``load`` × the measured
   capacity: requests are sent on a fixed schedule whether or not earlier ones
   returned, and latency is measured from the *scheduled* send time, so a slow
   response cannot hide the queueing behind it (no coordinated omission).
3. the same two phases against the baseline: ``scenarios.bench.baseline_app`` home
   and holder processes, no signatures, no proofs, no receipts, the same
   records in a plain SQLite table; the open loop runs at the chain's rate.
   (``creditchain bench query`` leaves the network running meanwhile; the
   matrix stops its own network first.)

While the chain phases run, a sampler records the CPU seconds and resident
memory of every node process (psutil); while the baseline phases run, of the
two baseline processes.

The load generator is our own (asyncio + httpx in this process): every chain
request must be signed with RFC 9421 per institution key and nonce, responses
are checked and sampled bundles verified offline, the schedule must be open
(a constant arrival rate, latency from the scheduled time), and both sides
must be driven by the same code in the same run for the ratio to mean
something. Latencies go into HDR histograms (``hdrhistogram``).

A network of one city has no cross-city report; there the institutions ask
about enterprises of their own city (one hop), and ``cross_city`` says so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from hdrh.histogram import HdrHistogram

from node.bundle import BundleSummary, verify_bundle
from node.http import httpsig
from scenarios.bench.phases import (
    BASELINE,
    CHAIN,
    PhaseCost,
    alternating_phases,
    cpu_ms_per_request,
    median_spread,
    pair_ratios,
    stage_deltas,
    stage_ms_per_report,
)
from scenarios.localnet import (
    Consortium,
    NetworkError,
    file_authorization,
    find_free_base_port,
    load_consortium,
    running_nodes,
    sample_enterprises,
)

__all__ = [
    "BaselinePlan",
    "PhaseResult",
    "ProcSampler",
    "bundle_proof_bytes",
    "closed_loop",
    "measure_queries",
    "open_loop",
    "open_loop_schedule",
    "run_query_bench",
    "scrape_stages",
    "stage_summary",
    "summarise_phases",
]


@dataclass
class Target:
    institution_id: str
    home_node: str
    uscc: str
    authorization_id: str
    holders: tuple[str, ...]


@dataclass
class PhaseResult:
    name: str
    sent: int
    ok: int
    errors: int
    seconds: float
    hist: HdrHistogram

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        return float(self.hist.get_value_at_percentile(p)) / 1000 if self.ok else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate, 3),
            "p50_ms": self.percentile_ms(50),
            "p95_ms": self.percentile_ms(95),
            "p99_ms": self.percentile_ms(99),
            "max_ms": float(self.hist.get_max_value()) / 1000 if self.ok else 0.0,
        }


def _hist() -> HdrHistogram:
    return HdrHistogram(
        1, 600_000_000, 3
    )  # microseconds, up to 10 minutes (an open loop's queue included)


def _bar(progress: bool, total: float, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit=unit, disable=not progress, dynamic_ncols=True, leave=False
    )


async def closed_loop(
    name: str,
    send: Callable[[int], Awaitable[bool]],
    concurrency: int,
    duration_s: float,
    progress: bool = False,
) -> PhaseResult:
    hist = _hist()
    counts = {"sent": 0, "ok": 0, "errors": 0}
    stop = time.perf_counter() + duration_s
    bar = _bar(progress, round(duration_s, 1), name, "s")

    async def worker(w: int) -> None:
        i = w
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            counts["sent"] += 1
            ok = await send(i)
            counts["ok" if ok else "errors"] += 1
            if ok:
                hist.record_value(max(1, int((time.perf_counter() - t0) * 1e6)))
            i += concurrency

    async def ticker() -> None:
        while time.perf_counter() < stop:
            await asyncio.sleep(0.5)
            bar.n = round(min(duration_s, duration_s - (stop - time.perf_counter())), 1)
            bar.set_postfix(ok=counts["ok"], err=counts["errors"], refresh=True)

    t0 = time.perf_counter()
    tick = asyncio.create_task(ticker())
    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        tick.cancel()
        bar.close()
    return PhaseResult(
        name, counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - t0, hist
    )


def open_loop_schedule(rate: float, duration_s: float) -> list[float]:
    """Send times (seconds from the start) of a constant-rate open loop: ``i / rate``.

    At least one request; the count is ``rate × duration_s`` rounded down.
    """
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration_s}")
    return [i / rate for i in range(max(1, int(duration_s * rate)))]


async def open_loop(
    name: str,
    send: Callable[[int], Awaitable[bool]],
    rate: float,
    duration_s: float,
    progress: bool = False,
) -> PhaseResult:
    """Send on the fixed schedule, whatever earlier requests are doing; latency from the scheduled time."""
    hist = _hist()
    counts = {"sent": 0, "ok": 0, "errors": 0}
    schedule = open_loop_schedule(rate, duration_s)
    bar = _bar(progress, len(schedule), f"{name} {rate:.1f}/s", "req")
    tasks = []

    async def one(i: int, scheduled: float) -> None:
        ok = await send(i)
        counts["ok" if ok else "errors"] += 1
        if ok:
            hist.record_value(max(1, int((time.perf_counter() - scheduled) * 1e6)))
        bar.update(1)

    start = time.perf_counter()
    try:
        for i, offset in enumerate(schedule):
            scheduled = start + offset
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            counts["sent"] += 1
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        bar.close()
    return PhaseResult(
        name, counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - start, hist
    )


# --- resources of the processes under load ---------------------------------------------
class ProcSampler:
    """CPU seconds and resident memory of named processes while a block runs.

    CPU is the difference of ``cpu_times`` (user + system) at the start and
    the end; RSS is sampled by a thread every ``interval_s``. A process that
    exits is measured up to its last sample and named in ``gone``. ``series``
    keeps every sample as ``(seconds since start, name → RSS in MiB)``.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, pids: Mapping[str, int], interval_s: float = 0.25) -> None:
        self._procs: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            try:
                self._procs[name] = psutil.Process(pid)
            except psutil.Error:
                continue
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)
        self._cpu0: dict[str, float] = {}
        self._cpu1: dict[str, float] = {}
        self._peak: dict[str, int] = {}
        self._sum: dict[str, int] = {}
        self._n: dict[str, int] = {}
        self._t0 = 0.0
        self.seconds = 0.0
        self.series: list[tuple[float, dict[str, float]]] = []
        self.gone: set[str] = set()
        self.started = False

    @property
    def names(self) -> list[str]:
        """The processes being measured (those that existed at construction)."""
        return list(self._procs)

    @staticmethod
    def _cpu(p: psutil.Process) -> float | None:
        try:
            t = p.cpu_times()
        except psutil.Error:
            return None
        return float(t.user + t.system)

    def _sample(self) -> None:
        row: dict[str, float] = {}
        for name, p in self._procs.items():
            try:
                rss = int(p.memory_info().rss)
            except psutil.Error:
                self.gone.add(name)
                continue
            row[name] = rss / 2**20
            self._peak[name] = max(self._peak.get(name, 0), rss)
            self._sum[name] = self._sum.get(name, 0) + rss
            self._n[name] = self._n.get(name, 0) + 1
            cpu = self._cpu(p)
            if cpu is not None:
                self._cpu1[name] = cpu
        self.series.append((time.perf_counter() - self._t0, row))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        self._t0 = time.perf_counter()
        for name, p in self._procs.items():
            cpu = self._cpu(p)
            if cpu is not None:
                self._cpu0[name] = cpu
        self._sample()
        self._thread.start()
        self.started = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.seconds = time.perf_counter() - self._t0

    def __enter__(self) -> ProcSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> dict[str, dict[str, float]]:
        """name → ``cpu_s``, ``rss_peak_bytes``, ``rss_mean_bytes``."""
        return {
            name: {
                "cpu_s": self._cpu1.get(name, 0.0) - self._cpu0.get(name, 0.0),
                "rss_peak_bytes": float(self._peak.get(name, 0)),
                "rss_mean_bytes": self._sum.get(name, 0) / max(1, self._n.get(name, 0)),
            }
            for name in self._procs
        }


# --- what a bundle carries --------------------------------------------------------------
def bundle_proof_bytes(value: Any) -> int:
    """Bytes of proof material in a report bundle: every inclusion/consistency proof hash
    (decoded from base64) and every signed checkpoint note (its text), wherever they sit."""
    total = 0
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("proof", "consistency", "consistency_proof") and isinstance(v, list):
                for h in v:
                    if isinstance(h, str):
                        try:
                            total += len(base64.b64decode(h, validate=True))
                        except (binascii.Error, ValueError):
                            total += len(h.encode())
            elif k in ("checkpoint", "note") and isinstance(v, str):
                total += len(v.encode())
            else:
                total += bundle_proof_bytes(v)
    elif isinstance(value, list):
        total += sum(bundle_proof_bytes(v) for v in value)
    return total


# --- targets and the baseline -----------------------------------------------------------
def _targets(cons: Consortium, n: int, seed: int) -> tuple[list[Target], bool]:
    """(targets, cross_city): an institution whose home city differs from the enterprise's,
    or, in a network of one city, an institution of that city."""
    rng = random.Random(seed)
    cross = len(cons.topology.cities) > 1
    per_city = max(2, n // len(cons.topology.cities) + 1)
    samples = list(sample_enterprises(cons, None, limit=per_city, min_cities=2 if cross else 1))
    if not samples:
        raise NetworkError(
            "the seeded data has no enterprise with records in two cities; seed more enterprises"
        )
    out = []
    for i in range(n):
        s = samples[i % len(samples)]
        insts = [
            x
            for x in cons.institutions
            if (x.city != s.city or not cross) and "post_loan" in x.purposes
        ]
        if not insts:
            raise NetworkError(
                "no institution of this consortium may query for post_loan; register more institutions"
            )
        inst = rng.choice(insts)
        filed = file_authorization(cons, inst, s.uscc, ["post_loan"])
        out.append(
            Target(
                inst.institution_id, inst.home_node, s.uscc, filed["authorization_id"], s.holders
            )
        )
    return out, cross


Row = tuple[str, str, str, str, str]  # uscc, record_type, record_id, observed_at, body JSON


def _write_table(path: Path, rows: Sequence[Row]) -> None:
    c = sqlite3.connect(path)
    c.execute(
        "CREATE TABLE credit_records (id INTEGER PRIMARY KEY, uscc TEXT, record_type TEXT, record_id TEXT, "
        "observed_at TEXT, body TEXT)"
    )
    c.execute("CREATE INDEX credit_records_uscc ON credit_records (uscc)")
    c.executemany(
        "INSERT INTO credit_records (uscc, record_type, record_id, observed_at, body) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    c.commit()
    c.close()


@dataclass
class BaselinePlan:
    """The plain stack's share of the chain's work: per target, the holder slots to ask
    (one per holder the chain's home asked over HTTP) and whether the home holds records
    itself; per slot (and for the home) the records the chain's holders returned."""

    asks: dict[int, tuple[list[int], bool]] = field(default_factory=dict)
    slots: list[dict[tuple[str, str], Row]] = field(default_factory=list)
    home: dict[tuple[str, str], Row] = field(default_factory=dict)

    def add_bundle(self, target: int, summary: BundleSummary) -> None:
        """Learn target ``target``'s fan-out and records from one verified chain bundle."""
        home = summary.home_node
        remote = sorted(
            {n for n in summary.holders if n != home}
            | {str(m["node_id"]) for m in summary.missing if m.get("node_id") != home}
        )
        while len(self.slots) < len(remote):
            self.slots.append({})
        for h in summary.history:
            node = str(h["node_id"])
            table = self.home if node == home else self.slots[remote.index(node)]
            table[(summary.uscc, str(h["record_id"]))] = (
                summary.uscc,
                str(h["record_type"]),
                str(h["record_id"]),
                str(h["observed_at"]),
                json.dumps(h["body"], ensure_ascii=False),
            )
        self.asks[target] = (list(range(len(remote))), home in summary.holders)

    def fanout(self) -> float:
        """Mean holders asked over HTTP per target."""
        return sum(len(a[0]) for a in self.asks.values()) / max(1, len(self.asks))


def _start_baseline(
    workdir: Path, plan: BaselinePlan
) -> tuple[dict[str, subprocess.Popen[bytes]], str]:
    """Start the plain home and its K holders (K >= 1); name → process, and the home's URL."""
    k = max(1, len(plan.slots))
    _write_table(workdir / "baseline-home.db", list(plan.home.values()))
    for j in range(k):
        rows = plan.slots[j] if j < len(plan.slots) else {}
        _write_table(workdir / f"baseline-holder-{j}.db", list(rows.values()))
    port = find_free_base_port(k + 1)
    env = dict(os.environ)

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "scenarios.bench.baseline_app", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for j in range(k):
            procs[f"holder-{j}"] = spawn(
                "--role",
                "holder",
                "--port",
                str(port + 1 + j),
                "--db",
                str(workdir / f"baseline-holder-{j}.db"),
            )
        holders = [a for j in range(k) for a in ("--holder", f"http://127.0.0.1:{port + 1 + j}")]
        procs["home"] = spawn(
            "--role",
            "home",
            "--port",
            str(port),
            "--db",
            str(workdir / "baseline-home.db"),
            *holders,
        )
        deadline = time.time() + 120
        for p in range(port, port + k + 1):
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{p}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                dead = [q.args for q in procs.values() if q.poll() is not None]
                if dead or time.time() > deadline:
                    raise NetworkError(
                        f"the baseline processes did not start ({'exited' if dead else 'timed out'})"
                    )
                time.sleep(0.2)
    except BaseException:
        _stop_baseline(list(procs.values()))
        raise
    return procs, f"http://127.0.0.1:{port}"


def _stop_baseline(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def cpu_snapshot(procs: Mapping[str, psutil.Process]) -> dict[str, float]:
    """CPU-seconds (user + system) of each live process now."""
    out = {}
    for name, p in procs.items():
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[name] = float(t.user + t.system)
    return out


def _cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    return sum(max(0.0, after[n] - before[n]) for n in after if n in before)


def _procs(pids: Mapping[str, int]) -> dict[str, psutil.Process]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid)
        except psutil.Error:
            continue
    return out


class _Meter:
    """CPU of the chain's nodes, of the baseline's processes and of this process (the load
    generator) across one phase, beside its wall time."""

    def __init__(self, nodes: Mapping[str, int], baseline: Mapping[str, int]) -> None:
        self.nodes = _procs(nodes)
        self.baseline = _procs(baseline)

    def start(self) -> tuple[dict[str, float], dict[str, float], float, float]:
        return (
            cpu_snapshot(self.nodes),
            cpu_snapshot(self.baseline),
            time.process_time(),
            time.perf_counter(),
        )

    def stop(self, at: tuple[dict[str, float], dict[str, float], float, float]) -> dict[str, float]:
        n0, b0, c0, t0 = at
        client = time.process_time() - c0
        seconds = time.perf_counter() - t0
        return {
            "seconds": seconds,
            "node_cpu_s": _cpu_delta(n0, cpu_snapshot(self.nodes)),
            "baseline_cpu_s": _cpu_delta(b0, cpu_snapshot(self.baseline)),
            "client_cpu_s": client,
            "client_cpu_share": client / seconds if seconds > 0 else 0.0,
        }


async def _bench(
    cons: Consortium,
    targets: list[Target],
    *,
    capacity_s: float,
    duration_s: float,
    rounds: int,
    idle_s: float,
    concurrency: int,
    load: float,
    verify_every: int,
    workdir: Path,
    node_pids: Mapping[str, int],
    progress: Callable[[str], None],
    bars: bool,
) -> dict[str, Any]:
    clients = {}
    for inst_id in {t.institution_id for t in targets}:
        inst = cons.institution(inst_id)
        clients[inst_id] = httpx.AsyncClient(
            auth=httpsig.RequestSigner(f"inst:{inst_id}", inst.key()),
            timeout=120,
            limits=httpx.Limits(max_connections=concurrency * 2),
        )
    manifest = cons.manifest
    stats = {
        "verified_offline": 0,
        "partial": 0,
        "cities": 0,
        "proof_bytes": 0,
        "bundle_bytes": 0,
        "reports": 0,
    }
    plan = BaselinePlan()

    async def chain(i: int, verify: bool | None = None) -> bool:
        t = targets[i % len(targets)]
        try:
            r = await clients[t.institution_id].post(
                cons.url(t.home_node) + "/v1/reports",
                json={
                    "uscc": t.uscc,
                    "purpose": "post_loan",
                    "authorization_id": t.authorization_id,
                },
            )
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        if verify or (verify is None and i % verify_every == 0):
            bundle = r.json()
            summary = verify_bundle(bundle, manifest)
            stats["verified_offline"] += 1
            stats["partial"] += int(summary.partial)
            stats["cities"] += len({cons.topology.city_of_node(n).code for n in summary.holders})
            stats["proof_bytes"] += bundle_proof_bytes(bundle)
            stats["bundle_bytes"] += len(r.content)
            stats["reports"] += 1
            if i % len(targets) not in plan.asks:
                plan.add_bundle(i % len(targets), summary)
        return True

    plain_bytes = {"n": 0, "bytes": 0}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    plain = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency * 2))
    try:
        progress("warm-up")
        for i in range(len(targets)):
            await chain(i, verify=True)  # every target's bundle teaches the baseline plan
        procs, base_url = _start_baseline(workdir, plan)

        async def baseline(i: int) -> bool:
            k = i % len(targets)
            slots, local = plan.asks.get(k, ([0], False))
            try:
                r = await plain.post(
                    base_url + "/report",
                    json={"uscc": targets[k].uscc, "holders": slots, "local": local},
                )
            except httpx.HTTPError:
                return False
            if r.status_code == 200 and i % verify_every == 0:
                plain_bytes["n"] += 1
                plain_bytes["bytes"] += len(r.content)
            return r.status_code == 200

        for i in range(len(targets)):
            await baseline(i * verify_every)
        base_pids = {name: p.pid for name, p in procs.items()}
        node_urls = [cons.url(n) for n in node_pids]
        meter = _Meter(node_pids, base_pids)
        phases: list[dict[str, Any]] = []
        with ProcSampler(node_pids) as chain_use, ProcSampler(base_pids) as base_use:
            progress(f"idle: {idle_s:.0f} s with no requests (background CPU)")
            scraped = await scrape_stages(plain, node_urls)
            at = meter.start()
            await asyncio.sleep(idle_s)
            idle_use = meter.stop(at)
            scraped, idle_stages = await _stage_delta(plain, node_urls, scraped)
            idle_rate = {
                CHAIN: idle_use["node_cpu_s"] / idle_use["seconds"],
                BASELINE: idle_use["baseline_cpu_s"] / idle_use["seconds"],
            }
            phases.append(
                {"phase": "idle", "side": "idle", "round": None, **idle_use, "stages": idle_stages}
            )
            for side, r in alternating_phases(rounds):
                progress(
                    f"round {r + 1}/{rounds}, {side}: closed loop, {concurrency} workers, "
                    f"{capacity_s:g} s"
                )
                at = meter.start()
                res = await closed_loop(
                    f"{side}-capacity",
                    chain if side == CHAIN else baseline,
                    concurrency,
                    capacity_s,
                    bars,
                )
                use = meter.stop(at)
                scraped, got = await _stage_delta(plain, node_urls, scraped)
                phases.append({**_phase_row(res, side, r, use), "stages": got})
            cap_rates = [p["per_second"] for p in phases if p["side"] == CHAIN]
            rate = max(1.0, statistics.median(cap_rates) * load)
            for side in (CHAIN, BASELINE):
                progress(f"{side}: open loop at {rate:.1f}/s, {duration_s:g} s")
                at = meter.start()
                res = await open_loop(
                    f"{side}-latency", chain if side == CHAIN else baseline, rate, duration_s, bars
                )
                use = meter.stop(at)
                scraped, got = await _stage_delta(plain, node_urls, scraped)
                phases.append({**_phase_row(res, side, None, use), "stages": got})
    finally:
        for c in clients.values():
            await c.aclose()
        await plain.aclose()
        _stop_baseline(list(procs.values()))
    n = max(1, stats["reports"])
    out = summarise_phases(phases, idle_rate)
    out.update(
        {
            "stages": stage_summary(phases),
            "open_loop_rate": rate,
            "rounds": rounds,
            "verified_offline": stats["verified_offline"],
            "partial_reports": stats["partial"],
            "mean_cities_per_report": stats["cities"] / n,
            "mean_fanout_per_report": plan.fanout(),
            "baseline_holders": max(1, len(plan.slots)),
            "mean_proof_bytes_per_report": stats["proof_bytes"] / n,
            "mean_bundle_bytes_per_report": stats["bundle_bytes"] / n,
            "mean_baseline_bytes_per_report": plain_bytes["bytes"] / max(1, plain_bytes["n"]),
            "chain_resources": {
                "seconds": chain_use.seconds,
                "processes": chain_use.summary(),
            },
            "baseline_resources": {
                "seconds": base_use.seconds,
                "processes": base_use.summary(),
            },
        }
    )
    return out


async def scrape_stages(
    client: httpx.AsyncClient, urls: Sequence[str]
) -> dict[tuple[str, str], tuple[float, float]]:
    """``node_stage_seconds`` (sum, count) per (stage, area), summed over the nodes' /metrics.

    A node that does not answer adds nothing (its stages are missing, not zero).
    """
    from prometheus_client.parser import text_string_to_metric_families

    async def one(url: str) -> str:
        try:
            r = await client.get(url + "/metrics", timeout=10)
        except httpx.HTTPError:
            return ""
        return r.text if r.status_code == 200 else ""

    out: dict[tuple[str, str], list[float]] = {}
    for text in await asyncio.gather(*(one(u) for u in urls)):
        for family in text_string_to_metric_families(text):
            if family.name != "node_stage_seconds":
                continue
            for sample in family.samples:
                key = (sample.labels.get("stage", ""), sample.labels.get("area", ""))
                if sample.name.endswith("_sum"):
                    out.setdefault(key, [0.0, 0.0])[0] += sample.value
                elif sample.name.endswith("_count"):
                    out.setdefault(key, [0.0, 0.0])[1] += sample.value
    return {k: (v[0], v[1]) for k, v in out.items()}


async def _stage_delta(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    before: Mapping[tuple[str, str], tuple[float, float]],
) -> tuple[dict[tuple[str, str], tuple[float, float]], dict[str, list[float]]]:
    """Scrape again; the new totals, and what each stage added since ``before`` as
    ``"stage/area" → [seconds, count]``."""
    after = await scrape_stages(client, urls)
    got = stage_deltas(before, after)
    return after, {f"{k[0]}/{k[1]}": [v[0], v[1]] for k, v in sorted(got.items())}


def _stage_sum(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    total: dict[tuple[str, str], list[float]] = {}
    for p in rows:
        for key, (sec, count) in p.get("stages", {}).items():
            stage, _, area = key.partition("/")
            t = total.setdefault((stage, area), [0.0, 0.0])
            t[0] += sec
            t[1] += count
    return {k: (v[0], v[1]) for k, v in total.items()}


def stage_summary(phases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-stage figures of the alternated run: over the chain phases, mean ms per report
    of every stage summed over the nodes; over the idle phase and over the baseline phases
    (where the nodes only do background work), seconds per second."""
    chain = [p for p in phases if p["side"] == CHAIN]
    idle = [p for p in phases if p["side"] == "idle"]
    base = [p for p in phases if p["side"] == BASELINE]
    return {
        "chain": stage_ms_per_report(
            _stage_sum(chain), sum(p["ok"] for p in chain), sum(p["seconds"] for p in chain)
        ),
        "idle": stage_ms_per_report(_stage_sum(idle), 0, sum(p["seconds"] for p in idle)),
        "during_baseline": stage_ms_per_report(
            _stage_sum(base), 0, sum(p["seconds"] for p in base)
        ),
    }


def _phase_row(
    res: PhaseResult, side: str, round_: int | None, use: Mapping[str, float]
) -> dict[str, Any]:
    own = use["node_cpu_s"] if side == CHAIN else use["baseline_cpu_s"]
    other = use["baseline_cpu_s"] if side == CHAIN else use["node_cpu_s"]
    return {
        **res.summary(),
        "side": side,
        "round": round_,
        **{k: use[k] for k in ("client_cpu_s", "client_cpu_share")},
        "cpu_s": own,  # the processes serving this side
        "other_cpu_s": other,  # the other side's processes meanwhile (their background)
        "client_cpu_ms_per_request": 1000 * use["client_cpu_s"] / res.sent if res.sent else None,
    }


def summarise_phases(
    phases: Sequence[Mapping[str, Any]], idle_rate: Mapping[str, float]
) -> dict[str, Any]:
    """The alternated figures from the phase rows of :func:`_bench`: capacity per side and
    their per-round ratio as median and spread, serving CPU per report (idle CPU taken out,
    and gross), the load generator's CPU per request, latency of the open loops."""
    caps = {
        side: {p["round"]: p for p in phases if p["side"] == side and p["round"] is not None}
        for side in (CHAIN, BASELINE)
    }
    cap_ratio = median_spread(
        pair_ratios(
            {r: p["per_second"] for r, p in caps[CHAIN].items()},
            {r: p["per_second"] for r, p in caps[BASELINE].items()},
        )
    )

    def cost(side: str) -> list[PhaseCost]:
        return [PhaseCost(p["cpu_s"], p["seconds"], p["ok"]) for p in phases if p["side"] == side]

    def per_round_cpu(side: str) -> dict[int, float | None]:
        return {
            r: cpu_ms_per_request([PhaseCost(p["cpu_s"], p["seconds"], p["ok"])], idle_rate[side])
            for r, p in caps[side].items()
        }

    cpu_ratio = median_spread(pair_ratios(per_round_cpu(CHAIN), per_round_cpu(BASELINE)))
    net = {s: cpu_ms_per_request(cost(s), idle_rate[s]) for s in (CHAIN, BASELINE)}
    gross = {s: cpu_ms_per_request(cost(s)) for s in (CHAIN, BASELINE)}

    def client(side: str) -> float | None:
        rows = [p for p in phases if p["side"] == side]
        sent = sum(p["sent"] for p in rows)
        return 1000 * sum(p["client_cpu_s"] for p in rows) / sent if sent else None

    def share(side: str) -> float | None:
        return max((p["client_cpu_share"] for p in phases if p["side"] == side), default=None)

    def other_per_s(side: str) -> float | None:
        rows = [p for p in phases if p["side"] == side]
        seconds = sum(p["seconds"] for p in rows)
        return sum(p["other_cpu_s"] for p in rows) / seconds if seconds > 0 else None

    lat = {
        side: next((p for p in phases if p["side"] == side and p["round"] is None), None)
        for side in (CHAIN, BASELINE)
    }

    def lat_ratio(k: str) -> float | None:
        a, b = lat[CHAIN], lat[BASELINE]
        return _ratio(a[k], b[k]) if a and b else None

    return {
        "phases": list(phases),
        "capacity_rps": median_spread(p["per_second"] for p in caps[CHAIN].values())["median"],
        "capacity_rps_baseline": median_spread(p["per_second"] for p in caps[BASELINE].values())[
            "median"
        ],
        "capacity_ratio": cap_ratio,
        "throughput_ratio": cap_ratio["median"],
        "cpu_ms_per_report": net[CHAIN],
        "cpu_ms_per_report_baseline": net[BASELINE],
        "cpu_ms_per_report_gross": gross[CHAIN],
        "cpu_ms_per_report_gross_baseline": gross[BASELINE],
        "cpu_ratio": cpu_ratio,
        "idle_cpu_s_per_s": idle_rate[CHAIN],
        "idle_cpu_s_per_s_baseline": idle_rate[BASELINE],
        "client_cpu_ms_per_request": client(CHAIN),
        "client_cpu_ms_per_request_baseline": client(BASELINE),
        # the network's background while the baseline is measured (it shares the machine)
        "node_cpu_s_per_s_in_baseline_phases": other_per_s(BASELINE),
        "client_cpu_share": share(CHAIN),
        "client_cpu_share_baseline": share(BASELINE),
        "p50_ratio": lat_ratio("p50_ms"),
        "p95_ratio": lat_ratio("p95_ms"),
        "p99_ratio": lat_ratio("p99_ms"),
        "chain_latency": lat[CHAIN],
        "baseline_latency": lat[BASELINE],
    }


def measure_queries(
    cons: Consortium,
    *,
    capacity_s: float,
    duration_s: float,
    rounds: int = 3,
    idle_s: float = 3.0,
    concurrency: int = 16,
    load: float = 0.5,
    targets: int = 40,
    verify_every: int = 10,
    seed: int = 7,
    progress: Callable[[str], None] = lambda s: None,
    bars: bool = False,
) -> dict[str, Any]:
    """Capacity, CPU and open-loop latency of the running network ``cons`` and of the plain
    baseline with the same fan-out, in alternating phases on the same machine.

    Order: warm-up (every target once, its bundle verified and used to fill the
    baseline's tables), the baseline started, an idle phase of ``idle_s`` (background
    CPU of both), ``rounds`` pairs of closed-loop phases of ``capacity_s`` (chain,
    baseline, chain, ...), then an open loop of ``duration_s`` each at ``load`` × the
    chain's median capacity. The network keeps running (and mirroring) throughout:
    both sides see the same background.

    Raises:
        NetworkError: a node is not running, or the data has nothing to query.
    """
    alive = running_nodes(cons.dir)
    down = [n for n in cons.node_ids if n not in alive]
    if down:
        raise NetworkError(
            f"nodes {', '.join(down)} are not running; start the network with `creditchain up`"
        )
    progress(f"filing {targets} authorizations")
    chosen, cross = _targets(cons, targets, seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(
            _bench(
                cons,
                chosen,
                capacity_s=capacity_s,
                duration_s=duration_s,
                rounds=rounds,
                idle_s=idle_s,
                concurrency=concurrency,
                load=load,
                verify_every=verify_every,
                workdir=Path(tmp),
                node_pids=alive,
                progress=progress,
                bars=bars,
            )
        )
    result.update({"targets": len(chosen), "cross_city": cross})
    return result


def run_query_bench(
    directory: Path,
    *,
    duration_s: float = 20.0,
    rounds: int = 3,
    idle_s: float = 3.0,
    concurrency: int = 16,
    load: float = 0.5,
    targets: int = 40,
    verify_every: int = 10,
    seed: int = 7,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the query benchmark against the running network in ``directory``."""
    cons = load_consortium(directory)
    result = measure_queries(
        cons,
        capacity_s=duration_s,
        duration_s=duration_s,
        rounds=rounds,
        idle_s=idle_s,
        concurrency=concurrency,
        load=load,
        targets=targets,
        verify_every=verify_every,
        seed=seed,
        progress=progress,
    )
    result.update(
        {
            "nodes": len(cons.node_ids),
            "preset": cons.preset,
            "duration_s": duration_s,
            "concurrency": concurrency,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }
    )
    return result
