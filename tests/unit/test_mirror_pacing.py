"""Mirroring rounds pace themselves: at most MAX_DUTY of a node's time while it
serves foreground demand, never a rest longer than MAX_REST_S, and no rest
beyond the interval when nothing waits for the node (catch-up runs at full speed)."""

from __future__ import annotations

import pytest

from node.peers.mirror import MAX_DUTY, MAX_REST_S, ROUND_BUDGET_S, pause_after


@pytest.mark.parametrize("demand", [True, False])
def test_short_rounds_start_every_interval(demand: bool) -> None:
    assert pause_after(0.1, 2.0, demand=demand) == pytest.approx(1.9)
    assert pause_after(0.0, 2.0, demand=demand) == pytest.approx(2.0)


@pytest.mark.parametrize("round_s", [0.6, 1.0, 2.0, 5.0, ROUND_BUDGET_S])
def test_under_demand_rounds_within_the_budget_keep_the_duty(round_s: float) -> None:
    pause = pause_after(round_s, 2.0, demand=True)
    assert round_s / (round_s + pause) <= MAX_DUTY + 1e-9
    assert pause >= 2.0 - round_s


def test_the_budget_and_the_rest_cap_agree() -> None:
    # A round that uses its whole catch-up budget is exactly what the capped rest can balance.
    expected = ROUND_BUDGET_S * (1 - MAX_DUTY) / MAX_DUTY
    assert expected == pytest.approx(MAX_REST_S)


@pytest.mark.parametrize("round_s", [60.0, 600.0])
def test_rest_is_capped_so_witnessing_never_stalls(round_s: float) -> None:
    assert pause_after(round_s, 2.0, demand=True) == MAX_REST_S
    assert pause_after(round_s, 120.0, demand=True) == pytest.approx(
        max(0.05, 120.0 - round_s, MAX_REST_S)
    )


@pytest.mark.parametrize("round_s", [3.0, 10.0, 600.0])
def test_without_demand_long_rounds_are_not_followed_by_rest(round_s: float) -> None:
    assert pause_after(round_s, 2.0, demand=False) == 0.05


def test_there_is_always_some_rest() -> None:
    assert pause_after(0.0, 0.0) == 0.05
    assert pause_after(0.0, 0.0, demand=False) == 0.05
    assert 0 < MAX_DUTY < 1
