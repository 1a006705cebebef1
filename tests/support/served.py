"""A node app served by uvicorn on a real 127.0.0.1 socket, in a thread of the test process,
with the configuration ``python -m node`` uses (``node.http.server.server_config``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from node.http.server import server_config
from node.settings import NodeSettings

__all__ = ["Serving", "serve", "wait_until"]


@dataclass
class Serving:
    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_connections(self) -> int:
        """Connections the server counts as open now (what its cap compares against)."""
        return len(self.server.server_state.connections)


def wait_until(check: Any, what: str, limit_s: float = 60.0) -> None:
    """Poll ``check()`` until true; a hang guard, not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@contextlib.contextmanager
def serve(app: Any, settings: NodeSettings) -> Iterator[Serving]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app, settings.with_(log_level="warning")))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield Serving(server, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
