"""The node's ASGI middleware: request limits, signed responses (RFC 9421) and request metrics.

Invariant: no route sees a request body that is larger than ``max_body_bytes`` or whose
JSON nests deeper than :data:`ledger.MAX_JSON_DEPTH`; both are refused here, before
anything parses the body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter, Histogram

from ledger import JsonDepthError, check_json_depth
from node.api.problems import problem, problem_for
from node.http import httpsig
from node.stages import stage
from node.state import INLINE_VERIFY_BYTES, NodeState

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


# --- signatures in, signatures out -------------------------------------------------
#: Limits on the request head, checked before anything else. They sit below the
#: server's own guard (uvicorn's h11 parser refuses a head over 16 KiB with a bare
#: 400), so a request with too many or too large header fields, or too long a
#: target, gets a problem details answer instead.
MAX_HEADER_FIELDS = 64


MAX_HEADER_BYTES = 8 * 1024


MAX_TARGET_BYTES = 4 * 1024


class SignedResponses:
    """Pure ASGI middleware: limit head, body size and JSON depth; sign responses to verified requests.

    A response is signed only if the route verified the request's signature
    (``node.state.signed_caller`` marks the request with the method and URL it
    verified), and it is bound to that request: its method, authority, path,
    query and signature (RFC 9421 §2.4). Everything else goes out unsigned: the
    size refusals (413, 414, 431) and 401s, answered before or instead of a
    verification, and the answers of routes that verify nothing. Signature fields
    captured from one request and replayed to another route therefore never get a
    node-signed answer.
    """

    def __init__(self, app: ASGIApp, state_getter: Callable[[], NodeState]) -> None:
        self.app = app
        self.state = state_getter

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state()
        raw_headers = scope.get("headers", [])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        path = scope.get("path", "")
        sig_input, sig = headers.get("signature-input"), headers.get("signature")
        if sig_input and sig:
            send = self._signing(send, sig_input, sig, state, scope.setdefault("state", {}))
        head_bytes = sum(len(k) + len(v) + 4 for k, v in raw_headers)
        if len(raw_headers) > MAX_HEADER_FIELDS or head_bytes > MAX_HEADER_BYTES:
            await problem(
                431,
                "headers-too-large",
                "Request header fields too large",
                f"requests are limited to {MAX_HEADER_FIELDS} header fields and {MAX_HEADER_BYTES} bytes "
                f"of them, got {len(raw_headers)} fields and {head_bytes} bytes",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        target = len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b""))
        if target > MAX_TARGET_BYTES:
            await problem(
                414,
                "uri-too-long",
                "Request target too long",
                f"request targets are limited to {MAX_TARGET_BYTES} bytes, got {target}",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        limit = state.settings.max_body_bytes
        too_large = problem(
            413,
            "too-large",
            "Body too large",
            f"request bodies are limited to {limit} bytes",
            path,
            state.node_id,
        )
        declared = headers.get("content-length", "").strip()
        if declared and not (declared.isascii() and declared.isdigit()):
            await problem(
                400,
                "bad-request",
                "Bad request",
                f"Content-Length must be a decimal number, got {declared[:40]!r}",
                path,
                state.node_id,
            )(scope, receive, send)
            return
        if declared and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        # Read the body here, up to the limit (a chunked body declares no length, so
        # this is where the limit holds for it), check how deep its JSON nests before
        # any parser sees it, then replay it to the app.
        parts: list[bytes] = []
        total, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            parts.append(message.get("body", b""))
            total += len(parts[-1])
            if total > limit:
                await too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(parts)
        try:
            if len(body) <= INLINE_VERIFY_BYTES:
                check_json_depth(body, "request body")
            else:  # a scan of a large body would hold up the event loop
                await asyncio.to_thread(check_json_depth, body, "request body")
        except JsonDepthError as exc:
            await problem_for(exc, path, state.node_id)(scope, receive, send)
            return
        buffered: list[Any] = [{"type": "http.request", "body": body, "more_body": False}]
        upstream = receive

        async def replay() -> Any:
            return buffered.pop() if buffered else await upstream()

        receive = replay
        await self.app(scope, receive, send)

    @staticmethod
    def _signing(
        send: Callable[[Any], Awaitable[None]],
        sig_input: str,
        sig: str,
        state: NodeState,
        request_state: dict[str, Any],
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap ``send``: buffer the response, then send it signed and bound to the request
        if the route verified the request's signature (else as it is)."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            verified: tuple[str, str] | None = request_state.get("verified_request")
            if verified is None and not start:
                await send(message)  # nothing verified (yet): the answer goes out unsigned
                return
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    raw = [
                        (k, v)
                        for k, v in start.get("headers", [])
                        if k.lower() != b"content-length"
                    ]
                    raw += [(b"content-length", str(len(body)).encode())]
                    assert verified is not None  # captured only once a request verified
                    try:
                        with stage("response_sign"):
                            extra = httpsig.sign_response(
                                start["status"],
                                {},
                                body,
                                sig_input,
                                sig,
                                f"node:{state.node_id}",
                                state.key,
                                request_method=verified[0],
                                request_url=verified[1],
                            )
                    except httpsig.HttpSignatureError:
                        extra = {}  # nothing usable to bind to: the answer goes out unsigned
                    raw += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    await send({**start, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        return capture


# Witnessing, mirroring and monitoring traffic. Every other request is foreground
# demand (reports, holder answers, authorizations, ingest, ...): mirroring paces
# itself only while there is some (node.peers.mirror.pause_after).
BACKGROUND_PATHS = frozenset(
    {
        "/v1/health",
        "/v1/info",
        "/metrics",
        "/v1/checkpoint",
        "/v1/checkpoint/consistency",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
        "/v1/entries",
        "/v1/catalogue",
        "/v1/cosignatures",
        "/v1/peers",
        "/v1/views",
    }
)


class RequestMetrics:
    """Pure ASGI middleware: count requests by route and status and time them.

    An exception that escaped the problem table becomes a problem here (the
    response has not started), so the client still gets RFC 9457 details.
    """

    def __init__(
        self,
        app: ASGIApp,
        requests: Counter,
        latency: Histogram,
        node_id: str,
        counters: dict[str, Any],
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.node_id = node_id
        self.counters = counters

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]
        if (
            scope.get("path") not in BACKGROUND_PATHS
        ):  # demand that mirroring yields to (node.peers.mirror)
            self.counters["foreground"] = self.counters.get("foreground", 0) + 1

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # reached only if a handler escaped the table
            if status[0]:
                raise  # the answer has started: nothing better can be sent
            await problem_for(exc, str(scope.get("path", "")), self.node_id)(scope, receive, watch)
        name = getattr(scope.get("route"), "path", "unmatched")
        self.requests.labels(name, str(status[0])).inc()
        self.latency.labels(name).observe(time.perf_counter() - t0)
