"""The error tree of ``scenarios``: one root, every expected failure one plain sentence.

::

    ScenariosError                 anything the simulator's harness expects to fail
    ├── TopologyError              a topology file or preset is invalid (also ValueError)
    ├── NetworkError               the local network cannot do what was asked
    │   └── MirrorStalledError     mirroring made no progress for the whole timeout
    ├── ComposeError               a compose file or container configuration cannot be written
    ├── ScenarioError              a scenario file is invalid, each problem with its line
    │                              (also ValueError)
    ├── RunnerError                a scenario cannot run (network, target, setup)
    │   └── StepFailedError        one step's action failed
    ├── BenchError                 a benchmark cannot run as asked
    └── ReliabilityError           a reliability harness could not run (not a fault it found)

Errors of ``node`` (:class:`node.NodeError`) and ``ledger`` (:class:`ledger.LedgerError`) keep
their own roots; the command line turns all three into one sentence each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BenchError",
    "ComposeError",
    "MirrorStalledError",
    "NetworkError",
    "Problem",
    "ReliabilityError",
    "RunnerError",
    "ScenarioError",
    "ScenariosError",
    "StepFailedError",
    "TopologyError",
]


class ScenariosError(Exception):
    """Root of every expected failure of ``scenarios``; the message is one plain sentence."""


class TopologyError(ScenariosError, ValueError):
    """A topology file or preset is invalid; the message names the field."""


class NetworkError(ScenariosError):
    """An expected failure of the local network; the message is one plain sentence."""


class MirrorStalledError(NetworkError):
    """The network stopped mirroring: no progress for the whole timeout (the nodes still run)."""


class ComposeError(ScenariosError):
    """The compose file or node configuration cannot be written; the message says why."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a scenario file: where (source, line, dotted field path) and what."""

    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(ScenariosError, ValueError):
    """A scenario file is invalid; ``problems`` lists every problem (line, field, message)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        # In file order; problems without a line (the file itself) first.
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        super().__init__("\n".join(str(p) for p in self.problems))


class RunnerError(ScenariosError):
    """The scenario cannot run (network, target, setup); the message is one plain sentence."""


class StepFailedError(RunnerError):
    """A step's action failed; the message says why.

    The step is recorded as failed and the run goes on.
    """


class BenchError(ScenariosError):
    """A benchmark cannot run as asked (bad arguments, missing pymerkle); one plain sentence."""


class ReliabilityError(ScenariosError):
    """The harness could not run (not a fault it found); the message is one plain sentence."""
