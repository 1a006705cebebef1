"""node.http.fastsig against the ``http-message-signatures`` library as oracle.

The fast path must be invisible: for every generated message, the signature base
and the field values it writes are byte-identical to the library's, and verifying
with it gives exactly the library's outcome (the same VerifiedRequest, or the same
error class with the same detail), for the message as signed and for every
tampered variant; a change to any covered component is refused by both. Messages
outside the profile (odd URLs, methods, key ids, parameters, extra signatures,
whitespace) are generated too: there the fast path must step aside.

RFC 9421 vectors: Appendix B.2.6 (Signing a Request Using ed25519) with the
Appendix B.1.4 test key, from ``tests/vectors/httpsig/rfc9421_b26_ed25519.json``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import http_sf
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import ContentDigest, HTTPMessageSignaturesException
from http_message_signatures.resolvers import HTTPSignatureComponentResolver
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from node.http import fastsig, httpsig
from node.http.httpsig import (
    REQUEST_COMPONENTS,
    RESPONSE_COMPONENTS,
    SIGNATURE_LABEL,
    SIGNATURE_TAG,
    HttpSignatureError,
    RequestSigner,
    RequestVerifier,
    sign_response,
    verify_response,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "httpsig"
B26 = json.loads((VECTORS / "rfc9421_b26_ed25519.json").read_text(encoding="utf-8"))
DIGESTS = json.loads((VECTORS / "rfc9530_content_digest.json").read_text(encoding="utf-8"))


def _pem_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


T0 = 1_700_000_000
RFC_KEY = _pem_key(B26["key"]["private_key_pem"])  # RFC 9421 Appendix B.1.4
CLIENT_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NODE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
PRIVATE = {
    "inst:hzbank": CLIENT_KEY,
    "node:hz-1": NODE_KEY,
    "test-key-ed25519": RFC_KEY,
    "odd id !#$%&'()*+,-./:;<=>?@[]^_`{|}~": CLIENT_KEY,
}
KEYS: dict[str, Ed25519PublicKey] = {k: v.public_key() for k, v in PRIVATE.items()}
FIXED_NONCE = "AAAAAAAAAAAAAAAAAAAAAA"
SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Each example of the verification tests checks some 20-30 variants through both paths.
VARIANT_SETTINGS = settings(SETTINGS, max_examples=300)


# --------------------------------------------------------------------------- generated messages

METHODS = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "M-SEARCH", "get", "Post"]
)
SCHEMES = st.sampled_from(["http", "https", "HTTP", "Https", "ftp"])
HOSTS = st.one_of(
    st.sampled_from(
        [
            "city-b.example",
            "City-B.Example",
            "127.0.0.1",
            "localhost",
            "xn--fiqs8s.example",
            "hz-1",
            "a%2Eb.example",
            "[::1]",
            "[2001:DB8::1]",
            "user@hz-1.example",
            "",
            "bad host",
        ]
    ),
    st.text(st.sampled_from("abcXYZ019-."), min_size=1, max_size=12),
)
PORTS = st.sampled_from([None, "80", "443", "8000", "8443", "65535", "1", "08000", "0", ""])
PIECES = st.one_of(
    st.text(st.sampled_from("aZ09-._~!$&'()*+,;=:@"), max_size=6),
    st.sampled_from(
        ["%20", "%2F", "%25", "%E4%B8%8A", "%7e", "/", "//", "%zz", "%4", " ", "é", '"', "<", "{"]
        + ["|", "\\", "^", "`", "#frag", "?", "\t", "\n"]
    ),
)
PATHS = st.one_of(st.just(""), st.lists(PIECES, max_size=5).map(lambda p: "/" + "".join(p)))
QUERIES = st.one_of(
    st.none(),
    st.just(""),
    st.lists(
        st.one_of(PIECES, st.sampled_from(["&", "=", "a=1", "&b=", "+", "%3D", "?"])), max_size=6
    ).map("".join),
)
BODIES = st.one_of(st.just(b""), st.binary(max_size=300), st.just(b'{"subject": "x"}'))
KEY_IDS = st.sampled_from([*PRIVATE, 'quo"te', "back\\slash", "caf\u00e9", " padded "])
EXTRA_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["Content-Type", "content-type", "X-Trace", "ACCEPT", "x-odd"]),
        st.text(st.sampled_from("abc/;= \t,\"'"), max_size=12),
    ),
    max_size=3,
)


GOOD_PIECES = st.one_of(
    st.text(st.sampled_from("aZ09-._~!$&'()*+,;=:@"), max_size=6),
    st.sampled_from(["%20", "%2F", "%25", "%E4%B8%8A", "%7e", "/", "//"]),
)


@st.composite
def raw_urls(draw: st.DrawFn) -> str:
    """Absolute URL strings as a verifier may be handed them: two in three well-formed
    (odd characters, percent-encoding, ports, empty and absent queries), the rest
    drawn from a wider alphabet, many outside RFC 3986 or the fast path's shape."""
    if draw(st.integers(0, 2)):
        scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
        host = draw(st.sampled_from(["city-b.example", "City-B.Example", "127.0.0.1", "hz-1"]))
        port = draw(st.sampled_from([None, "80", "443", "8000", "65535"]))
        path = draw(st.lists(GOOD_PIECES, max_size=5).map(lambda p: "/" + "".join(p)))
        pieces = st.one_of(GOOD_PIECES, st.sampled_from(["&", "=", "a=1", "&b=", "+", "?"]))
        query = draw(st.one_of(st.none(), st.lists(pieces, max_size=6).map("".join)))
    else:
        scheme, host, port = draw(SCHEMES), draw(HOSTS), draw(PORTS)
        path, query = draw(PATHS), draw(QUERIES)
    return f"{scheme}://{host}{'' if port is None else ':' + port}{path}" + (
        "" if query is None else "?" + query
    )


