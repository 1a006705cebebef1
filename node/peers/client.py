"""Signed calls from this node to its peers, with emulated inter-city latency.

:class:`PeerClient` signs every request (RFC 9421, key id ``node:<id>``),
checks that every response is signed by the peer it asked and bound to the
request, and translates transport failures into
:class:`~node.errors.PeerUnavailableError` at this boundary.

Every answer is read as a stream under a byte cap (per path: a page of a
holder's records may be larger than a checkpoint) and within one deadline for
the whole exchange (httpx's timeouts are per read, so a peer trickling a byte
a second would never time out): a peer over either is unavailable, its
connection closed, and what it sent so far dropped.

Latency and loss are applied here, in the transport, because the kernels this
runs on lack ``tc netem``: :class:`LatencyTransport` delays each exchange by
the link's one-way delay twice (request and response) and, with probability
``loss``, adds a retransmission timeout — what a lost segment costs TCP.

Invariants: no module-level clients; transports are injected (httpx
``ASGITransport`` in tests, real sockets in processes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import parse_json
from node.consortium import Manifest
from node.errors import PeerMisbehavedError, PeerUnavailableError, UnknownPeerError
from node.http import httpsig
from node.stages import TimedAuth, TimedTransport

__all__ = ["LatencyTransport", "PeerClient", "RoutingTransport", "default_latency_ms"]

RETRANSMIT_S = 0.2


def default_latency_ms(distance_km: float) -> float:
    """One-way delay for a link: 1 ms of switching plus fibre at ~100 km/ms
    (light in fibre covers ~200 km/ms; real routes are about twice the
    great-circle distance)."""
    return 1.0 + distance_km / 100.0


class LatencyTransport(httpx.AsyncBaseTransport):
    """Delays each exchange by ``2 × one-way(host)``, plus a retransmission on simulated loss."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        delay_ms: Callable[[str], float],
        loss: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.delay_ms = delay_ms
        self.loss = loss
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        one_way = self.delay_ms(request.url.host) / 1000.0
        extra = RETRANSMIT_S + 2 * one_way if self.loss and self.rng.random() < self.loss else 0.0
        if one_way or extra:
            await asyncio.sleep(one_way + extra)
        response = await self.inner.handle_async_request(request)
        if one_way:
            await asyncio.sleep(one_way)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


KEEPALIVE_EXPIRY_S = 2.0  # idle pooled connections; servers keep theirs 30 s (node/__main__.py)


