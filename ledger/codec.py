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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import c_make_encoder  # type: ignore[attr-defined]
from typing import Any

from ledger.errors import DecodeError, InvalidRecordError

__all__ = ["MAX_SAFE_INTEGER", "JsonValue", "canonical_bytes", "decode_canonical"]

MAX_SAFE_INTEGER = 2**53 - 1

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


def decode_canonical(data: bytes, what: str = "value") -> JsonValue:
    """Decode canonical JSON bytes, refusing anything that is not canonical.

    Raises:
        DecodeError: not UTF-8 JSON, duplicate keys, floats, or not canonical.
    """
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