def _outcome(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call does, comparably: its value, or its error's class and message."""
    try:
        return "ok", call(*args, **kwargs)
    except HttpSignatureError as exc:
        return type(exc).__name__, exc.detail
    except (HTTPMessageSignaturesException, ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


def _replace_sig1_param(signature_input: str, name: str, value: str) -> str:
    head, sep, tail = signature_input.partition(f";{name}=")
    assert sep, (name, signature_input)
    rest = tail.split(";", 1)
    return head + sep + value + (";" + rest[1] if len(rest) > 1 else "")


def _flip_signature(field: str) -> str:
    label, _, value = field.partition("=:")
    raw = bytearray(base64.b64decode(value.rstrip(":")))
    raw[len(raw) // 2] ^= 0x10
    return f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"


# --------------------------------------------------------------------------- library oracle


def library_request_base(method: str, url: str, body: bytes, key_id: str, nonce: str) -> bytes:
    """The library's signature base for the request profile (as RequestSigner asks for it)."""
    view = httpsig._RequestView(method, url, {})
    prepared = httpsig._make_signer(key_id, CLIENT_KEY).prepare(
        view,
        key_id=key_id,
        created=datetime.fromtimestamp(T0, tz=UTC),
        nonce=nonce,
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_TAG,
        include_alg=True,
        covered_component_ids=REQUEST_COMPONENTS,
        body=body,
    )
    return prepared.signature_base


def library_response_base(
    status: int, body: bytes, method: str, url: str, request_signature: str, key_id: str
) -> bytes:
    view = httpsig._ResponseView(
        status, {}, httpsig._answered_request(method, url, "", request_signature)
    )
    prepared = httpsig._make_signer(key_id, NODE_KEY).prepare(
        view,
        key_id=key_id,
        created=datetime.fromtimestamp(T0, tz=UTC),
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_TAG,
        include_alg=True,
        covered_component_ids=RESPONSE_COMPONENTS,
        body=body,
    )
    return prepared.signature_base


def library_signed_headers(
    method: str, url: str, body: bytes, key_id: str, extra: list[tuple[str, str]]
) -> httpx.Headers:
    """A request signed by the library over a raw URL (httpx would normalise it first)."""
    headers = httpx.Headers(extra)
    view = httpsig._RequestView(method, url, headers)
    httpsig._make_signer(key_id, PRIVATE.get(key_id, CLIENT_KEY)).sign(
        view,
        key_id=key_id,
        created=datetime.fromtimestamp(T0, tz=UTC),
        nonce=FIXED_NONCE,
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_TAG,
        include_alg=True,
        covered_component_ids=REQUEST_COMPONENTS,
        body=body,
    )
    return headers


# --------------------------------------------------------------------------- URL components


@SETTINGS
@given(url=raw_urls(), method=METHODS)
@example(url="http://City-B.Example:80/a?", method="GET")
@example(url="https://h:443", method="GET")
@example(url="https://h:80/x?y", method="GET")
@example(url="http://h:08000/", method="GET")
def test_target_matches_library_resolver(url: str, method: str) -> None:
    where = fastsig.target(url)
    try:
        resolver = HTTPSignatureComponentResolver(httpsig._RequestView(method.upper(), url, {}))
    except HTTPMessageSignaturesException:
        assert where is None  # never accept a URL the library refuses
        return
    if where is not None:
        assert (where.authority, where.path, where.query) == (
            resolver.get_authority(),
            resolver.get_path(),
            resolver.get_query(),
        )


@SETTINGS
@given(url=raw_urls(), method=METHODS, body=BODIES, key_id=KEY_IDS)
@example(url="http://hz-1:8000/v1/reports?subject=x", method="POST", body=b"{}", key_id="k")
def test_request_base_matches_library(url: str, method: str, body: bytes, key_id: str) -> None:
    params = fastsig.request_params(T0, key_id, FIXED_NONCE)
    where = fastsig.target(url)
    fast_ok = params is not None and where is not None and fastsig.method_ok(method)
    try:
        expected = library_request_base(method, url, body, key_id, FIXED_NONCE)
    except (HTTPMessageSignaturesException, ValueError):
        assert not fast_ok
        return
    if fast_ok:
        assert params is not None and where is not None
        digest = fastsig.content_digest(body)
        assert fastsig.request_base(method, where, digest, params) == expected


# --------------------------------------------------------------------------- request signing


@SETTINGS
@given(url=raw_urls(), method=METHODS, body=BODIES, key_id=KEY_IDS, extra=EXTRA_HEADERS)
def test_request_fields_match_library(
    url: str, method: str, body: bytes, key_id: str, extra: list[tuple[str, str]]
) -> None:
    try:
        template = httpx.Request(method, url, content=body, headers=extra)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError):
        assume(False)
        return
    signed = {}
    for fast in (True, False):
        request = httpx.Request(template.method, template.url, content=body, headers=extra)
        signer = RequestSigner(
            key_id, CLIENT_KEY, clock=lambda: T0, fast_path=fast, nonces=lambda: FIXED_NONCE
        )
        signed[fast] = (
            _outcome(lambda r=request, s=signer: s.sign(r)),
            request.headers.multi_items(),
        )
    assert signed[True] == signed[False]


def test_fast_signer_takes_the_fast_path() -> None:
    """Guards the comparison above: profile requests are not all left to the library."""
    request = httpx.Request("POST", "http://hz-1.example:8000/v1/reports?subject=x", content=b"{}")
    signer = RequestSigner("inst:hzbank", CLIENT_KEY, clock=lambda: T0)
    assert signer._sign_fast(request, T0, FIXED_NONCE)
    assert request.headers["signature-input"] == (
        'sig1=("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;'
        f'keyid="inst:hzbank";alg="ed25519";nonce="{FIXED_NONCE}";tag="yrd-credit-chain"'
    )
    assert not signer._sign_fast(httpx.Request("get", "http://[::1]/"), T0, FIXED_NONCE)


# --------------------------------------------------------------------------- request verification


def _split(url: str) -> tuple[str, str, str, str | None]:
    """(scheme, authority, path, query) of a raw URL string, by plain string splitting."""
    head = url.partition("#")[0]
    base, has_query, query = head.partition("?")
    scheme, _, rest = base.partition("://")
    netloc, slash, path = rest.partition("/")
    return scheme, netloc, slash + path, query if has_query else None


def _join(scheme: str, netloc: str, path: str, query: str | None) -> str:
    return f"{scheme}://{netloc}{path}{'' if query is None else '?' + query}"


def request_variants(
    method: str, url: str, headers: httpx.Headers, body: bytes
) -> list[tuple[str, bool, str, str, list[tuple[str, str]], bytes]]:
    """(name, must be refused, method, url, header lines, body) for the message and its tamperings."""
    lines = headers.multi_items()
    sig_input, sig = headers["signature-input"], headers["signature"]
    scheme, netloc, path, query = _split(url)

    def swap(name: str, value: str) -> list[tuple[str, str]]:
        return [(k, value if k.lower() == name else v) for k, v in lines]

    other_method = "PUT" if method != "PUT" else "POST"
    other_key = '"inst:hzbank"' if 'keyid="node:hz-1"' in sig_input else '"node:hz-1"'
    # A second, unrelated label in both fields: verifiable, through the library only.
    both = [
        (
            k,
            v
            + {"signature-input": ', sig2=("@method");created=1', "signature": ", sig2=:AAAA:"}[
                k.lower()
            ],
        )
        if k.lower() in ("signature-input", "signature")
        else (k, v)
        for k, v in lines
    ]
    out = [
        ("as signed", False, method, url, lines, body),
        ("header names upper-cased", False, method, url, [(k.upper(), v) for k, v in lines], body),
        ("field values padded", False, method, url, [(k, f" {v}\t") for k, v in lines], body),
        ("method", True, other_method, url, lines, body),
        ("method lower-cased", method != method.lower(), method.lower(), url, lines, body),
        ("authority", True, method, _join(scheme, "evil.example", path, query), lines, body),
        (
            "port",
            True,
            method,
            _join(scheme, netloc.split(":")[0] + ":9", path, query),
            lines,
            body,
        ),
        ("path", True, method, _join(scheme, netloc, path + "x", query), lines, body),
        (
            "query appended",
            True,
            method,
            _join(scheme, netloc, path, (query or "") + "z"),
            lines,
            body,
        ),
        # An absent and an empty query are both "?" to @query: same outcome, whatever it is.
        ("query emptied", bool(query), method, _join(scheme, netloc, path, None), lines, body),
        ("body", True, method, url, lines, body + b"x"),
        (
            "body and digest",
            True,
            method,
            url,
            swap("content-digest", fastsig.content_digest(body + b"x")),
            body + b"x",
        ),
        (
            "digest with an extra sha-512 member",
            True,
            method,
            url,
            swap("content-digest", headers["content-digest"] + ", " + ContentDigest.create(body)),
            body,
        ),
        (
            "digest absent",
            True,
            method,
            url,
            [(k, v) for k, v in lines if k.lower() != "content-digest"],
            body,
        ),
        ("signature flipped", True, method, url, swap("signature", _flip_signature(sig)), body),
        (
            "created",
            True,
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "created", str(T0 + 1))),
            body,
        ),
        (
            "created with a leading zero",
            False,  # the same Integer: the library re-serializes it canonically
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "created", "0" + str(T0))),
            body,
        ),
        (
            "unknown keyid",
            True,
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "keyid", '"nobody"')),
            body,
        ),
        (
            "other keyid",
            True,
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "keyid", other_key)),
            body,
        ),
        (
            "nonce",
            True,
            method,
            url,
            swap(
                "signature-input",
                _replace_sig1_param(sig_input, "nonce", '"BBBBBBBBBBBBBBBBBBBBBB"'),
            ),
            body,
        ),
        (
            "tag",
            True,
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "tag", '"other"')),
            body,
        ),
        (
            "alg",
            True,
            method,
            url,
            swap("signature-input", _replace_sig1_param(sig_input, "alg", '"hmac-sha256"')),
            body,
        ),
        (
            "parameters reordered",
            True,
            method,
            url,
            swap("signature-input", sig_input.replace(';alg="ed25519"', "") + ';alg="ed25519"'),
            body,
        ),
        (
            "double space between components",
            False,
            method,
            url,
            swap("signature-input", sig_input.replace('" "', '"  "', 1)),
            body,
        ),
        (
            "component dropped",
            True,
            method,
            url,
            swap("signature-input", sig_input.replace(' "@query"', "")),
            body,
        ),
        ("second label in both fields", False, method, url, both, body),
        ("signature field repeated", True, method, url, [*lines, ("signature", sig)], body),
        (
            "label renamed",
            True,
            method,
            url,
            swap("signature", sig.replace("sig1=", "sig2=")),
            body,
        ),
    ]
    return out


