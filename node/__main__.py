"""Run one node: ``python -m node --config settings.json`` (or NODE_* variables).

Starts uvicorn on the configured address with ``create_app``. Exits with one
plain sentence if the settings, keys or manifest are unusable.
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
    env = dict(os.environ)
    if args.config:
        env["NODE_CONFIG"] = args.config

    import uvicorn

    from ledger import LedgerError
    from node.app import create_app
    from node.errors import NodeError
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
    # Keep idle connections far longer than peers keep them pooled (node.peers.client: 2 s), so the
    # client always closes first and never reuses a connection this server is closing.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_keep_alive=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
