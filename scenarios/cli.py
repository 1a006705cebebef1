"""The ``creditchain`` command line.

Every command prints one plain sentence naming what is wrong on bad input and
exits non-zero; tracebacks are never shown for expected errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger.errors import LedgerError

__all__ = ["main"]


class Fail(click.ClickException):
    """A user-facing error: one sentence, exit code 1."""

    def show(self, file: object = None) -> None:  # noqa: ARG002 - click's signature
        click.echo(f"error: {self.message}", err=True)


@click.group()
@click.version_option(package_name="yrd-credit-chain")
def cli() -> None:
    """Simulator of the Yangtze River Delta credit chain."""


@cli.group()
def ledger() -> None:
    """Inspect and check one node's ledger file."""


@ledger.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "verifier_key", help="The node's note verifier key (name+id+key); default: the key stored in the file.")
def ledger_verify(path: Path, verifier_key: str | None) -> None:
    """Recompute everything in the ledger at PATH and name the first bad entry or block of each kind."""
    from ledger.verify import verify_ledger

    if not path.exists():
        raise Fail(f"{path} does not exist")
    try:
        report = verify_ledger(path, verifier_key=verifier_key)
    except LedgerError as exc:
        raise Fail(str(exc)) from exc
    click.echo(
        f"{path}: origin {report.origin}, {report.entries} entries, {report.blocks} blocks, "
        f"{report.bodies} bodies, {report.tiles} tiles checked"
    )
    if report.ok:
        if verifier_key is None:
            click.echo("ok (signatures checked against the key stored in the file; pass --key to check authorship)")
        else:
            click.echo("ok")
        return
    for fault in report.faults:
        click.echo(f"FAULT {fault}")
    sys.exit(1)


@cli.group()
def bench() -> None:
    """Benchmarks; each prints a table and writes JSON results."""


@bench.command("ledger")
@click.option("-n", "n", type=click.IntRange(min=2), default=1_000_000, show_default=True, help="Records to append.")
@click.option("--batch", type=click.IntRange(min=1), default=1000, show_default=True, help="Records per append batch (one block).")
@click.option("--proofs", type=click.IntRange(min=1), default=2000, show_default=True, help="Proofs of each kind to generate and verify.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-results"), show_default=True,
              help="Directory for bench-ledger.json.")
@click.option("--algorithm", type=click.Choice(["sha256", "sm3"]), default="sha256", show_default=True)
@click.option("--skip-pymerkle", is_flag=True, help="Do not compare against pymerkle 7.")
def bench_ledger(n: int, batch: int, proofs: int, out: Path, algorithm: str, skip_pymerkle: bool) -> None:
    """Append, proof and verification rates of one ledger against plain SQLite and pymerkle."""
    from scenarios.bench_ledger import BenchError, cli_run

    try:
        cli_run(n, batch, proofs, out, algorithm, skip_pymerkle, click.echo)
    except (BenchError, LedgerError) as exc:
        raise Fail(str(exc)) from exc


# --- the local network: consortium init, up, status, down, query, enterprises, institutions,
# report verify (defined in scenarios/consortium_cli.py) --------------------------------------
def _add_network_commands() -> None:
    from scenarios.consortium_cli import register

    register(cli)


_add_network_commands()


# --- containers: compose file and node configuration (scenarios/compose.py) -------------------
@cli.command("compose")
@click.option("--preset", "preset", required=True, metavar="launch-2020|oct-2021|FILE",
              help="A preset topology or a topology YAML file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Compose file to write.  [default: docker/compose.<preset>.yaml]")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where node keys, manifest and settings go (git-ignored).  [default: docker/config/<preset>]")
@click.option("--image", default="yrd-credit-chain/node:latest", show_default=True, help="Node image.")
@click.option("--host-port-base", type=click.IntRange(1023, 65000), default=8200, show_default=True,
              help="Node i is published at 127.0.0.1:<base+i>.")
@click.option("--project", default=None, help="Compose project name.  [default: yrd-<preset>]")
@click.option("--new-keys", is_flag=True, help="Replace existing node keys (then `down -v` the old volumes).")
def compose_cmd(preset: str, out: Path | None, config_dir: Path | None, image: str, host_port_base: int,
                project: str | None, new_keys: bool) -> None:
    """Write a docker compose file and each node's keys, manifest and settings for a topology."""
    from node.errors import NodeError
    from scenarios.compose import ComposeError, generate
    from scenarios.topology import TopologyError

    try:
        result = generate(preset, out=out, config_dir=config_dir, image=image, host_port_base=host_port_base,
                          project=project, new_keys=new_keys)
    except (ComposeError, TopologyError, NodeError) as exc:
        raise Fail(str(exc)) from exc
    n = len(result.node_ids)
    click.echo(f"wrote {result.compose_file} ({n} services)")
    click.echo(f"wrote {result.config_dir}/ (keys: {result.keys_created} new, {result.keys_reused} reused; "
               "private: never commit it)")
    first, last = next(iter(result.host_urls.values())), list(result.host_urls.values())[-1]
    click.echo(f"start: docker compose -p {result.project} -f {result.compose_file} up -d   "
               f"(or docker-compose); nodes at {first} .. {last}")


