"""What the explorer knows of the running network, kept up to date while a page watches.

:class:`Watcher` polls every node's public ``/v1/info`` and ``/v1/checkpoint`` once a
second and long-polls each node's operator-only event feed (``GET /v1/events``, signed
as that node's operator with the key in the consortium directory). It runs only while
at least one page is connected (:meth:`Watcher.attach`): with no page open the
explorer asks the nodes nothing, and the nodes keep no queue for it.

The network calls run in threads (the signed client is synchronous); what they learn
is handed to the event loop, which folds it into the picture (nodes, recent reports,
per-city-pair counters) and broadcasts it to every page's queue. A page's queue is
bounded: a page that does not keep up loses messages and is told so (``lagged``).

Invariants: nothing here raises into the web app because a node is down or answers
badly; a node that does not answer is shown down, and its feed is retried every
couple of seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from scenarios.errors import NetworkError
from scenarios.localnet.client import NodeClient
from scenarios.localnet.consortium import Consortium, running_nodes

__all__ = ["POLL_S", "Watcher", "flow_outcome", "node_view"]

log = logging.getLogger("scenarios.explorer")

#: Seconds between status polls of the nodes while a page is open.
POLL_S = 1.0
#: How long one poll of a node's event feed waits for an event.
EVENT_WAIT_S = 15.0
#: Recent reports kept for pages that connect later.
RECENT_REPORTS = 200
#: Messages a page may fall behind before it loses some.
PAGE_QUEUE = 2000
_EM_DASH = "\u2014 "


def flow_outcome(reason: str) -> str:
    """How a missing holder's reason reads on the map: refused (open alarm) or missing."""
    return "refused" if reason.startswith("refused") else "missing"


def witnesses(note: str) -> int:
    """Cosignatures on a witnessed checkpoint: signature lines after the node's own."""
    _, _, sigs = note.partition("\n\n")
    return max(0, sum(1 for line in sigs.splitlines() if line.startswith(_EM_DASH)) - 1)


def node_view(
    cons: Consortium,
    node_id: str,
    info: dict[str, Any] | None,
    sizes: dict[str, int],
    witnessed: int | None,
    pid: int | None,
) -> dict[str, Any]:
    """One node as the page shows it (JSON): up/down, height, entries, peers, witnesses, alarms."""
    node = cons.node(node_id)
    out: dict[str, Any] = {
        "node_id": node_id,
        "city": node.city,
        "url": cons.url(node_id),
        "up": info is not None,
        "pid": pid,
    }
    if info is None:
        return out
    peers = info.get("peers", [])
    caught_up = sum(
        1
        for p in peers
        if p.get("mirrored") == sizes.get(p.get("node_id", ""))
        and p.get("seen_size") == sizes.get(p.get("node_id", ""))
    )
    out.update(
        height=info.get("height"),
        entries=info.get("size"),
        enterprises=info.get("enterprises"),
        records=info.get("records"),
        peers=len(peers),
        peers_mirrored=caught_up,
        refused=[p["node_id"] for p in peers if p.get("refused")],
        witnesses=witnessed,
        alarms=list(info.get("alarms", [])),
    )
    return out


