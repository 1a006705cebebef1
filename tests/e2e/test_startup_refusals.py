"""A real node process refuses to start on a ledger that lost acknowledged entries or
is damaged, instead of coming back healthy on it.

One node of a launch-2020 consortium runs alone (its peers stay down: nothing here
needs them). It acknowledges records through ``POST /v1/ingest``, and then:

* it is SIGKILLed with blocks still only in its WAL, and the WAL and ``-shm`` are
  deleted: the restarted process must exit non-zero with the sentence naming the
  ledger file, the size it holds and the larger size the node signed;
* one 4 KiB page of its stopped ledger is overwritten: the restarted process must
  exit non-zero naming the damaged file.

In both cases the process must never answer ``/v1/health`` (before the fix it came
back healthy at the smaller size, and served and signed on the damaged file).
The same checks in process, with more kinds of damage: ``tests/integration/test_startup_checks.py``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger import make_uscc
from scenarios import localnet as net

START_TIMEOUT_S = 120.0  # generous: CI machines are loaded
PAGE = 4096

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> net.Consortium:
    directory = tmp_path_factory.mktemp("startup") / "network"
    return net.init_consortium(directory, "launch-2020", base_port=net.find_free_base_port(11))


class Node:
    """One ``python -m node`` process of ``cons``, with its output in a file."""

    def __init__(self, cons: net.Consortium, node_id: str, log: Path) -> None:
        self.cons, self.node_id, self.log = cons, node_id, log
        env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
        env["PYTHONUNBUFFERED"] = "1"
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "--config", str(cons.settings_path(node_id))],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def healthy(self, client: httpx.Client) -> bool:
        try:
            r = client.get(self.cons.url(self.node_id) + "/v1/health")
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while not self.healthy(client):
                assert self.proc.poll() is None, f"node exited while starting:\n{self.output()}"
                assert time.monotonic() < deadline, f"node not healthy:\n{self.output()}"
                time.sleep(0.2)

    def wait_refusal(self) -> int:
        """The exit code of a node that must refuse to start; fails if it ever answers."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while self.proc.poll() is None:
                if self.healthy(client):
                    self.stop(signal.SIGKILL)
                    pytest.fail(f"the node started instead of refusing:\n{self.output()}")
                assert time.monotonic() < deadline, (
                    f"node neither refused nor started:\n{self.output()}"
                )
                time.sleep(0.2)
        return self.proc.returncode

    def ingest(self, batch: int, n: int = 50) -> int:
        """One batch of records; returns the ledger size the node acknowledged."""
        code = self.cons.topology.cities[0].admin_code
        records: list[dict[str, Any]] = [
            {
                "uscc": make_uscc(code, 10_000 * batch + k).code,
                "record_type": "tax_rating",
                "record_id": f"{self.node_id}:startup-{batch}-{k}",
                "source": "tax",
                "observed_at": "2021-10-31T08:00:00Z",
                "body": {"rating": "ABCDM"[k % 5], "pad": "x" * 200},
            }
            for k in range(n)
        ]
        with net.operator_client(self.cons, self.node_id) as client:
            status, answer = client.call(self.node_id, "POST", "/v1/ingest", {"records": records})
        assert status == 202, answer
        return int(answer["size"])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)

    def stopped_cleanly(self) -> bool:
        """Exited after a graceful shutdown (uvicorn re-raises the SIGTERM it handled)."""
        return self.proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in self.output()


@pytest.fixture
def run(cons: net.Consortium, tmp_path: Path) -> Iterator[Any]:
    """``run(node_id)`` starts a node process; every one started is stopped at the end."""
    started: list[Node] = []

    def start(node_id: str) -> Node:
        node = Node(cons, node_id, tmp_path / f"{node_id}-{len(started)}.log")
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop(signal.SIGKILL)


def test_sigkill_then_wal_deleted_is_refused_with_both_sizes(
    cons: net.Consortium, run: Any
) -> None:
    node_id = cons.node_ids[0]
    ledger = cons.ledger_path(node_id)
    wal, shm = Path(f"{ledger}-wal"), Path(f"{ledger}-shm")

    first = run(node_id)
    first.wait_healthy()
    kept = first.ingest(1)
    first.stop(signal.SIGTERM)  # a clean stop checkpoints the WAL into the ledger file
    assert first.stopped_cleanly(), first.output()
    assert not wal.exists() or wal.stat().st_size == 0

    second = run(node_id)
    second.wait_healthy()
    second.ingest(2)
    acknowledged = second.ingest(3)
    assert acknowledged > kept
    second.stop(signal.SIGKILL)  # the last two blocks are in the WAL only
    assert wal.stat().st_size > 0
    wal.unlink()
    shm.unlink(missing_ok=True)

    third = run(node_id)
    assert third.wait_refusal() != 0
    out = third.output()
    assert (
        f"error: ledger {ledger} holds {kept} entries, fewer than the {acknowledged} "
        "this node has signed"
    ) in out, out
    assert "Traceback" not in out


def test_an_overwritten_page_is_refused_naming_the_file(cons: net.Consortium, run: Any) -> None:
    node_id = cons.node_ids[1]
    ledger = cons.ledger_path(node_id)
    first = run(node_id)
    first.wait_healthy()
    for batch in range(1, 5):
        first.ingest(batch)
    first.stop(signal.SIGTERM)
    assert first.stopped_cleanly(), first.output()

    pages = ledger.stat().st_size // PAGE
    with ledger.open("r+b") as f:  # one page in the middle of the file, as a bad disk might
        f.seek((pages // 2) * PAGE)
        f.write(random.Random(7).randbytes(PAGE))

    second = run(node_id)
    assert second.wait_refusal() != 0
    out = second.output()
    assert f"error: ledger {ledger} is damaged: SQLite quick_check" in out, out
    assert "Traceback" not in out
