"""The signed HTTP client an operator or an institution uses against one node.

Also the one sentence for a problem a node answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import parse_json
from node.http import httpsig
from scenarios.errors import NetworkError
from scenarios.localnet.consortium import (
    Consortium,
    Institution,
)


# --- signed HTTP as an operator or institution -------------------------------------------
class NodeClient:
    """Signed requests to the consortium's nodes; responses must be signed by the node asked."""

    def __init__(
        self, cons: Consortium, key_id: str, key: Ed25519PrivateKey, timeout_s: float = 60.0
    ) -> None:
        self.cons = cons
        self._keys = {f"node:{n.node_id}": n.key() for n in cons.manifest.nodes}
        self._client = httpx.Client(
            auth=httpsig.RequestSigner(key_id, key), timeout=timeout_s, transport=cons.transport()
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, node_id: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One signed exchange; returns (status, decoded JSON). Raises NetworkError if the node
        does not answer or its answer is not signed by it."""
        url = self.cons.public_url(node_id) + path  # sent to cons.url(node_id) by cons.transport()
        content = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json"} if body is not None else {}
        request = self._client.build_request(method, url, content=content, headers=headers)
        # What the signature covers: the container target's transport rewrites where the
        # request goes (scenarios.localnet.consortium.PublishedPortTransport), not this.
        signed_url = str(request.url)
        try:
            response = self._client.send(request)
        except httpx.TimeoutException:
            raise NetworkError(
                f"node {node_id} at {self.cons.url(node_id)} did not answer in time"
            ) from None
        except httpx.HTTPError:
            raise NetworkError(
                f"node {node_id} at {self.cons.url(node_id)} is not answering; "
                "is the network up? (`creditchain status`)"
            ) from None
        sent = response.request
        if response.status_code >= 400 and not (
            "signature" in response.headers or "signature-input" in response.headers
        ):
            # A node signs only answers to requests it verified: a 401, 413, ... answered
            # before or instead of that is unsigned. Its problem is shown as it came.
            try:
                data = (
                    parse_json(response.content[:65536], "the body") if response.content else None
                )
            except ValueError:
                data = None
            return response.status_code, data
        try:
            key_id = httpsig.verify_response(
                response.status_code,
                dict(response.headers),
                response.content,
                sent.headers["signature-input"],
                sent.headers["signature"],
                self._keys,
                request_method=sent.method,
                request_url=signed_url,
            )
        except httpsig.HttpSignatureError as exc:
            raise NetworkError(f"the answer from {node_id} is not properly signed: {exc}") from exc
        if key_id != f"node:{node_id}":
            raise NetworkError(
                f"the answer from {node_id} is signed by {key_id}, not by node:{node_id}"
            )
        try:
            data = parse_json(response.content, "the body") if response.content else None
        except ValueError as exc:
            raise NetworkError(
                f"node {node_id} answered {response.status_code} with a body that is not usable "
                f"JSON: {exc}"
            ) from None
        return response.status_code, data


def problem_sentence(node_id: str, status: int, data: Any) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    title = data.get("title") if isinstance(data, dict) else None
    return f"{node_id} refused ({status} {title or 'error'}): {detail or 'no detail given'}"


def register_institutions(
    cons: Consortium, node_ids: Iterable[str] | None = None
) -> tuple[int, int]:
    """Register the institutions homed at ``node_ids`` (default all) at their home node.

    Operator-signed; idempotent (409 = already there). Returns (newly registered, already registered).
    """
    only = set(cons.node_ids if node_ids is None else node_ids)
    by_node: dict[str, list[Institution]] = {}
    for inst in cons.institutions:
        if inst.home_node in only:
            by_node.setdefault(inst.home_node, []).append(inst)

    def one_node(node_id: str) -> tuple[int, int]:
        new = old = 0
        with NodeClient(cons, f"node:{node_id}", cons.node_key(node_id), timeout_s=30.0) as client:
            for inst in by_node[node_id]:
                status, data = client.call(
                    node_id,
                    "POST",
                    "/v1/institutions",
                    {
                        "institution_id": inst.institution_id,
                        "name": inst.name,
                        "public_key": inst.public_key,
                        "purposes": list(inst.purposes),
                    },
                )
                if status == 201:
                    new += 1
                elif status == 409:
                    old += 1
                else:
                    raise NetworkError(
                        f"registering {inst.institution_id}: {problem_sentence(node_id, status, data)}"
                    )
        return new, old

    if not by_node:
        return 0, 0
    with ThreadPoolExecutor(max_workers=len(by_node)) as pool:
        counts = list(pool.map(one_node, sorted(by_node)))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


@contextmanager
def operator_client(cons: Consortium, node_id: str) -> Iterator[NodeClient]:
    """A client signing as the node's operator (``node:<id>``): ingest, registration."""
    client = NodeClient(cons, f"node:{node_id}", cons.node_key(node_id))
    try:
        yield client
    finally:
        client.close()
