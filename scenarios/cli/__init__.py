"""The ``creditchain`` command line.

Every command prints one plain sentence naming what is wrong on bad input and
exits non-zero; tracebacks are never shown for expected errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scenarios.cli.base import CommandError, LazyCommand, LazyGroup

__all__ = ["cli", "main"]

# Commands whose modules import the node, the network launcher or the harnesses: loaded
# only when used. Each summary is the first sentence of the command's own help.
_NETWORK = "scenarios.cli.consortium"
LAZY_COMMANDS = {
    "clock": LazyCommand(
        "scenarios.cli.objections:clock_group",
        "Show or advance the network's clock, for simulating deadlines.",
    ),
    "consortium": LazyCommand(
        f"{_NETWORK}:consortium_group",
        "Create and inspect the consortium: keys, manifest, institutions, node settings.",
    ),
    "down": LazyCommand(
        f"{_NETWORK}:down_cmd",
        "Stop the node processes (SIGTERM, then SIGKILL after a timeout); ledgers are kept.",
    ),
    "enterprises": LazyCommand(
        f"{_NETWORK}:enterprises_cmd",
        "List sample enterprises of the seeded synthetic data, with the records each holder "
        "keeps on them.",
    ),
    "explorer": LazyCommand(
        "scenarios.cli.explorer:explorer_cmd",
        "Serve a live map of the network in the browser: nodes, query flows, reports, alarms.",
    ),
    "institutions": LazyCommand(
        f"{_NETWORK}:institutions_cmd",
        "List the simulated query institutions, their home nodes and purposes.",
    ),
    "objection": LazyCommand(
        "scenarios.cli.objections:objection_group",
        "File an enterprise's objection to a record, reply to it as the holder, and follow it.",
    ),
    "items": LazyCommand(
        "scenarios.cli.items:items_cmd",
        "List the report's 29 items with their section, record type and sources.",
    ),
    "query": LazyCommand(
        f"{_NETWORK}:query_cmd",
        "Get a verified cross-node credit report as an institution, and save its bundle.",
    ),
    "reliability": LazyCommand(
        "scenarios.cli.reliability:reliability_group",
        "Crash safety and bounded soak: faults injected into a local network of its own, "
        "nothing lost.",
    ),
    "report": LazyCommand(f"{_NETWORK}:report_group", "Work with saved report bundles."),
    "status": LazyCommand(
        f"{_NETWORK}:status_cmd",
        "Show every node from its live /v1/info: height, entries, peers mirrored, alarms, "
        "down nodes.",
    ),
    "up": LazyCommand(
        f"{_NETWORK}:up_cmd",
        "Start the network: create the consortium if needed, seed empty ledgers, start one "
        "process per node.",
    ),
}


def _phase_options(f: click.decorators.FC) -> click.decorators.FC:
    """``--rounds`` and ``--idle-duration``: the bench's alternated phases and its idle phase."""
    f = click.option(
        "--idle-duration",
        type=click.FloatRange(min=0.5),
        default=3.0,
        show_default=True,
        help="Seconds of the idle phase that measures background CPU (taken out of CPU per report).",
    )(f)
    return click.option(
        "--rounds",
        type=click.IntRange(min=1, max=100),
        default=3,
        show_default=True,
        help="Alternated pairs of closed-loop phases (chain, baseline, chain, ...); ratios are their "
        "median.",
    )(f)


@click.group(cls=LazyGroup, lazy_commands=LAZY_COMMANDS)
@click.version_option(package_name="yrd-credit-chain")
def cli() -> None:
    """Simulator of the Yangtze River Delta credit chain."""


@cli.group()
def ledger() -> None:
    """Inspect and check one node's ledger file."""