class RoutingTransport(httpx.AsyncBaseTransport):
    """Dispatch by host to in-process ASGI apps (several nodes in one process)."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self.transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}
        self.down: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down or host not in self.transports:
            raise httpx.ConnectError(f"no route to {host}", request=request)
        return await self.transports[host].handle_async_request(request)


class PeerClient:
    """Signed, verified requests to peer nodes."""

    def __init__(
        self,
        manifest: Manifest,
        node_id: str,
        key: Ed25519PrivateKey,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        latency_ms: Mapping[str, float] | None = None,
        loss: float = 0.0,
        timeout_s: float = 5.0,
        urls: Mapping[str, str] | None = None,
        deadline_s: float = 30.0,
        max_bytes: int = 2 << 20,
        max_bytes_by_path: Mapping[str, int] | None = None,
    ) -> None:
        self.manifest = manifest
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.max_bytes_by_path = dict(max_bytes_by_path or {})
        self.node_id = node_id
        self._url_overrides = dict(urls or {})
        self.urls = dict(urls or {n.node_id: n.url for n in manifest.nodes})
        self._host_to_peer = {httpx.URL(u).host: p for p, u in self.urls.items()}
        latency = dict(latency_ms or {})
        # Idle pooled connections expire well before the server's keep-alive timeout
        # (node/__main__.py: 30 s), so a request never goes out on a connection the
        # peer is closing at that moment (seen as ReadError / "Server disconnected").
        inner = transport or httpx.AsyncHTTPTransport(
            retries=0, limits=httpx.Limits(max_connections=200, keepalive_expiry=KEEPALIVE_EXPIRY_S)
        )

        def delay(host: str) -> float:
            return float(latency.get(self._host_to_peer.get(host, ""), 0.0))

        self._keys = {f"node:{n.node_id}": n.key() for n in manifest.nodes}
        wire = TimedTransport(LatencyTransport(inner, delay, loss) if (latency or loss) else inner)
        self._client = httpx.AsyncClient(
            transport=wire,
            auth=TimedAuth(httpsig.RequestSigner(f"node:{node_id}", key)),
            timeout=timeout_s,
        )
        # Checkpoints, proofs and views are self-authenticating (signed notes and
        # proofs checked against them): fetching them needs no message signature.
        self._plain = httpx.AsyncClient(transport=wire, timeout=timeout_s)

    def use_manifest(self, manifest: Manifest) -> None:
        """Follow a newer manifest version: its nodes' URLs (overrides kept) and keys."""
        self.manifest = manifest
        self.urls = {n.node_id: self._url_overrides.get(n.node_id, n.url) for n in manifest.nodes}
        self._host_to_peer = {httpx.URL(u).host: p for p, u in self.urls.items()}
        self._keys = {f"node:{n.node_id}": n.key() for n in manifest.nodes}

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._plain.aclose()

    def consistency_fetcher(self, peer_id: str) -> Callable[[int, int], Awaitable[list[bytes]]]:
        """A function that fetches a consistency proof from ``peer_id`` (checked by the caller)."""

        async def fetch(old: int, new: int) -> list[bytes]:
            got = await self.fetch(
                peer_id, "/v1/proofs/consistency", params={"old": old, "new": new}
            )
            try:
                return [base64.b64decode(p, validate=True) for p in got["proof"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise PeerMisbehavedError(peer_id, f"malformed consistency proof: {exc}") from exc

        return fetch

    async def fetch(
        self, peer_id: str, path: str, *, params: Mapping[str, Any] | None = None, raw: bool = False
    ) -> Any:
        """Unsigned GET of self-authenticating data; the caller verifies what it gets.

        Raises:
            PeerUnavailableError: transport failure, timeout, or a non-2xx answer.
        """
        request = self._plain.build_request("GET", self.url(peer_id) + path, params=params)
        response, body = await self._exchange(self._plain, peer_id, path, request)
        if response.status_code >= 400:
            raise PeerUnavailableError(peer_id, f"answered {response.status_code}")
        if raw:
            return body
        try:
            return parse_json(body, "response")
        except ValueError as exc:
            raise PeerMisbehavedError(peer_id, f"response is not usable JSON: {exc}") from exc

    async def fetch_if_changed(
        self,
        peer_id: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        etag: str = "",
        raw: bool = False,
    ) -> tuple[Any, str]:
        """Unsigned conditional GET: ``(None, etag)`` when the peer answers ``304 Not Modified``.

        Otherwise the decoded JSON (the bytes with ``raw``) and the answer's
        ``ETag`` (empty if it sent none).

        Raises:
            PeerUnavailableError: transport failure, timeout, or a non-2xx, non-304 answer.
            PeerMisbehavedError: a 2xx answer that is not usable JSON.
        """
        headers = {"if-none-match": etag} if etag else {}
        request = self._plain.build_request(
            "GET", self.url(peer_id) + path, params=params, headers=headers
        )
        response, body = await self._exchange(self._plain, peer_id, path, request)
        if response.status_code == 304 and etag:
            return None, etag
        if response.status_code >= 300:
            raise PeerUnavailableError(peer_id, f"answered {response.status_code}")
        tag = response.headers.get("etag", "")
        if raw:
            return body, tag
        try:
            return parse_json(body, "response"), tag
        except ValueError as exc:
            raise PeerMisbehavedError(peer_id, f"response is not usable JSON: {exc}") from exc

    async def _exchange(
        self, client: httpx.AsyncClient, peer_id: str, path: str, request: httpx.Request
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request`` and read its answer under the path's byte cap and the deadline.

        Raises:
            PeerUnavailableError: transport failure, an answer over the cap, or no
                complete answer within the deadline (the connection is closed).
        """
        cap = self.max_bytes_by_path.get(path, self.max_bytes)
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.deadline_s):
                response = await client.send(request, stream=True)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise PeerUnavailableError(
                        peer_id, f"answer of {declared} bytes is over the {cap}-byte cap"
                    )
                chunks: list[bytes] = []
                got = 0
                async for chunk in response.aiter_bytes():
                    got += len(chunk)
                    if got > cap:
                        raise PeerUnavailableError(
                            peer_id, f"answer over the {cap}-byte cap for {path}"
                        )
                    chunks.append(chunk)
                return response, b"".join(chunks)
        except TimeoutError as exc:
            raise PeerUnavailableError(
                peer_id, f"no complete answer within {self.deadline_s:g} s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise PeerUnavailableError(peer_id, f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise PeerUnavailableError(
                peer_id, f"unreachable ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            if response is not None:
                await response.aclose()

    def url(self, peer_id: str) -> str:
        try:
            return self.urls[peer_id]
        except KeyError:
            raise UnknownPeerError(peer_id) from None

    async def call(
        self,
        peer_id: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        raw: bool = False,
    ) -> Any:
        """One signed exchange; returns the decoded JSON of a verified 2xx response.

        Raises:
            PeerUnavailableError: transport failure, timeout, or a non-2xx answer.
            PeerMisbehavedError: the response is unsigned, signed by someone else,
                or not bound to this request.
        """
        content = json.dumps(json_body).encode() if json_body is not None else b""
        headers = {"content-type": "application/json"} if json_body is not None else {}
        url = self.url(peer_id) + path
        request = self._client.build_request(
            method,
            url,
            content=content,
            headers=headers,
            params=params,
            timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
        )
        signed_url = str(request.url)  # before any transport rewrites where it goes
        response, body = await self._exchange(self._client, peer_id, path, request)
        sent = response.request
        if response.status_code >= 400 and not _signed(response.headers):
            # Refused before or instead of verifying our signature (401, 413, ...): a node
            # signs only answers to requests it verified. The detail is shown, never used.
            raise PeerUnavailableError(
                peer_id, f"answered {response.status_code} unsigned: {_unsigned_detail(body)}"
            )
        try:
            key_id = httpsig.verify_response(
                response.status_code,
                dict(response.headers),
                body,
                sent.headers["signature-input"],
                sent.headers["signature"],
                self._keys,
                request_method=sent.method,
                request_url=signed_url,
            )
        except httpsig.HttpSignatureError as exc:
            raise PeerMisbehavedError(peer_id, f"response signature: {exc}") from exc
        if key_id != f"node:{peer_id}":
            raise PeerMisbehavedError(
                peer_id, f"response signed by {key_id}, not by node:{peer_id}"
            )
        if raw and response.status_code < 400:
            return body
        try:
            data = parse_json(body, "response") if body else None
        except ValueError as exc:
            raise PeerMisbehavedError(peer_id, f"response is not usable JSON: {exc}") from exc
        if response.status_code >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            raise PeerUnavailableError(
                peer_id,
                f"answered {response.status_code}: {detail or 'error'}",
                data if isinstance(data, dict) else None,
            )
        return data


def _signed(headers: Mapping[str, str]) -> bool:
    return "signature" in headers or "signature-input" in headers


def _unsigned_detail(body: bytes) -> str:
    """The ``detail`` of an unsigned problem answer, for a message: bounded, never trusted."""
    try:
        data = parse_json(body[:4096], "response") if body else None
    except ValueError:
        return "no usable detail"
    detail = data.get("detail") if isinstance(data, dict) else None
    return str(detail)[:300] if detail else "no detail given"
