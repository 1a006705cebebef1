"""``creditchain bench query``: verified cross-city reports against a running network,
beside a plain FastAPI two-hop baseline measured in the same run.

Phases, each for ``duration_s``:

1. *capacity* — closed loop, ``concurrency`` workers: institutions ask their
   home node for reports on enterprises registered in another city (every
   report signed, authorized, routed, verified, receipted on both ledgers).
   Every ``verify_every``-th bundle is also verified offline by the client.
2. *latency* — open loop at ``load`` × the measured capacity: requests are
   sent on a fixed schedule whether or not earlier ones returned, and latency
   is measured from the *scheduled* send time, so a slow response cannot hide
   the queueing behind it (no coordinated omission).
3. the same two phases against the baseline: ``scenarios.baseline_app`` home
   and holder processes, no signatures, no proofs, no receipts, the same
   records in a plain SQLite table.

The load generator is our own (asyncio + httpx): every chain request must be
signed with RFC 9421 per institution key and nonce, and both sides must be
driven by the same code in the same run for the ratio to mean something.
Latencies go into HDR histograms (``hdrhistogram``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from hdrh.histogram import HdrHistogram

from node import httpsig
from node.bundle import verify_bundle
from scenarios.network import (
    Consortium,
    NetworkError,
    file_authorization,
    find_free_base_port,
    load_consortium,
    running_nodes,
    sample_enterprises,
)

__all__ = ["run_query_bench"]


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

    def summary(self) -> dict[str, Any]:
        h = self.hist
        return {"phase": self.name, "sent": self.sent, "ok": self.ok, "errors": self.errors,
                "seconds": round(self.seconds, 2), "per_second": round(self.rate, 2),
                "p50_ms": h.get_value_at_percentile(50) / 1000, "p95_ms": h.get_value_at_percentile(95) / 1000,
                "p99_ms": h.get_value_at_percentile(99) / 1000, "max_ms": h.get_max_value() / 1000}


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 120_000_000, 3)  # microseconds, up to 2 minutes


async def _closed_loop(name: str, send: Callable[[int], Awaitable[bool]], concurrency: int,
                       duration_s: float) -> PhaseResult:
    hist = _hist()
    counts = {"sent": 0, "ok": 0, "errors": 0}
    stop = time.perf_counter() + duration_s

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

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return PhaseResult(name, counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - t0, hist)


async def _open_loop(name: str, send: Callable[[int], Awaitable[bool]], rate: float, duration_s: float) -> PhaseResult:
    hist = _hist()
    counts = {"sent": 0, "ok": 0, "errors": 0}
    interval = 1.0 / rate
    start = time.perf_counter()
    n = int(duration_s * rate)
    tasks = []

    async def one(i: int, scheduled: float) -> None:
        ok = await send(i)
        counts["ok" if ok else "errors"] += 1
        if ok:
            hist.record_value(max(1, int((time.perf_counter() - scheduled) * 1e6)))

    for i in range(n):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        counts["sent"] += 1
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    return PhaseResult(name, counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - start, hist)


def _targets(cons: Consortium, n: int, seed: int) -> list[Target]:
    """Cross-city pairs: an institution whose home city differs from the enterprise's."""
    rng = random.Random(seed)
    samples = list(sample_enterprises(cons, None, limit=max(2, n // len(cons.topology.cities) + 1), min_cities=2))
    if not samples:
        raise NetworkError("the seeded data has no enterprise with records in two cities; seed more enterprises")
    out = []
    for i in range(n):
        s = samples[i % len(samples)]
        insts = [x for x in cons.institutions if x.city != s.city and "post_loan" in x.purposes]
        inst = rng.choice(insts)
        filed = file_authorization(cons, inst, s.uscc, ["post_loan"])
        out.append(Target(inst.institution_id, inst.home_node, s.uscc, filed["authorization_id"], s.holders))
    return out


def _start_baseline(workdir: Path, records: list[tuple[str, str, str, str, str]]) -> tuple[list[subprocess.Popen[bytes]], str]:
    db = workdir / "baseline.db"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE credit_records (id INTEGER PRIMARY KEY, uscc TEXT, record_type TEXT, record_id TEXT, "
              "observed_at TEXT, body TEXT)")
    c.execute("CREATE INDEX credit_records_uscc ON credit_records (uscc)")
    c.executemany("INSERT INTO credit_records (uscc, record_type, record_id, observed_at, body) VALUES (?, ?, ?, ?, ?)", records)
    c.commit()
    c.close()
    port = find_free_base_port(2)
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-m", "scenarios.baseline_app", "--role", "holder", "--port", str(port + 1),
                          "--db", str(db)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "scenarios.baseline_app", "--role", "home", "--port", str(port),
                          "--holder", f"http://127.0.0.1:{port + 1}"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    deadline = time.time() + 120
    for p in (port, port + 1):
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{p}/docs", timeout=1)
                break
            except httpx.HTTPError:
                dead = [q.args for q in procs if q.poll() is not None]
                if dead or time.time() > deadline:
                    for q in procs:
                        q.terminate()
                    raise NetworkError(f"the baseline processes did not start ({'exited' if dead else 'timed out'})") from None
                time.sleep(0.2)
    return procs, f"http://127.0.0.1:{port}"


async def _bench(cons: Consortium, targets: list[Target], *, duration_s: float, concurrency: int, load: float,
                 verify_every: int, workdir: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    clients = {}
    for inst_id in {t.institution_id for t in targets}:
        inst = cons.institution(inst_id)
        clients[inst_id] = httpx.AsyncClient(auth=httpsig.RequestSigner(f"inst:{inst_id}", inst.key()), timeout=120,
                                             limits=httpx.Limits(max_connections=concurrency * 2))
    manifest = cons.manifest
    stats = {"verified_offline": 0, "partial": 0, "cities": 0, "proof_bytes": 0, "reports": 0}
    records: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}

    async def chain(i: int) -> bool:
        t = targets[i % len(targets)]
        try:
            r = await clients[t.institution_id].post(
                cons.url(t.home_node) + "/v1/reports",
                json={"uscc": t.uscc, "purpose": "post_loan", "authorization_id": t.authorization_id})
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        if i % verify_every == 0:
            bundle = r.json()
            summary = verify_bundle(bundle, manifest)
            stats["verified_offline"] += 1
            stats["partial"] += int(summary.partial)
            stats["cities"] += len({cons.topology.city_of_node(n).code for n in summary.holders})
            stats["proof_bytes"] += sum(len(p) * 3 // 4 for h in bundle["report"]["holders"] for rec in h["records"]
                                        for p in rec["proof"])
            stats["reports"] += 1
            for h in summary.history:
                records[(t.uscc, h["record_id"])] = (t.uscc, h["record_type"], h["record_id"], h["observed_at"],
                                                     json.dumps(h["body"], ensure_ascii=False))
        return True

    progress("warm-up")
    for i in range(len(targets)):
        await chain(i * verify_every)
    progress(f"chain: closed loop, {concurrency} workers, {duration_s:.0f} s")
    cap = await _closed_loop("chain-capacity", chain, concurrency, duration_s)
    rate = max(1.0, cap.rate * load)
    progress(f"chain: open loop at {rate:.1f}/s, {duration_s:.0f} s")
    lat = await _open_loop("chain-latency", chain, rate, duration_s)
    for c in clients.values():
        await c.aclose()

    procs, base_url = _start_baseline(workdir, list(records.values()))
    try:
        plain = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency * 2))

        async def baseline(i: int) -> bool:
            t = targets[i % len(targets)]
            try:
                r = await plain.post(base_url + "/report", json={"uscc": t.uscc})
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        for i in range(len(targets)):
            await baseline(i)
        progress(f"baseline: closed loop, {concurrency} workers, {duration_s:.0f} s")
        bcap = await _closed_loop("baseline-capacity", baseline, concurrency, duration_s)
        progress(f"baseline: open loop at {rate:.1f}/s, {duration_s:.0f} s")
        blat = await _open_loop("baseline-latency", baseline, rate, duration_s)
        await plain.aclose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    n = max(1, stats["reports"])
    return {
        "phases": [cap.summary(), lat.summary(), bcap.summary(), blat.summary()],
        "throughput_ratio": round(cap.rate / bcap.rate, 4) if bcap.rate else None,
        "p50_ratio": round(lat.summary()["p50_ms"] / max(1e-9, blat.summary()["p50_ms"]), 2),
        "p99_ratio": round(lat.summary()["p99_ms"] / max(1e-9, blat.summary()["p99_ms"]), 2),
        "open_loop_rate": round(rate, 2),
        "verified_offline": stats["verified_offline"],
        "partial_reports": stats["partial"],
        "mean_cities_per_report": round(stats["cities"] / n, 2),
        "mean_proof_bytes_per_report": round(stats["proof_bytes"] / n),
    }


def run_query_bench(directory: Path, *, duration_s: float = 20.0, concurrency: int = 16, load: float = 0.5,
                    targets: int = 40, verify_every: int = 10, seed: int = 7,
                    progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the query benchmark against the running network in ``directory``."""
    cons = load_consortium(directory)
    alive = running_nodes(directory)
    down = [n for n in cons.node_ids if n not in alive]
    if down:
        raise NetworkError(f"nodes {', '.join(down)} are not running; start the network with `creditchain up`")
    progress(f"filing {targets} authorizations")
    chosen = _targets(cons, targets, seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_bench(cons, chosen, duration_s=duration_s, concurrency=concurrency, load=load,
                                    verify_every=verify_every, workdir=Path(tmp), progress=progress))
    result.update({
        "nodes": len(cons.node_ids), "preset": cons.preset, "duration_s": duration_s, "concurrency": concurrency,
        "targets": len(chosen), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    })
    return result
