"""The node's RFC 9421 signature profile as plain bytes: bases, fields and digests.

:mod:`node.http.httpsig` signs and checks every message through this module when
the message is in the profile, and through the ``http-message-signatures``
library otherwise. Nothing here parses Structured Fields in general: each
function recognises exactly the shape the profile's signer writes, and returns
``None`` for anything else, so the caller falls back to the library and its
errors stay exactly what they were. No I/O, no keys, no clocks.

Invariants:
    * Whatever a function here accepts, the library resolves to the same bytes:
      a signature base built here equals the library's base for the same message
      byte for byte, a field value written here equals the library's, and a field
      value parsed here is one the library parses to the same values. The
      differential test (``tests/unit/test_fastsig.py``) holds this module to it.
    * Recognisers accept only canonical serializations (no optional whitespace,
      integers without leading zeros, base64 with zero padding bits, strings
      without escapes), because the library re-serializes what it parsed into the
      signature base: only for canonical text is the raw text that serialization.
    * URLs: an ``http``/``https`` absolute URL with a registered-name host, an
      optional port without leading zeros, path and query in the RFC 3986 grammar;
      no userinfo, IP literal or fragment (the library handles those).

Profile shapes (label ``sig1``; ``N`` an Integer, ``K`` a key id, ``X`` a nonce)::

    request  sig1=("@method" "@authority" "@path" "@query" "content-digest")
             ;created=N;keyid="K";alg="ed25519";nonce="X";tag="yrd-credit-chain"
    response sig1=("@status" "content-digest" "@method";req "@authority";req
             "@path";req "@query";req "signature";req;key="sig1")
             ;created=N;keyid="K";alg="ed25519";tag="yrd-credit-chain"
    both     Signature: sig1=:<base64 of 64 bytes>:
             Content-Digest: sha-256=:<base64 of 32 bytes>:
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = [
    "RequestFields",
    "ResponseFields",
    "Target",
    "content_digest",
    "digest_matches",
    "digest_shape_ok",
    "method_ok",
    "parse_request",
    "parse_response",
    "request_base",
    "request_params",
    "response_base",
    "response_params",
    "signature_base",
    "signature_field",
    "signature_member",
    "status_ok",
    "target",
]

# Structured Field pieces in their canonical serialization (RFC 9651 §4.1).
_SF_INTEGER = r"(0|[1-9][0-9]{0,14})"
_SF_STRING_CHARS = r"[\x20\x21\x23-\x5b\x5d-\x7e]"  # printable ASCII but '"' and '\': no escapes
_B64_64 = r"[A-Za-z0-9+/]{85}[AQgw]=="  # 64 bytes; the last symbol's 4 padding bits are zero
_B64_32 = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="  # 32 bytes; 2 padding bits zero

_KEY_ID = re.compile(rf"{_SF_STRING_CHARS}+")
_NONCE = r"[A-Za-z0-9_-]{22}"
_NONCE_RE = re.compile(_NONCE)
_REQUEST_INPUT = re.compile(
    r'sig1=(\("@method" "@authority" "@path" "@query" "content-digest"\)'
    rf';created={_SF_INTEGER};keyid="({_SF_STRING_CHARS}+)";alg="ed25519"'
    rf';nonce="({_NONCE})";tag="yrd-credit-chain")'
)
_RESPONSE_COVERED = (
    '("@status" "content-digest" "@method";req "@authority";req "@path";req "@query";req '
    '"signature";req;key="sig1")'
)
_RESPONSE_INPUT = re.compile(
    rf"sig1=({re.escape(_RESPONSE_COVERED)}"
    rf';created={_SF_INTEGER};keyid="({_SF_STRING_CHARS}+)";alg="ed25519";tag="yrd-credit-chain")'
)
_SIGNATURE = re.compile(rf"sig1=(:({_B64_64}):)")
_DIGEST = re.compile(rf"sha-256=:{_B64_32}:")

# RFC 9110 tchar without lower-case letters: the library wants methods upper-case.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Z-]+")
# RFC 3986 (as the library's URL grammar), narrowed as the module docstring says.
_CHARS = r"A-Za-z0-9._~\-!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_URL = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://"
    rf"(?P<host>(?:[{_CHARS}]|{_PCT})+)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    rf"(?P<path>/(?:[{_CHARS}:@/]|{_PCT})*)?"
    rf"(?:\?(?P<query>(?:[{_CHARS}:@/?]|{_PCT})*))?"
)
_DEFAULT_PORT = {"http": "80", "https": "443"}
_MAX_CREATED = 999_999_999_999_999  # the largest Structured Field Integer


@dataclass(frozen=True, slots=True)
class Target:
    """The request-target components of one URL, as they appear in a signature base."""

    authority: str
    path: str
    query: str


@dataclass(frozen=True, slots=True)
class RequestFields:
    """A request's ``sig1`` fields in the profile's shape.

    Attributes:
        params: the ``@signature-params`` value (the Inner List after ``sig1=``).
        created: ``created``, Unix seconds.
        key_id: ``keyid``.
        nonce: ``nonce``.
        signature: the raw Ed25519 signature.
    """

    params: str
    created: int
    key_id: str
    nonce: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class ResponseFields:
    """A response's ``sig1`` fields in the profile's shape (no nonce: bound to the request)."""

    params: str
    created: int
    key_id: str
    signature: bytes


def method_ok(method: object) -> bool:
    """Whether ``method`` is a method the profile signs as is."""
    return type(method) is str and _METHOD.fullmatch(method) is not None


def status_ok(status: object) -> bool:
    """Whether ``status`` is a three-digit status code (``@status`` is its decimal text)."""
    return type(status) is int and 100 <= status <= 999


def target(url: str) -> Target | None:
    """``@authority``, ``@path`` and ``@query`` of an absolute URL, or ``None`` outside the shape.

    ``@authority`` is the host in lower case with the port, unless it is the
    scheme's default; ``@path`` is ``/`` for an empty path; ``@query`` is ``?``
    followed by the query, so an absent and an empty query both give ``?``.
    """
    if type(url) is not str:
        return None
    match = _URL.fullmatch(url)
    if match is None:
        return None
    host, port = match["host"].lower(), match["port"]
    if port is not None and port != _DEFAULT_PORT[match["scheme"].lower()]:
        host = f"{host}:{port}"
    return Target(host, match["path"] or "/", "?" + (match["query"] or ""))


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest field value of ``body`` with one ``sha-256`` member."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode('ascii')}:"


def digest_shape_ok(header: str) -> bool:
    """Whether a Content-Digest field value is one canonical ``sha-256`` member and nothing else."""
    return _DIGEST.fullmatch(header) is not None


def digest_matches(header: str, body: bytes) -> bool:
    """Whether a Content-Digest value for which :func:`digest_shape_ok` holds matches ``body``.

    Both sides are canonical serializations, so comparing them is comparing the
    digests; the comparison takes constant time.
    """
    return hmac.compare_digest(header, content_digest(body))


def request_params(created: int, key_id: str, nonce: str) -> str | None:
    """The request ``@signature-params`` value, or ``None`` if a value needs the library."""
    if not (
        0 <= created <= _MAX_CREATED and _KEY_ID.fullmatch(key_id) and _NONCE_RE.fullmatch(nonce)
    ):
        return None
    return (
        '("@method" "@authority" "@path" "@query" "content-digest")'
        f';created={created};keyid="{key_id}";alg="ed25519";nonce="{nonce}";tag="yrd-credit-chain"'
    )


def response_params(created: int, key_id: str) -> str | None:
    """The response ``@signature-params`` value, or ``None`` if a value needs the library."""
    if not (0 <= created <= _MAX_CREATED and _KEY_ID.fullmatch(key_id)):
        return None
    return f'{_RESPONSE_COVERED};created={created};keyid="{key_id}";alg="ed25519";tag="yrd-credit-chain"'


def signature_base(components: list[tuple[str, str]], params: str) -> bytes:
    """RFC 9421 §2.5 signature base: one ``id: value`` line per component, then the params line.

    Args:
        components: serialized component identifiers and their values, in order.
        params: the ``@signature-params`` value.

    Returns:
        The base as ASCII bytes, without a trailing newline.
    """
    lines = [f"{name}: {value}" for name, value in components]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode("ascii")


def request_base(method: str, where: Target, digest: str, params: str) -> bytes:
    """The signature base of a profile request."""
    return (
        f'"@method": {method}\n"@authority": {where.authority}\n"@path": {where.path}\n'
        f'"@query": {where.query}\n"content-digest": {digest}\n"@signature-params": {params}'
    ).encode("ascii")


def response_base(
    status: int, digest: str, method: str, where: Target, request_member: str, params: str
) -> bytes:
    """The signature base of a profile response to the request at ``method`` and ``where``."""
    return (
        f'"@status": {status}\n"content-digest": {digest}\n"@method";req: {method}\n'
        f'"@authority";req: {where.authority}\n"@path";req: {where.path}\n'
        f'"@query";req: {where.query}\n"signature";req;key="sig1": {request_member}\n'
        f'"@signature-params": {params}'
    ).encode("ascii")


def signature_field(signature: bytes) -> str:
    """The Signature field value carrying ``signature`` as ``sig1``."""
    return f"sig1=:{base64.b64encode(signature).decode('ascii')}:"


def signature_member(field: str) -> str | None:
    """The serialized ``sig1`` member of a Signature field of the profile's shape, else ``None``.

    This is the value of the ``"signature";req;key="sig1"`` component.
    """
    match = _SIGNATURE.fullmatch(field)
    return None if match is None else match[1]


def parse_request(signature_input: str | None, signature: str | None) -> RequestFields | None:
    """A request's Signature-Input and Signature field values, if both have the profile's shape."""
    if signature_input is None or signature is None:
        return None
    fields = _REQUEST_INPUT.fullmatch(signature_input)
    value = _SIGNATURE.fullmatch(signature)
    if fields is None or value is None:
        return None
    return RequestFields(
        params=fields[1],
        created=int(fields[2]),
        key_id=fields[3],
        nonce=fields[4],
        signature=base64.b64decode(value[2]),
    )


def parse_response(signature_input: str | None, signature: str | None) -> ResponseFields | None:
    """A response's Signature-Input and Signature field values, if both have the profile's shape."""
    if signature_input is None or signature is None:
        return None
    fields = _RESPONSE_INPUT.fullmatch(signature_input)
    value = _SIGNATURE.fullmatch(signature)
    if fields is None or value is None:
        return None
    return ResponseFields(
        params=fields[1],
        created=int(fields[2]),
        key_id=fields[3],
        signature=base64.b64decode(value[2]),
    )
