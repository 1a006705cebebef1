"""What the network commands share: the ``--dir`` option and the one-sentence failure.

Imported only by command modules that are loaded when used (never by ``--help``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from scenarios import localnet as net
from scenarios.cli.base import CommandError

__all__ = ["dir_option", "run_network"]


def dir_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--dir``: the consortium directory (env ``CREDITCHAIN_DIR``)."""
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=net.DEFAULT_DIR,
        show_default=True,
        envvar="CREDITCHAIN_DIR",
        help="Consortium directory (keys, manifest, ledgers, logs); env CREDITCHAIN_DIR.",
    )(f)


def run_network(fn: Callable[[], object]) -> None:
    """Call ``fn``; turn NetworkError into the one-sentence failure."""
    try:
        fn()
    except net.NetworkError as exc:
        raise CommandError(str(exc)) from exc
