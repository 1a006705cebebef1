"""Synthetic data for the report's 29 items: valid bodies, determinism, realistic spread."""

from __future__ import annotations

import inspect
import itertools
from collections import Counter

import pytest

from ledger import ITEMS, SECTIONS, CorrectionDraft, RecordDraft, check_record, item_for
from scenarios.model.topology import load_topology
from scenarios.model.workloads import SyntheticData

TOPOLOGY = load_topology("oct-2021")


@pytest.fixture(scope="module")
def sample() -> list[RecordDraft]:
    """Every record of a 30,000-enterprise region held by three nodes of three cities."""
    data = SyntheticData(TOPOLOGY, 30_000, 2020)
    out: list[RecordDraft] = []
    for node_id in ("sh-1", "sz-1", "hf-1"):
        out.extend(d for d in data.records_for_node(node_id) if isinstance(d, RecordDraft))
    return out


def test_every_item_is_generated_and_every_generated_body_validates(sample):
    seen = Counter(d.record_type for d in sample)
    assert set(seen) == {i.record_type for i in ITEMS}, "some item is never generated"
    for d in sample:
        check_record(d.record_type, d.source, d.body)  # raises on the first invalid record


def test_each_record_names_a_source_of_its_item(sample):
    for d in sample[:5000]:
        key = d.source.rsplit("-", 1)[1]
        assert key in item_for(d.record_type).sources, d


def test_same_seed_same_records_other_seed_other_records():
    def head(seed: int) -> list[RecordDraft | CorrectionDraft]:
        return list(
            itertools.islice(SyntheticData(TOPOLOGY, 5000, seed).records_for_node("hz-2"), 400)
        )

    assert head(7) == head(7)
    assert [d.body for d in head(7)] != [d.body for d in head(8)]


def test_records_are_streamed_not_listed():
    stream = SyntheticData(TOPOLOGY, 16_820_000, 2020).records_for_node("sh-1")
    assert inspect.isgenerator(stream)
    first = list(itertools.islice(stream, 50))  # a full-scale region yields at once
    assert first[0].record_type == "registration"  # type: ignore[union-attr]


def test_counts_per_section_over_a_sample_are_sane(sample):
    by_section = Counter(item_for(d.record_type).section for d in sample)
    assert set(by_section) == {s.key for s in SECTIONS}
    enterprises = sum(1 for d in sample if d.record_type == "registration")
    per = {k: v / enterprises for k, v in by_section.items()}
    # basics for everyone; payments and tax records common; court records rare
    assert 1.0 < per["registration"] < 2.0
    assert 0.5 < per["operations"] < 1.5
    assert 0.5 < per["tax"] < 1.2
    assert 0.1 < per["finances"] < 0.6
    assert per["judicial"] < per["public_credit"] < per["finances"] < per["operations"]
    assert 0.01 < per["judicial"] < 0.15
    total = len(sample) / enterprises
    assert 2.5 < total < 6, f"{total:.2f} records per enterprise"


def test_size_and_industry_shape_what_an_enterprise_has():
    data = SyntheticData(TOPOLOGY, 40_000, 2020)
    sizes, industries = Counter(), Counter()
    per_size: Counter[str] = Counter()
    customs: Counter[str] = Counter()
    profile = {}
    for i in range(data.counts["sz"]):
        profile[data.enterprise("sz", i).uscc] = data.profile("sz", i)
    for d in data.records_for_node("sz-1"):
        if d.uscc not in profile or isinstance(d, CorrectionDraft):
            continue
        industry, size = profile[d.uscc]
        per_size[size] += 1
        if d.record_type == "registration":
            sizes[size] += 1
            industries[industry] += 1
            assert d.body["industry"] == industry and d.body["size"] == size
        if d.record_type == "customs_trade":
            customs[industry] += 1
    # most enterprises are micro; large ones are rare and hold more records each
    assert sizes["micro"] > 0.6 * sum(sizes.values()) > sizes["large"] > 0
    assert per_size["large"] / sizes["large"] > 2 * per_size["micro"] / sizes["micro"]
    # Suzhou is a manufacturing city; manufacturers trade through customs, caterers hardly
    assert industries.most_common(1)[0][0] == "manufacturing"
    rate = {k: customs[k] / industries[k] for k in ("manufacturing", "catering")}
    assert rate["manufacturing"] > 5 * rate["catering"]
    sh = Counter(data.profile("sh", i)[0] for i in range(3000))
    assert sh["manufacturing"] / 3000 < industries["manufacturing"] / sum(industries.values())


def test_items_command_lists_the_catalogue_and_counts_a_region():
    from click.testing import CliRunner

    from scenarios.cli import cli

    out = CliRunner().invoke(cli, ["items"])
    assert out.exit_code == 0, out.output
    assert sum(1 for line in out.output.splitlines() if line.startswith("  ")) == 29
    assert "28 secured_financing" in out.output and "PBoC credit reference centre" in out.output
    out = CliRunner().invoke(cli, ["items", "--enterprises", "2000", "--preset", "launch-2020"])
    assert out.exit_code == 0, out.output
    assert "for 2,000 enterprises on launch-2020" in out.output
    assert "Registration 登记注册信息 (5 items) — " in out.output
    bad = CliRunner().invoke(cli, ["items", "--enterprises", "3"])
    assert bad.exit_code != 0 and "at least one enterprise per city" in bad.output


def test_holders_are_exactly_the_nodes_with_records():
    data = SyntheticData(TOPOLOGY, 6000, 3)
    held: dict[str, set[str]] = {}
    for node_id in TOPOLOGY.node_ids:
        for d in data.records_for_node(node_id):
            held.setdefault(d.uscc, set()).add(node_id)
    for code in ("hf", "sz"):
        for i in range(data.counts[code]):
            e = data.enterprise(code, i)
            assert set(data.holders(code, i)) == held[e.uscc], (code, i)
