"""``scenario run`` names the node processes it leaves running and the command that stops them."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios import localnet
from scenarios.cli import still_running


def test_names_the_processes_and_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localnet, "consortium_exists", lambda d: True)
    monkeypatch.setattr(localnet, "running_nodes", lambda d: {"sh-1": 11, "hz-1": 12})
    assert still_running(Path("/x/net")) == (
        "2 node processes of the network in /x/net are still running (the next run reuses them); "
        "stop them with: creditchain down --dir /x/net"
    )
    monkeypatch.setattr(localnet, "running_nodes", lambda d: {"sh-1": 11})
    assert "1 node process of the network in /x/net is still running" in (
        still_running(Path("/x/net")) or ""
    )


def test_says_nothing_when_nothing_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert still_running(tmp_path / "none") is None  # no consortium there
    monkeypatch.setattr(localnet, "consortium_exists", lambda d: True)
    monkeypatch.setattr(localnet, "running_nodes", lambda d: {})
    assert still_running(tmp_path) is None
