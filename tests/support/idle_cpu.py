"""Idle CPU of a local network: the CPU-seconds per second its node processes take doing nothing.

Starts ``creditchain up`` on the first N nodes of a preset (the bench's node
order, ``scenarios.bench.plan.subset_topology``) with few enterprises, waits
``--settle`` seconds (first mirroring rounds, back-offs reaching their idle
pace), sums the user+system CPU time of the node processes over ``--seconds``
with psutil, prints one JSON line and stops the network.

    .venv/bin/python tests/support/idle_cpu.py --preset oct-2021 --nodes 14

Not a test: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from scenarios.bench.plan import subset_topology, topology_yaml
from scenarios.model.topology import load_topology


def _node_processes(cons_dir: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(cons_dir) in cmd and "-m node" in cmd:
            out.append(p)
    return out


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="oct-2021")
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=70.0)
    ap.add_argument("--enterprises", type=int, default=2000)
    ap.add_argument("--base-port", type=int, default=9400)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/idle-cpu"))
    a = ap.parse_args()
    root = a.dir / f"{a.preset}-{a.nodes}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    topo = root / "topology.yaml"
    topo.write_text(topology_yaml(subset_topology(load_topology(a.preset), a.nodes)), "utf-8")
    cli = str(Path(sys.executable).parent / "creditchain")
    cons = root / "consortium"
    up = [cli, "up", "--preset", str(topo), "--enterprises", str(a.enterprises)]
    up += ["--base-port", str(a.base_port), "--dir", str(cons)]
    t0 = time.monotonic()
    subprocess.run(up, check=True, capture_output=True)
    up_s = time.monotonic() - t0
    try:
        time.sleep(a.settle)
        procs = _node_processes(cons)
        c0, w0 = _cpu(procs), time.monotonic()
        time.sleep(a.seconds)
        c1, w1 = _cpu(procs), time.monotonic()
        result = {
            "preset": a.preset,
            "nodes": a.nodes,
            "processes": len(procs),
            "idle_cpu_s_per_s": round((c1 - c0) / (w1 - w0), 4),
            "up_s": round(up_s, 1),
        }
        print(json.dumps(result))
    finally:
        subprocess.run([cli, "down", "--dir", str(cons)], capture_output=True)


if __name__ == "__main__":
    main()
