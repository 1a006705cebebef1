"""``creditchain reliability crash`` and ``creditchain reliability soak``.

The commands parse options, print a one-screen summary and write JSON; the
work is in :mod:`scenarios.reliability`. Each starts its own network in a work
directory (a temporary one unless ``--workdir`` is given), stops it at the
end, and exits 1 on any fault, naming each; an expected failure prints one
plain sentence on stderr (``error: …``) and exits 1.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from scenarios.cli.base import CommandError
from scenarios.reliability import (
    PAGE_CACHE_FACTOR,
    CrashConfig,
    ReliabilityError,
    SoakConfig,
    remove_workdir,
    run_crash,
    run_soak,
    write_results,
)

__all__ = ["reliability_group"]


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration: seconds (``45``), or a number with s, m or h (``45s``, ``10m``, ``1.5h``)."""

    name = "duration"
    _UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
            if m is None:
                self.fail(f"expected a duration such as 45s, 10m or 1h, got {value!r}", param, ctx)
            seconds = float(m.group(1)) * self._UNITS[m.group(2)]
        if seconds <= 0:
            self.fail(f"a duration must be positive, got {value!r}", param, ctx)
        return seconds


def _workdir(workdir: Path | None, prefix: str) -> tuple[Path, bool]:
    """The work directory and whether it is a temporary one of ours."""
    if workdir is not None:
        if (workdir / "network").exists():
            raise CommandError(f"{workdir / 'network'} already exists; give an empty --workdir")
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir, False
    return Path(tempfile.mkdtemp(prefix=prefix)), True


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


_COMMON = [
    click.option(
        "--preset",
        default=None,
        metavar="launch-2020|oct-2021|yrd-41|FILE",
        help="A preset topology or a topology YAML file.",
    ),
    click.option(
        "--nodes",
        type=click.IntRange(min=2),
        default=None,
        help="Spread this many nodes over the preset's cities by share (default: the preset's own).",
    ),
    click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("reliability-results"),
        show_default=True,
        help="Directory for the JSON results.",
    ),
    click.option(
        "--workdir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where the network's keys, ledgers and logs go (kept).  [default: a temporary directory, "
        "removed afterwards unless --keep or a fault]",
    ),
    click.option("--keep", is_flag=True, help="Keep the temporary work directory."),
]


def _common(f: Any) -> Any:
    for option in reversed(_COMMON):
        f = option(f)
    return f


@click.group("reliability")
def reliability_group() -> None:
    """Crash safety and bounded soak: faults injected into a local network of its own, nothing lost."""


