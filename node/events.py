"""The node's event feed: receipts, alarms and finished reports as they happen, for watchers.

An operator (a monitoring page such as ``creditchain explorer``) subscribes through
``GET /v1/events`` (node.api.operator) and then long-polls the same route with its
subscriber id; each answer is an ordinary signed response holding the events queued
since the last one.

Invariants:

* Nothing is built, kept or copied while nobody listens: every hook returns at its
  first line when there is no subscriber (:attr:`EventHub.active`).
* Each subscriber has a bounded queue (``max_queue`` events). An event that finds
  the queue full is dropped for that subscriber and counted; the next answer says
  how many were dropped (``dropped``), so a watcher knows its picture has a gap.
* A subscriber that has not polled for ``idle_s`` seconds is forgotten (its queue
  with it); at most ``max_subscribers`` exist at once, a new one displacing the one
  that polled least recently.
* Hooks run on the event loop and never raise into the code that appended the
  entries: the entries are committed whatever a watcher does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger import AlarmEntry, Item, ReceiptEntry
from node.errors import NotFoundError, PushbackError

__all__ = ["EventHub", "Subscriber"]

log = logging.getLogger("node.events")

#: The longest a poll may wait for its first event.
MAX_WAIT_S = 25.0


@dataclass
class Subscriber:
    """One watcher: its queue, how many events it missed, when it last asked."""

    id: str
    queue: deque[dict[str, Any]]
    last_poll: float
    dropped: int = 0
    waiting: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    """Fan-out of node events to the subscribers that exist right now (often none)."""

    def __init__(
        self, *, max_queue: int = 1000, idle_s: float = 60.0, max_subscribers: int = 8
    ) -> None:
        self.max_queue = max_queue
        self.idle_s = idle_s
        self.max_subscribers = max_subscribers
        self._subs: dict[str, Subscriber] = {}
        self._seq = 0

    @property
    def active(self) -> bool:
        """Whether anyone listens: the hooks do nothing at all when not."""
        return bool(self._subs)

    def subscribers(self) -> int:
        return len(self._subs)

    # --- subscribers -------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        for sid in [
            s.id for s in self._subs.values() if not s.waiting and now - s.last_poll > self.idle_s
        ]:
            del self._subs[sid]

    def subscribe(self) -> Subscriber:
        """A new subscriber; events published from now on are queued for it.

        Raises:
            PushbackError: ``max_subscribers`` are all waiting in a poll right now.
        """
        now = time.monotonic()
        self._expire(now)
        idle = sorted((s for s in self._subs.values() if not s.waiting), key=lambda s: s.last_poll)
        while len(self._subs) >= self.max_subscribers and idle:
            del self._subs[idle.pop(0).id]  # a new watcher displaces the longest idle one
        if len(self._subs) >= self.max_subscribers:
            raise PushbackError(
                f"{len(self._subs)} event subscribers already listen (at most "
                f"{self.max_subscribers})",
                retry_after_s=int(self.idle_s),
            )
        sub = Subscriber(secrets.token_hex(16), deque(), now)
        self._subs[sub.id] = sub
        return sub

    def unsubscribe(self, sub_id: str) -> None:
        self._subs.pop(sub_id, None)

    async def poll(self, sub_id: str, wait_s: float, max_events: int = 500) -> dict[str, Any]:
        """The events queued for ``sub_id``, waiting up to ``wait_s`` for the first one.

        Raises:
            NotFoundError: no such subscriber (never one, or forgotten after ``idle_s``).
        """
        sub = self._subs.get(sub_id)
        if sub is None:
            raise NotFoundError(
                f"event subscriber {sub_id[:40]!r} (unknown or idle for over {self.idle_s:g} s; "
                "subscribe again)"
            )
        sub.last_poll = time.monotonic()
        if not sub.queue and wait_s > 0:
            sub.waiting += 1
            sub.wake.clear()
            try:
                await asyncio.wait_for(sub.wake.wait(), timeout=min(wait_s, MAX_WAIT_S))
            except TimeoutError:
                pass
            finally:
                sub.waiting -= 1
                sub.last_poll = time.monotonic()
        events = [sub.queue.popleft() for _ in range(min(max_events, len(sub.queue)))]
        dropped, sub.dropped = sub.dropped, 0
        return {"subscriber": sub.id, "events": events, "dropped": dropped}

    # --- publishing --------------------------------------------------------------------
    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        """Queue ``events`` for every subscriber (stamped with a sequence number and time)."""
        if not self._subs or not events:
            return
        now = time.time()
        stamped = []
        for e in events:
            self._seq += 1
            stamped.append({"seq": self._seq, "time": round(now, 3), **e})
        for sub in self._subs.values():
            for e in stamped:
                if len(sub.queue) >= self.max_queue:
                    sub.dropped += 1
                else:
                    sub.queue.append(e)
            sub.wake.set()

    def on_entries(self, start: int, items: Sequence[Item]) -> None:
        """Sequencer hook: entries ``items`` were committed from index ``start`` on."""
        if not self._subs:
            return
        try:
            self.publish(
                [e for i, item in enumerate(items) if (e := _entry_event(start + i, item))]
            )
        except Exception:  # a watcher's feed must never fail an append
            log.exception("publishing events for entries from %d failed", start)

    def on_report(
        self,
        node_id: str,
        *,
        institution_id: str,
        uscc: str,
        purpose: str,
        seconds: float,
        bundle: dict[str, Any] | None = None,
        denied: str | None = None,
    ) -> None:
        """Report hook (the institution route): a report finished, granted or denied."""
        if not self._subs:
            return
        try:
            event: dict[str, Any] = {
                "type": "report",
                "node_id": node_id,
                "home_node": node_id,
                "institution_id": institution_id,
                "uscc": uscc,
                "purpose": purpose,
                "latency_ms": round(seconds * 1000, 1),
            }
            if bundle is None:
                event.update(
                    outcome="denied", reason=denied or "", query_id=None, holders=[], missing=[]
                )
            else:
                report = bundle["report"]
                event.update(
                    outcome="partial" if report.get("partial") else "complete",
                    query_id=report.get("query_id"),
                    holders=[
                        {"node_id": str(h["node_id"]), "records": len(h.get("records", []))}
                        for h in report.get("holders", [])
                    ],
                    missing=[
                        {"node_id": str(m.get("node_id")), "reason": str(m.get("reason", ""))}
                        for m in report.get("missing", [])
                    ],
                )
            self.publish([event])
        except Exception:
            log.exception("publishing a report event failed")


def _entry_event(index: int, item: Item) -> dict[str, Any] | None:
    if isinstance(item, ReceiptEntry):
        return {
            "type": "receipt",
            "index": index,
            "query_id": item.query_id,
            "uscc": item.uscc,
            "institution_id": item.institution_id,
            "home_node": item.home_node,
            "holder_node": item.holder_node,
            "role": item.role,
            "purpose": item.purpose,
            "outcome": item.outcome,
            "reason": item.reason,
            "records": item.records,
            "at": item.at,
        }
    if isinstance(item, AlarmEntry):
        return {
            "type": "alarm",
            "index": index,
            "peer": item.peer,
            "fault": item.fault,
            "detail": item.detail,
            "at": item.at,
        }
    return None
