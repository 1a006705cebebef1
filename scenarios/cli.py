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


def main() -> None:
    cli(prog_name="creditchain")


if __name__ == "__main__":
    main()
