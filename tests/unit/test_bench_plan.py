"""The pure parts of the bench matrix: list parsing, node subsets, cell plans, ratios,
the open-loop scheduler, proof byte counting, the process sampler, CSV and the report."""

from __future__ import annotations

import asyncio
import base64
import csv
import dataclasses
import io
import json
import math
import os
import time
from pathlib import Path

import psutil
import pytest

from scenarios.bench import matrix as bm
from scenarios.bench.query import ProcSampler, bundle_proof_bytes, open_loop, open_loop_schedule
from scenarios.bench.report import fmt, write_report
from scenarios.model.topology import load_topology, parse_topology
from scenarios.model.workloads import SyntheticData

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- parsing --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,4,8,11,14", (1, 2, 4, 8, 11, 14)),
        ("14, 1 ,4,1", (1, 4, 14)),
        ("10_000,100k,1M", (10_000, 100_000, 1_000_000)),
        ("16.82M", (16_820_000,)),
        ("200", (200,)),
    ],
)
def test_parse_count_list(text: str, expected: tuple[int, ...]) -> None:
    assert bm.parse_count_list(text, "--nodes") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "comma-separated list"),
        ("1,,2", "comma-separated list"),
        ("1,x", "'x' is not a whole number"),
        ("1.5", "'1.5' is not a whole number"),
        ("1.0001k", "not a whole number"),
        ("0", "must be at least 1"),
        ("-3", "must be at least 1"),
        ("nan", "not a whole number"),
    ],
)
def test_parse_count_list_refuses(text: str, message: str) -> None:
    with pytest.raises(bm.BenchError, match=message) as info:
        bm.parse_count_list(text, "--enterprises")
    assert str(info.value).startswith("--enterprises")


# --- node subsets -----------------------------------------------------------------------
def test_spread_order_of_oct_2021_takes_every_city_before_any_second_node() -> None:
    order = bm.spread_order(load_topology("oct-2021"))
    assert order == [
        "sh-1",
        "sz-1",
        "hz-1",
        "nj-1",
        "hf-1",
        "tz-1",
        "cz-1",
        "sq-1",
        "sh-2",
        "sz-2",
        "hz-2",
        "nj-2",
        "hf-2",
        "cz-2",
    ]


def test_first_eleven_of_oct_2021_are_launch_2020() -> None:
    sub = bm.subset_topology(load_topology("oct-2021"), 11)
    launch = load_topology("launch-2020")
    assert sorted(sub.node_ids) == sorted(launch.node_ids)
    assert {c.code: c.nodes for c in sub.cities} == {c.code: c.nodes for c in launch.cities}


@pytest.mark.parametrize("n", range(1, 15))
def test_subset_topology_is_valid_and_round_trips(n: int) -> None:
    base = load_topology("oct-2021")
    sub = bm.subset_topology(base, n)
    assert len(sub.node_ids) == n
    assert set(sub.node_ids) == set(bm.spread_order(base)[:n])
    assert math.isclose(sum(c.share for c in sub.cities), 1.0, abs_tol=1e-9)
    assert len(sub.cities) == min(n, 8)
    assert sub.institutions >= len(sub.cities)
    again = parse_topology(__import__("yaml").safe_load(bm.topology_yaml(sub)), "x")
    assert again == sub
    data = SyntheticData(sub, 1000, 2020)
    assert sum(data.counts.values()) == 1000


def test_subset_of_all_nodes_keeps_the_preset() -> None:
    base = load_topology("oct-2021")
    sub = bm.subset_topology(base, 14)
    assert sub.name == "oct-2021"
    assert sub.institutions == 326
    assert [(c.code, c.nodes) for c in sub.cities] == [(c.code, c.nodes) for c in base.cities]


def test_one_node_subset_is_shanghai_alone() -> None:
    sub = bm.subset_topology(load_topology("oct-2021"), 1)
    assert [(c.code, c.nodes, c.share) for c in sub.cities] == [("sh", 1, 1.0)]


