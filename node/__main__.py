"""Run one node: ``python -m node --config settings.json`` (or NODE_* variables).

Starts uvicorn on the configured address with ``create_app``, through the guarded
protocol of ``node.http.server`` (request-head deadline, connection cap). Runs under a
private umask (0077: every file it creates is its owner's alone) and holds its data
directory for its lifetime (``node.datadir``). Exits 2 with one plain sentence if the
settings, keys or manifest are unusable or another process holds the data directory, and
3 if uvicorn cannot listen (it logs why).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m node", description="Run one yrd-credit-chain city node."
    )
    parser.add_argument("--config", help="JSON settings file (else NODE_CONFIG / NODE_* variables)")
    args = parser.parse_args(argv)
    from node.datadir import set_private_umask

    # Before any file is made: ledger.db, state.db and SQLite's -wal/-shm hold every body and
    # salt, and must never be readable by another local user.
    set_private_umask()
    env = dict(os.environ)
    if args.config:
        env["NODE_CONFIG"] = args.config

    import uvicorn

    from ledger import LedgerError
    from node.app import create_app
    from node.errors import NodeError
    from node.http.server import server_config
    from node.settings import NodeSettings

    try:
        settings = NodeSettings.from_env(env)
        app = create_app(settings)
    except (NodeError, LedgerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s {settings.node_id} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per peer request is noise
    server = uvicorn.Server(server_config(app, settings))
    server.run()
    if not server.started:  # uvicorn logged why (an address in use, say), as uvicorn.run does
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
