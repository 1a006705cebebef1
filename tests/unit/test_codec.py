"""ledger.codec against the RFC 8785 reference library (rfc8785)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import MAX_SAFE_INTEGER, canonical_bytes, decode_canonical
from ledger.errors import DecodeError, InvalidRecordError

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
