"""The HTTP server of a node process: uvicorn's h11 protocol, guarded against slow clients.

uvicorn bounds the size of a request head (h11 refuses more than 16 KiB) but not the time
it takes to arrive: its keep-alive timer runs only between requests and every byte received
cancels it, so a client that connects and sends nothing, or trickles a head one byte at a
time, holds a descriptor for ever (slowloris); enough such clients exhaust the process's
descriptors. ASGI middleware cannot help: it runs once the head is parsed. uvicorn's own
``limit_concurrency`` answers 503 only to a *complete* request, so it does not stop them
either. :func:`guarded_protocol` makes a subclass of uvicorn's ``H11Protocol`` with the two
missing guards:

* **A deadline for the request head** (``header_timeout_s``): armed when a connection is
  made and again at the first byte of each later request on a kept-alive connection (idle
  time between requests stays under uvicorn's ``timeout_keep_alive``); disarmed as soon as
  h11 has parsed the whole head. On expiry the client gets a 408 problem
  (:class:`~node.errors.HeadTimeoutError`) and the connection is closed.
* **A deadline for the request body** (``body_timeout_s``): armed when the head is parsed
  and a body is still to come, disarmed when h11 has the whole body. On expiry, if the
  application has not started its answer, the client gets a 408 problem
  (:class:`~node.errors.BodyTimeoutError`); the connection is closed either way, and the
  application's ``receive()`` sees a disconnect. Responses are not covered: a slow
  response to a fast request is never cut.
* **A cap on open connections** (``max_connections``): a connection accepted past it is
  answered a 503 problem with ``Retry-After`` (:class:`~node.errors.TooManyConnectionsError`)
  at once, half-closed so the client can read it, and closed when the client closes or after
  ``REFUSAL_LINGER_S``. Past ``MAX_LINGERING`` such refusals it is closed without waiting.

Both answers are RFC 9457 problem details from ``node.api.problems.PROBLEM_TYPES``. The cap
is also kept below the process's descriptor limit (:func:`connection_cap`).

Invariants: every open connection is either parsing a head under a deadline, receiving a
body under a deadline, inside a request, idle under uvicorn's keep-alive timer, or a
refusal that closes within ``REFUSAL_LINGER_S``; no more than ``max_connections``
connections are ever served at once.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
import resource
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from node.api.problems import problem_for
from node.errors import BodyTimeoutError, HeadTimeoutError, NodeError, TooManyConnectionsError
from node.settings import NodeSettings

__all__ = [
    "DESCRIPTOR_RESERVE",
    "KEEP_ALIVE_S",
    "MAX_LINGERING",
    "REFUSAL_LINGER_S",
    "connection_cap",
    "guarded_protocol",
    "raw_problem",
    "server_config",
]

log = logging.getLogger("node.http.server")

#: Idle time allowed between requests on one connection. Far longer than peers keep theirs
#: pooled (node.peers.client: 2 s), so the client always closes first and never reuses a
#: connection this server is closing.
KEEP_ALIVE_S = 30
#: How long a refused connection stays open for its client to read the 503.
REFUSAL_LINGER_S = 2.0
#: Refusals lingering at once, at most; past it a refused connection is closed straight away.
MAX_LINGERING = 64
#: Descriptors kept for everything but client connections: SQLite files, logs, and the peer
#: client's pool (node.peers.client: up to 200 connections).
DESCRIPTOR_RESERVE = 256


def raw_problem(exc: NodeError, node_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying ``exc``'s problem details, ending the connection.

    Written straight to the transport: it answers a connection, not a request h11 parsed.
    """
    response = problem_for(exc, "", node_id)
    reason = http.HTTPStatus(response.status_code).phrase
    head = [f"HTTP/1.1 {response.status_code} {reason}\r\n".encode("ascii")]
    head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + bytes(response.body)