class Watcher:
    """The network as it is now, for the pages connected to the explorer."""

    def __init__(self, cons: Consortium, *, poll_s: float = POLL_S) -> None:
        self.cons = cons
        self.poll_s = poll_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pages: set[asyncio.Queue[dict[str, Any]]] = set()
        self._stop: threading.Event | None = None
        self._stop_later: asyncio.TimerHandle | None = None
        self.nodes: dict[str, dict[str, Any]] = {
            n: node_view(cons, n, None, {}, None, None) for n in cons.node_ids
        }
        self.feeds: dict[str, str] = dict.fromkeys(cons.node_ids, "off")
        self.reports: deque[dict[str, Any]] = deque(maxlen=RECENT_REPORTS)
        self.pairs: dict[str, Counter[str]] = {}
        self.receipts = 0
        self.dropped = 0

    # --- pages ------------------------------------------------------------------------
    def attach(self) -> asyncio.Queue[dict[str, Any]]:
        """A new page: its queue, starting with a snapshot; starts watching if idle."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(PAGE_QUEUE)
        queue.put_nowait({"event": "hello", "data": self.snapshot()})
        self._pages.add(queue)
        if self._stop_later is not None:
            self._stop_later.cancel()
            self._stop_later = None
        if self._stop is None:
            self._start()
        return queue

    def detach(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """A page went away; the last one stops the watching (after a grace period)."""
        self._pages.discard(queue)
        if not self._pages and self._loop is not None and self._stop_later is None:
            self._stop_later = self._loop.call_later(5.0, self._stop_if_idle)

    @property
    def watching(self) -> bool:
        return self._stop is not None

    def _stop_if_idle(self) -> None:
        self._stop_later = None
        if not self._pages and self._stop is not None:
            self._stop.set()
            self._stop = None
            self.feeds = dict.fromkeys(self.cons.node_ids, "off")

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes.values()),
            "feeds": dict(self.feeds),
            "reports": list(self.reports),
            "pairs": {k: dict(v) for k, v in self.pairs.items()},
            "receipts": self.receipts,
            "watching": self.watching,
        }

    def _broadcast(self, event: str, data: Any) -> None:
        message = {"event": event, "data": data}
        for queue in list(self._pages):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # the oldest goes; the page is told it lagged
                queue.put_nowait({"event": "lagged", "data": {}})

    def _soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn, *args)

    # --- threads ------------------------------------------------------------------------
    def _start(self) -> None:
        stop = threading.Event()
        self._stop = stop
        threading.Thread(
            target=self._status_loop, args=(stop,), name="explorer-status", daemon=True
        ).start()
        for node_id in self.cons.node_ids:
            threading.Thread(
                target=self._events_loop,
                args=(stop, node_id),
                name=f"explorer-events-{node_id}",
                daemon=True,
            ).start()

    def _status_loop(self, stop: threading.Event) -> None:
        ids = list(self.cons.node_ids)
        with (
            httpx.Client(timeout=max(1.0, self.poll_s * 2)) as client,
            ThreadPoolExecutor(
                max_workers=min(16, len(ids)), thread_name_prefix="explorer-info"
            ) as pool,
        ):

            def fetch(node_id: str) -> tuple[dict[str, Any] | None, int | None]:
                base = self.cons.url(node_id)
                try:
                    r = client.get(base + "/v1/info")
                    info = r.json() if r.status_code == 200 else None
                    c = client.get(base + "/v1/checkpoint")
                    witnessed = witnesses(c.text) if c.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    return None, None
                return (info if isinstance(info, dict) else None), witnessed

            while not stop.is_set():
                started = time.monotonic()
                answers = dict(zip(ids, pool.map(fetch, ids), strict=True))
                try:
                    pids = running_nodes(self.cons.dir)
                except (OSError, ValueError, NetworkError):
                    pids = {}
                sizes = {n: int(a[0]["size"]) for n, a in answers.items() if a[0]}
                views = {
                    n: node_view(self.cons, n, a[0], sizes, a[1], pids.get(n))
                    for n, a in answers.items()
                }
                if not stop.is_set():
                    self._soon(self._on_nodes, views)
                stop.wait(max(0.05, self.poll_s - (time.monotonic() - started)))

    def _events_loop(self, stop: threading.Event, node_id: str) -> None:
        client: NodeClient | None = None
        sub: str | None = None
        try:
            client = NodeClient(
                self.cons, f"node:{node_id}", self.cons.node_key(node_id), timeout_s=30.0
            )
        except (OSError, ValueError, NetworkError) as exc:
            log.warning("no event feed from %s: %s", node_id, exc)
            self._soon(self._on_feed, node_id, "no operator key")
            return
        try:
            while not stop.is_set():
                try:
                    if sub is None:
                        status, data = client.call(node_id, "GET", "/v1/events")
                        if status != 200 or not isinstance(data, dict):
                            raise NetworkError(f"{node_id} answered {status} to a subscription")
                        sub = str(data["subscriber"])
                        self._soon(self._on_feed, node_id, "on")
                        continue
                    status, data = client.call(
                        node_id,
                        "GET",
                        f"/v1/events?subscriber={sub}&wait={EVENT_WAIT_S:g}",
                    )
                    if status == 404:  # forgotten (idle too long, or the node restarted)
                        sub = None
                        continue
                    if status != 200 or not isinstance(data, dict):
                        raise NetworkError(f"{node_id} answered {status} to a poll")
                    if not stop.is_set():
                        self._soon(
                            self._on_events,
                            node_id,
                            list(data.get("events", [])),
                            int(data.get("dropped", 0)),
                        )
                except (NetworkError, KeyError, TypeError, ValueError):
                    sub = None
                    self._soon(self._on_feed, node_id, "down")
                    stop.wait(2.0)
        finally:
            client.close()

    # --- on the event loop --------------------------------------------------------------
    def _on_nodes(self, views: dict[str, dict[str, Any]]) -> None:
        changed = [v for n, v in views.items() if self.nodes.get(n) != v]
        self.nodes.update(views)
        if changed:
            self._broadcast("nodes", changed)

    def _on_feed(self, node_id: str, state: str) -> None:
        if self._stop is None:
            return
        if self.feeds.get(node_id) != state:
            self.feeds[node_id] = state
            self._broadcast("feeds", dict(self.feeds))

    def _on_events(self, node_id: str, events: list[dict[str, Any]], dropped: int) -> None:
        if dropped:
            self.dropped += dropped
            self._broadcast("dropped", {"node_id": node_id, "dropped": dropped})
        for e in events:
            kind = e.get("type")
            if kind == "report":
                self._on_report(e)
            elif kind == "receipt":
                self.receipts += 1
                self._broadcast("receipt", {**e, "node_id": node_id})
            elif kind == "alarm":
                self._broadcast("alarm", {**e, "node_id": node_id})

    def _on_report(self, e: dict[str, Any]) -> None:
        home = str(e.get("home_node"))
        home_city = self.cons.node(home).city if self.cons.manifest.has(home) else home
        edges = [
            {"node_id": h["node_id"], "outcome": "answered", "records": h.get("records", 0)}
            for h in e.get("holders", [])
        ] + [
            {"node_id": m["node_id"], "outcome": flow_outcome(str(m.get("reason", ""))), **m}
            for m in e.get("missing", [])
        ]
        for edge in edges:
            holder = str(edge["node_id"])
            city = self.cons.node(holder).city if self.cons.manifest.has(holder) else holder
            pair = f"{home_city}>{city}"
            self.pairs.setdefault(pair, Counter())[str(edge["outcome"])] += 1
        record = {
            "query_id": e.get("query_id"),
            "time": e.get("time"),
            "home_node": home,
            "institution_id": e.get("institution_id"),
            "uscc": e.get("uscc"),
            "purpose": e.get("purpose"),
            "outcome": e.get("outcome"),
            "reason": e.get("reason", ""),
            "latency_ms": e.get("latency_ms"),
            "edges": edges,
        }
        self.reports.appendleft(record)
        self._broadcast(
            "report", {"report": record, "pairs": {k: dict(v) for k, v in self.pairs.items()}}
        )
