"""The network's clock: wall time plus a per-network offset a simulation can advance.

Deadlines that run for days (an objection must be answered within 20 days) are
simulated by advancing the network's clock instead of waiting: every node of a
network is given the same offset (``PUT /v1/clock`` by each node's operator; the
scenario runner and ``creditchain clock advance`` set every node), and block
times, objection filing times, deadlines and overdue checks read this clock.

Invariants: the offset is a whole number of seconds in ``[0, MAX_OFFSET_S]``; it
only grows (so the network's time never steps back because of it; the ledger holds
block times monotonic against the wall clock stepping back); it is persisted
(``clock.json`` in the data directory, written atomically) so a restarted node
keeps the network's time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ledger import InvalidRecordError

__all__ = ["MAX_OFFSET_S", "NetworkClock", "format_time", "parse_time"]

MAX_OFFSET_S = 10 * 366 * 86400  # ten years of simulated time


def format_time(seconds: float) -> str:
    """RFC 3339 UTC to the second, as every ledger time is written."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """Seconds since the epoch of an RFC 3339 UTC time written by :func:`format_time`."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


class NetworkClock:
    """Wall time plus this network's offset; ``path`` (or None: in memory) keeps the offset."""

    def __init__(self, path: Path | None = None, wall: Callable[[], float] = time.time) -> None:
        self._path = path
        self._wall = wall
        self._offset = 0
        if path is not None and path.exists():
            try:
                value = json.loads(path.read_text("utf-8"))["offset_s"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InvalidRecordError(f"{path} does not hold a clock offset: {exc}") from exc
            self._offset = _checked(value)

    @property
    def offset_s(self) -> int:
        return self._offset

    def now_s(self) -> float:
        return self._wall() + self._offset

    def now(self) -> str:
        """The network's time now, RFC 3339 UTC to the second (the ledger's block clock)."""
        return format_time(self.now_s())

    def set_offset(self, offset_s: int) -> None:
        """Advance the offset to ``offset_s`` seconds (the same value is accepted again).

        Raises:
            InvalidRecordError: not a whole number in range, or smaller than the current one.
        """
        value = _checked(offset_s)
        if value < self._offset:
            raise InvalidRecordError(
                f"the network clock only moves forward: offset {value} s is smaller than the "
                f"current {self._offset} s"
            )
        if self._path is not None and value != self._offset:
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"offset_s": value}), "utf-8")
            os.replace(tmp, self._path)
        self._offset = value


def _checked(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_OFFSET_S:
        raise InvalidRecordError(
            f"clock offset must be a whole number of seconds from 0 to {MAX_OFFSET_S}, got {value!r}"
        )
    return value