@ledger.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "verifier_key",
    help="The node's note verifier key (name+id+key); default: the key stored in the file.",
)
def ledger_verify(path: Path, verifier_key: str | None) -> None:
    """Recompute everything in the ledger at PATH and name the first bad entry or block of each kind."""
    from ledger import LedgerError, verify_ledger

    if not path.exists():
        raise CommandError(f"{path} does not exist")
    try:
        report = verify_ledger(path, verifier_key=verifier_key)
    except LedgerError as exc:
        raise CommandError(str(exc)) from exc
    click.echo(
        f"{path}: origin {report.origin}, {report.entries} entries, {report.blocks} blocks, "
        f"{report.bodies} bodies, {report.tiles} tiles checked"
    )
    if report.ok:
        if verifier_key is None:
            click.echo(
                "ok (signatures checked against the key stored in the file; pass --key to check authorship)"
            )
        else:
            click.echo("ok")
        return
    for fault in report.faults:
        click.echo(f"FAULT {fault}")
    sys.exit(1)


@ledger.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def ledger_check(path: Path) -> None:
    """Run the check a node makes before it serves the ledger at PATH (quick, not a full verify).

    SQLite's quick_check, then the last block: its signature under the stored key, its
    hash link, its root against the stored tree, and the last leaves against their
    entries. Exits 1 naming what is damaged; `creditchain ledger verify` recomputes all.
    """
    import time

    from ledger import Ledger, LedgerError

    if not path.exists():
        raise CommandError(f"{path} does not exist")
    started = time.perf_counter()
    try:
        opened = Ledger.open(path, readonly=True, check=True)
    except LedgerError as exc:
        click.echo(str(exc))
        sys.exit(1)
    try:
        click.echo(
            f"{path}: origin {opened.origin}, {opened.size} entries, block {opened.height}: "
            f"ok in {time.perf_counter() - started:.1f} s (quick check and last block)"
        )
    finally:
        opened.close()


@cli.group(invoke_without_command=True)
@click.option(
    "--preset",
    default="oct-2021",
    show_default=True,
    metavar="launch-2020|oct-2021|yrd-41|FILE",
    help="Topology whose nodes the cells take (first N in an order that spreads cities).",
)
@click.option(
    "--nodes",
    "nodes_text",
    default=None,
    metavar="N,N,...",
    help=(
        "Node counts.  [default: 1,2,4,8,11,14, and 28,41 at up to 10000 enterprises, up to the "
        "preset's (yrd-41 has 41); with one --enterprises value: all nodes]"
    ),
)
@click.option(
    "--enterprises",
    "enterprises_text",
    default=None,
    metavar="E,E,...",
    help="Enterprise volumes (k and M suffixes allowed).  [default: 10000,100000,1000000]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results directory.  [default: bench-results/matrix-<UTC time>]",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Seconds of the open-loop phase of each cell (each load phase, chain and baseline).",
)
@click.option(
    "--capacity-duration",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds of each closed-loop capacity phase.  [default: half of --duration, at least 2]",
)
@click.option(
    "--load",
    type=click.FloatRange(min=0.05, max=1.0),
    default=0.5,
    show_default=True,
    help="Open-loop arrival rate as a fraction of the measured capacity.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=512),
    default=16,
    show_default=True,
    help="Closed-loop workers for the capacity phase.",
)
@click.option(
    "--targets",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Enterprise/institution pairs per cell (one authorization each).",
)
@_phase_options
@click.option(
    "--resume", is_flag=True, help="Continue the matrix in --out: skip the cells that have results."
)
@click.option(
    "--keep-networks",
    is_flag=True,
    help="Keep each cell's network directory (keys, ledgers, logs).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    preset: str,
    nodes_text: str | None,
    enterprises_text: str | None,
    out: Path | None,
    duration: float,
    capacity_duration: float | None,
    load: float,
    concurrency: int,
    targets: int,
    rounds: int,
    idle_duration: float,
    resume: bool,
    keep_networks: bool,
) -> None:
    """Benchmarks. Without a subcommand: the matrix of node counts x enterprise volumes.

    Each cell starts a fresh network, measures ingest, mirroring, report capacity, open-loop
    throughput and p50/p95/p99 latency, proof bytes, storage, CPU and memory per node, each beside
    its baseline from the same run (plain SQLite, plain FastAPI two-hop) as a ratio, and stops it.
    Writes results.csv, results.json, report.md, report.html and charts/ into --out; Ctrl-C stops
    cleanly (exit 130) and --resume continues.
    """
    if ctx.invoked_subcommand is not None:
        return
    import shlex
    from datetime import UTC, datetime

    from scenarios.bench.matrix import (
        BenchError,
        BenchInterrupted,
        MatrixConfig,
        parse_count_list,
        run_matrix,
    )

    try:
        nodes = parse_count_list(nodes_text, "--nodes") if nodes_text is not None else None
        enterprises = (
            parse_count_list(enterprises_text, "--enterprises")
            if enterprises_text is not None
            else None
        )
    except BenchError as exc:
        raise CommandError(str(exc)) from exc
    if out is None:
        if resume:
            raise CommandError("--resume needs the --out directory of the matrix to continue")
        out = Path("bench-results") / f"matrix-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    config = MatrixConfig(
        preset=preset,
        nodes=nodes,
        enterprises=enterprises,
        duration_s=duration,
        capacity_s=capacity_duration,
        load=load,
        concurrency=concurrency,
        targets=targets,
        rounds=rounds,
        idle_s=idle_duration,
        keep_networks=keep_networks,
        command=shlex.join(["creditchain", *sys.argv[1:]]),
    )
    try:
        outcome = run_matrix(
            out, config, resume=resume, progress=True, echo=lambda m: click.echo(m, err=True)
        )
    except BenchError as exc:
        raise CommandError(str(exc)) from exc
    except BenchInterrupted as exc:
        done = exc.outcome
        click.echo(
            f"interrupted: {len(done.rows)} of {len(done.planned)} cells have results; networks stopped; "
            f"partial results in {done.out} (continue with --resume --out {done.out})",
            err=True,
        )
        sys.exit(130)
    click.echo(
        f"{len(outcome.ran)} cells run, {len(outcome.skipped)} skipped (done earlier), "
        f"{len(outcome.failed)} failed; {len(outcome.rows)} of {len(outcome.planned)} cells have results"
    )
    for f in outcome.files:
        if f.suffix != ".png":
            click.echo(f"wrote {f}")
    click.echo(f"wrote {out / 'charts'}/ ({sum(f.suffix == '.png' for f in outcome.files)} charts)")
    for cell, err in outcome.failed.items():
        click.echo(f"FAIL {cell}: {err}")
    if outcome.failed:
        sys.exit(1)


