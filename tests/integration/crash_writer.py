"""Crash-test helper: a process that appends to a ledger until it is killed.

Run by tests/integration/test_crash.py as ``python crash_writer.py PATH ...``.
It creates the ledger at PATH (or opens it, after a crash), prints
``OPEN <height> <size> <root hex>``, then appends batches of synthetic records
forever, printing and flushing ``ACK <height> <size> <root hex>`` after each
append returns: every ACK line is a promise that the block is durable.

``--die-after N`` makes the append after the N-th ACK kill the process with
SIGKILL from inside its transaction, after the entries, bodies and tiles are
written and before the block is (by wrapping ``Store.put_tiles`` here; the
library is not changed). It prints ``DYING <bytes in the -wal file>`` first.
``--spill`` shrinks this connection's page cache so that a large batch spills
uncommitted pages into the WAL file before the kill.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, NoteSigner, RecordDraft, make_uscc
from ledger.store import Store
from ledger.uscc import SERIAL_LIMIT


def drafts(start: int, count: int) -> list[RecordDraft]:
    """Records numbered ``start .. start + count - 1``; ids stay unique across restarts."""
    return [
        RecordDraft(
            uscc=make_uscc("330100", (n * 7919) % SERIAL_LIMIT).code,
            record_type="tax_rating",
            record_id=f"crash-{n}",
            source="hz-tax",
            observed_at="2021-10-31T08:00:00Z",
            body={"n": n, "rating": "ABMCD"[n % 5], "authority": "杭州税务局", "pad": "x" * 64},
        )
        for n in range(start, start + count)
    ]


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def say(*words: object) -> None:
    print(*words, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed-hex", required=True, help="32-byte Ed25519 seed of the node key")
    parser.add_argument("--name", required=True, help="note key name")
    parser.add_argument("--origin", required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--max-batches", type=int, default=200, help="stop by itself after this many"
    )
    parser.add_argument("--die-after", type=int, default=None, metavar="N")
    parser.add_argument("--spill", action="store_true")
    args = parser.parse_args()

    signer = NoteSigner(
        args.name, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(args.seed_hex))
    )
    if args.path.exists():
        ledger = Ledger.open(args.path, signer=signer)
    else:
        ledger = Ledger.create(args.path, origin=args.origin, signer=signer)
    if args.spill:
        ledger.store._db.execute("PRAGMA cache_size=16")  # pages, not KiB: spill early

    say("OPEN", ledger.height, ledger.size, ledger.head.root.hex())
    for done in range(args.max_batches):
        if args.die_after is not None and done == args.die_after:

            def put_tiles_then_die(
                self: Store,
                rows: list[tuple[int, int, int, bytes]],
                put_tiles: object = Store.put_tiles,
            ) -> None:
                put_tiles(self, rows)  # type: ignore[operator]
                say("DYING", wal_bytes(args.path))
                os.kill(os.getpid(), signal.SIGKILL)

            Store.put_tiles = put_tiles_then_die  # type: ignore[method-assign]
        block = ledger.append(drafts(ledger.size, args.batch))
        say("ACK", block.height, block.size, block.root.hex())
    ledger.close()
    say("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
