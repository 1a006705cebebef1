"""Objections and the network clock, as a local network's users drive them.

An enterprise files an objection at a node of its own city, signed through its city's
registry (the consortium directory keeps the registry keys, as for consents); the
holder's operator replies with the outcome. The network clock's offset is set on every
node at once (``advance_clock``), and refused unless every node is up to agree.
"""

from __future__ import annotations

import secrets
from typing import Any

from ledger import InvalidUsccError, parse_uscc
from node.disputes import sign_objection
from node.keys import load_private_key
from scenarios.errors import NetworkError
from scenarios.localnet.client import operator_client, problem_sentence
from scenarios.localnet.consortium import Consortium, registry_key_path
from scenarios.localnet.processes import node_infos

__all__ = [
    "advance_clock",
    "decide_objection",
    "enterprise_home",
    "file_objection",
    "objection_request",
    "show_objection",
]


def enterprise_home(cons: Consortium, uscc: str) -> str:
    """The first node of the enterprise's own city (where it files objections)."""
    try:
        admin = parse_uscc(uscc).admin_code
    except InvalidUsccError as exc:
        raise NetworkError(f"{uscc} is not a valid USCC: {exc}") from exc
    for city in cons.topology.cities:
        if city.admin_code == admin:
            return city.node_ids[0]
    raise NetworkError(f"no city of this consortium serves area {admin} of {uscc}")


def objection_request(
    cons: Consortium,
    uscc: str,
    holder: str,
    record_id: str,
    reason: str,
    objection_id: str | None = None,
) -> dict[str, Any]:
    """A ``POST /v1/objections`` body signed as the enterprise, through its city's registry."""
    admin = parse_uscc(uscc).admin_code
    registry = cons.manifest.registry_for_admin_code(admin)
    if registry is None:
        raise NetworkError(f"no registry of this consortium signs for enterprises of area {admin}")
    key = load_private_key(registry_key_path(cons.dir, registry.city))
    oid = objection_id or f"obj-{secrets.token_hex(6)}"
    return {
        "objection_id": oid,
        "uscc": uscc,
        "holder": holder,
        "record_id": record_id,
        "reason": reason,
        "consent": sign_objection(key, oid, uscc, holder, record_id, reason),
    }


def file_objection(
    cons: Consortium, body: dict[str, Any], home: str | None = None
) -> tuple[int, Any]:
    """File ``body`` at the enterprise's home node; returns (status, answer)."""
    node = home or enterprise_home(cons, str(body["uscc"]))
    with operator_client(cons, node) as client:
        return client.call(node, "POST", "/v1/objections", body)


def decide_objection(
    cons: Consortium, holder: str, objection_id: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """The holder's operator replies to an objection; returns (status, answer)."""
    with operator_client(cons, holder) as client:
        return client.call(holder, "POST", f"/v1/objections/{objection_id}/outcome", body)


def show_objection(cons: Consortium, home: str, holder: str, objection_id: str) -> dict[str, Any]:
    """The holder's signed objection and outcome, fetched and checked by the home node."""
    with operator_client(cons, home) as client:
        status, data = client.call(home, "GET", f"/v1/objections/{objection_id}?holder={holder}")
    if status != 200:
        raise NetworkError(problem_sentence(home, status, data))
    return dict(data)


def advance_clock(cons: Consortium, seconds: int) -> dict[str, int]:
    """Advance the network clock by ``seconds`` on every node; returns node → new offset.

    Every node gets the same offset: the largest any node has, plus ``seconds``.

    Raises:
        NetworkError: a node is down (the nodes would disagree) or refuses the offset.
    """
    if seconds < 0:
        raise NetworkError(f"the network clock only moves forward, not by {seconds} s")
    infos = node_infos(cons)
    down = [n for n, i in infos.items() if not i]
    if down:
        raise NetworkError(
            f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} down: every node must agree "
            "on the network clock, so it is advanced only when all are up"
        )
    current = max(int((i or {}).get("clock", {}).get("offset_s", 0)) for i in infos.values())
    target = current + int(seconds)
    out = {}
    for node in cons.node_ids:
        with operator_client(cons, node) as client:
            status, data = client.call(node, "PUT", "/v1/clock", {"offset_s": target})
        if status != 200:
            raise NetworkError(problem_sentence(node, status, data))
        out[node] = int(data["offset_s"])
    return out