@bench.command("query")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path(".creditchain"),
              show_default=True, help="Consortium directory of the running network.")
@click.option("--duration", type=click.FloatRange(min=1), default=20.0, show_default=True, help="Seconds per phase.")
@click.option("--concurrency", type=click.IntRange(min=1, max=512), default=16, show_default=True,
              help="Closed-loop workers for the capacity phase.")
@click.option("--load", type=click.FloatRange(min=0.05, max=1.0), default=0.5, show_default=True,
              help="Open-loop rate as a fraction of the measured capacity.")
@click.option("--targets", type=click.IntRange(min=1), default=40, show_default=True,
              help="Enterprise/institution pairs (one authorization each).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-results"), show_default=True)
def bench_query(directory: Path, duration: float, concurrency: int, load: float, targets: int, out: Path) -> None:
    """Verified cross-city reports per second and p50/p99 latency, beside a plain FastAPI two-hop baseline."""
    import json as _json

    from scenarios.bench_query import run_query_bench
    from scenarios.network import NetworkError

    try:
        result = run_query_bench(directory, duration_s=duration, concurrency=concurrency, load=load, targets=targets,
                                 progress=lambda m: click.echo(f"… {m}", err=True))
    except NetworkError as exc:
        raise Fail(str(exc)) from exc
    click.echo(f"{'phase':<20}{'ok':>7}{'err':>6}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for ph in result["phases"]:
        click.echo(f"{ph['phase']:<20}{ph['ok']:>7}{ph['errors']:>6}{ph['per_second']:>9.1f}{ph['p50_ms']:>9.1f}"
                   f"{ph['p95_ms']:>9.1f}{ph['p99_ms']:>9.1f}")
    click.echo(f"throughput, chain / plain FastAPI two-hop: {result['throughput_ratio']:.1%}  "
               f"(p50 x{result['p50_ratio']}, p99 x{result['p99_ratio']} at {result['open_loop_rate']}/s)")
    click.echo(f"{result['verified_offline']} bundles verified offline; {result['mean_cities_per_report']} cities and "
               f"{result['mean_proof_bytes_per_report']} proof bytes per report; {result['partial_reports']} partial")
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
@click.option("--target", type=click.Choice(["local", "docker"]), default="local", show_default=True,
              help="Where the network runs: local node processes (docker is not supported yet).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report directory.  [default: scenario-results/<name>-<time>]")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="CREDITCHAIN_DIR",
              help="Consortium directory: a running network with the same topology is reused, else one is started. "
                   "[default: .creditchain if it holds this topology, else .creditchain-<topology>]")
@click.option("--fresh", is_flag=True, help="Re-create the consortium in --dir first (deletes its keys and ledgers).")
@click.option("--down", "down_after", is_flag=True, help="Stop the network when the scenario ends.")
def scenario_run(file: str, target: str, out: Path | None, directory: Path | None, fresh: bool,
                 down_after: bool) -> None:
    """Run the scenario FILE (a path, or the name of a shipped scenario) and write its report.

    Exits 1 when any expectation fails (one line per failed expectation), 2 when FILE is invalid.
    """
    from scenarios.runner import RunnerError, run_scenario
    from scenarios.spec import ScenarioError, load_scenario

    try:
        spec = load_scenario(file)
    except ScenarioError as exc:
        _scenario_problems(exc)
        sys.exit(2)
    click.echo(f"scenario {spec.name}: {len(spec.steps)} steps on {spec.topology.name} "
               f"({len(spec.topology.node_ids)} nodes)")
    try:
        result = run_scenario(spec, directory=directory, out=out, target=target, echo=click.echo,
                              progress=sys.stderr.isatty(), down_after=down_after, fresh=fresh)
    except RunnerError as exc:
        raise Fail(str(exc)) from exc
    checks = result.checks
    passed = sum(c.ok for c in checks)
    click.echo(f"scenario {spec.name}: {'PASS' if result.ok else 'FAIL'}, {passed}/{len(checks)} expectations met "
               f"in {result.seconds:.1f} s; report in {result.out_dir}")
    for note in result.cleanup:
        click.echo(f"note: {note}")
    if not result.ok:
        for check in result.failures:
            click.echo(f"FAIL {check.sentence()}")
        sys.exit(1)


@scenario_group.command("validate")
@click.argument("files", nargs=-1, metavar="[FILE]...")
def scenario_validate(files: tuple[str, ...]) -> None:
    """Check scenario files without running them (default: every shipped scenario)."""
    from scenarios.spec import ScenarioError, load_scenario, shipped_scenarios

    names = list(files) or [str(p) for p in shipped_scenarios().values()]
    bad = 0
    for name in names:
        try:
            spec = load_scenario(name)
        except ScenarioError as exc:
            _scenario_problems(exc)
            bad += 1
            continue
        click.echo(f"ok {spec.source}: {spec.name}, {len(spec.steps)} steps on {spec.topology.name}")
    if bad:
        sys.exit(2)


def main() -> None:
    cli(prog_name="creditchain")


if __name__ == "__main__":
    main()