@reliability_group.command("crash")
@click.option(
    "--rounds",
    type=click.IntRange(1, 1000),
    default=6,
    show_default=True,
    help="Kill-and-restart rounds (they alternate between ingest and report load).",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the victims, kill moments and load.",
)
@click.option(
    "--enterprises",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Synthetic enterprises seeded into the network.",
)
@click.option(
    "--load-seconds",
    "load_s",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Load per round; the SIGKILL falls in its middle half.",
)
@_common
def crash_cmd(
    rounds: int,
    seed: int,
    enterprises: int,
    load_s: float,
    preset: str | None,
    nodes: int | None,
    out: Path,
    workdir: Path | None,
    keep: bool,
) -> None:
    """SIGKILL random nodes during ingest and reports, restart them, and check nothing acknowledged is lost.

    Exits 1 if any acknowledged entry is missing, a ledger fails `ledger verify`,
    or a peer's mirror of a restarted node is inconsistent.
    """
    cfg = CrashConfig(
        rounds=rounds,
        preset=preset or "launch-2020",
        nodes=nodes,
        enterprises=enterprises,
        seed=seed,
        load_s=load_s,
    )
    where, temporary = _workdir(workdir, "creditchain-crash-")
    try:
        result = run_crash(cfg, where, _progress)
    except ReliabilityError as exc:
        if temporary and not keep:
            remove_workdir(where)
        raise CommandError(str(exc)) from exc
    path = write_results(result, out, "crash")
    a = result["acknowledged"]
    outage = sum(result["unanswered_during_outage"].values())
    click.echo(
        f"crash: {result['rounds']}/{result['rounds_requested']} rounds on {result['preset']} "
        f"({result['nodes']} nodes), seed {result['seed']}, {result['seconds']:.0f} s"
    )
    click.echo(
        f"{'round':>5}  {'load':<8}{'victim':<8}{'killed at':>10}{'acked':>8}{'restart s':>11}"
    )
    for r in result["rounds_detail"]:
        click.echo(
            f"{r['round']:>5}  {r['load']:<8}{r['victim']:<8}{r['killed_after_s']:>9.1f}s"
            f"{r.get('acknowledged', 0):>8}{r.get('restart_seconds', float('nan')):>11.1f}"
        )
    click.echo(
        f"kills: {result['kills']['ingest']} during ingest, {result['kills']['reports']} during reports"
    )
    click.echo(
        f"acknowledged: {a['records']:,} records, {a['authorizations']:,} authorizations, "
        f"{a['home_receipts']:,} home receipts, {a['holder_receipts']:,} holder receipts "
        f"({a['total']:,} entries)"
    )
    click.echo(
        f"checked: {result['acknowledged_checks']:,} acknowledged-entry checks, "
        f"{result['ledger_verifications']} full ledger verifications, mirrors after every restart"
    )
    live = result["partial_reports_naming_a_live_node"]
    click.echo(
        f"outage (expected): {outage} requests unanswered by a killed node, "
        f"{result['partial_reports']} partial reports naming it"
        + (f" ({live} also naming a live node)" if live else "")
    )
    click.echo(f"faults: {len(result['faults'])}")
    for fault in result["faults"]:
        where_ = f"round {fault['round']}" if fault["round"] is not None else "final"
        click.echo(f"FAULT {where_} {fault['check']}: {fault['detail']}")
    click.echo(f"wrote {path}")
    _finish(result["ok"], where, temporary, keep)