@bench.command("ledger")
@click.option(
    "-n",
    "n",
    type=click.IntRange(min=2),
    default=1_000_000,
    show_default=True,
    help="Records to append.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Records per append batch (one block).",
)
@click.option(
    "--proofs",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Proofs of each kind to generate and verify.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
    help="Directory for bench-ledger.json.",
)
@click.option(
    "--algorithm", type=click.Choice(["sha256", "sm3"]), default="sha256", show_default=True
)
@click.option("--skip-pymerkle", is_flag=True, help="Do not compare against pymerkle 7.")
def bench_ledger(
    n: int, batch: int, proofs: int, out: Path, algorithm: str, skip_pymerkle: bool
) -> None:
    """Append, proof and verification rates of one ledger against plain SQLite and pymerkle."""
    from ledger import LedgerError
    from scenarios.bench.ledger import BenchError, cli_run

    try:
        cli_run(n, batch, proofs, out, algorithm, skip_pymerkle, click.echo)
    except (BenchError, LedgerError) as exc:
        raise CommandError(str(exc)) from exc


@bench.command("httpsig")
@click.option(
    "--ops", type=click.IntRange(min=1), default=300, show_default=True, help="Calls per round."
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=15, show_default=True, help="Rounds (medians)."
)
@click.option(
    "--response-bytes",
    type=click.IntRange(min=0),
    default=2048,
    show_default=True,
    help="Response body size (its Content-Digest is part of the cost).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
    help="Directory for bench-httpsig.json.",
)
def bench_httpsig(ops: int, rounds: int, response_bytes: int, out: Path) -> None:
    """RFC 9421 sign and verify, library and fast path, beside raw Ed25519 in the same process."""
    from scenarios.bench.httpsig import cli_run
    from scenarios.errors import BenchError

    try:
        cli_run(ops, rounds, response_bytes, out, click.echo)
    except BenchError as exc:
        raise CommandError(str(exc)) from exc


