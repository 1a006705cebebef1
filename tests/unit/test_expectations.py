"""Query expectations decide on what the nodes hold: each can fail.

``in_query_history: false`` looks at the home node's receipts (it used to pass without
looking), and ``reason`` matches the denial reason code whole (``reason: e`` used to pass
for any denial).
"""

from __future__ import annotations

from typing import Any

from scenarios.scenario.expectations import check_query
from scenarios.scenario.results import QueryOutcome
from scenarios.scenario.spec import Step

USCC = "91330100MA2B3C4D5E"


class FakeRun:
    """The part of a scenario run the query checks read: homes and receipts."""

    def __init__(self, receipts: dict[str, list[dict[str, Any]]]) -> None:
        self.homes = {USCC: "hz-1"}
        self._receipts = receipts

    def city_home(self, uscc: str) -> str:
        return "hz-1"

    def receipts(self, node: str, uscc: str) -> list[dict[str, Any]]:
        return self._receipts.get(node, [])


def _step(key: str, want: Any) -> Step:
    return Step(0, "q", "query", {}, {key: want}, None, None, 10, {key: 12})


def _outcome(**kw: Any) -> QueryOutcome:
    base: dict[str, Any] = dict(
        alias="q",
        step="q",
        institution="bank-sh-001",
        home_node="sh-1",
        enterprise="e",
        uscc=USCC,
        purpose="pre_loan",
        authorization_id="a",
        query_id="q-1",
    )
    return QueryOutcome(**(base | kw))


RECEIPT = {"query_id": "q-1", "role": "home", "outcome": "denied"}


def test_absent_from_the_query_history_fails_when_the_home_node_holds_the_receipt() -> None:
    q = _outcome(status="denied", reason="expired")
    held = check_query(
        FakeRun({"hz-1": [RECEIPT]}), _step("in_query_history", False), "in_query_history", False, q
    )
    assert not held.ok
    assert "q-1 is in the query history of hz-1" in held.message and held.line == 12
    other = {"hz-1": [dict(RECEIPT, query_id="q-2")]}
    assert check_query(
        FakeRun(other), _step("in_query_history", False), "in_query_history", False, q
    ).ok


def test_in_the_query_history_needs_the_receipt() -> None:
    q = _outcome(status="denied", reason="expired")
    step = _step("in_query_history", True)
    assert check_query(FakeRun({"hz-1": [RECEIPT]}), step, "in_query_history", True, q).ok
    missing = check_query(FakeRun({}), step, "in_query_history", True, q)
    assert not missing.ok and "no receipt of query q-1 on hz-1" in missing.message


def test_reason_matches_the_code_whole() -> None:
    q = _outcome(status="denied", reason="expired")
    run = FakeRun({})
    assert check_query(run, _step("reason", "expired"), "reason", "expired", q).ok
    for wrong in ("e", "expire", "revoked"):
        got = check_query(run, _step("reason", wrong), "reason", wrong, q)
        assert not got.ok and f"expected denial reason {wrong!r}, got 'expired'" in got.message
