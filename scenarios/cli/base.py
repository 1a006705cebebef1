"""What every ``creditchain`` command shares: the one error class and the lazy group.

Importing this module costs no more than importing click: the commands that need the
node, the network launcher or the benchmarks live in their own modules, loaded by
:class:`LazyGroup` only when one of them runs (or its own ``--help`` is asked for).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import IO, Any

import click

__all__ = ["CommandError", "LazyCommand", "LazyGroup"]


class CommandError(click.ClickException):
    """A user-facing failure: one plain sentence on stderr after ``error:``, exit code 1."""

    def show(self, file: IO[Any] | None = None) -> None:  # noqa: ARG002 - click's signature
        click.echo(f"error: {self.message}", err=True)


class LazyCommand:
    """Where a lazily loaded subcommand lives, and the summary its group lists.

    ``target`` is ``"package.module:attribute"``; ``summary`` is the first sentence of the
    command's help, so that ``creditchain --help`` lists it without importing the module
    (``tests/unit/test_cli_lazy.py`` checks every summary against the real command).
    """

    __slots__ = ("summary", "target")

    def __init__(self, target: str, summary: str) -> None:
        self.target = target
        self.summary = summary

    def load(self) -> click.Command:
        """Import the module and return the command object."""
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A click group whose heavy subcommands are imported only when they are used.

    Listing the group's commands (its ``--help``) uses each lazy command's summary;
    running one, or asking for its own ``--help``, imports its module.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return None
        command = lazy.load()
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
            else:  # a stand-in carrying the summary; the module stays unimported
                command = click.Command(name, help=self.lazy_commands[name].summary)
            if not command.hidden:
                rows.append((name, command))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, c.get_short_help_str(limit)) for name, c in rows])
