"""Group concurrent appends into one block (tessera-style batching).

Requests that each need an entry on the ledger (receipts, authorizations,
alarms) call :meth:`Sequencer.add`; entries arriving within ``max_delay_s``
of each other are appended as one batch — one transaction, one signature,
one fsync — and every caller learns its own index. The append runs in a
worker thread so the event loop never waits on the disk.

Invariants: a caller's future resolves only after its block is committed
(so an acknowledged entry is durable) and ``on_block`` has seen it (the node
records the size it signed there); if the batch fails, every caller in
it gets the exception and nothing of the batch is on the ledger. At most
``max_pending`` entries wait; beyond that callers get PushbackError.

A caller may pass a ``guard``: a check run under the sequencing lock right
before its entries join a batch, given the entries queued ahead of them in
that batch (everything earlier is committed). If the guard raises, that
caller gets the exception and its entries are not written. A report's
granted receipt is guarded by "the authorization is still not revoked", so a
revocation acknowledged before the receipt's position always wins the race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ledger import Block, Item, Ledger
from node.errors import PushbackError

__all__ = ["Sequencer"]

log = logging.getLogger("node.sequencer")


Guard = Callable[[Sequence[Item]], None]
_Pending = tuple[Sequence[Item], "asyncio.Future[tuple[int, Block]]", "Guard | None"]


class Sequencer:
    def __init__(
        self,
        ledger: Ledger,
        *,
        max_delay_s: float = 0.005,
        max_batch: int = 2000,
        max_pending: int = 50_000,
        on_block: Callable[[Block], None] | None = None,
        on_entries: Callable[[int, Sequence[Item]], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.on_block = on_block
        # Told (on the event loop) of each committed batch: its first index and entries.
        self.on_entries = on_entries
        self.max_delay_s = max_delay_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: list[_Pending] = []
        self._count = 0
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def add(self, items: Sequence[Item], guard: Guard | None = None) -> tuple[int, Block]:
        """Append ``items`` in the next block; returns (index of the first, the block).

        Raises:
            PushbackError: too many entries are waiting.
            Exception: whatever ``guard`` raised (nothing of ``items`` is written).
        """
        if self._count + len(items) > self.max_pending:
            raise PushbackError(
                f"{self._count} entries are waiting to be sequenced", retry_after_s=1
            )
        fut: asyncio.Future[tuple[int, Block]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, fut, guard))
        self._count += len(items)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await fut

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.max_delay_s)
        while self._pending:
            taken: list[_Pending] = []
            n = 0
            while self._pending and (n == 0 or n + len(self._pending[0][0]) <= self.max_batch):
                taken.append(self._pending.pop(0))
                n += len(taken[-1][0])
            self._count -= n
            async with self._lock:
                batch: list[tuple[Sequence[Item], asyncio.Future[tuple[int, Block]]]] = []
                ahead: list[Item] = []
                for items, fut, guard in taken:
                    if guard is not None:
                        try:
                            guard(ahead)
                        except Exception as exc:  # this caller alone is refused
                            if not fut.done():
                                fut.set_exception(exc)
                            continue
                    batch.append((items, fut))
                    ahead.extend(items)
                if not batch:
                    continue
                start = self.ledger.size
                try:
                    block = await asyncio.to_thread(self._append, ahead)
                except Exception as exc:  # every caller of the failed batch learns why
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
            if self.on_entries is not None:
                self.on_entries(start, ahead)
            offset = start
            for items, fut in batch:
                if not fut.done():
                    fut.set_result((offset, block))
                offset += len(items)

    async def append_now(self, items: Sequence[Item]) -> Block:
        """Append a large batch directly (ingest), serialised with sequenced batches."""
        async with self._lock:
            return await asyncio.to_thread(self._append, list(items))

    def _append(self, items: Sequence[Item]) -> Block:
        """Append (in a worker thread), then tell ``on_block``, before any caller hears."""
        block = self.ledger.append(items)
        if self.on_block is not None:
            try:
                self.on_block(block)
            except Exception:  # the block is committed: its callers must still hear so
                log.exception("recording block %d (size %d) failed", block.height, block.size)
        return block
