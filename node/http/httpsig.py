"""Sign and verify HTTP messages between city nodes, peers and institutions.

This module is the one place that signs and verifies HTTP messages. It applies a
fixed profile of RFC 9421 (HTTP Message Signatures) with RFC 9530 (Content-Digest)
and leaves signature-base construction, component resolution and Structured Field
serialization to the ``http-message-signatures`` library; what is written here is
policy: which components must be covered, which parameters must be present, the
replay window, the nonce cache and the error taxonomy.

Fast path: a message of exactly the profile's shape (as this module's signers write
it) is signed or checked by :mod:`node.http.fastsig` instead, with the same checks
in the same order and the same errors; the signature base and field values are the
library's byte for byte. The decision is made before any check runs, from the
fields alone, and anything outside the shape goes through the library unchanged.
``fast_path=False`` on every entry point forces the library (the differential
test's oracle and the bench's baseline).

Request profile (signed by :class:`RequestSigner`, checked by :class:`RequestVerifier`):

* algorithm Ed25519, label ``sig1``, tag ``yrd-credit-chain``;
* covered components ``@method``, ``@authority``, ``@path``, ``@query`` and
  ``content-digest``. ``@query`` is there because ``@path`` excludes the query
  string and node endpoints take query parameters: without it an intermediary
  could change ``?subject=…`` and the signature would still verify;
* Content-Digest is always sent with a ``sha-256`` member, also for empty bodies;
* parameters ``created``, ``keyid``, ``alg="ed25519"``, ``tag`` and ``nonce`` (22
  base64url characters, 128 random bits) are all required; any other parameter
  (``expires`` included) is refused, so the parameter set is exactly what the
  signer produces.

Verification order (first failure wins)::

    parse -> required components -> key lookup -> Content-Digest -> signature
          -> created within ±window -> nonce not seen before (then remembered)

The nonce is recorded only after the signature verifies, so unsigned or forged
requests cannot fill or poison the cache. A nonce is remembered until
``created + window_s``; after that the request is stale anyway. When the cache is
full of unexpired nonces, verification fails with :class:`NonceCacheFullError`
(``retry_after_s`` tells when the oldest entry expires) instead of forgetting a
nonce early, which would reopen a replay window; map it to 503 + Retry-After.

Response profile (:func:`sign_response`, :func:`verify_response`): covered components
``@status``, ``content-digest``, ``"@method";req``, ``"@authority";req``,
``"@path";req``, ``"@query";req`` and ``"signature";req;key="sig1"``, the request's
own signature, per RFC 9421 §2.4. The library resolves ``;req`` components natively
(``HTTPSignatureComponentResolver.resolve``), so no side-channel header is needed.
Binding to the request's Ed25519 signature value binds the response to every
component and parameter that signature covers, nonce included; covering the
request's method, authority, path and query as well binds it to the request the
server actually answered: a client's signature fields replayed to another route
(where nothing verifies them) yield, at most, an answer whose ``;req`` components
name that other route, which the original client's :func:`verify_response` refuses.
The server signs a response only to a request whose signature it verified, with
the method and URL it verified it against; the client verifies with the method and
URL it sent and the Signature-Input/Signature header values it sent.

Deployment note: the verifier's ``url`` must carry the authority the signer was
told to use, i.e. the node's configured public base URL plus the request target,
not a Host header taken on trust; otherwise a request signed for node A could be
replayed to node B (nonce caches are per node).

Errors::

    HttpSignatureError                  .reason slug, .detail
    ├── MissingSignatureError           missing-signature
    ├── MalformedSignatureError         malformed-signature
    ├── UnknownKeyError                 unknown-key         (.key_id)
    ├── BadDigestError                  bad-digest
    ├── MissingComponentError           missing-component   (.missing)
    ├── BadSignatureError               bad-signature
    ├── StaleSignatureError             stale               (.created, .now, .skew_s, .window_s)
    ├── ReplayedNonceError              replayed-nonce      (.key_id, .nonce)
    └── NonceCacheFullError             nonce-cache-full    (.retry_after_s, .capacity)
"""

from __future__ import annotations

import heapq
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeAlias

import http_sf
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
)
from http_message_signatures.algorithms import ED25519

from node.errors import NodeError
from node.http import fastsig

