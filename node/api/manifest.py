"""The consortium manifest's versions: read them (public), apply a newer one (operator).

A running node follows manifest version n+1 when its operator posts it: the root's
signature, the version chain and this node's place in it are checked
(:meth:`node.state.NodeState.apply_manifest`), then peers, keys and URLs change at
once, without a restart. Every version applied stays readable, so a bundle made
under an older version can still be checked against it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ledger import canonical_bytes
from node.api.deps import caller_for, json_body, operator_check
from node.api.schemas import json_body_doc
from node.consortium import parse_manifest
from node.errors import ConfigError, ManifestRefusedError, NotFoundError
from node.state import Caller, NodeState

MANIFEST_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["manifest", "signature"],
    "properties": {
        "manifest": {"type": "object", "description": "the manifest body the root signed"},
        "signature": {"type": "string", "description": "base64 Ed25519 signature by the root"},
    },
}


def manifest_router(st: NodeState) -> APIRouter:
    """The routes, bound to the node's state."""
    router = APIRouter()
    caller = caller_for(st)
    require_operator = operator_check(st)

    @router.get(
        "/v1/manifest",
        summary="The signed manifest this node follows (or an earlier version it applied)",
        responses={200: {"content": {"application/json": {}}}},
    )
    async def get_manifest(
        version: int | None = Query(None, ge=1, le=2**31, description="a version applied here"),
    ) -> Response:
        manifest = st.manifest
        if version is not None:
            assert st.history is not None
            try:
                manifest = st.history.at(version)
            except ConfigError as exc:
                raise NotFoundError(str(exc)) from exc
        return Response(manifest.raw, media_type="application/json")

    @router.post(
        "/v1/manifest",
        summary="Follow a newer manifest version, live (operator)",
        openapi_extra=json_body_doc(MANIFEST_BODY),
    )
    async def post_manifest(request: Request, c: Caller = Depends(caller)) -> dict[str, Any]:
        require_operator(c)
        doc = await json_body(request)
        try:
            new = parse_manifest(
                canonical_bytes(doc) + b"\n", root_key=st.manifest.root_key, source="the manifest"
            )
        except ConfigError as exc:
            raise ManifestRefusedError(str(exc)) from exc
        except (TypeError, ValueError) as exc:
            raise ManifestRefusedError(
                f"the manifest is not valid JSON for a manifest: {exc}"
            ) from exc
        applied = st.apply_manifest(new)
        return {
            "version": st.manifest.version,
            "applied": applied,
            "nodes": len(st.manifest.nodes),
            "digest": st.manifest.digest,
        }

    return router
