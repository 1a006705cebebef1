"""Canonical bytes: the only encoder for data that is hashed or signed.

Everything the ledger hashes or signs goes through :func:`canonical_bytes`,
which produces RFC 8785 (JSON Canonicalization Scheme) output.

Invariants:
    * The value domain is I-JSON without floats: ``dict`` with ASCII ``str``
      keys, ``list``/``tuple``, ``str`` (valid Unicode, no lone surrogates),
      ``int`` within ±(2**53 - 1), ``bool`` and ``None``. Anything else raises
      :class:`~ledger.errors.InvalidRecordError` before a byte is produced.
      Money is integer minor units; times are RFC 3339 UTC strings.
    * On that domain the standard library's ``json`` encoder with sorted keys,
      no whitespace and ``ensure_ascii=False`` emits exactly the RFC 8785 bytes:
      RFC 8785 orders keys by UTF-16 code units, which equals code-point order
      for ASCII keys; its string escaping is ECMAScript's ``JSON.stringify``
      (only ``"``, ``\\`` and C0 controls, lower-case ``\\u00xx``), which is
      what ``json`` does; and without floats no number formatting differs. The
      test suite checks this equivalence against the ``rfc8785`` reference
      library with property-based tests. The reference encoder is about four
      times slower, which matters at tens of millions of entries.
    * :func:`decode_canonical` accepts only bytes that re-encode to themselves,
      so two different byte strings never decode to the same entry.
    * JSON from outside (a request body, a peer's answer, a file) is parsed with
      :func:`parse_json`, which first checks with :func:`check_json_depth` that
      its arrays and objects nest at most :data:`MAX_JSON_DEPTH` levels: the
      standard library's parser recurses once per level, and 200,000 nested
      ``[`` would end in ``RecursionError``. The check is one linear scan that
      skips strings, and it stops where the limit is passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from typing import Any

from ledger.errors import DecodeError, InvalidRecordError, JsonDepthError

__all__ = [
    "MAX_BODY_DEPTH",
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "JsonValue",
    "canonical_bytes",
    "check_json_depth",
    "decode_canonical",
    "json_depth",
    "parse_json",
]

MAX_SAFE_INTEGER = 2**53 - 1

#: How deep arrays and objects may nest in JSON read from outside; the standard
#: library's parser would fail near 1,000.
MAX_JSON_DEPTH = 64

#: How deep a record body may nest. The deepest document that carries a body (a
#: report with its bundle) wraps it in 6 levels, so a body within this limit fits in
#: every answer and file under :data:`MAX_JSON_DEPTH`, with room to spare.
MAX_BODY_DEPTH = 32

JsonValue = Any  # recursive JSON value; the domain is checked at run time

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def _refuse(value: object) -> Any:
    raise TypeError(f"type {type(value).__name__} is not JSON serializable")


# The C encoder behind ``_encoder``, built once: ``JSONEncoder.encode`` rebuilds it
# on every call, which costs about a third of the time of encoding a small entry.
# Same arguments as ``_encoder`` (ensure_ascii=False → encode_basestring, no indent,
# ":" and "," separators, sorted keys, no skipkeys, no NaN), so the same bytes. No
# ``markers`` dict: a shared one would keep stale ids after a failed call, and values
# reach this point only after the domain check (a cycle still ends in RecursionError).
_c_encode = (
    c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    if c_make_encoder is not None
    else None
)


def _check(value: object, path: str) -> None:
    # Iterative depth-first walk: entries are shallow, but a hostile peer's
    # value must not hit the recursion limit.
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:  # type: ignore[operator]
                raise InvalidRecordError(f"{p} must be within ±(2**53-1), got {v}")
            continue
        if isinstance(v, Mapping):
            for k, item in v.items():
                if type(k) is not str or not k.isascii():
                    raise InvalidRecordError(f"{p} has a key that is not an ASCII string: {k!r}")
                stack.append((item, f"{p}.{k}"))
            continue
        if t is list or t is tuple:
            for i, item in enumerate(v):  # type: ignore[arg-type]
                stack.append((item, f"{p}[{i}]"))
            continue
        if t is float:
            raise InvalidRecordError(f"{p} is a float ({v!r}); use integer minor units or a string")
        raise InvalidRecordError(f"{p} has type {t.__name__}, which canonical JSON cannot hold")


def _in_domain(v: object) -> bool:
    """Fast membership test for the domain; ``_check`` explains a ``False``."""
    t = type(v)
    if t is str or t is bool or v is None:
        return True
    if t is int:
        return -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER  # type: ignore[operator]
    if t is dict:
        for k, x in v.items():  # type: ignore[attr-defined]
            if type(k) is not str or not k.isascii():
                return False
            tx = type(x)
            if tx is str or tx is bool or x is None:
                continue
            if tx is int:
                if not -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER:
                    return False
                continue
            if not _in_domain(x):
                return False
        return True
    if t is list or t is tuple:
        return all(_in_domain(x) for x in v)  # type: ignore[attr-defined]
    return False


def canonical_bytes(value: JsonValue) -> bytes:
    """Return the RFC 8785 canonical encoding of ``value``.

    Raises:
        InvalidRecordError: the value is outside the domain described above.
    """
    if not _in_domain(value):
        _check(value, "$")  # raises with the path of the first bad value
    return _encode(value)


def _encode(value: JsonValue) -> bytes:
    """Encode a value already known to be in the domain (typed entries check
    their fields on construction and call this directly)."""
    try:
        if _c_encode is not None and type(value) is dict:
            return "".join(_c_encode(value, 0)).encode("utf-8")
        return _encoder.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecordError(f"string is not valid Unicode: {exc.reason}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_float(s: str) -> Any:
    raise ValueError(f"float {s} is not allowed")


# Outside strings, the next bracket or quote; inside one, the rest of it up to and
# including its closing quote (one match: a string is never scanned twice).
_NEXT_TOKEN = re.compile(rb'["\[\]{}]').search
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S).match
_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT = ord('"'), ord("["), ord("{")


def check_json_depth(
    data: bytes | str, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH
) -> None:
    """Refuse ``data`` if its arrays and objects nest more than ``max_depth`` levels.

    A linear scan of the text, not a parse, so it can run before any recursive
    parser sees the bytes: brackets inside strings do not count, and text that is
    not JSON at all passes (the parser that follows refuses it). Text with no more
    opening brackets than the limit passes without a scan.

    Raises:
        JsonDepthError: with the (UTF-8 byte) offset where nesting passes ``max_depth``.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    depth = pos = 0
    while (m := _NEXT_TOKEN(raw, pos)) is not None:
        i = m.start()
        c = raw[i]
        if c == _QUOTE:
            rest = _STRING_REST(raw, i + 1)
            if rest is None:
                return  # an unterminated string: not JSON, for the parser to refuse
            pos = rest.end()
            continue
        if c in (_OPEN_ARRAY, _OPEN_OBJECT):
            depth += 1
            if depth > max_depth:
                raise JsonDepthError(what, max_depth, i)
        else:
            depth -= 1
        pos = i + 1


def json_depth(value: JsonValue) -> int:
    """How many levels of arrays and objects ``value`` nests (0 for a scalar); no recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, Mapping):
            items: Any = v.values()
        elif type(v) is list or type(v) is tuple:
            items = v
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((item, depth) for item in items)
    return deepest


def parse_json(data: bytes | str, what: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(data)`` for JSON from outside, after :func:`check_json_depth`.

    Raises:
        JsonDepthError: nested deeper than ``max_depth`` (nothing was parsed).
        ValueError: not JSON (``json.JSONDecodeError``, or not UTF-8), as ``json.loads``.
    """
    check_json_depth(data, what, max_depth)
    return json.loads(data)


def decode_canonical(data: bytes, what: str = "value") -> JsonValue:
    """Decode canonical JSON bytes, refusing anything that is not canonical.

    Raises:
        DecodeError: not UTF-8 JSON, duplicate keys, floats, nested deeper than
            :data:`MAX_JSON_DEPTH`, or not canonical.
    """
    check_json_depth(data, what)
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
        again = canonical_bytes(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"{what}: {exc}") from exc
    if again != data:
        raise DecodeError(f"{what}: bytes are not in canonical (RFC 8785) form")
    return value
