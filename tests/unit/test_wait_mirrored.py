"""``wait_mirrored`` bounds the time without progress, not the total time.

The nodes' ``/v1/info`` answers and the clock are simulated: a catch-up that
takes far longer than the timeout but keeps moving must be waited for; one
that stalls must fail after the timeout, naming the slowest links.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scenarios.localnet import processes as net


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _infos(have: int, size: int) -> dict[str, dict[str, Any] | None]:
    """Two nodes, each holding ``have`` of the other's ``size`` entries."""
    return {
        "a": {"size": size, "peers": [{"node_id": "b", "seen_size": size, "mirrored": have}]},
        "b": {"size": size, "peers": [{"node_id": "a", "seen_size": size, "mirrored": have}]},
    }


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, have_at: Any, timeout_s: float) -> float:
    clock = FakeClock()
    start = clock.now
    monkeypatch.setattr(net, "time", clock)
    monkeypatch.setattr(
        net,
        "node_infos",
        lambda cons, ids, timeout_s=3.0: _infos(have_at(clock.now - start), 1_000_000),
    )
    cons = SimpleNamespace(node_ids=["a", "b"], dir=tmp_path)
    return net.wait_mirrored(cons, timeout_s=timeout_s)  # type: ignore[arg-type]


def test_a_slow_catch_up_that_keeps_moving_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 100,000 entries every 120 s: done after 1,200 s, ten times the 120 s timeout.
    waited = _run(
        monkeypatch, tmp_path, lambda t: min(1_000_000, int(t // 120) * 100_000), timeout_s=180
    )
    assert 1_200 <= waited < 1_210


def test_a_stalled_catch_up_fails_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Moves for 300 s, then stops at 250,000 of 1,000,000.
    def have(t: float) -> int:
        return min(250_000, int(t // 100) * 100_000)

    with pytest.raises(
        net.MirrorStalledError,
        match=r"no progress for 180 s \(2 links behind: a has 250000 of b's 1000000",
    ):
        _run(monkeypatch, tmp_path, have, timeout_s=180)


def test_a_network_already_mirrored_returns_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _run(monkeypatch, tmp_path, lambda t: 1_000_000, timeout_s=180) == 0
