"""What a scenario run produced: each expectation's check, each query's outcome, each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarios.scenario.spec import Scenario


# --- results ---------------------------------------------------------------------------------
@dataclass
class Check:
    step: str
    key: str
    expected: Any
    actual: Any
    ok: bool
    message: str = ""
    line: int | None = None

    def sentence(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        what = self.message or f"expected {self.expected!r}, got {self.actual!r}"
        return f"step {self.step}: {self.key}{where}: {what}"


@dataclass
class QueryOutcome:
    alias: str
    step: str
    institution: str
    home_node: str
    enterprise: str
    uscc: str
    purpose: str
    authorization_id: str
    status: str = "error"  # granted | denied | error
    http_status: int | None = None
    reason: str | None = None
    detail: str | None = None
    query_id: str | None = None
    seconds: float = 0.0
    partial: bool | None = None
    missing: list[dict[str, str]] = field(default_factory=list)
    holders: dict[str, int] = field(default_factory=dict)  # node → records it answered with
    cities: dict[str, str] = field(default_factory=dict)  # city → home | answered | missing
    current: list[str] = field(default_factory=list)  # record ids in the current view
    history: list[str] = field(default_factory=list)  # record ids in the history
    bundle_path: str | None = None
    bundle_verified: bool | None = None
    bundle_error: str | None = None
    # record id → its objection as the report marks it: disputed, status, late
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StepResult:
    index: int
    id: str
    action: str
    line: int | None
    note: str | None
    started_at: str = ""
    seconds: float = 0.0
    ok: bool = True
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    traceback: str | None = None

    @property
    def passed(self) -> bool:
        return self.ok and all(c.ok for c in self.checks)


@dataclass
class RunResult:
    scenario: Scenario
    out_dir: Path
    network: dict[str, Any]
    run_tag: str
    started_at: str
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    queries: list[QueryOutcome] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.steps for c in s.checks]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and all(s.ok for s in self.steps)