@pytest.mark.parametrize("n", [0, 15])
def test_subset_refuses_impossible_counts(n: int) -> None:
    with pytest.raises(bm.BenchError, match=f"--nodes {n} is not possible: oct-2021 has 14 nodes"):
        bm.subset_topology(load_topology("oct-2021"), n)


# --- cell plans -----------------------------------------------------------------------
def test_default_plan_is_six_node_counts_by_three_volumes() -> None:
    cells = bm.plan_cells(None, None, 14)
    assert len(cells) == 18
    assert {c.nodes for c in cells} == set(bm.DEFAULT_NODES)
    assert {c.enterprises for c in cells} == set(bm.DEFAULT_ENTERPRISES)
    assert cells[0] == bm.Cell(10_000, 1) and cells[-1] == bm.Cell(1_000_000, 14)  # small first


def test_one_volume_without_nodes_is_one_full_cell() -> None:
    assert bm.plan_cells(None, (16_820_000,), 14) == [bm.Cell(16_820_000, 14)]


def test_defaults_are_clipped_to_a_smaller_preset() -> None:
    assert {c.nodes for c in bm.plan_cells(None, None, 11)} == {1, 2, 4, 8, 11}


def test_explicit_node_count_above_the_preset_is_refused() -> None:
    with pytest.raises(bm.BenchError, match="--nodes 15 is more than the preset's 14 nodes"):
        bm.plan_cells((1, 15), (100,), 14)


def test_cell_ids_are_distinct_and_sortable() -> None:
    cells = bm.plan_cells((1, 2, 14), (200, 400), 14)
    assert [c.id for c in cells] == [
        "n01-e200",
        "n02-e200",
        "n14-e200",
        "n01-e400",
        "n02-e400",
        "n14-e400",
    ]


# --- ratios ---------------------------------------------------------------------------
def test_ratio() -> None:
    assert bm.ratio(3.0, 4.0) == 0.75
    assert bm.ratio(None, 4.0) is None
    assert bm.ratio(3.0, None) is None
    assert bm.ratio(3.0, 0.0) is None
    assert bm.ratio(float("nan"), 1.0) is None
    assert bm.ratio(1.0, float("inf")) is None


def test_add_ratios_sets_every_figure() -> None:
    row: dict[str, object] = {}
    for i, f in enumerate(bm.FIGURES):
        row[f.key] = float(i + 1)
        if f.baseline is not None:
            row[f"{f.key}_baseline"] = float(2 * (i + 1))
    bm.add_ratios(row)
    for f in bm.FIGURES:
        assert row[f"{f.key}_ratio"] == (0.5 if f.baseline is not None else None)


def test_every_figure_is_a_csv_column_with_baseline_and_ratio() -> None:
    for f in bm.FIGURES:
        for k in (f.key, f"{f.key}_baseline", f"{f.key}_ratio"):
            assert bm.CSV_COLUMNS.count(k) == 1
    assert len(set(bm.CSV_COLUMNS)) == len(bm.CSV_COLUMNS)


# --- the open loop ----------------------------------------------------------------------
def test_open_loop_schedule_is_a_constant_rate() -> None:
    s = open_loop_schedule(20.0, 1.5)
    assert len(s) == 30
    assert s[0] == 0.0
    assert all(math.isclose(b - a, 0.05) for a, b in zip(s, s[1:], strict=False))
    assert open_loop_schedule(0.5, 1.0) == [0.0]  # at least one request
    with pytest.raises(ValueError, match="positive"):
        open_loop_schedule(0.0, 1.0)