__all__ = [
    "ALGORITHM",
    "DEFAULT_WINDOW_S",
    "REQUEST_COMPONENTS",
    "RESPONSE_COMPONENTS",
    "SIGNATURE_LABEL",
    "SIGNATURE_TAG",
    "BadDigestError",
    "BadSignatureError",
    "HttpSignatureError",
    "KeyResolver",
    "KeySource",
    "MalformedSignatureError",
    "MissingComponentError",
    "MissingSignatureError",
    "NonceCache",
    "NonceCacheFullError",
    "ReplayedNonceError",
    "RequestSigner",
    "RequestVerifier",
    "StaleSignatureError",
    "UnknownKeyError",
    "VerifiedRequest",
    "check_content_digest",
    "content_digest",
    "sign_response",
    "verify_response",
]

SIGNATURE_LABEL = "sig1"
SIGNATURE_TAG = "yrd-credit-chain"
ALGORITHM = "ed25519"
DEFAULT_WINDOW_S = 300

REQUEST_COMPONENTS: tuple[str, ...] = ("@method", "@authority", "@path", "@query", "content-digest")
RESPONSE_COMPONENTS: tuple[str, ...] = (
    "@status",
    "content-digest",
    '"@method";req',
    '"@authority";req',
    '"@path";req',
    '"@query";req',
    f'"signature";req;key="{SIGNATURE_LABEL}"',
)

_REQUEST_PARAMS = frozenset({"created", "keyid", "alg", "nonce", "tag"})
_RESPONSE_PARAMS = frozenset({"created", "keyid", "alg", "tag"})
# secrets.token_urlsafe(16): 16 random bytes, unpadded base64url.
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_NONCE_BYTES = 16
# The library's wording for the two failures the fast path detects itself, so that a
# message fails with the same detail whichever path checked it.
_DIGEST_MISMATCH = "Content-Digest does not match the message body"
_NOT_VERIFIED = "the signature does not verify over the covered components"

# A component identifier as (name, parameters), ignoring parameter order (RFC 9421 §2).
_ComponentId = tuple[str, frozenset[tuple[str, Any]]]


# --------------------------------------------------------------------------- errors


class HttpSignatureError(NodeError):
    """Root of every error this module raises about a message (a :class:`NodeError`).

    Attributes:
        reason: stable slug naming the failed check (``"bad-signature"`` …),
            suitable for a problem ``type``.
        detail: human-readable evidence.
    """

    reason: ClassVar[str] = "http-signature-error"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class MissingSignatureError(HttpSignatureError):
    """The message carries no ``sig1`` signature (Signature-Input or Signature absent)."""

    reason: ClassVar[str] = "missing-signature"


class MalformedSignatureError(HttpSignatureError):
    """Signature fields are not valid Structured Fields or break the profile."""

    reason: ClassVar[str] = "malformed-signature"


class UnknownKeyError(HttpSignatureError):
    """The ``keyid`` names no trusted key.

    Attributes:
        key_id: the key id as sent.
    """

    reason: ClassVar[str] = "unknown-key"

    def __init__(self, key_id: str, detail: str | None = None) -> None:
        super().__init__(detail or f"no trusted key for keyid {key_id!r}")
        self.key_id = key_id


class BadDigestError(HttpSignatureError):
    """Content-Digest is absent, malformed, or does not match the body."""

    reason: ClassVar[str] = "bad-digest"


class MissingComponentError(HttpSignatureError):
    """The signature does not cover a component the profile requires.

    Attributes:
        missing: serialized identifiers of the uncovered components.
    """

    reason: ClassVar[str] = "missing-component"

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(f"signature does not cover {', '.join(missing)}")
        self.missing = missing


class BadSignatureError(HttpSignatureError):
    """The signature does not verify over this message."""

    reason: ClassVar[str] = "bad-signature"


class StaleSignatureError(HttpSignatureError):
    """``created`` lies outside ``now ± window_s``.

    Attributes:
        created: the signed creation time (Unix seconds).
        now: the verifier's clock reading.
        skew_s: ``now - created``; positive means the signature is in the past.
        window_s: the accepted window.
    """

    reason: ClassVar[str] = "stale"

    def __init__(self, created: int, now: float, window_s: int) -> None:
        skew = now - created
        excess = abs(skew) - window_s
        direction = "in the past" if skew > 0 else "in the future"
        super().__init__(
            f"created={created} is {abs(skew):g}s {direction}, "
            f"{excess:g}s beyond the ±{window_s}s window"
        )
        self.created = created
        self.now = now
        self.skew_s = skew
        self.window_s = window_s


