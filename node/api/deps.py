"""What the route modules share: the caller dependency, the operator check, the JSON body."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry, Gauge

from ledger import InvalidRecordError
from node.errors import UnknownPeerError
from node.state import Caller, NodeState, signed_caller

__all__ = ["NodeMetrics", "caller_for", "json_body", "operator_check"]


@dataclass(frozen=True, slots=True)
class NodeMetrics:
    """The Prometheus registry ``/metrics`` serves and the gauges it sets when asked."""

    registry: CollectorRegistry
    size: Gauge
    height: Gauge
    alarms: Gauge


def caller_for(st: NodeState) -> Callable[[Request], Awaitable[Caller]]:
    """The dependency that verifies a request's signature and names its caller."""

    async def caller(request: Request) -> Caller:
        return await signed_caller(st, request)

    return caller


def operator_check(st: NodeState) -> Callable[[Caller], None]:
    """A check that refuses every caller but this node's own operator key."""

    def require_operator(c: Caller) -> None:
        if c.kind != "node" or c.id != st.node_id:
            raise UnknownPeerError(c.id, "only this node's operator (its own key) may do this")

    return require_operator


async def json_body(request: Request) -> Any:
    """The request body as JSON; a body that is not JSON is an invalid record."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidRecordError(f"request body is not JSON: {exc}") from exc