def _verify_request(
    fast: bool, method: str, url: str, lines: Any, body: bytes, now: float = T0
) -> Any:
    verifier = RequestVerifier(KEYS, clock=lambda: now, fast_path=fast)
    return verifier.verify(method, url, httpx.Headers(lines), body)


@VARIANT_SETTINGS
@given(url=raw_urls(), method=METHODS, body=BODIES, key_id=KEY_IDS, extra=EXTRA_HEADERS)
@example(
    url="http://hz-1.example:8000/v1/reports?subject=x",
    method="POST",
    body=b"{}",
    key_id="inst:hzbank",
    extra=[],
)
@example(
    url="https://City-B.Example:443/a%20b?",
    method="GET",
    body=b"",
    key_id="test-key-ed25519",
    extra=[],
)
def test_request_verification_matches_library(
    url: str, method: str, body: bytes, key_id: str, extra: list[tuple[str, str]]
) -> None:
    try:
        headers = library_signed_headers(method, url, body, key_id, extra)
    except (HTTPMessageSignaturesException, ValueError):
        assume(False)
        return
    in_profile = (
        fastsig.parse_request(headers["signature-input"], headers["signature"]) is not None
        and fastsig.target(url) is not None
        and fastsig.method_ok(method)
    )
    event(f"request in the profile: {in_profile}")
    for name, refused, m, u, lines, b in request_variants(method, url, headers, body):
        fast = _outcome(_verify_request, True, m, u, lines, b)
        library = _outcome(_verify_request, False, m, u, lines, b)
        assert fast == library, name
        if refused:
            assert fast[0] != "ok", name
    for now in (T0 - 301, T0 + 301):
        stale = [
            _outcome(_verify_request, f, method, url, headers.multi_items(), body, now)
            for f in (True, False)
        ]
        assert stale[0] == stale[1]