class ReplayedNonceError(HttpSignatureError):
    """A validly signed request whose nonce was already accepted in the window.

    Attributes:
        key_id: signer of the replayed request.
        nonce: the repeated nonce.
    """

    reason: ClassVar[str] = "replayed-nonce"

    def __init__(self, key_id: str, nonce: str) -> None:
        super().__init__(f"nonce {nonce!r} from keyid {key_id!r} was already used")
        self.key_id = key_id
        self.nonce = nonce


class NonceCacheFullError(HttpSignatureError):
    """The nonce cache holds ``capacity`` unexpired nonces; the request is pushed back.

    Attributes:
        retry_after_s: seconds until the oldest remembered nonce expires.
        capacity: the cache's bound.
    """

    reason: ClassVar[str] = "nonce-cache-full"

    def __init__(self, retry_after_s: int, capacity: int) -> None:
        super().__init__(
            f"nonce cache holds {capacity}/{capacity} unexpired nonces; retry after {retry_after_s}s"
        )
        self.retry_after_s = retry_after_s
        self.capacity = capacity


# --------------------------------------------------------------------------- keys


class KeyResolver(Protocol):
    """Returns the trusted Ed25519 public key for a ``keyid``.

    Raise :class:`UnknownKeyError` or :class:`KeyError` (or return ``None``) for an
    unknown key; anything else is treated as a configuration bug and propagates.
    """

    def __call__(self, key_id: str, /) -> Ed25519PublicKey | None: ...


#: What callers may pass as ``resolve_key``: a resolver callable or a plain mapping.
KeySource: TypeAlias = KeyResolver | Mapping[str, Ed25519PublicKey]


def _resolve_key(source: KeySource, key_id: str) -> Ed25519PublicKey:
    key: object
    if isinstance(source, Mapping):
        key = source.get(key_id)
    else:
        try:
            key = source(key_id)
        except UnknownKeyError:
            raise
        except KeyError as exc:
            raise UnknownKeyError(key_id) from exc
    if key is None:
        raise UnknownKeyError(key_id)
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError(
            f"key resolver returned {type(key).__name__} for {key_id!r}, not Ed25519PublicKey"
        )
    return key


# --------------------------------------------------------------------------- digests


def content_digest(body: bytes) -> str:
    """Return the RFC 9530 Content-Digest field value for ``body``.

    Args:
        body: message content exactly as sent (before any content decoding).

    Returns:
        A Structured Field Dictionary ``sha-256=:<base64>:``, also for ``b""``.
    """
    return fastsig.content_digest(bytes(body))


def check_content_digest(header: str | None, body: bytes) -> None:
    """Check a Content-Digest field value against ``body``.

    Every member must use an algorithm the library knows (``sha-256``, ``sha-512``)
    and match; unknown algorithms are refused rather than ignored, so a sender cannot
    pass a check by naming a digest nobody computes.

    Args:
        header: the Content-Digest field value, or ``None`` when absent.
        body: message content exactly as received.

    Raises:
        BadDigestError: the field is absent, malformed or does not match.
    """
    if header is None or not header.strip():
        raise BadDigestError("Content-Digest is absent")
    body = bytes(body)
    if fastsig.digest_shape_ok(header):
        if not fastsig.digest_matches(header, body):
            raise BadDigestError(f"{_DIGEST_MISMATCH} (Content-Digest: {header!r})")
        return
    try:
        ContentDigest.verify(header, bytes(body))
    except HTTPMessageSignaturesException as exc:
        raise BadDigestError(f"{exc} (Content-Digest: {header!r})") from exc


# --------------------------------------------------------------------------- message views


