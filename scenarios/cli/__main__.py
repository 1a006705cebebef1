"""``python -m scenarios.cli``: the ``creditchain`` command."""

from scenarios.cli import main

main()