def test_fast_verifier_takes_the_fast_path() -> None:
    """Guards the comparison above: a profile request is checked without the library."""
    url = "http://hz-1.example:8000/v1/reports?subject=x"
    request = httpx.Request("POST", url, content=b"{}")
    RequestSigner("inst:hzbank", CLIENT_KEY, clock=lambda: T0).sign(request)
    verifier = RequestVerifier(KEYS, clock=lambda: T0)
    fields = httpsig._FieldLines.of(request.headers)
    verified = verifier._verify_fast("POST", url, fields, b"{}")
    assert verified is not None and verified.key_id == "inst:hzbank"
    assert verifier._verify_fast("POST", url + "#f", fields, b"{}") is None  # left to the library


def test_replay_is_refused_on_the_fast_path() -> None:
    url = "http://hz-1.example:8000/v1/reports"
    request = httpx.Request("POST", url, content=b"{}")
    RequestSigner("inst:hzbank", CLIENT_KEY, clock=lambda: T0).sign(request)
    for fast in (True, False):
        verifier = RequestVerifier(KEYS, clock=lambda: T0, fast_path=fast)
        verifier.verify("POST", url, request.headers, b"{}")
        with pytest.raises(httpsig.ReplayedNonceError):
            verifier.verify("POST", url, request.headers, b"{}")