# The local network (consortium init, up, status, down, query, enterprises, institutions,
# report verify: scenarios/cli/consortium.py) and the reliability harnesses
# (scenarios/cli/reliability.py) are the lazy commands above.


# --- containers: compose file and node configuration (scenarios/compose.py) -------------------
@cli.command("compose")
@click.option(
    "--preset",
    "preset",
    required=True,
    metavar="launch-2020|oct-2021|yrd-41|FILE",
    help="A preset topology or a topology YAML file.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Compose file to write.  [default: docker/compose.<preset>.yaml]",
)
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where node keys, manifest and settings go (git-ignored).  [default: docker/config/<preset>]",
)
@click.option(
    "--image", default="yrd-credit-chain/node:latest", show_default=True, help="Node image."
)
@click.option(
    "--host-port-base",
    type=click.IntRange(1023, 65000),
    default=8200,
    show_default=True,
    help="Node i is published at 127.0.0.1:<base+i>.",
)
@click.option("--project", default=None, help="Compose project name.  [default: yrd-<preset>]")
@click.option(
    "--new-keys", is_flag=True, help="Replace existing node keys (then `down -v` the old volumes)."
)
@click.option(
    "--enterprises",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Synthetic enterprises of the whole network; each container seeds its share on first start.",
)
@click.option(
    "--seed", type=int, default=2020, show_default=True, help="Seed of the synthetic data."
)
def compose_cmd(
    preset: str,
    out: Path | None,
    config_dir: Path | None,
    image: str,
    host_port_base: int,
    project: str | None,
    new_keys: bool,
    enterprises: int,
    seed: int,
) -> None:
    """Write a docker compose file and each node's keys, manifest, settings and seed plan for a topology.

    The configuration directory is also a consortium directory for the host CLI:
    `creditchain query --dir docker/config/<preset> ...` works against the containers.
    """
    from node.errors import NodeError
    from scenarios.containers.compose import ComposeError, generate
    from scenarios.errors import TopologyError

    try:
        result = generate(
            preset,
            out=out,
            config_dir=config_dir,
            image=image,
            host_port_base=host_port_base,
            project=project,
            new_keys=new_keys,
            enterprises=enterprises,
            seed=seed,
        )
    except (ComposeError, TopologyError, NodeError) as exc:
        raise CommandError(str(exc)) from exc
    n = len(result.node_ids)
    click.echo(f"wrote {result.compose_file} ({n} services)")
    click.echo(
        f"wrote {result.config_dir}/ (keys: {result.keys_created} new, {result.keys_reused} reused; "
        "private: never commit it)"
    )
    first, last = next(iter(result.host_urls.values())), list(result.host_urls.values())[-1]
    click.echo(
        f"start: docker compose -p {result.project} -f {result.compose_file} up -d   "
        f"(or docker-compose); nodes at {first} .. {last}"
    )
    click.echo(f"then:  creditchain status --dir {result.config_dir}")


