"""``creditchain explorer``: serve the live web page of a running consortium.

The command only parses options and prints; the work is in :mod:`scenarios.explorer`.
``creditchain up --explorer`` calls :func:`run_explorer` once the network is up.
"""

from __future__ import annotations

from pathlib import Path

import click

from scenarios import localnet as net
from scenarios.cli.base import CommandError

__all__ = ["explorer_cmd", "run_explorer"]


def run_explorer(directory: Path, host: str, port: int) -> None:
    """Serve the explorer of the consortium in ``directory`` until Ctrl-C; prints its URL."""
    from scenarios.explorer import serve

    try:
        cons = net.load_consortium(directory)

        def ready(url: str) -> None:
            click.echo(
                f"explorer: {url}  (open it in a browser; Ctrl-C stops the explorer, the nodes keep running)"
            )

        serve(cons, host, port, on_ready=ready)
    except net.NetworkError as exc:
        raise CommandError(str(exc)) from exc
    except KeyboardInterrupt:
        pass
    click.echo("explorer stopped")


@click.command("explorer")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=net.DEFAULT_DIR,
    show_default=True,
    envvar="CREDITCHAIN_DIR",
    help="Consortium directory (keys, manifest, ledgers, logs); env CREDITCHAIN_DIR.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8700,
    show_default=True,
    help="Port to listen on.",
)
def explorer_cmd(directory: Path, host: str, port: int) -> None:
    """Serve a live map of the network in the browser: nodes, query flows, reports, alarms.

    The page reads the nodes' own APIs, signing as each node's operator with the keys
    in the consortium directory; everything it needs is served by this package.
    """
    run_explorer(directory, host, port)
