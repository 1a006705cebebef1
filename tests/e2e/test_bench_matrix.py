"""``creditchain bench`` end to end at a small size: real node processes, real baselines.

One matrix (1 and 2 nodes × 200 and 400 enterprises) runs once for the module
and its outputs are checked for content: every cell, finite positive figures,
ordered percentiles, ratios that are figure / baseline, CSV equal to JSON,
PNG charts, a report naming every figure. A copy of it is resumed after one
cell's result is deleted (only that cell runs again), and a second, smaller
matrix is interrupted with SIGINT while a cell's nodes run (exit 130, partial
results kept, no node left running). Nothing here asserts a timing.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner

from scenarios.bench.matrix import CSV_COLUMNS, FIGURES
from scenarios.cli import cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SMALL = [
    "--preset",
    "oct-2021",
    "--duration",
    "2",
    "--capacity-duration",
    "1",
    "--targets",
    "4",
    "--concurrency",
    "4",
]
MATRIX = ["--nodes", "1,2", "--enterprises", "200,400", *SMALL]
CELLS = ["n01-e200", "n02-e200", "n01-e400", "n02-e400"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(out: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    log = out.parent / f"{out.name}.stderr"
    with log.open("w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "scenarios.cli", "bench", *args, "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=timeout,
            check=False,
        )
    proc.stderr = log.read_text()
    return proc


def processes_under(path: Path) -> list[psutil.Process]:
    """Live processes whose command line names a file under ``path`` (node processes of a cell)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if (
                any(str(path) in a for a in p.info["cmdline"] or [])
                and p.status() != psutil.STATUS_ZOMBIE
            ):
                out.append(p)
        except psutil.Error:
            continue
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "matrix"
    proc = bench(out, *MATRIX)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "4 cells run, 0 skipped (done earlier), 0 failed; 4 of 4 cells have results" in proc.stdout
    )
    return out


def results(out: Path) -> dict[str, Any]:
    data = json.loads((out / "results.json").read_text())
    assert isinstance(data, dict)
    return data


def positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def test_every_cell_has_its_figures_beside_their_baselines(matrix: Path) -> None:
    data = results(matrix)
    rows = {r["cell"]: r for r in data["rows"]}
    assert sorted(rows) == sorted(CELLS)
    assert (
        data["cells_missing"] == [] and data["cells_failed"] == {} and data["interrupted"] is False
    )
    for cell, r in rows.items():
        assert r["node_ids"] == ("sh-1" if r["nodes"] == 1 else "sh-1 sz-1"), cell
        assert r["cross_city"] is (r["nodes"] == 2), cell
        assert r["records"] > r["enterprises"], cell  # every enterprise has a registration and more
        for f in FIGURES:
            if f.key == "idle_cpu_s_per_s":  # a second of an idle node may round to 0 CPU
                assert r[f.key] >= 0 and r[f"{f.key}_ratio"] is None, cell
                continue
            assert positive(r[f.key]), (cell, f.key, r[f.key])
            if f.baseline is None:
                assert r[f"{f.key}_ratio"] is None
                continue
            assert positive(r[f"{f.key}_baseline"]), (cell, f.key)
            assert r[f"{f.key}_ratio"] == pytest.approx(
                r[f.key] / r[f"{f.key}_baseline"], rel=1e-12
            ), (cell, f.key)
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], cell
        assert r["p50_ms_baseline"] <= r["p95_ms_baseline"] <= r["p99_ms_baseline"], cell
        assert r["capacity_ok"] > 0 and r["capacity_errors"] == 0, cell
        assert r["latency_sent"] == r["latency_ok"] and r["latency_errors"] == 0, cell
        assert (
            r["open_loop_rate"] == pytest.approx(0.5 * r["capacity_rps"], rel=0.02)
            or r["open_loop_rate"] == 1.0
        )
        assert r["verified_offline"] > 0 and r["partial_reports"] == 0, cell
        assert r["cities_per_report"] == (1.0 if r["nodes"] == 1 else pytest.approx(2.0)), cell
        assert r["bundle_bytes_per_report"] > r["proof_bytes_per_report"], cell
        assert r["storage_bytes_per_enterprise"] > r["storage_bytes_per_enterprise_baseline"], cell
        assert len(r["detail"]["node_processes"]) == r["nodes"], cell
        phases = r["detail"]["phases"]  # idle, alternated rounds, the two open loops
        assert len(phases) == 1 + 2 * r["rounds"] + 2, cell
        assert [p["phase"] for p in (phases[0], phases[-2], phases[-1])] == [
            "idle",
            "chain-latency",
            "baseline-latency",
        ]
        assert (
            r["seed_s"] > 0
            and r["baseline_seed_s"] > 0
            and r["baseline_workers"] == min(2, r["nodes"])
        )
    # more enterprises, more records, on the same nodes
    assert rows["n01-e400"]["records"] > rows["n01-e200"]["records"]
    assert rows["n02-e400"]["records"] > rows["n02-e200"]["records"]


def test_results_name_the_run(matrix: Path) -> None:
    data = results(matrix)
    assert data["command"].startswith("creditchain bench --nodes 1,2 --enterprises 200,400")
    assert data["machine"]["cpu_count"] >= 1 and data["machine"]["memory_total_mib"] > 0
    assert data["versions"]["python"] == sys.version.split()[0]
    assert data["versions"]["yrd-credit-chain"]
    assert data["cells_planned"] == CELLS
    assert [f["key"] for f in data["figures"]] == [f.key for f in FIGURES]
    assert all(r["command"] == data["command"] for r in data["rows"])