# --------------------------------------------------------------------------- responses

STATUSES = st.sampled_from([200, 201, 204, 301, 400, 401, 404, 500, 503, 99, 1000])


@VARIANT_SETTINGS
@given(
    url=raw_urls(),
    method=METHODS,
    status=STATUSES,
    body=BODIES,
    key_id=KEY_IDS,
    request_body=BODIES,
)
def test_response_fields_and_verification_match_library(
    url: str, method: str, status: int, body: bytes, key_id: str, request_body: bytes
) -> None:
    try:
        request = library_signed_headers(method, url, request_body, "inst:hzbank", [])
    except (HTTPMessageSignaturesException, ValueError):
        assume(False)
        return
    request_input, request_signature = request["signature-input"], request["signature"]
    bound = {"request_method": method, "request_url": url}

    def sign(fast: bool, signature: str = request_signature) -> dict[str, str]:
        return sign_response(
            status,
            {"Content-Type": "application/json"},
            body,
            request_input,
            signature,
            key_id,
            NODE_KEY,
            clock=lambda: T0,
            fast_path=fast,
            **bound,
        )

    signed = {fast: _outcome(lambda f=fast: sign(f)) for fast in (True, False)}
    assert signed[True] == signed[False]
    if signed[True][0] != "ok":
        return
    headers: dict[str, str] = signed[True][1]
    member = fastsig.signature_member(request_signature)
    params = fastsig.response_params(T0, key_id)
    where = fastsig.target(url)
    in_profile = bool(
        member and params and where and fastsig.method_ok(method) and fastsig.status_ok(status)
    )
    event(f"response in the profile: {in_profile}")
    if in_profile:
        assert where is not None and params is not None and member is not None
        expected = library_response_base(status, body, method, url, request_signature, key_id)
        base = fastsig.response_base(
            status, headers["Content-Digest"], method, where, member, params
        )
        assert base == expected

    scheme, netloc, path, query = _split(url)
    other_request = library_signed_headers(method, url, request_body + b"!", "inst:hzbank", [])
    sig_input = headers["Signature-Input"]

    def swap(name: str, value: str) -> dict[str, str]:
        return {**headers, name: value}

    variants: list[tuple[str, bool, int, dict[str, str], bytes, dict[str, Any], str]] = [
        ("as signed", False, status, headers, body, bound, request_signature),
        (
            "lower-case names",
            False,
            status,
            {k.lower(): v for k, v in headers.items()},
            body,
            bound,
            request_signature,
        ),
        ("status", True, status + 1, headers, body, bound, request_signature),
        ("body", True, status, headers, body + b"x", bound, request_signature),
        (
            "body and digest",
            True,
            status,
            swap("Content-Digest", fastsig.content_digest(body + b"x")),
            body + b"x",
            bound,
            request_signature,
        ),
        (
            "request method",
            True,
            status,
            headers,
            body,
            {**bound, "request_method": "PUT" if method != "PUT" else "GET"},
            request_signature,
        ),
        (
            "request authority",
            True,
            status,
            headers,
            body,
            {**bound, "request_url": _join(scheme, "evil.example", path, query)},
            request_signature,
        ),
        (
            "request path",
            True,
            status,
            headers,
            body,
            {**bound, "request_url": _join(scheme, netloc, path + "x", query)},
            request_signature,
        ),
        (
            "request query",
            True,
            status,
            headers,
            body,
            {**bound, "request_url": _join(scheme, netloc, path, (query or "") + "z")},
            request_signature,
        ),
        (
            "another request's signature",
            True,
            status,
            headers,
            body,
            bound,
            other_request["signature"],
        ),
        ("request signature padded", False, status, headers, body, bound, f" {request_signature} "),
        (
            "signature flipped",
            True,
            status,
            swap("Signature", _flip_signature(headers["Signature"])),
            body,
            bound,
            request_signature,
        ),
        (
            "created",
            True,
            status,
            swap("Signature-Input", _replace_sig1_param(sig_input, "created", str(T0 + 1))),
            body,
            bound,
            request_signature,
        ),
        (
            "unknown keyid",
            True,
            status,
            swap("Signature-Input", _replace_sig1_param(sig_input, "keyid", '"nobody"')),
            body,
            bound,
            request_signature,
        ),
        (
            "other keyid",
            True,
            status,
            swap("Signature-Input", _replace_sig1_param(sig_input, "keyid", '"inst:hzbank"')),
            body,
            bound,
            request_signature,
        ),
        (
            "binding dropped",
            True,
            status,
            swap("Signature-Input", sig_input.replace(' "signature";req;key="sig1"', "")),
            body,
            bound,
            request_signature,
        ),
        (
            "digest absent",
            True,
            status,
            {k: v for k, v in headers.items() if k != "Content-Digest"},
            body,
            bound,
            request_signature,
        ),
    ]
    for name, refused, st_, hdrs, b, bnd, req_sig in variants:
        outcomes = [
            _outcome(
                verify_response,
                *(st_, hdrs, b, request_input, req_sig, KEYS),
                clock=lambda: T0,
                fast_path=f,
                **bnd,
            )
            for f in (True, False)
        ]
        assert outcomes[0] == outcomes[1], name
        if refused:
            assert outcomes[0][0] != "ok", name


