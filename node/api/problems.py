"""Exceptions → RFC 9457 problem details, in one table.

Every non-2xx response body is ``application/problem+json``:
``{"type", "title", "status", "detail", "instance", "node_id"}`` with
``type = urn:yrd-credit-chain:problem:<slug>``. Unmapped exceptions become a
500 with a fixed detail; the traceback is logged, never returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import (
    CommitmentError,
    DecodeError,
    InconsistentLogError,
    InvalidRecordError,
    InvalidUsccError,
    JsonDepthError,
    LedgerError,
    ProofError,
    SignatureError,
    StorageFullError,
    StoreError,
)
from node.api.schemas import PROBLEM_SCHEMA
from node.errors import (
    AuthorizationError,
    BodyTimeoutError,
    BundleError,
    ConfigError,
    DenialNoticeError,
    DuplicateEntryError,
    HeadTimeoutError,
    LedgerBehindError,
    ManifestRefusedError,
    NotByEnterpriseError,
    NotFoundError,
    ObjectionClosedError,
    ObjectionError,
    PeerMisbehavedError,
    PeerUnavailableError,
    PushbackError,
    RateLimitedError,
    TooManyConnectionsError,
    UnknownInstitutionError,
    UnknownPeerError,
    UnknownRecordObjectionError,
)
from node.http import httpsig

__all__ = [
    "PROBLEM_TYPES",
    "STORAGE_FULL_RETRY_S",
    "ProblemType",
    "document_problems",
    "install_problem_handlers",
    "problem",
    "problem_for",
]

log = logging.getLogger("node.api.problems")

URN = "urn:yrd-credit-chain:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """How one error class answers: status, ``type`` slug, title, and extension members.

    ``fields`` are attributes of the exception copied into the problem (``reason``,
    ``peer_id``, ``rule``); ``retry_after`` adds a ``Retry-After`` header from the
    exception's ``retry_after_s`` (``retry_after_s`` here when it has none); ``detail_attr``
    names the attribute that holds the detail when ``str(exc)`` carries more than the detail.
    """

    cls: type[BaseException]
    status: int
    slug: str
    title: str
    fields: tuple[str, ...] = ()
    retry_after: bool = False
    detail_attr: str | None = None
    retry_after_s: int = 1


#: How long a client is told to wait when the disk is full: an operator has to free space.
STORAGE_FULL_RETRY_S = 60

_SIG = ("reason",)
_PEER = ("peer_id",)
# The one table of problem details. First match wins, so subclasses come first.
PROBLEM_TYPES: tuple[ProblemType, ...] = (
    ProblemType(
        InvalidUsccError, 422, "invalid-uscc", "Invalid unified social credit code", ("rule",)
    ),
    ProblemType(InvalidRecordError, 422, "invalid-record", "Invalid record"),
    ProblemType(JsonDepthError, 422, "json-too-deep", "JSON nested too deep", ("max_depth",)),
    ProblemType(DecodeError, 422, "invalid-record", "Undecodable input"),
    ProblemType(
        httpsig.NonceCacheFullError,
        503,
        "pushback",
        "Too many requests in the replay window",
        _SIG,
        retry_after=True,
        detail_attr="detail",
    ),
    ProblemType(
        httpsig.UnknownKeyError,
        401,
        "unknown-key",
        "Unknown signing key",
        _SIG,
        detail_attr="detail",
    ),
    ProblemType(
        httpsig.ReplayedNonceError,
        401,
        "replayed-nonce",
        "Replayed request",
        _SIG,
        detail_attr="detail",
    ),
    ProblemType(
        httpsig.StaleSignatureError,
        401,
        "stale-signature",
        "Signature outside the time window",
        _SIG,
        detail_attr="detail",
    ),
    ProblemType(
        httpsig.BadDigestError,
        401,
        "bad-digest",
        "Content-Digest does not match the body",
        _SIG,
        detail_attr="detail",
    ),
    ProblemType(
        httpsig.HttpSignatureError,
        401,
        "bad-signature",
        "Bad HTTP message signature",
        _SIG,
        detail_attr="detail",
    ),
    ProblemType(SignatureError, 401, "bad-signature", "Bad signature"),
    ProblemType(UnknownPeerError, 403, "unknown-peer", "Not a member of the consortium", _PEER),
    ProblemType(UnknownInstitutionError, 403, "unknown-institution", "Unknown institution"),
    ProblemType(
        AuthorizationError,
        403,
        "authorization-invalid",
        "Authorization does not allow this query",
        ("reason",),
    ),
    ProblemType(
        UnknownRecordObjectionError,
        404,
        "objection-unknown-record",
        "No such record to object to",
        ("reason",),
    ),
    ProblemType(
        NotByEnterpriseError,
        403,
        "objection-not-by-enterprise",
        "Objection not signed by the enterprise",
        ("reason",),
    ),
    ProblemType(
        ObjectionClosedError, 409, "objection-closed", "Objection already closed", ("reason",)
    ),
    ProblemType(ObjectionError, 409, "objection-refused", "Objection refused", ("reason",)),
    ProblemType(DuplicateEntryError, 409, "duplicate-entry", "Already on the ledger"),
    ProblemType(NotFoundError, 404, "not-found", "Not found"),
    ProblemType(RateLimitedError, 429, "rate-limited", "Too many requests", retry_after=True),
    ProblemType(PushbackError, 503, "pushback", "Busy", retry_after=True),
    ProblemType(
        DenialNoticeError, 403, "denial-notice-refused", "Denial notice not backed by a receipt"
    ),
    ProblemType(PeerUnavailableError, 502, "peer-unavailable", "Peer unavailable", _PEER),
    ProblemType(
        PeerMisbehavedError, 502, "peer-inconsistent", "Peer answer failed verification", _PEER
    ),
    ProblemType(InconsistentLogError, 502, "peer-inconsistent", "Inconsistent log"),
    ProblemType(
        CommitmentError, 500, "commitment-mismatch", "Stored body does not match its commitment"
    ),
    ProblemType(ProofError, 502, "bad-proof", "Proof does not verify"),
    ProblemType(BundleError, 422, "bad-bundle", "Report bundle does not verify"),
    # Connection-level refusals, written by the server's protocol (node.http.server) before
    # any request reaches the application.
    ProblemType(HeadTimeoutError, 408, "request-timeout", "Request head not received in time"),
    ProblemType(BodyTimeoutError, 408, "body-timeout", "Request body not received in time"),
    ProblemType(
        TooManyConnectionsError,
        503,
        "too-many-connections",
        "Too many connections",
        ("limit",),
        retry_after=True,
    ),
    ProblemType(
        ManifestRefusedError, 409, "manifest-refused", "Manifest version cannot be applied"
    ),
    ProblemType(ConfigError, 500, "config", "Node configuration error"),
    ProblemType(
        StorageFullError,
        507,
        "storage-full",
        "Insufficient storage",
        retry_after=True,
        detail_attr="detail",  # str(exc) names the file, which is no client's business
        retry_after_s=STORAGE_FULL_RETRY_S,
    ),
    ProblemType(
        LedgerBehindError,
        500,
        "ledger-behind",
        "Ledger is smaller than what this node signed",
        ("size", "signed_size"),
    ),
    ProblemType(StoreError, 500, "store", "Storage error"),
    ProblemType(LedgerError, 500, "ledger", "Ledger error"),
)

_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-record",
    429: "pushback",
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    node_id: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": URN + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "node_id": node_id,
        **extra,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def problem_for(exc: BaseException, instance: str, node_id: str) -> JSONResponse:
    for t in PROBLEM_TYPES:
        if isinstance(exc, t.cls):
            headers: dict[str, str] = {}
            if t.status == 401:
                headers["WWW-Authenticate"] = 'Signature realm="yrd-credit-chain"'
            if t.retry_after:
                headers["Retry-After"] = str(getattr(exc, "retry_after_s", t.retry_after_s))
            extra = {name: getattr(exc, name) for name in t.fields}
            if t.status >= 500 and t.slug in ("store", "ledger", "config", "commitment-mismatch"):
                log.error("internal error on %s", instance, exc_info=exc)
            elif t.status == 507:  # the cause, in one line: an operator's problem, not a bug
                log.error("%s on %s: %s", t.title.lower(), instance, exc)
            detail = getattr(exc, t.detail_attr, None) if t.detail_attr else None
            return problem(
                t.status, t.slug, t.title, str(detail or exc), instance, node_id, headers, **extra
            )
    log.error("unhandled error on %s", instance, exc_info=exc)
    return problem(
        500,
        "internal",
        "Internal error",
        "the node failed to handle this request; see its log",
        instance,
        node_id,
    )


def install_problem_handlers(app: FastAPI, node_id: str) -> None:
    async def on_any(request: Request, exc: Exception) -> JSONResponse:
        return problem_for(exc, request.url.path, node_id)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _HTTP_SLUGS.get(exc.status_code, "error")
        return problem(
            exc.status_code,
            slug,
            slug.replace("-", " ").capitalize(),
            str(exc.detail),
            request.url.path,
            node_id,
            dict(exc.headers or {}),
        )

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}" if first else "invalid request"
        return problem(
            422,
            "invalid-record",
            "Invalid request",
            detail,
            request.url.path,
            node_id,
            errors=[
                {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
                for e in errors[:20]
            ],
        )

    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_any)
    for t in PROBLEM_TYPES:
        app.add_exception_handler(t.cls, on_any)  # type: ignore[arg-type]


def document_problems(spec: dict[str, Any]) -> None:
    """Every error is ``application/problem+json``: say so for every operation, 422 included."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    answer = {
        "description": "RFC 9457 problem details",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses["422"] = answer
            responses["default"] = answer
    for name in ("HTTPValidationError", "ValidationError"):
        spec["components"]["schemas"].pop(name, None)