class _Counter:
    """Counts events and logs the 1st, 2nd, 4th, 8th… one: a flood leaves a few lines."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0

    def hit(self, detail: str) -> None:
        self.count += 1
        if self.count & (self.count - 1) == 0:
            log.warning("%s (%d so far): %s", self.what, self.count, detail)


def guarded_protocol(
    node_id: str,
    *,
    header_timeout_s: float,
    max_connections: int,
    body_timeout_s: float = 60.0,
) -> type[H11Protocol]:
    """A uvicorn ``http=`` protocol class with head and body deadlines and a connection cap."""
    finite = all(math.isfinite(t) and t > 0 for t in (header_timeout_s, body_timeout_s))
    if not finite or max_connections < 1:
        raise ValueError(
            f"need header_timeout_s > 0, body_timeout_s > 0 and max_connections >= 1, got "
            f"{header_timeout_s}, {body_timeout_s} and {max_connections}"
        )
    refused = TooManyConnectionsError(max_connections)
    timed_out = HeadTimeoutError(header_timeout_s)
    body_timed_out = BodyTimeoutError(body_timeout_s)

    class GuardedH11Protocol(H11Protocol):
        """uvicorn's h11 protocol with the guards of ``node.http.server``."""

        refusal_bytes: ClassVar[bytes] = raw_problem(refused, node_id)
        timeout_bytes: ClassVar[bytes] = raw_problem(timed_out, node_id)
        body_timeout_bytes: ClassVar[bytes] = raw_problem(body_timed_out, node_id)
        refusals: ClassVar[_Counter] = _Counter("refused connections past the cap")
        timeouts: ClassVar[_Counter] = _Counter("connections closed for a slow request head")
        body_timeouts: ClassVar[_Counter] = _Counter("connections closed for a slow request body")
        lingering: ClassVar[set[asyncio.Transport]] = set()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_timer: asyncio.TimerHandle | None = None
            self.body_timer: asyncio.TimerHandle | None = None
            self.linger_timer: asyncio.TimerHandle | None = None
            self.refused = False

        # --- the cap ------------------------------------------------------------------
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            if len(self.connections) >= max_connections:
                self.refuse(transport)
                return
            super().connection_made(transport)
            self.arm()

        def refuse(self, transport: asyncio.Transport) -> None:
            self.refused = True
            self.transport = transport
            peer = transport.get_extra_info("peername")
            self.refusals.hit(f"{len(self.connections)} open, latest from {peer}")
            transport.write(self.refusal_bytes)
            if len(self.lingering) >= MAX_LINGERING or not transport.can_write_eof():
                transport.close()
                return
            transport.write_eof()  # the client reads the answer, then closes its end
            self.lingering.add(transport)
            self.linger_timer = self.loop.call_later(REFUSAL_LINGER_S, transport.close)

        # --- the deadline ------------------------------------------------------------
        def arm(self) -> None:
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(header_timeout_s, self.head_timeout)

        def disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def awaiting_head(self) -> bool:
            return self.conn.their_state is h11.IDLE

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return  # read and dropped, so closing later sends no reset
            if self.awaiting_head():
                self.arm()  # the first byte of a request on a kept-alive connection
            super().data_received(data)
            if not self.awaiting_head():
                self.disarm()
            if self.conn.their_state is h11.SEND_BODY:
                if self.body_timer is None:
                    self.body_timer = self.loop.call_later(body_timeout_s, self.body_timeout)
            else:
                self.disarm_body()

        def disarm_body(self) -> None:
            if self.body_timer is not None:
                self.body_timer.cancel()
                self.body_timer = None

        def body_timeout(self) -> None:
            self.body_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
                return
            self.body_timeouts.hit(f"from {self.client}")
            cycle = self.cycle
            if cycle is None or not cycle.response_started:
                self.transport.write(self.body_timeout_bytes)
            if cycle is not None:
                cycle.disconnected = True  # receive() ends; the application's answer goes nowhere
                cycle.message_event.set()
            self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A pipelined next request may already be partly buffered in h11.
            if self.awaiting_head() and self.conn.trailing_data[0]:
                self.arm()

        def head_timeout(self) -> None:
            self.head_timer = None
            if self.transport.is_closing() or not self.awaiting_head():
                return
            self.timeouts.hit(f"from {self.client}")
            self.transport.write(self.timeout_bytes)
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            self.disarm_body()
            if self.refused:
                if self.linger_timer is not None:
                    self.linger_timer.cancel()
                self.lingering.discard(self.transport)
                self.transport.close()
                return
            super().connection_lost(exc)

    return GuardedH11Protocol


def connection_cap(requested: int, soft: int, hard: int) -> tuple[int, int]:
    """(connections to allow, soft descriptor limit to set) for ``requested`` connections.

    The soft limit is raised as far as the hard one allows to fit ``requested`` plus
    :data:`DESCRIPTOR_RESERVE`; what still does not fit is taken off the cap.
    """
    needed = requested + DESCRIPTOR_RESERVE
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or soft >= needed:
        return requested, soft
    new_soft = needed if hard == unlimited else min(hard, needed)
    return max(1, min(requested, new_soft - DESCRIPTOR_RESERVE)), new_soft


def server_config(app: Any, settings: NodeSettings) -> uvicorn.Config:
    """The uvicorn configuration ``python -m node`` serves ``app`` with.

    Raises the process's soft descriptor limit if the connection cap needs it (and lowers
    the cap, with a warning, where the hard limit does not allow it).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap, new_soft = connection_cap(settings.max_connections, soft, hard)
    if new_soft != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        except (OSError, ValueError):
            cap = max(1, min(cap, soft - DESCRIPTOR_RESERVE))
    if cap < settings.max_connections:
        log.warning(
            "serving at most %d connections, not max_connections=%d: the descriptor limit "
            "is %d (raise it with ulimit -n)",
            cap,
            settings.max_connections,
            hard,
        )
    protocol = guarded_protocol(
        settings.node_id,
        header_timeout_s=settings.header_timeout_s,
        max_connections=cap,
        body_timeout_s=settings.body_timeout_s,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        http=protocol,
    )