def test_csv_and_json_agree(matrix: Path) -> None:
    rows = results(matrix)["rows"]
    with (matrix / "results.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        table = list(reader)
    assert [t["cell"] for t in table] == [r["cell"] for r in rows]
    for line, row in zip(table, rows, strict=True):
        for col in CSV_COLUMNS:
            v = row.get(col)
            if v is None:
                assert line[col] == "", col
            elif isinstance(v, float):
                assert float(line[col]) == v, col
            else:
                assert line[col] == str(v), col


def test_report_and_charts(matrix: Path) -> None:
    import matplotlib.image

    md = (matrix / "report.md").read_text()
    page = (matrix / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    for f in FIGURES:
        assert f"### {f.label} ({f.unit})" in md, f.key
        assert f.label in page
        png = matrix / "charts" / f"{f.key}.png"
        assert png.read_bytes().startswith(PNG_MAGIC), f.key
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image.std() > 0  # something is drawn
        assert f"](charts/{f.key}.png)" in md and f"src='charts/{f.key}.png'" in page
    from scenarios.bench.report import fmt

    for r in results(matrix)["rows"]:
        assert (
            f"{fmt(r['p99_ms'])} (baseline {fmt(r['p99_ms_baseline'])}, {fmt(r['p99_ms_ratio'])}x)"
            in md
        )
    assert "Interrupted" not in md


def test_networks_are_stopped_and_removed(matrix: Path) -> None:
    assert processes_under(matrix) == []
    for cell in CELLS:
        d = matrix / "cells" / cell
        assert (d / "result.json").exists() and (d / "topology.yaml").exists()
        assert not (d / "net").exists() and not (d / "plain").exists()


def test_resume_runs_only_the_cell_without_a_result(matrix: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(matrix, out)
    before = {r["cell"]: r for r in results(out)["rows"]}
    (out / "cells" / "n02-e200" / "result.json").unlink()
    proc = bench(out, *MATRIX, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "1 cells run, 3 skipped (done earlier), 0 failed; 4 of 4 cells have results" in proc.stdout
    )
    for cell in ("n01-e200", "n01-e400", "n02-e400"):
        assert f"{cell}: done in an earlier run, skipped" in proc.stderr
    after = {r["cell"]: r for r in results(out)["rows"]}
    assert sorted(after) == sorted(CELLS)
    for cell in ("n01-e200", "n01-e400", "n02-e400"):
        assert after[cell] == before[cell]
    assert after["n02-e200"]["finished_at"] >= before["n02-e200"]["finished_at"]
    assert after["n02-e200"]["cell_seconds"] != before["n02-e200"]["cell_seconds"]
    assert positive(after["n02-e200"]["capacity_rps"])


def test_resume_refuses_another_preset_and_a_rerun_without_resume(matrix: Path) -> None:
    r = CliRunner().invoke(
        cli,
        [
            "bench",
            "--nodes",
            "1,2",
            "--enterprises",
            "200,400",
            "--preset",
            "launch-2020",
            "--resume",
            "--out",
            str(matrix),
        ],
    )
    assert (
        r.exit_code == 1
        and r.stderr.startswith("error: ")
        and "was run with --preset oct-2021" in r.stderr
    )
    r = CliRunner().invoke(cli, ["bench", *MATRIX, "--out", str(matrix)])
    assert r.exit_code == 1 and "already holds a bench matrix; pass --resume" in r.stderr


def test_interrupt_stops_the_networks_and_keeps_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    log = tmp_path / "interrupted.stderr"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scenarios.cli",
                "bench",
                "--nodes",
                "1",
                "--enterprises",
                "200,400",
                *SMALL,
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            # a shell's background job ignores SIGINT, and so would its children
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            pid_file = out / "cells" / "n01-e400" / "net" / "nodes" / "sh-1" / "node.pid"
            deadline = time.monotonic() + 600
            while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pid_file.exists(), log.read_text()[-3000:]
            node_pid = int(pid_file.read_text())
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = log.read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted: 1 of 2 cells have results; networks stopped" in stderr
    assert "Traceback" not in stderr
    assert (
        not psutil.pid_exists(node_pid) or psutil.Process(node_pid).status() == psutil.STATUS_ZOMBIE
    )
    assert processes_under(out) == []
    data = results(out)
    assert data["interrupted"] is True
    assert [r["cell"] for r in data["rows"]] == ["n01-e200"]
    assert data["cells_missing"] == ["n01-e400"]
    partial = json.loads((out / "cells" / "n01-e400" / "partial.json").read_text())
    assert partial["cell"] == "n01-e400" and "interrupted_at" in partial
    assert not (out / "cells" / "n01-e400" / "result.json").exists()
    md = (out / "report.md").read_text()
    assert "Interrupted: the results below are partial." in md and "n01-e400" in md
    assert (out / "charts" / "p99_ms.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "1,x"], "error: --nodes: 'x' is not a whole number"),
        (["--nodes", "15"], "error: --nodes 15 is more than the preset's 14 nodes"),
        (["--enterprises", "3", "--nodes", "8"], "error: --enterprises 3 is too few for 8 nodes"),
        (["--resume"], "error: --resume needs the --out directory"),
        (["--preset", "nosuch", "--out", "{tmp}/x"], "error: --preset:"),
    ],
)
def test_bad_input_is_one_sentence(args: list[str], message: str, tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args and "--resume" not in args:
        args += ["--out", str(tmp_path / "o")]
    r = CliRunner().invoke(cli, ["bench", *args])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), r.stderr
    assert not (tmp_path / "o" / "cells").exists()
