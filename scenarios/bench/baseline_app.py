"""The plain FastAPI two-hop baseline for ``creditchain bench query``.

A "home" process receives ``POST /report`` and asks K "holder" processes
``POST /records`` over HTTP (httpx, keep-alive) concurrently (``asyncio.gather``);
each holder reads the enterprise's records from a plain SQLite table and returns
them as JSON. The request names which holders to ask (``holders``: their slots)
and whether the home holds records itself (``local``: read from its own table),
so each report has the same fan-out as the chain's report on that enterprise,
and the same record bodies (the bench fills the tables from the chain's
bundles). All answer ``GET /health`` (the bench waits for it before timing
anything). No signatures, no proofs, no receipts, no ledger: what the same query
costs as bare web hops, measured in the same run as the chain.

Run: ``python -m scenarios.bench.baseline_app --role home|holder --port P [--holder URL ...] [--db PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
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


def _reader(db_path: str) -> Any:
    db = sqlite3.connect(db_path, check_same_thread=False)

    def read(uscc: str) -> list[dict[str, Any]]:
        rows = db.execute(
            "SELECT record_type, record_id, observed_at, body FROM credit_records WHERE uscc = ?",
            (uscc,),
        ).fetchall()
        return [
            {"record_type": t, "record_id": i, "observed_at": o, "body": json.loads(b)}
            for t, i, o, b in rows
        ]

    return read


def make_holder(db_path: str) -> FastAPI:
    app = FastAPI()
    _health(app)
    read = _reader(db_path)

    @app.post("/records")
    async def records(request: Request) -> dict[str, Any]:
        q = json.loads(await request.body())
        return {"records": read(q["uscc"])}

    return app


def make_home(holder_urls: list[str], db_path: str = "") -> FastAPI:
    app = FastAPI()
    _health(app)
    clients = [
        httpx.AsyncClient(base_url=u, timeout=30, limits=httpx.Limits(max_connections=200))
        for u in holder_urls
    ]
    read = _reader(db_path) if db_path else None

    async def ask(slot: int, uscc: str) -> dict[str, Any]:
        r = await clients[slot].post("/records", json={"uscc": uscc})
        return {"slot": slot, "records": r.json()["records"]}

    @app.post("/report")
    async def report(request: Request) -> dict[str, Any]:
        q = json.loads(await request.body())
        uscc = q["uscc"]
        slots = [int(s) for s in q.get("holders", [0])]
        sections = list(await asyncio.gather(*(ask(s, uscc) for s in slots)))
        if q.get("local") and read is not None:
            sections.append({"slot": "home", "records": read(uscc)})
        return {"uscc": uscc, "holders": sections}

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["home", "holder"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--holder", action="append", default=[], help="a holder's URL (repeatable)")
    p.add_argument("--db", default="")
    a = p.parse_args()
    app = make_home(a.holder, a.db) if a.role == "home" else make_holder(a.db)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