@reliability_group.command("soak")
@click.option(
    "--duration",
    type=Duration(),
    default="10m",
    show_default=True,
    help="Open-loop soak duration (45s, 10m, 1h).",
)
@click.option(
    "--load",
    type=click.FloatRange(min=0.05, max=1.0),
    default=0.5,
    show_default=True,
    help="Open-loop rate as a fraction of the measured capacity.",
)
@click.option(
    "--capacity-duration",
    "capacity_s",
    type=Duration(),
    default="20s",
    show_default=True,
    help="Closed-loop capacity measurement before the soak.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Closed-loop workers for the capacity measurement.",
)
@click.option(
    "--enterprises",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Synthetic enterprises seeded into the network.",
)
@click.option(
    "--targets",
    type=click.IntRange(min=1),
    default=SoakConfig.targets,
    show_default=True,
    help="(institution, enterprise) pairs queried, one authorization each.",
)
@click.option(
    "--sample-every",
    "sample_every_s",
    type=Duration(),
    default="5s",
    show_default=True,
    help="RSS sampling interval.",
)
@click.option(
    "--max-slope",
    "max_slope",
    type=click.FloatRange(min=0),
    default=SoakConfig.max_slope_mib_per_min,
    show_default=True,
    help="Flag a node whose fitted RSS slope (MiB/min, after the warm-up) exceeds this.",
)
@click.option(
    "--min-growth",
    "min_growth",
    type=click.FloatRange(min=0),
    default=SoakConfig.min_growth_mib,
    show_default=True,
    help="...and only if the fitted growth over the soak exceeds this many MiB.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0, 0.9),
    default=SoakConfig.warmup,
    show_default=True,
    help="Fraction of the soak left out of the RSS fit.",
)
@click.option("--seed", type=int, default=7, show_default=True)
@_common
def soak_cmd(
    duration: float,
    load: float,
    capacity_s: float,
    concurrency: int,
    enterprises: int,
    targets: int,
    sample_every_s: float,
    max_slope: float,
    min_growth: float,
    warmup: float,
    seed: int,
    preset: str | None,
    nodes: int | None,
    out: Path,
    workdir: Path | None,
    keep: bool,
) -> None:
    """Open-loop reports at a fraction of measured capacity; errors, receipts on both ledgers, RSS slope.

    Exits 1 on any failed request, any receipt missing from a home or holder
    ledger, or a node whose RSS grows faster than --max-slope.
    """
    cfg = SoakConfig(
        preset=preset or "oct-2021",
        nodes=nodes,
        duration_s=duration,
        load=load,
        capacity_s=capacity_s,
        concurrency=concurrency,
        enterprises=enterprises,
        targets=targets,
        seed=seed,
        sample_every_s=sample_every_s,
        warmup=warmup,
        max_slope_mib_per_min=max_slope,
        min_growth_mib=min_growth,
    )
    where, temporary = _workdir(workdir, "creditchain-soak-")
    try:
        result = run_soak(cfg, where, _progress)
    except ReliabilityError as exc:
        if temporary and not keep:
            remove_workdir(where)
        raise CommandError(str(exc)) from exc
    path = write_results(result, out, "soak")
    rc, mem = result["receipts"], result["memory"]
    click.echo(
        f"soak: {result['preset']} ({result['nodes']} nodes), {result['duration_s']:.0f} s at "
        f"{result['load']:.0%} of {result['capacity_per_s']:.1f} reports/s = "
        f"{result['open_loop_rate_per_s']}/s"
    )
    soak = result["phases"][1]
    click.echo(
        f"latency in the soak: p50 {soak['p50_ms']:.0f} ms, p99 {soak['p99_ms']:.0f} ms, max "
        f"{soak['max_ms']:.0f} ms"
    )
    click.echo(
        f"requests sent {rc['requests_sent']:,}, reports ok {rc['reports_ok']:,}, errors {result['errors']}, "
        f"partial {result['partial_reports']}, verified offline {result['verified_offline']}"
    )
    click.echo(
        f"receipts found: home {rc['home_receipts_found']:,}/{rc['reports_ok']:,} "
        f"({rc['home_receipts_on_ledgers']:,} on the ledgers for {rc['requests_sent']:,} requests), "
        f"holder {rc['holder_receipts_found']:,}/{rc['holder_receipts_expected']:,}; lost {rc['lost']}"
    )
    click.echo(
        f"RSS every {mem['sample_every_s']:.0f} s, {mem['samples']} samples; slope fitted after the first "
        f"{mem['warmup_fraction']:.0%}"
    )
    click.echo(
        f"{'node':<8}{'start MiB':>10}{'end MiB':>9}{'max MiB':>9}{'MiB/min':>9}{'fit MiB':>9}"
        f"{'files +MiB':>11}{'unexplained':>12}"
    )
    for node_id, m in mem["nodes"].items():
        slope = "-" if m["slope_mib_per_min"] is None else f"{m['slope_mib_per_min']:.3f}"
        flag = "  UNBOUNDED" if m["unbounded"] else ""
        click.echo(
            f"{node_id:<8}{_mib(m['start_mib']):>10}{_mib(m['end_mib']):>9}{_mib(m['max_mib']):>9}"
            f"{slope:>9}{_mib(m['fitted_growth_mib']):>9}{_mib(m['file_growth_mib']):>11}"
            f"{_mib(m['unexplained_growth_mib']):>12}{flag}"
        )
    top = mem["max_fitted_slope_mib_per_min"]
    click.echo(
        f"max slope {'-' if top is None else f'{top:.3f}'} MiB/min (flagged above "
        f"{mem['max_slope_mib_per_min']} "
        f"MiB/min with more than {mem['min_growth_mib']} MiB of fitted growth, and as much beyond "
        f"{PAGE_CACHE_FACTOR}x the growth of its database files)"
    )
    for problem in result["problems"]:
        click.echo(f"FAULT {problem}")
    for example in (result["error_examples"] + result["partial_examples"])[:5]:
        click.echo(f"  e.g. {example}")
    click.echo(f"{'PASS' if result['ok'] else 'FAIL'}; wrote {path}")
    _finish(result["ok"], where, temporary, keep)


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _finish(ok: bool, where: Path, temporary: bool, keep: bool) -> None:
    if temporary and ok and not keep:
        remove_workdir(where)
    elif temporary:
        click.echo(f"network directory kept: {where}")
    if not ok:
        sys.exit(1)
