"""The ledger benchmark: every figure present and consistent, pymerkle agrees, JSON and CLI work.

No timing thresholds: rates only have to be positive and ratios the quotient
of the two rates they relate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import CorrectionDraft, RecordDraft
from scenarios.bench.ledger import (
    RESULT_FILE,
    failed_checks,
    format_table,
    run_ledger_bench,
    synthetic_batches,
)
from scenarios.cli import cli

pytest.importorskip("pymerkle")

FIGURES = {
    "append",
    "append_vs_sqlitetree",
    "generation",
    "inclusion",
    "consistency",
    "inclusion_vs_sqlitetree",
    "inclusion_vs_inmemorytree",
    "consistency_vs_sqlitetree",
    "consistency_vs_inmemorytree",
    "verify_inclusion",
    "verify_consistency",
    "verify_ledger",
    "bytes_per_record",
    "peak_rss",
}
NO_BASELINE = {"generation", "inclusion", "consistency"}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("work")
    out = tmp_path_factory.mktemp("out")
    return run_ledger_bench(3000, 500, 100, work, "sha256", True, False, out=out)


def test_every_figure_is_there_with_positive_values(result: dict[str, Any]) -> None:
    figures = {f["key"]: f for f in result["figures"]}
    assert set(figures) == FIGURES
    for key, f in figures.items():
        assert f["ours"] is not None and f["ours"] > 0, key
        if key in NO_BASELINE:
            assert f["baseline"] is None and f["ratio"] is None
        else:
            assert f["baseline"] is not None and f["baseline"] > 0, key


def test_ratios_are_ours_over_baseline(result: dict[str, Any]) -> None:
    for f in result["figures"]:
        if f["baseline"] is not None:
            assert f["ratio"] == pytest.approx(f["ours"] / f["baseline"]), f["key"]


def test_rates_match_counts_and_times(result: dict[str, Any]) -> None:
    figures = {f["key"]: f for f in result["figures"]}
    det = result["details"]
    assert figures["append"]["ours"] == pytest.approx(3000 / det["ledger"]["append_s"])
    assert figures["append"]["baseline"] == pytest.approx(3000 / det["baseline"]["insert_s"])
    assert figures["inclusion"]["ours"] == pytest.approx(100 / det["proofs"]["inclusion_s"])
    assert figures["consistency"]["ours"] == pytest.approx(100 / det["proofs"]["consistency_s"])
    pm = result["pymerkle"]
    assert figures["inclusion_vs_sqlitetree"]["baseline"] == pytest.approx(
        pm["sqlite_inclusion_count"] / pm["sqlite_inclusion_s"]
    )
    assert det["ledger"]["blocks"] == 6


def test_pymerkle_agrees_and_checks_pass(result: dict[str, Any]) -> None:
    d = result["checks"]["differential"]
    assert d["roots_agree"] is True and d["message"] == "roots agree"
    assert d["inclusion_paths_agree"] is True
    assert d["consistency_proofs_reach_our_roots"] is True
    assert result["checks"]["verify_ledger_ok"] is True
    assert result["checks"]["root_recompute_ok"] is True
    assert failed_checks(result) == []
    pm = result["pymerkle"]
    assert pm["roots"]["ours"] == pm["roots"]["sqlitetree"] == pm["roots"]["inmemorytree"]
    assert pm["sqlite_inclusion_count"] == pm["proofs_requested"] == 100


def test_result_records_the_run(result: dict[str, Any]) -> None:
    assert (result["n"], result["batch"], result["proofs"], result["algorithm"]) == (
        3000,
        500,
        100,
        "sha256",
    )
    assert result["machine"]["cpu_count"] >= 1
    assert result["machine"]["python"] == sys.version.split()[0]
    assert result["details"]["isolated_append_phases"] is True


def test_in_process_run_without_pymerkle(tmp_path: Path) -> None:
    r = run_ledger_bench(200, 50, 10, tmp_path, "sha256", False, False, isolated=False)
    assert r["details"]["isolated_append_phases"] is False
    assert r["pymerkle"] == {"skipped": "skipped on request"}
    assert r["checks"]["verify_ledger_ok"] is True
    assert failed_checks(r) == []
    assert list(tmp_path.iterdir()) == []  # databases removed


def test_json_file_is_written(result: dict[str, Any]) -> None:
    path = Path(result["json_path"])
    assert path.name == RESULT_FILE
    assert json.loads(path.read_text("utf-8")) == json.loads(json.dumps(result))


def test_table_names_every_figure(result: dict[str, Any]) -> None:
    table = format_table(result)
    for f in result["figures"]:
        assert f["figure"] in table
    assert "roots agree" in table


def test_records_are_exact_deterministic_and_batched() -> None:
    batches = list(synthetic_batches(1234, 500))
    assert [len(b) for b in batches] == [500, 500, 234]
    assert all(isinstance(d, RecordDraft | CorrectionDraft) for b in batches for d in b)
    assert batches == list(synthetic_batches(1234, 500))
    # Sized from n: all of the region's nodes contribute, not just the first.
    assert len({d.record_id.split(":")[0] for b in batches for d in b}) > 5


def test_tiny_region_streams_still_reach_n() -> None:
    assert sum(len(b) for b in synthetic_batches(40, 7)) == 40


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    from scenarios.bench.ledger import BenchError

    with pytest.raises(BenchError, match="at least 2"):
        run_ledger_bench(1, 10, 10, tmp_path)


def test_bench_module_does_not_import_pymerkle() -> None:
    code = "import sys, scenarios.bench.ledger, scenarios.cli, ledger; print('pymerkle' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_cli_bench_ledger(tmp_path: Path) -> None:
    out = tmp_path / "results"
    res = CliRunner().invoke(
        cli, ["bench", "ledger", "-n", "600", "--batch", "100", "--proofs", "20", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "roots agree" in res.output
    assert "append" in res.output and "ratio" in res.output
    data = json.loads((out / RESULT_FILE).read_text("utf-8"))
    assert data["n"] == 600 and data["batch"] == 100 and data["proofs"] == 20


def test_cli_bench_ledger_sm3_skips_pymerkle(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli,
        [
            "bench",
            "ledger",
            "-n",
            "300",
            "--batch",
            "64",
            "--proofs",
            "10",
            "--algorithm",
            "sm3",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "pymerkle 7 has no sm3" in res.output
    data = json.loads((tmp_path / RESULT_FILE).read_text("utf-8"))
    assert data["algorithm"] == "sm3"
    assert data["checks"]["differential"]["roots_agree"] is None
    figures = {f["key"]: f for f in data["figures"]}
    assert figures["append"]["ratio"] is not None
    assert figures["inclusion_vs_sqlitetree"]["baseline"] is None


def test_cli_refuses_n_below_two(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["bench", "ledger", "-n", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2