def test_fast_response_path_is_taken_and_binds() -> None:
    url = "http://hz-1.example:8000/v1/reports?subject=x"
    request = httpx.Request("GET", url)
    RequestSigner("inst:hzbank", CLIENT_KEY, clock=lambda: T0).sign(request)
    sig = request.headers["signature"]
    headers = sign_response(
        200,
        {},
        b"{}",
        request.headers["signature-input"],
        sig,
        "node:hz-1",
        NODE_KEY,
        request_method="GET",
        request_url=url,
        clock=lambda: T0,
    )
    fast = fastsig.parse_response(headers["Signature-Input"], headers["Signature"])
    assert fast is not None and fast.key_id == "node:hz-1"
    args = (request.headers["signature-input"], sig, KEYS)
    assert (
        verify_response(
            200, headers, b"{}", *args, request_method="GET", request_url=url, clock=lambda: T0
        )
        == "node:hz-1"
    )
    with pytest.raises(httpsig.BadSignatureError):
        verify_response(
            200,
            headers,
            b"{}",
            *args,
            request_method="GET",
            request_url=url + "&y",
            clock=lambda: T0,
        )


# --------------------------------------------------------------------------- digests and fields


@SETTINGS
@given(body=st.binary(max_size=2000))
def test_content_digest_matches_library(body: bytes) -> None:
    digest = fastsig.content_digest(body)
    assert digest == ContentDigest.create(body)
    assert fastsig.digest_shape_ok(digest) and fastsig.digest_matches(digest, body)
    assert not fastsig.digest_matches(digest, body + b"\0")


