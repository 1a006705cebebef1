"""``creditchain explorer``: a live web page of a running consortium, served by this package.

Modules::

    feeds   the watcher: node status polls and each node's event feed, while a page is open
    app     the FastAPI application: the page, its static files, the JSON API (RFC 9457 problems)
    static/ the page itself: HTML, CSS and JavaScript of our own, no CDN, works air-gapped

:func:`serve` runs the application with uvicorn until interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn

from scenarios.errors import NetworkError
from scenarios.explorer.app import ExplorerProblem, create_app
from scenarios.explorer.feeds import Watcher
from scenarios.localnet.consortium import Consortium, port_free
from scenarios.localnet.queries import trusted_manifest

__all__ = ["DEFAULT_PORT", "ExplorerProblem", "Watcher", "create_app", "serve"]

DEFAULT_PORT = 8700


def serve(
    cons: Consortium,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the explorer of ``cons`` on ``host:port`` until interrupted (Ctrl-C, SIGTERM).

    ``on_ready`` is called with the page's URL once the server listens.

    Raises:
        NetworkError: the manifest cannot be trusted, or the port is taken.
    """
    manifest = trusted_manifest(cons)
    if not port_free(port, host):
        raise NetworkError(f"port {port} on {host} is taken; pass --port")
    app = create_app(cons, manifest)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    shown = host if ":" not in host else f"[{host}]"
    url = f"http://{shown}:{port}/"

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        if on_ready is not None:
            on_ready(url)

    async def main() -> None:
        ready = asyncio.create_task(announce())
        try:
            await server.serve()
        finally:
            ready.cancel()
            app.state.watcher.close()

    asyncio.run(main())
