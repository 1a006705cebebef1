"""The signature benchmark: every row present and consistent, its checks pass, JSON and CLI work.

No timing thresholds: times only have to be positive and ratios the quotient of
the two times they relate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scenarios.bench.httpsig import OPERATIONS, RESULT_FILE, format_table, run_httpsig_bench
from scenarios.cli import cli
from scenarios.errors import BenchError


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run_httpsig_bench(ops=5, rounds=2, response_bytes=100)


def test_every_row_is_there_with_consistent_ratios(result: dict[str, Any]) -> None:
    figures = {f["key"]: f for f in result["figures"]}
    assert list(figures) == list(OPERATIONS)
    for key, f in figures.items():
        assert f["raw_us"] > 0 and f["library_us"] > 0 and f["fast_us"] > 0, key
        assert f["fast_over_raw"] == pytest.approx(f["fast_us"] / f["raw_us"], rel=0.02), key
        assert f["library_over_raw"] == pytest.approx(f["library_us"] / f["raw_us"], rel=0.02), key
        assert f["meets_target"] == (f["fast_over_raw"] <= result["target_fast_over_raw"]), key


def test_the_paths_agree_on_the_bench_messages(result: dict[str, Any]) -> None:
    assert result["checks"] == {
        "request_fields_identical": True,
        "response_fields_identical": True,
        "each_path_accepts_the_other": True,
    }
    assert result["response"]["body_bytes"] == 100


def test_table_names_every_operation(result: dict[str, Any]) -> None:
    table = format_table(result)
    for name in ("request sign", "request verify", "response sign", "response verify"):
        assert name in table
    assert "fast/raw <= 2" in table


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(BenchError, match="ops and rounds"):
        run_httpsig_bench(ops=0)


def test_cli_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = CliRunner().invoke(
        cli, ["bench", "httpsig", "--ops", "3", "--rounds", "1", "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    assert "request verify" in run.output
    written = json.loads((out / RESULT_FILE).read_text(encoding="utf-8"))
    assert [f["key"] for f in written["figures"]] == list(OPERATIONS)