def test_open_loop_counts_latency_from_the_scheduled_time() -> None:
    """The first request stalls the sender 0.3 s; requests due meanwhile go out late and
    their latency includes the wait (no coordinated omission), though each answer is instant."""
    calls: list[int] = []

    async def send(i: int) -> bool:
        calls.append(i)
        if i == 0:
            time.sleep(0.3)  # blocks the event loop, as a slow client or server would
        return True

    result = asyncio.run(open_loop("t", send, 20.0, 1.0))
    assert result.sent == result.ok == 20 and result.errors == 0
    assert sorted(calls) == list(range(20))
    # Requests due at 0, 0.05, 0.10, 0.15 and 0.20 s were all answered after 0.3 s: the five
    # largest of the 20 latencies are at least 0.1 s (the 16th smallest is the 80th percentile).
    assert result.hist.get_total_count() == 20
    assert result.hist.get_value_at_percentile(80) >= 100_000
    assert result.hist.get_max_value() >= 300_000
    assert result.percentile_ms(100) >= 300


def test_open_loop_counts_failures_as_errors() -> None:
    async def send(i: int) -> bool:
        return i % 2 == 0

    result = asyncio.run(open_loop("t", send, 50.0, 0.2))
    assert (result.sent, result.ok, result.errors) == (10, 5, 5)
    assert result.hist.get_total_count() == 5


# --- bundles ------------------------------------------------------------------------------
def test_bundle_proof_bytes_counts_proof_hashes_and_checkpoints() -> None:
    h = base64.b64encode(bytes(32)).decode()
    note = "yrd/sh-1\n5\nabc=\n\n— sh-1 sig\n"
    bundle = {
        "signature": "c2ln",
        "report": {
            "authorization": {
                "entry": "ZW50cnk=",
                "index": 3,
                "proof": [h, h, h],
                "checkpoint": note,
            },
            "holders": [
                {
                    "node_id": "sz-1",
                    "checkpoint": note,
                    "records": [
                        {
                            "index": 1,
                            "entry": "eA==",
                            "body": {"proof": "not a list"},
                            "proof": [h],
                        },
                        {"index": 2, "entry": "eA==", "body": {}, "proof": []},
                    ],
                }
            ],
            "home_receipt": {"entry": "eA==", "index": 9, "proof": [h, h], "checkpoint": note},
        },
    }
    assert bundle_proof_bytes(bundle) == 32 * 6 + 3 * len(note.encode())
    assert bundle_proof_bytes({"report": {"holders": []}}) == 0


# --- the process sampler ---------------------------------------------------------------
def test_proc_sampler_measures_cpu_and_memory_of_a_process() -> None:
    me = psutil.Process()
    with ProcSampler({"me": os.getpid()}, interval_s=0.01) as s:
        start = sum(me.cpu_times()[:2])
        x = 0
        while sum(me.cpu_times()[:2]) - start < 0.05:
            x += sum(range(1000))
    got = s.summary()["me"]
    assert got["cpu_s"] >= 0.05
    assert got["rss_peak_bytes"] >= got["rss_mean_bytes"] > 0
    assert s.seconds > 0


def test_proc_sampler_skips_a_process_that_does_not_exist() -> None:
    with ProcSampler({"gone": 2**22 + 12345}) as s:
        pass
    assert s.summary() == {}


# --- rows, CSV and the report ------------------------------------------------------------
def _row(nodes: int, enterprises: int) -> dict[str, object]:
    row: dict[str, object] = {
        "cell": bm.Cell(enterprises, nodes).id,
        "nodes": nodes,
        "enterprises": enterprises,
        "preset": "oct-2021",
        "node_ids": "sh-1",
        "command": 'creditchain bench, "x"',
        "cross_city": nodes > 1,
        "detail": {"phases": []},
    }
    for i, f in enumerate(bm.FIGURES):
        row[f.key] = (i + 1) * nodes * 1.1 + enterprises / 1000
        if f.baseline is not None:
            row[f"{f.key}_baseline"] = (i + 2) * 0.7
    return bm.add_ratios(row)


def _write_cells(out: Path, rows: list[dict[str, object]]) -> None:
    for r in rows:
        d = out / "cells" / str(r["cell"])
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(r))


