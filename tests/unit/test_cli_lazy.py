"""The ``creditchain`` group loads its heavy commands only when they are used."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from scenarios.cli import LAZY_COMMANDS, cli
from scenarios.cli.base import LazyCommand, LazyGroup

HEAVY = ("fastapi", "httpx", "numpy", "matplotlib", "node", "scenarios.localnet", "ledger")


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_none_of_the_heavy_modules() -> None:
    code = (
        "import sys; sys.argv = ['creditchain', '--help']\n"
        "from scenarios.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _loaded_after(code) == []


def test_running_a_lazy_command_imports_its_module() -> None:
    code = (
        "import sys; sys.argv = ['creditchain', 'up', '--help']\n"
        "from scenarios.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "scenarios.localnet" in _loaded_after(code)


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_summary_is_the_commands_own(name: str) -> None:
    real = LAZY_COMMANDS[name].load()
    assert real.name == name
    stand_in = click.Command(name, help=LAZY_COMMANDS[name].summary)
    for limit in (20, 45, 60, 80, 200):
        assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit)


def test_listing_matches_the_eagerly_loaded_group() -> None:
    fresh = LazyGroup("creditchain", help=cli.help, params=cli.params, lazy_commands=LAZY_COMMANDS)
    for name, command in cli.commands.items():
        if name not in LAZY_COMMANDS:
            fresh.add_command(command, name)
    lazy = CliRunner().invoke(fresh, ["--help"], terminal_width=100).output
    assert fresh.commands.keys().isdisjoint(LAZY_COMMANDS)  # listing loaded none of them
    eager = click.Group("creditchain", help=cli.help, params=cli.params)
    for name in fresh.list_commands(click.Context(fresh)):
        command = fresh.get_command(click.Context(fresh), name)
        assert command is not None
        eager.add_command(command, name)
    assert lazy == CliRunner().invoke(eager, ["--help"], terminal_width=100).output
    assert "  up " in lazy and "  reliability " in lazy


def test_a_target_that_is_not_a_command_is_refused() -> None:
    group = LazyGroup("g", lazy_commands={"x": LazyCommand("json:dumps", "Not a command.")})
    with pytest.raises(TypeError, match="json:dumps is not a click command"):
        group.get_command(click.Context(group), "x")
    assert group.get_command(click.Context(group), "missing") is None