class _FieldLines:
    """Header field lines in wire order, exposing what the library's resolver reads."""

    __slots__ = ("_lines",)

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self._lines = list(lines)

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> _FieldLines:
        # httpx.Headers and starlette's Headers keep repeated fields apart in
        # multi_items(); a plain Mapping has one line per name.
        multi = getattr(headers, "multi_items", None)
        return cls(multi() if callable(multi) else headers.items())

    def items(self) -> list[tuple[str, str]]:
        return list(self._lines)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get(self, name: str) -> str | None:
        """Combined value of all lines named ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        values = [value for key, value in self._lines if key.lower() == wanted]
        return ", ".join(v.strip(" \t") for v in values) if values else None


@dataclass(slots=True)
class _RequestView:
    method: str
    url: str
    headers: Any


@dataclass(slots=True)
class _ResponseView:
    status_code: int
    headers: Any
    request: _RequestView


class _PolicyVerifier(HTTPMessageVerifier):
    """Library verifier with its wall-clock checks switched off.

    The library compares ``created``/``expires`` against ``datetime.now()`` with a
    fixed 5 s skew; this module enforces its own ±window against an injectable clock
    after the signature verifies, so the library's check would only duplicate it
    with the wrong clock.
    """

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def _make_signer(key_id: str, private_key: Ed25519PrivateKey) -> HTTPMessageSigner:
    resolver = MappingKeyResolver(public_keys={}, private_keys={key_id: private_key})
    return HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=resolver)


def _make_verifier(key_id: str, public_key: Ed25519PublicKey) -> HTTPMessageVerifier:
    resolver = MappingKeyResolver(public_keys={key_id: public_key}, private_keys={})
    return _PolicyVerifier(signature_algorithm=ED25519, key_resolver=resolver)


def _new_nonce() -> str:
    return secrets.token_urlsafe(_NONCE_BYTES)


def _created_at(clock: Callable[[], float]) -> tuple[int, datetime]:
    created = math.floor(clock())
    return created, datetime.fromtimestamp(created, tz=UTC)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Parsed:
    key_id: str
    created: int
    nonce: str | None
    signature_input: str
    signature: str


def _component_id(value: str) -> _ComponentId:
    """Identity of a serialized component id such as ``"signature";req;key="sig1"``."""
    if not value.startswith('"'):
        return value, frozenset()
    parsed = http_sf.parse(value.encode("ascii"), tltype="item")
    assert isinstance(parsed, tuple)
    name, params = parsed
    assert isinstance(name, str)
    return name, frozenset(params.items())


_REQUIRED_REQUEST = {_component_id(c): c for c in REQUEST_COMPONENTS}
_REQUIRED_RESPONSE = {_component_id(c): c for c in RESPONSE_COMPONENTS}


def _reject_duplicate(key: str, context: str) -> None:
    if context == "dictionary":
        raise MalformedSignatureError(f"duplicate signature label {key!r}")


def _parse_dictionary(field: str, value: str) -> dict[str, Any]:
    try:
        parsed = http_sf.parse(
            value.encode("ascii"), tltype="dictionary", on_duplicate_key=_reject_duplicate
        )
    except MalformedSignatureError:
        raise
    except (ValueError, TypeError) as exc:  # StructuredFieldError and UnicodeError are ValueErrors
        raise MalformedSignatureError(
            f"{field} is not a Structured Field Dictionary: {exc}"
        ) from exc
    if not isinstance(parsed, dict):  # pragma: no cover - tltype="dictionary" returns a dict
        raise MalformedSignatureError(f"{field} is not a Structured Field Dictionary")
    return parsed


def _parse_signature(
    fields: _FieldLines,
    *,
    allowed_params: frozenset[str],
    required: Mapping[_ComponentId, str],
) -> _Parsed:
    """Parse and profile-check the ``sig1`` member; no key or crypto involved."""
    signature_input = fields.get("signature-input")
    signature = fields.get("signature")
    if signature_input is None and signature is None:
        raise MissingSignatureError("no Signature-Input or Signature field")
    if signature_input is None:
        raise MissingSignatureError("Signature present without Signature-Input")
    if signature is None:
        raise MissingSignatureError("Signature-Input present without Signature")

    inputs = _parse_dictionary("Signature-Input", signature_input)
    signatures = _parse_dictionary("Signature", signature)
    if SIGNATURE_LABEL not in inputs or SIGNATURE_LABEL not in signatures:
        raise MissingSignatureError(
            f"no {SIGNATURE_LABEL!r} member (Signature-Input labels {sorted(inputs)}, "
            f"Signature labels {sorted(signatures)})"
        )

    members, params = inputs[SIGNATURE_LABEL]
    if not isinstance(members, list):
        raise MalformedSignatureError(f"Signature-Input {SIGNATURE_LABEL} is not an Inner List")
    covered: set[_ComponentId] = set()
    for name, item_params in members:
        if type(name) is not str:
            raise MalformedSignatureError(f"component identifier {name!r} is not a String")
        try:
            identity = (name, frozenset(item_params.items()))
        except TypeError as exc:  # pragma: no cover - bare items are hashable
            raise MalformedSignatureError(f"component {name!r} has unusable parameters") from exc
        if identity in covered:
            raise MalformedSignatureError(f"component {name!r} is covered twice")
        covered.add(identity)

    value, _ = signatures[SIGNATURE_LABEL]
    if not isinstance(value, bytes):
        raise MalformedSignatureError(f"Signature {SIGNATURE_LABEL} is not a Byte Sequence")

    unknown = sorted(set(params) - allowed_params)
    if unknown:
        raise MalformedSignatureError(f"unexpected signature parameters {unknown}")
    created = params.get("created")
    if type(created) is not int:
        raise MalformedSignatureError(f"created must be an Integer, got {created!r}")
    key_id = params.get("keyid")
    if type(key_id) is not str or not key_id:
        raise MalformedSignatureError(f"keyid must be a non-empty String, got {key_id!r}")
    if params.get("alg") != ALGORITHM or type(params.get("alg")) is not str:
        raise MalformedSignatureError(f"alg must be {ALGORITHM!r}, got {params.get('alg')!r}")
    if params.get("tag") != SIGNATURE_TAG or type(params.get("tag")) is not str:
        raise MalformedSignatureError(f"tag must be {SIGNATURE_TAG!r}, got {params.get('tag')!r}")
    nonce = params.get("nonce")
    if "nonce" in allowed_params and (type(nonce) is not str or not _NONCE_RE.fullmatch(nonce)):
        raise MalformedSignatureError(f"nonce must be 22 base64url characters, got {nonce!r}")

    missing = tuple(text for identity, text in required.items() if identity not in covered)
    if missing:
        raise MissingComponentError(missing)

    return _Parsed(
        key_id=key_id,
        created=created,
        nonce=nonce if type(nonce) is str else None,
        signature_input=signature_input,
        signature=signature,
    )


def _library_verify(
    message: _RequestView | _ResponseView,
    parsed: _Parsed,
    public_key: Ed25519PublicKey,
    body: bytes,
    required: Iterable[str],
) -> None:
    verifier = _make_verifier(parsed.key_id, public_key)
    try:
        verifier.verify(
            message,
            max_age=None,
            expect_tag=SIGNATURE_TAG,
            expect_label=SIGNATURE_LABEL,
            require_components=tuple(required),
            body=body,
        )
    except HTTPMessageSignaturesException as exc:
        raise _bad_signature(str(exc) or _NOT_VERIFIED, parsed.key_id) from exc


def _bad_signature(reason: str, key_id: str) -> BadSignatureError:
    return BadSignatureError(
        f"{reason} (keyid {key_id!r}; a request signed for another @authority than this "
        "node's public URL fails here)"
    )


def _fast_verify(public_key: Ed25519PublicKey, signature: bytes, base: bytes, key_id: str) -> None:
    try:
        public_key.verify(signature, base)
    except InvalidSignature as exc:
        raise _bad_signature(_NOT_VERIFIED, key_id) from exc


def _check_window(created: int, now: float, window_s: int) -> None:
    if abs(now - created) > window_s:
        raise StaleSignatureError(created, now, window_s)


# --------------------------------------------------------------------------- nonce cache


class NonceCache:
    """Remembers accepted ``(keyid, nonce)`` pairs until their signatures go stale.

    Thread-safe. Entries expire at ``created + window_s`` (the last instant the
    request could still pass the window check) and are evicted lazily on each call.
    The cache never forgets an unexpired nonce to make room: when ``max_entries``
    unexpired nonces are held, :meth:`check_and_remember` raises
    :class:`NonceCacheFullError` with the time until the oldest one expires, and the
    caller should answer 503 with Retry-After. Memory is bounded by ``max_entries``.

    Args:
        max_entries: most nonces held at once; size it to the expected request rate
            times the window (e.g. 100 req/s × 600 s ≈ 60 000 for ±300 s).
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _evict(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] < now:
            _, entry = heapq.heappop(heap)
            self._expiry.pop(entry, None)

    def check_and_remember(self, key_id: str, nonce: str, *, expires_at: float, now: float) -> None:
        """Record a nonce, or refuse it if it was seen or there is no room.

        Args:
            key_id: signer the nonce belongs to (nonces are scoped per key).
            nonce: the signed nonce.
            expires_at: when the nonce may be forgotten (``created + window_s``).
            now: the caller's clock reading.

        Raises:
            ReplayedNonceError: the pair is already remembered.
            NonceCacheFullError: ``max_entries`` unexpired nonces are held.
        """
        entry = (key_id, nonce)
        with self._lock:
            self._evict(now)
            if entry in self._expiry:
                raise ReplayedNonceError(key_id, nonce)
            if len(self._expiry) >= self.max_entries:
                oldest = self._heap[0][0]
                # Entries leave once now > expiry, hence the +1.
                raise NonceCacheFullError(max(1, math.floor(oldest - now) + 1), self.max_entries)
            self._expiry[entry] = expires_at
            heapq.heappush(self._heap, (expires_at, entry))


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """What a verified request proves.

    Attributes:
        key_id: the signer's key id (authenticated).
        created: signed creation time, Unix seconds.
        nonce: the signed nonce.
        signature: raw Signature field value, to bind the response
            (pass to :func:`sign_response`).
        signature_input: raw Signature-Input field value.
    """

    key_id: str
    created: int
    nonce: str
    signature: str
    signature_input: str


