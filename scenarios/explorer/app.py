"""The explorer's web application: the page, its static files, and the JSON API behind it.

Routes (all under the explorer's own origin; nothing is fetched from elsewhere)::

    GET  /                         the page (static/index.html)
    GET  /static/...               its script and style sheet, from this package
    GET  /api/network              the preset: cities (names, lat/lon), nodes, target
    GET  /api/status               the current picture: nodes, feeds, recent reports, pair counts
    GET  /api/stream               server-sent events: hello (snapshot), nodes, report, receipt,
                                   alarm, feeds, dropped, lagged
    GET  /api/reports              the bundles saved in the consortium's reports/ directory
    GET  /api/reports/{name}       one saved bundle's verification, step by step
    POST /api/verify               an uploaded bundle's verification, step by step
    GET  /api/alarms               open alarms on every node
    GET  /api/alarms/{node}/{id}   one alarm with its evidence (the alarm entry on the ledger)
    POST /api/alarms/resolve       the operator resolves the alarms a node holds against a peer

Every error is an RFC 9457 problem (``application/problem+json``), never a stack trace.
A POST must carry ``X-Explorer: 1``: a header a page of another origin cannot send
without a CORS preflight that this application never grants, so no other site can make
a visitor's browser act as the operator.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import AlarmEntry, LedgerError, parse_entry, parse_json
from node.bundle import VerificationStep, verification_steps
from node.consortium import Manifest
from scenarios.errors import NetworkError
from scenarios.explorer.feeds import Watcher
from scenarios.localnet.client import NodeClient, problem_sentence
from scenarios.localnet.consortium import Consortium

__all__ = ["MAX_UPLOAD_BYTES", "ExplorerProblem", "create_app"]

URN = "urn:yrd-credit-chain:problem:"
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
_BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$")
STATIC = resources.files("scenarios.explorer") / "static"


class ExplorerProblem(Exception):
    """A request the explorer cannot answer: becomes one RFC 9457 problem."""

    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail


def _problem(status: int, slug: str, title: str, detail: str, instance: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": URN + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": instance,
        },
        status_code=status,
        media_type="application/problem+json",
    )


def _steps_json(steps: list[VerificationStep], summary: Any) -> dict[str, Any]:
    failed = next((s for s in steps if not s.ok), None)
    out: dict[str, Any] = {
        "valid": failed is None,
        "steps": [
            {"name": s.name, "ok": s.ok, "detail": s.detail, "reason": s.reason} for s in steps
        ],
        "failed": None if failed is None else failed.name,
        "summary": None,
    }
    if summary is not None:
        out["summary"] = {
            "query_id": summary.query_id,
            "uscc": summary.uscc,
            "purpose": summary.purpose,
            "institution_id": summary.institution_id,
            "home_node": summary.home_node,
            "partial": summary.partial,
            "missing": summary.missing,
            "holders": summary.holders,
            "current": len(summary.current),
            "superseded": len(summary.history) - len(summary.current),
        }
    return out


def create_app(cons: Consortium, manifest: Manifest, *, watcher: Watcher | None = None) -> FastAPI:
    """The explorer for the consortium ``cons`` (its trusted manifest checks bundles)."""
    watch = watcher or Watcher(cons)
    app = FastAPI(
        title="yrd-credit-chain explorer", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.watcher = watch
    reports_dir = cons.dir / "reports"

    @app.exception_handler(ExplorerProblem)
    async def on_problem(request: Request, exc: ExplorerProblem) -> JSONResponse:
        return _problem(exc.status, exc.slug, exc.title, exc.detail, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
        return _problem(exc.status_code, slug, str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{where}: {first.get('msg', 'invalid')}",
            request.url.path,
        )

    @app.exception_handler(Exception)
    async def on_any(request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("scenarios.explorer").exception("unexpected error on %s", request.url)
        return _problem(
            500, "internal", "Internal error", "the explorer failed; see its log", request.url.path
        )

    def require_page_post(request: Request) -> None:
        if request.headers.get("x-explorer") != "1":
            raise ExplorerProblem(
                403,
                "forbidden",
                "Not from the explorer's page",
                "actions must come from the explorer's own page (header X-Explorer: 1)",
            )

    # --- the page -------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    # --- the picture ------------------------------------------------------------------------
    @app.get("/api/network")
    async def network() -> dict[str, Any]:
        topo = cons.topology
        return {
            "name": topo.name,
            "target": cons.target,
            "dir": str(cons.dir),
            "cities": [
                {
                    "code": c.code,
                    "name": c.name,
                    "name_zh": c.name_zh,
                    "admin_code": c.admin_code,
                    "lat": c.lat,
                    "lon": c.lon,
                    "nodes": list(c.node_ids),
                }
                for c in topo.cities
            ],
            "nodes": [
                {"node_id": n, "city": cons.node(n).city, "url": cons.url(n)} for n in cons.node_ids
            ],
        }

    @app.get("/api/status")
    async def status() -> dict[str, Any]:
        return watch.snapshot()

    @app.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        queue = watch.attach()

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        message = await asyncio.wait_for(queue.get(), timeout=15.0)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    data = json.dumps(message["data"], ensure_ascii=False, separators=(",", ":"))
                    yield f"event: {message['event']}\ndata: {data}\n\n"
            finally:
                watch.detach(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # --- reports ------------------------------------------------------------------------------
    def _bundle_path(name: str) -> Path:
        if not _BUNDLE_NAME.match(name):
            raise ExplorerProblem(
                422,
                "invalid-request",
                "Invalid bundle name",
                f"{name[:80]!r} is not the name of a saved bundle (letters, digits, . _ - and .json)",
            )
        path = reports_dir / name
        if not path.is_file():
            raise ExplorerProblem(
                404, "not-found", "No such bundle", f"{name} is not in {reports_dir}"
            )
        return path

    def _verify(raw: bytes, what: str) -> dict[str, Any]:
        try:
            bundle = parse_json(raw.decode("utf-8"), what)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExplorerProblem(
                422, "malformed-bundle", "Not a report bundle", f"{what} is not JSON: {exc}"
            ) from exc
        if not isinstance(bundle, dict):
            raise ExplorerProblem(
                422,
                "malformed-bundle",
                "Not a report bundle",
                f"{what} is not a report bundle (expected a JSON object)",
            )
        steps, summary = verification_steps(bundle, manifest)
        return {"name": what, **_steps_json(steps, summary)}

    @app.get("/api/reports")
    async def reports() -> dict[str, Any]:
        rows = []
        if reports_dir.is_dir():
            files = sorted(reports_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)[::-1]
            for p in files[:200]:
                rows.append(
                    {"name": p.name, "bytes": p.stat().st_size, "modified": p.stat().st_mtime}
                )
        return {"dir": str(reports_dir), "reports": rows}

    @app.get("/api/reports/{name}")
    async def saved_report(name: str) -> dict[str, Any]:
        path = _bundle_path(name)
        raw = await asyncio.to_thread(path.read_bytes)
        return await asyncio.to_thread(_verify, raw, name)

    @app.post("/api/verify")
    async def verify_upload(request: Request) -> dict[str, Any]:
        require_page_post(request)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_UPLOAD_BYTES:
                raise ExplorerProblem(
                    413,
                    "too-large",
                    "Bundle too large",
                    f"bundles are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB",
                )
        name = request.headers.get("x-bundle-name", "the uploaded file")[:120]
        return await asyncio.to_thread(_verify, bytes(raw), name)

    # --- alarms -----------------------------------------------------------------------------------
    def _operator_call(node_id: str, method: str, path: str) -> Any:
        if not cons.manifest.has(node_id):
            raise ExplorerProblem(
                404, "not-found", "No such node", f"{node_id[:40]} is not in the consortium"
            )
        try:
            with NodeClient(cons, f"node:{node_id}", cons.node_key(node_id), 10.0) as client:
                status, data = client.call(node_id, method, path)
        except NetworkError as exc:
            raise ExplorerProblem(502, "node-unreachable", "Node unreachable", str(exc)) from exc
        if status >= 400:
            raise ExplorerProblem(
                502, "node-refused", "Node refused", problem_sentence(node_id, status, data)
            )
        return data

    @app.get("/api/alarms")
    async def alarms() -> dict[str, Any]:
        rows = []
        for view in watch.nodes.values():
            for a in view.get("alarms", []):
                rows.append({"at_node": view["node_id"], **a})
        return {"alarms": rows, "watching": watch.watching}

    @app.get("/api/alarms/{node_id}/{alarm_id}")
    async def alarm(node_id: str, alarm_id: int) -> dict[str, Any]:
        view = watch.nodes.get(node_id)
        found = next((a for a in (view or {}).get("alarms", []) if a.get("id") == alarm_id), None)
        if found is None:
            raise ExplorerProblem(
                404, "not-found", "No such alarm", f"{node_id[:40]} shows no open alarm {alarm_id}"
            )
        index = found.get("ledger_index")
        evidence: list[str] = []
        if isinstance(index, int):
            data = await asyncio.to_thread(
                _operator_call, node_id, "GET", f"/v1/entries?start={index}&end={index + 1}"
            )
            try:
                entry = parse_entry(base64.b64decode(data["entries"][0]["data"]))
            except (LedgerError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise ExplorerProblem(
                    502,
                    "node-refused",
                    "Unusable alarm entry",
                    f"{node_id}'s entry {index} is not a readable alarm: {exc}",
                ) from exc
            if isinstance(entry, AlarmEntry):
                evidence = list(entry.evidence)
        return {"at_node": node_id, **found, "evidence": evidence}

    @app.post("/api/alarms/resolve")
    async def resolve(request: Request) -> dict[str, Any]:
        require_page_post(request)
        try:
            body = json.loads(await request.body())
            node_id, peer_id = str(body["node_id"]), str(body["peer_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ExplorerProblem(
                422,
                "invalid-request",
                "Invalid request",
                'the body must be {"node_id": ..., "peer_id": ...}',
            ) from exc
        if not cons.manifest.has(peer_id):
            raise ExplorerProblem(
                404, "not-found", "No such node", f"{peer_id[:40]} is not in the consortium"
            )
        data = await asyncio.to_thread(
            _operator_call, node_id, "POST", f"/v1/peers/{peer_id}/resolve"
        )
        return {"node_id": node_id, **(data if isinstance(data, dict) else {})}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    return app
