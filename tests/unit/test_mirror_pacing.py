"""Mirroring rounds pace themselves: never more than MAX_DUTY of a node's time."""

from __future__ import annotations

import pytest

from node.mirror import MAX_DUTY, pause_after


def test_short_rounds_start_every_interval() -> None:
    assert pause_after(0.1, 2.0) == pytest.approx(1.9)
    assert pause_after(0.0, 2.0) == pytest.approx(2.0)


@pytest.mark.parametrize("round_s", [0.6, 1.0, 2.0, 5.0, 30.0])
def test_long_rounds_are_followed_by_rest_in_proportion(round_s: float) -> None:
    pause = pause_after(round_s, 2.0)
    assert round_s / (round_s + pause) <= MAX_DUTY + 1e-9
    assert pause >= 2.0 - round_s


def test_there_is_always_some_rest() -> None:
    assert pause_after(0.0, 0.0) == 0.05
    assert 0 < MAX_DUTY < 1
