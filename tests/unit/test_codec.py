"""ledger.codec against the RFC 8785 reference library (rfc8785)."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import (
    MAX_JSON_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_bytes,
    check_json_depth,
    decode_canonical,
    json_depth,
    parse_json,
)
from ledger.errors import DecodeError, InvalidRecordError, JsonDepthError

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
keys = st.text(st.characters(max_codepoint=127), max_size=10)
scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(values)
def test_matches_rfc8785_reference(value: object) -> None:
    ours = canonical_bytes(value)
    assert ours == rfc8785.dumps(value)
    assert decode_canonical(ours) == value


@pytest.mark.parametrize(
    "value, needle",
    [
        (1.5, "float"),
        ({"a": [1, 2.0]}, "float"),
        (2**53, "2\\*\\*53"),
        ({"é": 1}, "ASCII"),
        ({1: 1}, "ASCII"),
        (b"bytes", "bytes"),
        ("\ud800", "Unicode"),
    ],
)
def test_refuses_values_outside_domain(value: object, needle: str) -> None:
    with pytest.raises(InvalidRecordError, match=needle):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "data",
    [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1.0}', b'{"a":1,"a":1}', b"\xff", b"{", b'{"a":NaN}'],
)
def test_decode_refuses_non_canonical(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_canonical(data)


def test_rfc8785_key_ordering_example() -> None:
    # RFC 8785 §3.2.3 sorts by UTF-16 code units; for ASCII keys that is byte order.
    assert (
        canonical_bytes({"b": 1, "a": {"d": True, "c": None}, "A": "x"})
        == b'{"A":"x","a":{"c":null,"d":true},"b":1}'
    )


# --- JSON depth: a linear scan, checked against the parsed value's depth --------------------
def _reference_depth(value: object) -> int:
    """The plain recursive definition (the values here are shallow)."""
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


nasty_text = st.text(alphabet='[]{}"\\ab\u00e9\U0001f600', max_size=12)
deep_values = st.recursive(
    scalars | nasty_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(nasty_text, children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=1000, deadline=None)
@given(deep_values, st.integers(0, 12), st.booleans(), st.booleans())
def test_depth_scan_agrees_with_the_parsed_value(
    value: object, limit: int, as_text: bool, ascii_only: bool
) -> None:
    encoded = json.dumps(value, ensure_ascii=ascii_only, indent=None if limit % 2 else 1)
    data: bytes | str = encoded if as_text else encoded.encode()
    depth = _reference_depth(value)
    assert json_depth(value) == depth
    if depth <= limit:
        check_json_depth(data, max_depth=limit)
        assert parse_json(data, max_depth=limit) == value
    else:
        with pytest.raises(JsonDepthError) as refused:
            parse_json(data, "the value", max_depth=limit)
        assert refused.value.max_depth == limit
        assert isinstance(refused.value, ValueError)  # handled wherever json.loads errors are
        assert f"more than {limit} levels" in str(refused.value)


def test_depth_scan_refuses_the_bomb_without_recursion() -> None:
    bomb = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(RecursionError):
        json.loads(bomb)  # what the scan keeps from the parser
    with pytest.raises(JsonDepthError, match=f"more than {MAX_JSON_DEPTH} levels") as refused:
        parse_json(bomb, "body")
    assert refused.value.offset == MAX_JSON_DEPTH
    with pytest.raises(JsonDepthError):
        decode_canonical(b'{"a":' + b"[" * 100 + b"1" + b"]" * 100 + b"}", "entry")


@pytest.mark.parametrize(
    "data",
    [
        '"' + "[" * 100 + '"',  # brackets in a string are text
        '["\\"' + "[" * 100 + '"]',  # an escaped quote does not end the string
        '"' + '\\"' * 100,  # an unterminated string: not JSON, left to the parser
        "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH,  # exactly at the limit
    ],
)
def test_depth_scan_passes(data: str) -> None:
    check_json_depth(data)