@pytest.mark.parametrize("case", DIGESTS["cases"], ids=lambda c: c["name"])
def test_content_digest_vectors(case: dict[str, str]) -> None:
    body = case["body"].encode()
    if case["content_digest"].startswith("sha-256="):
        assert fastsig.content_digest(body) == case["content_digest"]
        assert fastsig.digest_shape_ok(case["content_digest"])
    else:  # sha-512 is left to the library
        assert not fastsig.digest_shape_ok(case["content_digest"])
    httpsig.check_content_digest(case["content_digest"], body)


VALID_INPUT = (
    'sig1=("@method" "@authority" "@path" "@query" "content-digest");created=1700000000;'
    'keyid="inst:hzbank";alg="ed25519";nonce="AAAAAAAAAAAAAAAAAAAAAA";tag="yrd-credit-chain"'
)
VALID_SIGNATURE = fastsig.signature_field(bytes(range(64)))


@settings(max_examples=2000, deadline=None)
@given(
    position=st.integers(0, len(VALID_INPUT)),
    insert=st.text(st.sampled_from(' \t";=()\\:,*0a@-'), max_size=3),
    cut=st.integers(0, 3),
    target_field=st.sampled_from(["input", "signature"]),
)
def test_field_parser_accepts_only_what_the_library_reads_the_same(
    position: int, insert: str, cut: int, target_field: str
) -> None:
    text = VALID_INPUT if target_field == "input" else VALID_SIGNATURE
    mutated = text[:position] + insert + text[position + cut :]
    sig_input, sig = (
        (mutated, VALID_SIGNATURE) if target_field == "input" else (VALID_INPUT, mutated)
    )
    parsed = fastsig.parse_request(sig_input, sig)
    if parsed is None:
        return
    inputs = http_sf.parse(sig_input.encode(), tltype="dictionary")
    signatures = http_sf.parse(sig.encode(), tltype="dictionary")
    assert list(inputs) == list(signatures) == ["sig1"]
    members, params = inputs["sig1"]
    # The library's @signature-params line is its re-serialization of what it parsed.
    assert http_sf.ser({"sig1": (members, params)}) == f"sig1={parsed.params}"
    assert [name for name, p in members] == list(REQUEST_COMPONENTS) and all(
        not p for _, p in members
    )
    assert params == {
        "created": parsed.created,
        "keyid": parsed.key_id,
        "alg": "ed25519",
        "nonce": parsed.nonce,
        "tag": "yrd-credit-chain",
    }
    assert signatures["sig1"] == (parsed.signature, {})


