"""kill -9 durability: a real writer process (crash_writer.py) appends batches
and acknowledges each one; it is killed with SIGKILL at random moments, and
after every crash the ledger must hold every acknowledged block exactly, sit
on a block boundary, verify, and keep appending.

A second test kills the writer deterministically inside the append
transaction (after entries, bodies and tiles are written, before the block),
with uncommitted pages spilled into the WAL: the ledger must come back at the
previous block.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ledger import Ledger, NoteSigner, RecordDraft
from ledger.fsck import verify_ledger

WRITER = Path(__file__).with_name("crash_writer.py")
ORIGIN = "yrd.example/hz-1"
ROUNDS = 5
LINE_TIMEOUT = 60.0  # generous: CI machines may be loaded

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


@dataclass
class Writer:
    """One crash_writer.py process and the lines it printed."""

    proc: subprocess.Popen[str]
    stderr_path: Path
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, path: Path, signer: NoteSigner, *extra: str) -> Writer:
        stderr_path = path.with_name(f"writer-{time.monotonic_ns()}.err")
        with stderr_path.open("w") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(WRITER),
                    str(path),
                    "--seed-hex",
                    signer.private_key.private_bytes_raw().hex(),
                    "--name",
                    signer.name,
                    "--origin",
                    ORIGIN,
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
            )
        writer = cls(proc, stderr_path)
        threading.Thread(target=writer._pump, daemon=True).start()
        return writer

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str | None:
        """The next line printed, or None at EOF."""
        try:
            line = self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"writer printed nothing for {LINE_TIMEOUT} s; stderr: {self.stderr()}")
        if line is not None:
            self.seen.append(line)
        return line

    def expect(self, word: str) -> list[str]:
        line = self.next_line()
        if line is None or not line.startswith(word + " "):
            pytest.fail(f"expected {word}, writer printed {line!r}; stderr: {self.stderr()}")
        return line.split()[1:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=LINE_TIMEOUT)

    def drain(self) -> None:
        """Read every line the (dead) process managed to print."""
        while self.next_line() is not None:
            pass

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-2000:]


def acks(lines: list[str]) -> list[tuple[int, int, str]]:
    out = []
    for line in lines:
        if line.startswith("ACK "):
            _, height, size, root = line.split()
            out.append((int(height), int(size), root))
    return out


def table_facts(path: Path) -> tuple[int, int, int]:
    """(entries, highest index, bodies) straight from the file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count, top = db.execute("SELECT count(*), coalesce(max(idx), -1) FROM entries").fetchone()
        bodies = db.execute("SELECT count(*) FROM bodies").fetchone()[0]
        return int(count), int(top), int(bodies)
    finally:
        db.close()


def check_recovered(path: Path, signer: NoteSigner, acked: list[tuple[int, int, str]]) -> Ledger:
    """Every acknowledged block is present exactly and the ledger is whole; returns it open."""
    ledger = Ledger.open(path, signer=signer)
    head = ledger.head
    for height, size, root in acked:
        block = ledger.block(height)
        assert (block.size, block.root.hex()) == (size, root), (
            f"acknowledged block {height} changed"
        )
        assert ledger.root_at(size).hex() == root
    if acked:
        last = acked[-1][0]
        # The append in flight may have committed without its ACK being printed.
        assert head.height in (last, last + 1), (head.height, last)
    count, top, bodies = table_facts(path)
    assert count == head.size and top == head.size - 1, "ledger is not at a block boundary"
    assert bodies == head.size  # every entry here is a record with its body
    report = verify_ledger(path, verifier_key=signer.verifier().key_string())
    assert report.ok, [str(f) for f in report.faults]
    assert (report.size, report.blocks) == (head.size, head.height + 1)
    return ledger


def extra_drafts(start: int, n: int) -> list[RecordDraft]:
    return [
        RecordDraft(
            "913301000000000196",
            "tax_rating",
            f"after-{start + i}",
            "hz-tax",
            "2021-11-01T00:00:00Z",
            {"i": i},
        )
        for i in range(n)
    ]


@pytest.mark.slow
def test_acknowledged_appends_survive_sigkill(tmp_path: Path, signer: NoteSigner) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(20211031)
    acked: list[tuple[int, int, str]] = []
    for _ in range(ROUNDS):
        writer = Writer.start(path, signer, "--batch", "500")
        try:
            height, size, root = writer.expect("OPEN")
            if acked:  # the writer starts from the recovered ledger
                assert int(height) >= acked[-1][0]
            stamps = []
            for _ in range(rng.randint(2, 4)):
                writer.expect("ACK")
                stamps.append(time.monotonic())
            # Kill somewhere within the next one or two appends.
            interval = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
            time.sleep(rng.uniform(0, 2 * interval))
        finally:
            writer.kill()
        writer.drain()
        assert writer.proc.returncode == -signal.SIGKILL, writer.stderr()
        round_acks = acks(writer.seen)
        assert round_acks, "no acknowledged append this round"
        if acked:
            assert round_acks[0][0] > acked[-1][0]
        acked += round_acks
        check_recovered(path, signer, acked).close()

    heights = [h for h, _, _ in acked]
    assert heights == sorted(set(heights))
    ledger = check_recovered(path, signer, acked)
    try:
        before = ledger.head
        block = ledger.append(extra_drafts(before.size, 3))
        assert (block.height, block.size) == (before.height + 1, before.size + 3)
        assert block.header.prev == before.header.hash()
    finally:
        ledger.close()
    check_recovered(path, signer, acked + [(block.height, block.size, block.root.hex())]).close()


@pytest.mark.parametrize(("die_after", "batch"), [(0, 3000), (2, 1000)])
def test_kill_inside_the_transaction_leaves_the_previous_block(
    tmp_path: Path, signer: NoteSigner, die_after: int, batch: int
) -> None:
    path = tmp_path / "crash.db"
    # A ledger with some history, closed cleanly (its WAL checkpointed away).
    ledger = Ledger.create(path, origin=ORIGIN, signer=signer)
    ledger.append(extra_drafts(0, 300))
    first = ledger.head
    ledger.close()
    assert not Path(f"{path}-wal").exists()

    writer = Writer.start(
        path, signer, "--batch", str(batch), "--spill", "--die-after", str(die_after)
    )
    try:
        writer.expect("OPEN")
        acked = [
            (int(h), int(s), r) for h, s, r in (writer.expect("ACK") for _ in range(die_after))
        ]
        (wal,) = writer.expect("DYING")
        writer.proc.wait(timeout=LINE_TIMEOUT)
    finally:
        writer.kill()
    writer.drain()
    assert writer.proc.returncode == -signal.SIGKILL, writer.stderr()
    assert not any(line.startswith("ACK") for line in writer.seen[1 + die_after :])
    if die_after == 0:
        # Only the doomed transaction wrote to the WAL: its pages did reach the file.
        assert int(wal) > 0

    previous = (first.height, first.size, first.root.hex()) if not acked else acked[-1]
    recovered = check_recovered(
        path, signer, [(first.height, first.size, first.root.hex()), *acked]
    )
    try:
        assert (recovered.height, recovered.size, recovered.head.root.hex()) == previous
        block = recovered.append(extra_drafts(recovered.size, 5))
        assert (block.height, block.size) == (previous[0] + 1, previous[1] + 5)
    finally:
        recovered.close()
    assert verify_ledger(path).ok
