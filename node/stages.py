"""Where a node's time goes: the stages of a report and of background work, as a histogram.

``node_stage_seconds{stage, area}`` (a Prometheus histogram in the app's registry,
served on ``/metrics``) gets one observation per pass through a stage: wall seconds
from entering to leaving it. ``area`` says on whose behalf: ``report`` (a home node
answering an institution's ``/v1/reports``), ``holder`` (answering a home node's
``/v1/peer/...``), ``background`` (mirroring, witnessing and the requests serving
them) or ``other``. The stages:

==================== ===========================================================
``request``          the whole request, as the outermost middleware sees it
``request_verify``   RFC 9421 verification of the incoming request
``authorization_check`` the home node's check of the cited authorization
``routing``          finding the holders (admin code and catalogue)
``holder_call``      one signed exchange with a holder, as the home node waits for it
``peer_sign``        signing an outgoing peer request (RFC 9421)
``peer_transport``   the exchange on the wire (up to the response head; the
                     emulated latency included), any outgoing peer request
``holder_verify``    the holder's checks of the home node's checkpoint, the
                     authorization's inclusion and the authorization itself
``holder_proofs``    the holder reading bodies and building inclusion proofs
``holder_receipt``   the holder's receipt appended (and committed)
``response_sign``    signing a response bound to its request (RFC 9421)
``home_verify``      the home node's verification of a holder's answer
``home_receipt``     the home node's receipt appended (and committed)
``bundle_sign``      the home node's signature over the report
``mirror_round``     one mirroring and witnessing round over every peer
==================== ===========================================================

Which node and which area a stage is counted for travels in a
:class:`~contextvars.ContextVar`, set per request by the outermost ASGI middleware
(:class:`StageContext`) and reset when the request ends: the in-process transport of
the tests runs a peer's app in the caller's task, so without the reset a holder's
stages would land in its caller's histogram. Tasks started inside a request (the
home node's parallel holder calls) inherit it. Outside any binding (a unit test
calling a function directly) stages cost a ContextVar read and record nothing.

Stages that await (``holder_call``, ``peer_transport``, the receipts,
``mirror_round``) count wall time, waiting included; the others run without
yielding, so on an unloaded core they are CPU time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Histogram

__all__ = [
    "STAGES",
    "Span",
    "StageContext",
    "StageTimer",
    "TimedAuth",
    "TimedTransport",
    "area_of",
    "bound",
    "stage",
]

STAGES = (
    "request",
    "request_verify",
    "authorization_check",
    "routing",
    "holder_call",
    "peer_sign",
    "peer_transport",
    "holder_verify",
    "holder_proofs",
    "holder_receipt",
    "response_sign",
    "home_verify",
    "home_receipt",
    "bundle_sign",
    "mirror_round",
)

BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class StageTimer:
    """The ``node_stage_seconds`` histogram of one node, registered in its app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "node_stage_seconds",
            "wall seconds per pass through a stage of the report path or of background work",
            ["stage", "area"],
            registry=registry,
            buckets=BUCKETS,
        )
        self._children: dict[tuple[str, str], Any] = {}

    def observe(self, name: str, area: str, seconds: float) -> None:
        child = self._children.get((name, area))
        if child is None:
            child = self._children[(name, area)] = self.histogram.labels(name, area)
        child.observe(seconds)


@dataclass(frozen=True, slots=True)
class _Binding:
    timer: StageTimer
    area: str


_current: ContextVar[_Binding | None] = ContextVar("node_stage_binding", default=None)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the block as one pass through stage ``name`` (of the bound node and area)."""
    binding = _current.get()
    if binding is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        binding.timer.observe(name, binding.area, time.perf_counter() - t0)


class Span:
    """A stage started now and ended by :meth:`stop`, for a stretch of code that a ``with``
    block would have to re-indent. Not stopped (an exception left early): not counted."""

    __slots__ = ("_binding", "_name", "_t0")

    def __init__(self, name: str) -> None:
        self._binding = _current.get()
        self._name = name
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self._binding is not None:
            self._binding.timer.observe(
                self._name, self._binding.area, time.perf_counter() - self._t0
            )
            self._binding = None


@contextlib.contextmanager
def bound(timer: StageTimer | None, area: str) -> Iterator[None]:
    """Count the stages of the block for ``timer``'s node in ``area`` (none if ``timer`` is None)."""
    token = _current.set(_Binding(timer, area) if timer is not None else None)
    try:
        yield
    finally:
        _current.reset(token)


def area_of(path: str, background_paths: frozenset[str]) -> str:
    """The area of a request to ``path``."""
    if path == "/v1/reports":
        return "report"
    if path.startswith("/v1/peer/"):
        return "holder"
    if path in background_paths:
        return "background"
    return "other"


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class StageContext:
    """Outermost ASGI middleware: bind this node's timer and the request's area for the
    request's lifetime (reset after it), and count the whole request as stage ``request``."""

    def __init__(self, app: ASGIApp, timer: StageTimer, background_paths: frozenset[str]) -> None:
        self.app = app
        self.timer = timer
        self.background_paths = background_paths

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        area = area_of(str(scope.get("path", "")), self.background_paths)
        token = _current.set(_Binding(self.timer, area))
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.timer.observe("request", area, time.perf_counter() - t0)
            _current.reset(token)


class TimedAuth(httpx.Auth):
    """An httpx auth flow whose every step (signing) counts as stage ``name``."""

    def __init__(self, inner: httpx.Auth, name: str = "peer_sign") -> None:
        self.inner = inner
        self.name = name
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.inner.auth_flow(request)
        with stage(self.name):
            step = next(flow)
        while True:
            response = yield step
            span = Span(self.name)  # counted only if the flow signs another request
            try:
                step = flow.send(response)
            except StopIteration:
                return
            span.stop()


class TimedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose every exchange (up to the response head) counts as ``name``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, name: str = "peer_transport") -> None:
        self.inner = inner
        self.name = name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with stage(self.name):
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