# --------------------------------------------------------------------------- RFC 9421 vectors


def _b26_components() -> list[tuple[str, str]]:
    """B.2.6's covered components, resolved from the B.2 test-request by hand."""
    request = B26["request"]
    fields = {name.lower(): value for name, value in request["headers"]}
    where = fastsig.target(request["url"])
    assert where is not None
    derived = {"@method": request["method"], "@path": where.path, "@authority": where.authority}
    return [
        (f'"{c}"', derived[c] if c in derived else fields[c]) for c in B26["covered_components"]
    ]


def test_rfc9421_b26_signature_base() -> None:
    params = B26["signature_input"].split("=", 1)[1]
    base = fastsig.signature_base(_b26_components(), params)
    assert base == B26["signature_base"].encode("ascii")


def test_rfc9421_b26_signature_with_b14_key() -> None:
    """Ed25519 is deterministic: the B.1.4 key over the B.2.6 base gives the published value."""
    base = fastsig.signature_base(_b26_components(), B26["signature_input"].split("=", 1)[1])
    field = fastsig.signature_field(RFC_KEY.sign(base))
    assert field.split("=", 1)[1] == B26["signature"].split("=", 1)[1]
    published = base64.b64decode(B26["signature"].split("=:", 1)[1].rstrip(":"))
    RFC_KEY.public_key().verify(published, base)


def test_rfc9421_b26_message_is_left_to_the_library() -> None:
    relabelled = B26["signature_input"].replace("sig-b26=", "sig1=")
    assert fastsig.parse_request(relabelled, B26["signature"].replace("sig-b26=", "sig1=")) is None
    request = B26["request"]
    headers = [
        *request["headers"],
        ("Signature-Input", relabelled),
        ("Signature", B26["signature"].replace("sig-b26=", "sig1=")),
    ]
    outcomes = {
        fast: _outcome(
            lambda f=fast: RequestVerifier(
                {"test-key-ed25519": RFC_KEY.public_key()},
                clock=lambda: B26["created"],
                fast_path=f,
            ).verify(
                request["method"], request["url"], httpx.Headers(headers), request["body"].encode()
            )
        )
        for fast in (True, False)
    }
    assert outcomes[True] == outcomes[False]
    assert outcomes[True][0] == "MalformedSignatureError"  # no alg, tag or nonce: not our profile


def test_profile_request_signed_with_the_rfc_key_matches_library() -> None:
    url = "https://example.com/foo?param=Value&Pet=dog"
    body = B26["request"]["body"].encode()
    base = library_request_base("POST", url, body, "test-key-ed25519", FIXED_NONCE)
    where = fastsig.target(url)
    params = fastsig.request_params(T0, "test-key-ed25519", FIXED_NONCE)
    assert where is not None and params is not None
    assert fastsig.request_base("POST", where, fastsig.content_digest(body), params) == base
    assert base.startswith(
        b'"@method": POST\n"@authority": example.com\n"@path": /foo\n"@query": ?param=Value&Pet=dog\n'
    )
