"""``creditchain items``: the report's 29 items, and how the synthetic data spreads over them.

The catalogue comes from :mod:`ledger.items` (a reconstruction of the group
standard's items from its published outline). With ``--enterprises`` the
command streams every node's synthetic records (nothing listed in memory) and
counts them per section and per item.
"""

from __future__ import annotations

import time
from collections import Counter

import click

from ledger import ITEMS, SECTIONS, SOURCES, CorrectionDraft
from scenarios.cli.base import CommandError

__all__ = ["items_cmd"]


@click.command("items")
@click.option(
    "--enterprises",
    type=click.IntRange(min=1),
    default=None,
    help="Also count the synthetic records of a region of this many enterprises.",
)
@click.option(
    "--preset",
    default="oct-2021",
    show_default=True,
    metavar="launch-2020|oct-2021|yrd-41|FILE",
    help="Topology of that region.",
)
@click.option("--seed", type=int, default=2020, show_default=True, help="Synthetic data seed.")
def items_cmd(enterprises: int | None, preset: str, seed: int) -> None:
    """List the report's 29 items with their section, record type and sources.

    The items are a reconstruction from the published outline of the December 2021
    group standard (长三角征信链征信一体化服务规范); see ledger/items.py.
    """
    sources = {s.key: s for s in SOURCES}
    counts: Counter[str] = Counter()
    corrections = 0
    seconds = 0.0
    if enterprises is not None:
        from scenarios.model.topology import load_topology
        from scenarios.model.workloads import SyntheticData

        try:
            topology = load_topology(preset)
            data = SyntheticData(topology, enterprises, seed)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        t0 = time.perf_counter()
        for node_id in topology.node_ids:
            for d in data.records_for_node(node_id):
                if isinstance(d, CorrectionDraft):
                    corrections += 1
                else:
                    counts[d.record_type] += 1
        seconds = time.perf_counter() - t0
    for section in SECTIONS:
        in_section = [i for i in ITEMS if i.section == section.key]
        total = sum(counts[i.record_type] for i in in_section)
        tail = f" — {total:,} records" if enterprises is not None else ""
        click.echo(f"{section.title} {section.title_zh} ({len(in_section)} items){tail}")
        for i in in_section:
            names = ", ".join(f"{sources[k].name} ({k})" for k in i.sources)
            n = f"{counts[i.record_type]:>9,}  " if enterprises is not None else ""
            click.echo(f"  {i.number:>2} {i.record_type:<22} {n}{i.title}; from {names}")
    if enterprises is not None:
        records = sum(counts.values()) + corrections
        click.echo(
            f"{records:,} records ({corrections:,} of them corrections) for {enterprises:,} "
            f"enterprises on {preset}, {records / enterprises:.2f} per enterprise; "
            f"generated in {seconds:.1f} s"
        )
