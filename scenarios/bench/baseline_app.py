"""The plain FastAPI two-hop baseline for ``creditchain bench query``.

Two processes of this app: a "home" that receives ``POST /report`` and asks
a "holder" ``POST /records`` over HTTP (httpx, keep-alive), and a holder
that reads the enterprise's records from a plain SQLite table and returns
them as JSON. Both answer ``GET /health`` (the bench waits for it before
timing anything). No signatures, no proofs, no receipts, no ledger: what the
same query costs as a bare web hop, measured in the same run as the chain.

Run: ``python -m scenarios.bench.baseline_app --role home|holder --port P [--holder URL] [--db PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request


def _health(app: FastAPI) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}


def make_holder(db_path: str) -> FastAPI:
    app = FastAPI()
    _health(app)
    db = sqlite3.connect(db_path, check_same_thread=False)

    @app.post("/records")
    async def records(request: Request) -> dict[str, Any]:
        q = json.loads(await request.body())
        rows = db.execute(
            "SELECT record_type, record_id, observed_at, body FROM credit_records WHERE uscc = ?",
            (q["uscc"],),
        ).fetchall()
        return {
            "records": [
                {"record_type": t, "record_id": i, "observed_at": o, "body": json.loads(b)}
                for t, i, o, b in rows
            ]
        }

    return app


def make_home(holder_url: str) -> FastAPI:
    app = FastAPI()
    _health(app)
    client = httpx.AsyncClient(
        base_url=holder_url, timeout=30, limits=httpx.Limits(max_connections=200)
    )

    @app.post("/report")
    async def report(request: Request) -> dict[str, Any]:
        q = json.loads(await request.body())
        r = await client.post("/records", json={"uscc": q["uscc"]})
        return {"uscc": q["uscc"], "holders": [{"records": r.json()["records"]}]}

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["home", "holder"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--holder", default="")
    p.add_argument("--db", default="")
    a = p.parse_args()
    app = make_home(a.holder) if a.role == "home" else make_holder(a.db)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
