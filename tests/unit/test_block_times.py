"""Block times never go backwards, whatever the clock says.

The ledger's clock is injected (``Ledger.create(clock=)``, ``Ledger.open(clock=)``): a
clock stepped back ten minutes, or a file written while the clock ran ahead, must give
blocks that keep the previous block's time until the clock passes it, with one log line
naming both times when the clock falls behind (and one when it catches up).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ledger import AlarmEntry, InvalidRecordError, Ledger, NoteSigner
from ledger.fsck import verify_ledger
from ledger.store import Store

ORIGIN = "yrd.example/hz-1"


class Clock:
    """A settable clock of RFC 3339 strings."""

    def __init__(self, now: str) -> None:
        self.now = now

    def __call__(self) -> str:
        return self.now


def alarm(n: int) -> list[AlarmEntry]:
    return [AlarmEntry("sz-1", "test", f"alarm {n}", (), "2021-10-31T08:00:00Z")]


def held_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ledger" and r.levelno == logging.WARNING]


def test_a_clock_stepped_back_holds_block_times_and_logs_once(
    tmp_path: Path, signer: NoteSigner, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock("2021-11-01T12:00:00Z")
    ledger = Ledger.create(tmp_path / "l.db", origin=ORIGIN, signer=signer, clock=clock)
    caplog.set_level(logging.INFO, logger="ledger")
    try:
        clock.now = "2021-11-01T12:10:00Z"
        assert ledger.append(alarm(1)).header.time == "2021-11-01T12:10:00Z"
        clock.now = "2021-11-01T12:00:00Z"  # stepped back ten minutes
        held = [ledger.append(alarm(n)).header for n in (2, 3)]
        assert [h.time for h in held] == ["2021-11-01T12:10:00Z"] * 2
        warned = held_warnings(caplog)
        assert len(warned) == 1, [r.getMessage() for r in warned]  # once per step, not per block
        message = warned[0].getMessage()
        assert "2021-11-01T12:00:00Z" in message and "2021-11-01T12:10:00Z" in message
        assert "block 1" in message

        clock.now = "2021-11-01T12:11:00Z"  # the clock passes the held time
        assert ledger.append(alarm(4)).header.time == "2021-11-01T12:11:00Z"
        assert any("caught up" in r.getMessage() for r in caplog.records)
        clock.now = "2021-11-01T12:05:00Z"  # a second step back is a second occurrence
        assert ledger.append(alarm(5)).header.time == "2021-11-01T12:11:00Z"
        assert len(held_warnings(caplog)) == 2
        times = [ledger.block(h).header.time for h in range(ledger.height + 1)]
        assert times == sorted(times)
    finally:
        ledger.close()
    assert verify_ledger(tmp_path / "l.db").ok


@pytest.mark.parametrize("opening", ["open", "store"])
def test_a_file_written_ahead_of_the_clock_keeps_its_last_time(
    tmp_path: Path, signer: NoteSigner, opening: str
) -> None:
    """Reopened with a clock behind the last block (the writer's clock ran ahead)."""
    path = tmp_path / "l.db"
    ahead = Clock("2021-11-02T00:00:00Z")
    Ledger.create(path, origin=ORIGIN, signer=signer, clock=ahead).close()
    behind = Clock("2021-11-01T00:00:00Z")
    ledger = (
        Ledger.open(path, signer=signer, clock=behind)
        if opening == "open"
        else Ledger(Store(path), signer=signer, clock=behind)
    )
    try:
        assert ledger.append(alarm(1)).header.time == "2021-11-02T00:00:00Z"
    finally:
        ledger.close()
    assert verify_ledger(path).ok


def test_a_clock_that_is_not_rfc_3339_is_refused(tmp_path: Path, signer: NoteSigner) -> None:
    clock = Clock("2021-11-01T12:00:00Z")
    ledger = Ledger.create(tmp_path / "l.db", origin=ORIGIN, signer=signer, clock=clock)
    try:
        clock.now = "2021-11-01 12:00:00"
        with pytest.raises(InvalidRecordError, match="RFC 3339"):
            ledger.append(alarm(1))
        assert ledger.size == 0  # nothing written
    finally:
        ledger.close()
