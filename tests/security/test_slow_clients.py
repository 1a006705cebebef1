"""Slow clients over a real socket, against the server ``python -m node`` runs
(``node.http.server``: uvicorn's h11 with a request-head deadline and a connection cap).

Before the guards, a connection that sent nothing, or trickled its head one byte at a
time, was held for ever (uvicorn's keep-alive timer runs only between requests and every
byte cancels it), and any number of them could be open at once: 500 such connections were
still held after 40 s. Now a head not received within ``header_timeout_s`` gets a 408
problem and the connection is closed, and a connection past ``max_connections`` gets a 503
problem with ``Retry-After`` at once. Kept-alive connections idle between requests are not
cut by the head deadline. Socket timeouts below are hang guards, never the thing tested.
"""

from __future__ import annotations

import select
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
from support.inproc_world import NODES, assert_problem, make_net
from support.served import Serving, serve, wait_until

HEAD_TIMEOUT_S = 2.0  # the deadline the servers below are given (not a test threshold)
HANG_GUARD_S = 120.0
CAP = 4


@pytest.fixture(scope="module")
def net() -> Iterator[Any]:
    with tempfile.TemporaryDirectory(prefix="yrd-slow-") as tmp:
        yield make_net(Path(tmp) / "net", NODES[:1])


def _served(net: Any, **limits: Any) -> Iterator[Serving]:
    node_id = NODES[0][0]
    with serve(net.nodes[node_id], net.states[node_id].settings.with_(**limits)) as s:
        yield s


@pytest.fixture(scope="module")
def deadline_server(net: Any) -> Iterator[Serving]:
    yield from _served(net, header_timeout_s=HEAD_TIMEOUT_S, body_timeout_s=HEAD_TIMEOUT_S)


@pytest.fixture(scope="module")
def capped_server(net: Any) -> Iterator[Serving]:
    # A deadline far away, so the idle connections below stay open until the test closes them.
    yield from _served(net, header_timeout_s=HANG_GUARD_S * 10, max_connections=CAP)


def _connect(s: Serving) -> socket.socket:
    return socket.create_connection(("127.0.0.1", s.port), timeout=HANG_GUARD_S)


def _read_response(sock: socket.socket, conn: h11.Connection | None = None) -> httpx.Response:
    """One response read off ``sock`` with h11 (which also checks its framing)."""
    conn = conn or h11.Connection(h11.CLIENT)
    if conn.our_state is h11.IDLE:  # h11 must know a request went out to parse its answer
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return httpx.Response(
                head.status_code,
                headers=[(k.decode(), v.decode()) for k, v in head.headers],
                content=body,
            )
        else:
            raise AssertionError(f"unexpected {event!r}")


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_silent_connection_gets_408_and_is_closed(deadline_server: Serving) -> None:
    with _connect(deadline_server) as sock:
        r = _read_response(sock)
        body = assert_problem(r, 408, "request-timeout", node_id=NODES[0][0])
        assert f"{HEAD_TIMEOUT_S:g} s" in body["detail"]
        assert r.headers["connection"] == "close"
        assert _closed_by_server(sock)


def test_a_trickled_head_is_cut_before_it_completes(deadline_server: Serving) -> None:
    """A head sent one byte at a time (each byte would reset uvicorn's keep-alive timer) is
    cut at the deadline: the client never gets to finish it."""
    head = b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-pad: " + b"a" * 2000 + b"\r\n\r\n"
    answer: httpx.Response | None = None
    with _connect(deadline_server) as sock:
        sent = 0
        try:
            while sent < len(head):
                if select.select([sock], [], [], 0.05)[0]:
                    answer = _read_response(sock)
                    break
                sock.sendall(head[sent : sent + 1])
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while a byte was on its way: cut all the same
    assert sent < len(head), "the whole head went through: nothing cut the trickle"
    if answer is not None:
        assert_problem(answer, 408, "request-timeout")


def test_a_kept_alive_connection_outlives_the_head_deadline(deadline_server: Serving) -> None:
    """Idle time between requests is the keep-alive timer's business: a pooled connection
    (peers pool theirs) serves its next request after more than the head deadline."""
    with _connect(deadline_server) as sock:
        conn = h11.Connection(h11.CLIENT)
        for i in range(2):
            if i:
                time.sleep(HEAD_TIMEOUT_S * 1.5)
            request = h11.Request(method="GET", target="/v1/health", headers=[("host", "x")])
            sock.sendall((conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b""))
            r = _read_response(sock, conn)
            assert r.status_code == 200, r.text
            conn.start_next_cycle()


def _post_head(length: int) -> bytes:
    return (
        b"POST /v1/ingest HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(length).encode() + b"\r\n\r\n"
    )


def test_a_body_that_stops_coming_gets_408_and_is_closed(deadline_server: Serving) -> None:
    """A whole head, then 10 of the 1,000 body bytes it announced, then nothing: before the
    body deadline the connection was held until the client gave up."""
    with _connect(deadline_server) as sock:
        sock.sendall(_post_head(1000) + b'{"records"')
        r = _read_response(sock)
        body = assert_problem(r, 408, "body-timeout", node_id=NODES[0][0])
        assert f"{HEAD_TIMEOUT_S:g} s" in body["detail"]
        assert _closed_by_server(sock)
    r = httpx.get(f"http://127.0.0.1:{deadline_server.port}/v1/health", timeout=HANG_GUARD_S)
    assert r.status_code == 200  # the node serves on


def test_a_trickled_body_is_cut_before_it_completes(deadline_server: Serving) -> None:
    body = b"x" * 2000
    answer: httpx.Response | None = None
    with _connect(deadline_server) as sock:
        sock.sendall(_post_head(len(body)))
        sent = 0
        try:
            while sent < len(body):
                if select.select([sock], [], [], 0.05)[0]:
                    answer = _read_response(sock)
                    break
                sock.sendall(body[sent : sent + 1])
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < len(body), "the whole body went through: nothing cut the trickle"
    if answer is not None:
        assert_problem(answer, 408, "body-timeout")


def test_a_connection_past_the_cap_gets_503_at_once(capped_server: Serving) -> None:
    idle = [_connect(capped_server) for _ in range(CAP)]
    try:
        wait_until(lambda: capped_server.open_connections() == CAP, f"{CAP} open connections")
        with httpx.Client(timeout=HANG_GUARD_S) as c:
            r = c.get(capped_server.url + "/v1/health")
        body = assert_problem(r, 503, "too-many-connections", limit=CAP)
        assert r.headers["retry-after"] == "1"
        assert str(CAP) in body["detail"]
        # The refusal read nothing and left the open connections alone.
        assert capped_server.open_connections() == CAP
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: capped_server.open_connections() == 0, "the idle connections to close")
    with httpx.Client(timeout=HANG_GUARD_S) as c:
        assert c.get(capped_server.url + "/v1/health").status_code == 200
