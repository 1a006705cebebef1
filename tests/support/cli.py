"""Run ``creditchain`` in process and get its exit code, stdout and stderr."""

from __future__ import annotations

from click.testing import CliRunner

from scenarios.cli import cli


def invoke(args: list[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``creditchain ARGS``; an unexpected exception is raised."""
    result = CliRunner().invoke(cli, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
