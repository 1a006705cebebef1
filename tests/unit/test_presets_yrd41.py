"""The ``yrd-41`` preset: every prefecture-level city of the Yangtze River Delta.

It is read through the real loader, planned into bench cells (no network is
started) and made into a consortium through the command line.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from scenarios.bench import matrix as bm
from scenarios.localnet import find_free_base_port, load_consortium
from scenarios.model.topology import PRESETS, Topology, load_topology
from tests.support.cli import invoke

PROVINCES = {"31": 1, "32": 13, "33": 11, "34": 16}  # Shanghai, Jiangsu, Zhejiang, Anhui

# The cities the region is made of, by GB/T 2260 city-level code.
CITIES = {
    "310000": "上海",
    "320100": "南京",
    "320200": "无锡",
    "320300": "徐州",
    "320400": "常州",
    "320500": "苏州",
    "320600": "南通",
    "320700": "连云港",
    "320800": "淮安",
    "320900": "盐城",
    "321000": "扬州",
    "321100": "镇江",
    "321200": "泰州",
    "321300": "宿迁",
    "330100": "杭州",
    "330200": "宁波",
    "330300": "温州",
    "330400": "嘉兴",
    "330500": "湖州",
    "330600": "绍兴",
    "330700": "金华",
    "330800": "衢州",
    "330900": "舟山",
    "331000": "台州",
    "331100": "丽水",
    "340100": "合肥",
    "340200": "芜湖",
    "340300": "蚌埠",
    "340400": "淮南",
    "340500": "马鞍山",
    "340600": "淮北",
    "340700": "铜陵",
    "340800": "安庆",
    "341000": "黄山",
    "341100": "滁州",
    "341200": "阜阳",
    "341300": "宿州",
    "341500": "六安",
    "341600": "亳州",
    "341700": "池州",
    "341800": "宣城",
}


@pytest.fixture(scope="module")
def yrd41() -> Topology:
    return load_topology("yrd-41")


def test_it_is_a_preset_with_41_cities_of_one_node_each(yrd41: Topology) -> None:
    assert "yrd-41" in PRESETS
    assert yrd41.name == "yrd-41"
    assert len(yrd41.cities) == 41
    assert len(yrd41.node_ids) == 41
    assert abs(sum(c.share for c in yrd41.cities) - 1.0) < 1e-9


def test_cities_per_province_by_admin_code_prefix(yrd41: Topology) -> None:
    assert Counter(c.admin_code[:2] for c in yrd41.cities) == PROVINCES


def test_codes_and_admin_codes_are_unique(yrd41: Topology) -> None:
    codes = [c.code for c in yrd41.cities]
    admin = [c.admin_code for c in yrd41.cities]
    assert len(set(codes)) == 41
    assert len(set(admin)) == 41
    assert all(len(code) <= 4 for code in codes)


def test_every_admin_code_is_a_city_level_code_of_its_city(yrd41: Topology) -> None:
    for c in yrd41.cities:
        assert c.admin_code.endswith("00"), c
        assert c.admin_code[:2] in PROVINCES, c
        assert c.admin_code[2:4] != "00" or c.admin_code == "310000", c  # a city, not a province
    assert {c.admin_code: c.name_zh for c in yrd41.cities} == CITIES


def test_the_two_taizhous_and_the_two_suzhous_are_distinct_cities(yrd41: Topology) -> None:
    by_zh = {c.name_zh: c for c in yrd41.cities}
    assert (by_zh["泰州"].admin_code, by_zh["台州"].admin_code) == ("321200", "331000")
    assert (by_zh["苏州"].admin_code, by_zh["宿州"].admin_code) == ("320500", "341300")
    assert by_zh["泰州"].code != by_zh["台州"].code
    assert by_zh["苏州"].code != by_zh["宿州"].code


def test_coordinates_lie_in_the_region(yrd41: Topology) -> None:
    for c in yrd41.cities:
        assert 27.0 <= c.lat <= 36.0, c
        assert 114.0 <= c.lon <= 123.0, c
    # Shanghai to Hefei, and the far corners (Xuzhou, Wenzhou), roughly as on a map
    assert 390 < yrd41.distance_km("sh", "hf") < 430
    assert 720 < yrd41.distance_km("xz", "wz") < 820


def test_oct_2021_cities_keep_their_codes(yrd41: Topology) -> None:
    oct2021 = load_topology("oct-2021")
    for c in oct2021.cities:
        same = yrd41.city(c.code)
        assert (same.admin_code, same.name_zh) == (c.admin_code, c.name_zh)


def test_default_matrix_adds_28_and_41_nodes_at_ten_thousand_enterprises(yrd41: Topology) -> None:
    cells = bm.plan_cells(None, None, len(yrd41.node_ids))
    wide = sorted(c for c in cells if c.nodes > 14)
    assert wide == [bm.Cell(10_000, 28), bm.Cell(10_000, 41)]
    assert {c.nodes for c in cells if c.enterprises == 10_000} == {1, 2, 4, 8, 11, 14, 28, 41}
    assert {c.nodes for c in cells if c.enterprises > 10_000} == set(bm.DEFAULT_NODES)
    # a 14-node preset keeps the matrix it had
    assert len(bm.plan_cells(None, None, 14)) == 18


def test_any_node_count_of_the_preset_can_be_asked_for(yrd41: Topology) -> None:
    assert bm.plan_cells((3, 28, 41), (100_000,), 41) == [
        bm.Cell(100_000, 3),
        bm.Cell(100_000, 28),
        bm.Cell(100_000, 41),
    ]
    with pytest.raises(bm.BenchError, match="--nodes 42 is more than the preset's 41 nodes"):
        bm.plan_cells((42,), None, 41)


@pytest.mark.parametrize("n", [28, 41])
def test_bench_cell_topology_is_built_and_reads_back(
    yrd41: Topology, n: int, tmp_path: Path
) -> None:
    sub = bm.subset_topology(yrd41, n)
    assert len(sub.node_ids) == n
    assert len(sub.cities) == n  # one node per city: n cities
    largest = sorted(yrd41.cities, key=lambda c: -c.share)[n - 1].share
    assert all(c.share >= largest for c in (yrd41.city(s.code) for s in sub.cities))
    assert sub.node_ids[0] == "sh-1"
    assert sum(c.share for c in sub.cities) == pytest.approx(1.0, abs=1e-9)
    path = tmp_path / "topology.yaml"
    path.write_text(bm.topology_yaml(sub), encoding="utf-8")
    back = load_topology(str(path))
    assert back.cities == sub.cities
    assert back.name == ("yrd-41" if n == 41 else "yrd-41-28n")


def test_consortium_init_through_the_cli(tmp_path: Path) -> None:
    directory = tmp_path / "cc"
    base = find_free_base_port(41, start=28000, end=29000)
    code, out, err = invoke(
        [
            "consortium",
            "init",
            "--preset",
            "yrd-41",
            "--dir",
            str(directory),
            "--base-port",
            str(base),
        ]
    )
    assert code == 0, err
    assert "created the yrd-41 consortium" in out
    assert f"41 nodes (ports {base}-{base + 40})" in out
    meta = json.loads((directory / "consortium.json").read_text())
    assert (meta["topology"], meta["nodes"]) == ("yrd-41", 41)
    cons = load_consortium(directory)  # the consortium reads back as a whole
    assert len(cons.node_ids) == 41
    manifest = json.loads((directory / "manifest.json").read_text())["manifest"]
    assert sorted(a for n in manifest["nodes"] for a in n["admin_codes"]) == sorted(CITIES)