def _ratio_of(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@bench.command("query")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".creditchain"),
    show_default=True,
    help="Consortium directory of the running network.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=20.0,
    show_default=True,
    help="Seconds per phase.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=512),
    default=16,
    show_default=True,
    help="Closed-loop workers for the capacity phase.",
)
@click.option(
    "--load",
    type=click.FloatRange(min=0.05, max=1.0),
    default=0.5,
    show_default=True,
    help="Open-loop rate as a fraction of the measured capacity.",
)
@click.option(
    "--targets",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Enterprise/institution pairs (one authorization each).",
)
@_phase_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-results"),
    show_default=True,
)
def bench_query(
    directory: Path,
    duration: float,
    concurrency: int,
    load: float,
    targets: int,
    rounds: int,
    idle_duration: float,
    out: Path,
) -> None:
    """Verified cross-city reports per second and p50/p99 latency, beside a plain FastAPI two-hop baseline."""
    import json as _json

    from scenarios.bench.query import run_query_bench
    from scenarios.localnet import NetworkError

    try:
        result = run_query_bench(
            directory,
            duration_s=duration,
            rounds=rounds,
            idle_s=idle_duration,
            concurrency=concurrency,
            load=load,
            targets=targets,
            progress=lambda m: click.echo(f"… {m}", err=True),
        )
    except NetworkError as exc:
        raise CommandError(str(exc)) from exc
    click.echo(
        f"{'phase':<20}{'ok':>7}{'err':>6}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    )
    for ph in result["phases"]:
        if "ok" not in ph:  # the idle phase
            continue
        name = ph["phase"] + (f" {ph['round'] + 1}" if ph.get("round") is not None else "")
        click.echo(
            f"{name:<20}{ph['ok']:>7}{ph['errors']:>6}{ph['per_second']:>9.1f}{ph['p50_ms']:>9.1f}"
            f"{ph['p95_ms']:>9.1f}{ph['p99_ms']:>9.1f}"
        )

    def x(r: float | None) -> str:
        return "-" if r is None else f"x{r:.2f}"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    cr, cpu = result["capacity_ratio"], result["cpu_ratio"]
    click.echo(
        f"node CPU per report (idle background out, load generator excluded): "
        f"{ms(result['cpu_ms_per_report'])} chain vs {ms(result['cpu_ms_per_report_baseline'])} "
        f"plain with the same fan-out ({result['mean_fanout_per_report']:.2f} holders): "
        f"{x(_ratio_of(result['cpu_ms_per_report'], result['cpu_ms_per_report_baseline']))}; "
        f"per round median {x(cpu['median'])} [{x(cpu['min'])}-{x(cpu['max'])}]"
    )
    click.echo(
        f"capacity, chain / plain, median of {cr['n']} alternated rounds: {x(cr['median'])} "
        f"[{x(cr['min'])}-{x(cr['max'])}]  (p50 {x(result['p50_ratio'])}, "
        f"p95 {x(result['p95_ratio'])}, p99 {x(result['p99_ratio'])} at {result['open_loop_rate']:.1f}/s)"
    )
    click.echo(
        f"idle background: {result['idle_cpu_s_per_s']:.3f} CPU-s/s for the network; gross CPU per "
        f"report {ms(result['cpu_ms_per_report_gross'])}; load generator "
        f"{ms(result['client_cpu_ms_per_request'])} per chain request, "
        f"{ms(result['client_cpu_ms_per_request_baseline'])} per plain request"
    )
    click.echo(
        f"{result['verified_offline']} bundles verified offline; "
        f"{result['mean_cities_per_report']:.2f} cities "
        f"and {result['mean_proof_bytes_per_report']:.0f} proof bytes per report; "
        f"{result['partial_reports']} partial"
    )
    chain_stages = result["stages"]["chain"]
    if chain_stages:
        click.echo("per-stage wall time per report, all nodes (node_stage_seconds):")
        for key, st in chain_stages.items():
            if st["ms_per_report"] is not None and st["area"] != "background":
                click.echo(
                    f"  {key:<32}{st['ms_per_report']:>9.2f} ms  ({st['calls_per_report']:.2f} calls)"
                )
        for key, st in result["stages"]["idle"].items():
            click.echo(f"  {key:<32}{st['s_per_s']:>9.4f} s/s while idle")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-query.json").write_text(_json.dumps(result, indent=2) + "\n", "utf-8")
    click.echo(f"wrote {out / 'bench-query.json'}")


# --- scenarios: run and validate scenario files (scenarios/spec.py, runner.py, report.py) ----------
@cli.group("scenario")
def scenario_group() -> None:
    """Scenario files: a timeline of steps against a network, every expectation checked, a report."""


def _scenario_problems(exc: Exception) -> None:
    """Print every problem of an invalid scenario file on stderr (``error: file:line: field: message``)."""
    for problem in getattr(exc, "problems", [exc]):
        click.echo(f"error: {problem}", err=True)


@scenario_group.command("run")
@click.argument("file", metavar="FILE")
@click.option(
    "--target",
    type=click.Choice(["local", "docker"]),
    default="local",
    show_default=True,
    help="Where the network runs: local node processes (docker is not supported yet).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report directory.  [default: scenario-results/<name>-<time>]",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="CREDITCHAIN_DIR",
    help="Consortium directory: a running network with the same topology is reused, else one is started. "
    "[default: .creditchain if it holds this topology, else .creditchain-<topology>]",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Re-create the consortium in --dir first (deletes its keys and ledgers).",
)
@click.option("--down", "down_after", is_flag=True, help="Stop the network when the scenario ends.")
def scenario_run(
    file: str, target: str, out: Path | None, directory: Path | None, fresh: bool, down_after: bool
) -> None:
    """Run the scenario FILE (a path, or the name of a shipped scenario) and write its report.

    Exits 1 when any expectation fails (one line per failed expectation), 2 when FILE is invalid.
    """
    from scenarios.scenario.runner import RunnerError, run_scenario
    from scenarios.scenario.spec import ScenarioError, load_scenario

    try:
        spec = load_scenario(file)
    except ScenarioError as exc:
        _scenario_problems(exc)
        sys.exit(2)
    click.echo(
        f"scenario {spec.name}: {len(spec.steps)} steps on {spec.topology.name} "
        f"({len(spec.topology.node_ids)} nodes)"
    )
    try:
        result = run_scenario(
            spec,
            directory=directory,
            out=out,
            target=target,
            echo=click.echo,
            progress=sys.stderr.isatty(),
            down_after=down_after,
            fresh=fresh,
        )
    except RunnerError as exc:
        raise CommandError(str(exc)) from exc
    checks = result.checks
    passed = sum(c.ok for c in checks)
    click.echo(
        f"scenario {spec.name}: {'PASS' if result.ok else 'FAIL'}, {passed}/{len(checks)} expectations met "
        f"in {result.seconds:.1f} s; report in {result.out_dir}"
    )
    for note in result.cleanup:
        click.echo(f"note: {note}")
    if target == "local" and not down_after:
        still = still_running(Path(str(result.network.get("dir", directory or "."))))
        if still:
            click.echo(f"note: {still}")
    if not result.ok:
        for check in result.failures:
            click.echo(f"FAIL {check.sentence()}")
        sys.exit(1)


@scenario_group.command("validate")
@click.argument("files", nargs=-1, metavar="[FILE]...")
def scenario_validate(files: tuple[str, ...]) -> None:
    """Check scenario files without running them (default: every shipped scenario)."""
    from scenarios.scenario.spec import ScenarioError, load_scenario, shipped_scenarios

    names = list(files) or [str(p) for p in shipped_scenarios().values()]
    bad = 0
    for name in names:
        try:
            spec = load_scenario(name)
        except ScenarioError as exc:
            _scenario_problems(exc)
            bad += 1
            continue
        click.echo(
            f"ok {spec.source}: {spec.name}, {len(spec.steps)} steps on {spec.topology.name}"
        )
    if bad:
        sys.exit(2)


def still_running(directory: Path) -> str | None:
    """The sentence saying that the network in ``directory`` is still up, or None when it is not.

    ``scenario run`` reuses a running network with the same topology (seeding is the slow part),
    so it leaves the nodes up unless ``--down`` is given, and says so.
    """
    from scenarios import localnet as net

    if not net.consortium_exists(directory):
        return None
    pids = net.running_nodes(directory)
    if not pids:
        return None
    return (
        f"{len(pids)} node process{'es' if len(pids) != 1 else ''} of the network in {directory} "
        f"{'are' if len(pids) != 1 else 'is'} still running (the next run reuses them); "
        f"stop them with: creditchain down --dir {directory}"
    )


def main() -> None:
    cli(prog_name="creditchain")


if __name__ == "__main__":
    main()