class RequestSigner(httpx.Auth):
    """httpx auth flow that signs every outgoing request with the request profile.

    Sets Content-Digest (sha-256, also for empty bodies), Signature-Input and
    Signature, replacing any earlier values. Works with ``httpx.Client`` and
    ``httpx.AsyncClient``. Redirects are not re-signed by httpx; peers do not
    redirect, so keep ``follow_redirects`` off.

    Args:
        key_id: this client's key id as the verifier knows it.
        private_key: the Ed25519 signing key.
        clock: Unix-seconds clock for ``created``; injectable for tests.
        fast_path: build profile requests with :mod:`node.http.fastsig`; ``False``
            signs every request through the library (the oracle and the bench's
            baseline). Both write the same bytes.
        nonces: source of nonces; fresh random ones unless a test fixes them.
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        private_key: Ed25519PrivateKey,
        clock: Callable[[], float] = time.time,
        *,
        fast_path: bool = True,
        nonces: Callable[[], str] | None = None,
    ) -> None:
        if not key_id:
            raise ValueError("key_id must be non-empty")
        self.key_id = key_id
        self.fast_path = fast_path
        self._nonces = nonces
        self._key = private_key
        self._signer = _make_signer(key_id, private_key)
        self._clock = clock

    def sign(self, request: httpx.Request) -> None:
        """Sign ``request`` in place; its body must already be read."""
        for name in ("content-digest", "signature-input", "signature"):
            if name in request.headers:
                del request.headers[name]
        seconds, created = _created_at(self._clock)
        nonce = _new_nonce() if self._nonces is None else self._nonces()
        if self.fast_path and self._sign_fast(request, seconds, nonce):
            return
        self._signer.sign(
            request,
            key_id=self.key_id,
            created=created,
            nonce=nonce,
            label=SIGNATURE_LABEL,
            tag=SIGNATURE_TAG,
            include_alg=True,
            covered_component_ids=REQUEST_COMPONENTS,
            body=request.content,
        )

    def _sign_fast(self, request: httpx.Request, created: int, nonce: str) -> bool:
        """Sign a profile request without the library; ``False`` (nothing done) otherwise."""
        params = fastsig.request_params(created, self.key_id, nonce)
        where = fastsig.target(str(request.url))
        if params is None or where is None or not fastsig.method_ok(request.method):
            return False
        digest = fastsig.content_digest(request.content)
        base = fastsig.request_base(request.method, where, digest, params)
        request.headers["Content-Digest"] = digest
        request.headers["Signature-Input"] = f"{SIGNATURE_LABEL}={params}"
        request.headers["Signature"] = fastsig.signature_field(self._key.sign(base))
        return True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


class RequestVerifier:
    """Verifies requests signed with the request profile.

    Args:
        resolve_key: ``keyid`` → trusted Ed25519 public key (callable or mapping).
        window_s: accepted ``|now - created|``, inclusive, in seconds.
        nonce_cache: shared :class:`NonceCache`; a private one is made if omitted.
        clock: Unix-seconds clock; injectable for tests.
        fast_path: check profile requests with :mod:`node.http.fastsig`; ``False``
            checks every request through the library. Both accept and refuse the
            same requests with the same errors.
    """

    def __init__(
        self,
        resolve_key: KeySource,
        window_s: int = DEFAULT_WINDOW_S,
        nonce_cache: NonceCache | None = None,
        clock: Callable[[], float] = time.time,
        *,
        fast_path: bool = True,
    ) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, got {window_s}")
        self.fast_path = fast_path
        self._resolve_key = resolve_key
        self.window_s = window_s
        self.nonce_cache = nonce_cache if nonce_cache is not None else NonceCache()
        self._clock = clock

    def verify(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> VerifiedRequest:
        """Verify one request and remember its nonce.

        Args:
            method: request method as received (case-sensitive).
            url: absolute, encoded request URL as the signer addressed it.
            headers: request header fields (a Mapping; repeated fields are kept
                apart when it has ``multi_items()``, as httpx and starlette do).
            body: request content exactly as received.

        Returns:
            The authenticated key id, creation time and nonce, plus the raw
            signature fields for binding the response.

        Raises:
            HttpSignatureError: the subclass names the first failed check, in the
                order given in the module docstring.
        """
        fields = _FieldLines.of(headers)
        if self.fast_path:
            verified = self._verify_fast(method, url, fields, body)
            if verified is not None:
                return verified
        parsed = _parse_signature(
            fields, allowed_params=_REQUEST_PARAMS, required=_REQUIRED_REQUEST
        )
        public_key = _resolve_key(self._resolve_key, parsed.key_id)
        check_content_digest(fields.get("content-digest"), body)
        _library_verify(
            _RequestView(method, url, fields), parsed, public_key, body, REQUEST_COMPONENTS
        )
        return self._accept(parsed)

    def _verify_fast(
        self, method: str, url: str, fields: _FieldLines, body: bytes
    ) -> VerifiedRequest | None:
        """The same checks in the same order for a profile request; ``None`` (nothing
        done, no key resolved) when any part of it is outside the profile."""
        signature_input, signature = fields.get("signature-input"), fields.get("signature")
        parsed = fastsig.parse_request(signature_input, signature)
        digest = fields.get("content-digest")
        if parsed is None or digest is None or type(body) is not bytes:
            return None
        where = fastsig.target(url)
        if where is None or not fastsig.method_ok(method) or not fastsig.digest_shape_ok(digest):
            return None
        assert signature_input is not None and signature is not None  # parsed
        public_key = _resolve_key(self._resolve_key, parsed.key_id)
        if not fastsig.digest_matches(digest, body):
            raise BadDigestError(f"{_DIGEST_MISMATCH} (Content-Digest: {digest!r})")
        base = fastsig.request_base(method, where, digest, parsed.params)
        _fast_verify(public_key, parsed.signature, base, parsed.key_id)
        return self._accept(
            _Parsed(parsed.key_id, parsed.created, parsed.nonce, signature_input, signature)
        )

    def _accept(self, parsed: _Parsed) -> VerifiedRequest:
        """Window, then nonce: the checks after the signature, shared by both paths."""
        assert parsed.nonce is not None  # required by the request profile's parameters
        now = self._clock()
        _check_window(parsed.created, now, self.window_s)
        self.nonce_cache.check_and_remember(
            parsed.key_id, parsed.nonce, expires_at=parsed.created + self.window_s, now=now
        )
        return VerifiedRequest(
            key_id=parsed.key_id,
            created=parsed.created,
            nonce=parsed.nonce,
            signature=parsed.signature,
            signature_input=parsed.signature_input,
        )


# --------------------------------------------------------------------------- responses


def _answered_request(
    method: str, url: str, request_signature_input: str, request_signature: str
) -> _RequestView:
    """The request a response answers, as its ``;req`` components are resolved from."""
    return _RequestView(
        method,
        url,
        _FieldLines(
            [("Signature-Input", request_signature_input), ("Signature", request_signature)]
        ),
    )


def sign_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_signature_input: str,
    request_signature: str,
    key_id: str,
    private_key: Ed25519PrivateKey,
    *,
    request_method: str,
    request_url: str,
    clock: Callable[[], float] = time.time,
    fast_path: bool = True,
) -> dict[str, str]:
    """Sign a response and bind it to the request it answers (RFC 9421 §2.4).

    Args:
        status: HTTP status code.
        headers: the response's other header fields (earlier Content-Digest or
            signature fields in it are ignored and replaced).
        body: response content exactly as sent.
        request_signature_input: the request's Signature-Input field value.
        request_signature: the request's Signature field value
            (:attr:`VerifiedRequest.signature`).
        key_id: this node's key id.
        private_key: this node's Ed25519 signing key.
        request_method: the method of the request answered.
        request_url: the URL the request's signature was verified against (the
            node's public base URL plus the request target, never a Host header).
        clock: Unix-seconds clock for ``created``.
        fast_path: sign a profile response with :mod:`node.http.fastsig`
            (``False``: through the library; the same bytes either way).

    Returns:
        Header fields to add: Content-Digest, Signature-Input, Signature.

    Raises:
        MalformedSignatureError: the request's signature fields have no usable
            ``sig1`` member to bind to.
    """
    seconds, created = _created_at(clock)
    body = bytes(body)
    if fast_path:
        member = fastsig.signature_member(request_signature)
        params = fastsig.response_params(seconds, key_id)
        where = fastsig.target(request_url)
        if (
            member is not None
            and params is not None
            and where is not None
            and fastsig.method_ok(request_method)
            and fastsig.status_ok(status)
        ):
            digest = fastsig.content_digest(body)
            base = fastsig.response_base(status, digest, request_method, where, member, params)
            return {
                "Content-Digest": digest,
                "Signature-Input": f"{SIGNATURE_LABEL}={params}",
                "Signature": fastsig.signature_field(private_key.sign(base)),
            }
    replaced = {"content-digest", "signature-input", "signature"}
    out: dict[str, str] = {k: v for k, v in headers.items() if k.lower() not in replaced}
    message = _ResponseView(
        status,
        out,
        _answered_request(request_method, request_url, request_signature_input, request_signature),
    )
    try:
        _make_signer(key_id, private_key).sign(
            message,
            key_id=key_id,
            created=created,
            label=SIGNATURE_LABEL,
            tag=SIGNATURE_TAG,
            include_alg=True,
            covered_component_ids=RESPONSE_COMPONENTS,
            body=body,
        )
    except HTTPMessageSignaturesException as exc:
        raise MalformedSignatureError(f"cannot bind response to request signature: {exc}") from exc
    return {name: out[name] for name in ("Content-Digest", "Signature-Input", "Signature")}


def verify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_signature_input: str,
    request_signature: str,
    resolve_key: KeySource,
    *,
    request_method: str,
    request_url: str,
    window_s: int = DEFAULT_WINDOW_S,
    clock: Callable[[], float] = time.time,
    fast_path: bool = True,
) -> str:
    """Verify a signed response and that it answers this very request.

    Checks run in the request order (parse, components, key, digest, signature,
    window); there is no nonce: the binding to the request's signature, which
    carries one, already makes a response single-use.

    Args:
        status: HTTP status code received.
        headers: response header fields.
        body: response content exactly as received (before content decoding).
        request_signature_input: Signature-Input the client sent.
        request_signature: Signature the client sent.
        resolve_key: ``keyid`` → trusted Ed25519 public key.
        request_method: the method the client sent.
        request_url: the URL the client sent (and signed).
        window_s: accepted ``|now - created|``.
        clock: Unix-seconds clock.
        fast_path: check a profile response with :mod:`node.http.fastsig`
            (``False``: through the library; the same outcome either way).

    Returns:
        The key id that signed the response.

    Raises:
        HttpSignatureError: the subclass names the first failed check.
    """
    fields = _FieldLines.of(headers)
    if fast_path:
        fast = fastsig.parse_response(fields.get("signature-input"), fields.get("signature"))
        digest = fields.get("content-digest")
        member = fastsig.signature_member(request_signature)
        where = fastsig.target(request_url)
        if (
            fast is not None
            and digest is not None
            and member is not None
            and where is not None
            and type(body) is bytes
            and fastsig.digest_shape_ok(digest)
            and fastsig.method_ok(request_method)
            and fastsig.status_ok(status)
        ):
            public_key = _resolve_key(resolve_key, fast.key_id)
            if not fastsig.digest_matches(digest, body):
                raise BadDigestError(f"{_DIGEST_MISMATCH} (Content-Digest: {digest!r})")
            base = fastsig.response_base(status, digest, request_method, where, member, fast.params)
            _fast_verify(public_key, fast.signature, base, fast.key_id)
            _check_window(fast.created, clock(), window_s)
            return fast.key_id
    parsed = _parse_signature(fields, allowed_params=_RESPONSE_PARAMS, required=_REQUIRED_RESPONSE)
    public_key = _resolve_key(resolve_key, parsed.key_id)
    check_content_digest(fields.get("content-digest"), body)
    message = _ResponseView(
        status,
        fields,
        _answered_request(request_method, request_url, request_signature_input, request_signature),
    )
    _library_verify(message, parsed, public_key, body, RESPONSE_COMPONENTS)
    _check_window(parsed.created, clock(), window_s)
    return parsed.key_id