def test_collect_rows_skips_unfinished_cells_and_csv_agrees_with_json(tmp_path: Path) -> None:
    rows = [_row(2, 400), _row(1, 400), _row(1, 200)]
    _write_cells(tmp_path, rows)
    (tmp_path / "cells" / "n04-e200").mkdir()  # started, never finished
    (tmp_path / "cells" / "n04-e200" / "partial.json").write_text("{}")
    (tmp_path / "cells" / "n08-e200").mkdir()
    (tmp_path / "cells" / "n08-e200" / "result.json").write_text("{not json")
    got = bm.collect_rows(tmp_path)
    assert [r["cell"] for r in got] == ["n01-e200", "n01-e400", "n02-e400"]
    table = list(csv.DictReader(io.StringIO(bm.csv_text(got))))
    assert [r["cell"] for r in table] == [r["cell"] for r in got]
    for line, row in zip(table, got, strict=True):
        for col in bm.CSV_COLUMNS:
            v = row.get(col)
            if v is None:
                assert line[col] == ""
            elif isinstance(v, float):
                assert float(line[col]) == v
            else:
                assert line[col] == str(v)


def test_run_matrix_refuses_a_foreign_directory_before_running_anything(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    for resume in (False, True):
        with pytest.raises(bm.BenchError, match="is not empty and holds no bench matrix"):
            bm.run_matrix(
                tmp_path,
                bm.MatrixConfig(nodes=(1,), enterprises=(200,)),
                resume=resume,
                progress=False,
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_run_matrix_refuses_too_few_enterprises(tmp_path: Path) -> None:
    with pytest.raises(bm.BenchError, match="--enterprises 5 is too few for 14 nodes"):
        bm.run_matrix(tmp_path / "o", bm.MatrixConfig(enterprises=(5,)), progress=False)
    assert not (tmp_path / "o").exists()


def test_load_cell_result_refuses_another_cells_result(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(json.dumps(_row(1, 200)))
    assert bm.load_cell_result(tmp_path, "n01-e200") is not None
    assert bm.load_cell_result(tmp_path, "n02-e200") is None


def test_write_report_names_every_figure_and_draws_png_charts(tmp_path: Path) -> None:
    rows = [_row(1, 200), _row(2, 200), _row(1, 400)]
    results = {
        "rows": rows,
        "figures": [dataclasses.asdict(f) for f in bm.FIGURES],
        "command": "creditchain bench",
        "config": {
            "preset": "oct-2021",
            "duration_s": 2.0,
            "load": 0.5,
            "capacity_s": 2.0,
            "concurrency": 4,
            "targets": 4,
            "seed": 2020,
        },
        "machine": {"cpu_count": 2},
        "versions": {"python": "3.11"},
        "interrupted": True,
        "cells_missing": ["n02-e400"],
        "cells_failed": {"n04-e400": "mirroring made no progress"},
        "written_at": "2021-10-31T00:00:00Z",
        "started_at": "2021-10-31T00:00:00Z",
    }
    written = write_report(tmp_path, results)
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    for f in bm.FIGURES:
        assert f.label in md and f.key in md
        assert f"charts/{f.key}.png" in md and f"charts/{f.key}.png" in page
        png = (tmp_path / "charts" / f"{f.key}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert "Interrupted" in md and "n02-e400" in md and "mirroring made no progress" in md
    r = rows[1]
    assert (
        f"{fmt(r['p99_ms'])} (baseline {fmt(r['p99_ms_baseline'])}, {fmt(r['p99_ms_ratio'])}x)"
        in md
    )
    assert len([p for p in written if p.suffix == ".png"]) == len(bm.FIGURES)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0, "0"),
        (12, "12"),
        (12345, "12,345"),
        (0.012345, "0.0123"),
        (1.5, "1.50"),
        (123.4, "123"),
        (4567.8, "4,568"),
        (float("nan"), "-"),
        (True, "True"),
    ],
)
def test_fmt(value: object, text: str) -> None:
    assert fmt(value) == text
