"""Tests for ledger.uscc: published codes, one test per error rule, and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidRecordError, InvalidUsccError
from ledger.uscc import (
    REGISTRATION_TYPES,
    SERIAL_LIMIT,
    USCC_ALPHABET,
    Uscc,
    generate_usccs,
    is_valid_uscc,
    make_uscc,
    org_code_check_character,
    parse_uscc,
    uscc_check_character,
)

# Published codes of well-known organizations, as shown on their business licences /
# the National Enterprise Credit Information Publicity System. Found through code
# search in several unrelated public repositories that agree on the holder; not
# checked against the official registry from here. Each passes both check characters,
# which a mistyped or invented code does with probability about 1/341.
PUBLISHED = {
    "91310000132260250X": "上海汽车集团股份有限公司 (SAIC Motor, Shanghai)",
    "9131000013221158XC": "上海浦东发展银行股份有限公司 (SPD Bank, Shanghai)",
    "91330100716105852F": "阿里巴巴（中国）网络技术有限公司 (Hangzhou)",
    # 320191 is a Nanjing development-zone code, not a GB/T 2260 county.
    "913201911348723659": "南瑞集团有限公司 (NARI Group, Nanjing)",
    "914403001922038216": "华为技术有限公司 (Huawei Technologies, Shenzhen)",
    "9144030071526726XG": "腾讯科技（深圳）有限公司 (Tencent Technology, Shenzhen)",
    # National-level registrations carry admin code 100000.
    "91100000100003962T": "中国工商银行股份有限公司 (ICBC; SSE 601398 registration number)",
    "12100000425006133D": "华东师范大学 (East China Normal University; 1-2 = public institution)",
}

# From the test suite of github.com/wenerme/go-gb (gb32100/code_test.go); holders unnamed.
GO_GB_EXAMPLES = ["91350100M000100Y43", "91310230MA1K314J7C", "91310230MA1K314K57"]

YRD_ADMIN_CODES = [
    "310000",  # Shanghai
    "320100",  # Nanjing
    "320400",  # Changzhou
    "320500",  # Suzhou
    "321300",  # Suqian
    "330100",  # Hangzhou
    "331000",  # Taizhou
    "340100",  # Hefei
]

VALID_PAIRS = sorted(a + t for a, types in REGISTRATION_TYPES.items() for t in types)

serials = st.integers(min_value=0, max_value=SERIAL_LIMIT - 1)
admin_codes = st.sampled_from(YRD_ADMIN_CODES)
registrations = st.sampled_from(VALID_PAIRS)


def _fix_checks(first16: str) -> str:
    """Complete 16 characters with both correct check characters."""
    first17 = first16 + org_code_check_character(first16[8:16])
    return first17 + uscc_check_character(first17)


def _rule_of(code: str) -> str:
    with pytest.raises(InvalidUsccError) as info:
        parse_uscc(code)
    assert info.value.code == code
    return info.value.rule


# --- published codes --------------------------------------------------------------


@pytest.mark.parametrize("code", [*PUBLISHED, *GO_GB_EXAMPLES])
def test_published_codes_parse(code: str) -> None:
    uscc = parse_uscc(code)
    assert str(uscc) == code
    assert is_valid_uscc(code)
    assert uscc.registration_authority + uscc.organization_type == code[:2]
    assert uscc.admin_code == code[2:8]
    assert uscc.organization_code == code[8:17]
    assert uscc.check_character == code[17]


def test_parts_of_a_published_code() -> None:
    uscc = parse_uscc("91310000132260250X")
    assert uscc.registration_authority == "9"
    assert uscc.organization_type == "1"
    assert uscc.admin_code == "310000"
    assert uscc.organization_code == "132260250"
    assert org_code_check_character("13226025") == "0"
    assert uscc_check_character("91310000132260250") == "X"


def test_org_check_x_and_zero() -> None:
    # SPD Bank's organization code 13221158-X: remainder 10 maps to "X".
    assert org_code_check_character("13221158") == "X"
    # Remainder 11 maps to "0": sum = 0 for an all-zero body.
    assert org_code_check_character("00000000") == "0"


# --- one test per rule -------------------------------------------------------------


@pytest.mark.parametrize("code", ["", "9131000013226025X", "91310000132260250X0"])
def test_rule_length(code: str) -> None:
    assert _rule_of(code) == "length"


@pytest.mark.parametrize(
    ("code", "position", "char"),
    [
        ("91310000132260250x", 18, "x"),  # lower case
        ("913100001322602I0X", 16, "I"),  # I, O, S, V, Z are excluded
        ("Z1310000132260250X", 1, "Z"),
        ("9131000013226025０X", 17, "０"),  # full-width zero
    ],
)
def test_rule_alphabet(code: str, position: int, char: str) -> None:
    with pytest.raises(InvalidUsccError) as info:
        parse_uscc(code)
    assert info.value.rule == "alphabet"
    assert f"position {position}" in info.value.detail
    assert repr(char) in info.value.detail


def test_lower_case_is_rejected_and_says_so() -> None:
    with pytest.raises(InvalidUsccError) as info:
        parse_uscc("9131000013221158xc")
    assert info.value.rule == "alphabet"
    assert "lower case" in info.value.detail
    assert "not upper-cased" in info.value.detail


@pytest.mark.parametrize("pair", ["94", "99", "Y2", "B1", "01", "N4"])
def test_rule_registration_type(pair: str) -> None:
    assert _rule_of(_fix_checks(pair + "310000" + "13226025")) == "registration-type"


@pytest.mark.parametrize("admin", ["990000", "000000", "160100", "10000A", "AB0000", "200000"])
def test_rule_admin_code(admin: str) -> None:
    assert _rule_of(_fix_checks("91" + admin + "13226025")) == "admin-code"


def test_rule_organization_code_check() -> None:
    # The GB 32100 character is recomputed so only the GB 11714 character is wrong.
    first17 = "91310000132260251"
    code = first17 + uscc_check_character(first17)
    with pytest.raises(InvalidUsccError) as info:
        parse_uscc(code)
    assert info.value.rule == "organization-code-check"
    assert "'0'" in info.value.detail and "'1'" in info.value.detail


def test_seen_in_the_wild_with_bad_org_check() -> None:
    # Cited in public repositories as SPD Bank's code; its GB 32100 character is
    # right but its GB 11714 character is not (SPD Bank's real code is 9131000013221158XC).
    assert uscc_check_character("91310000631295002") == "H"
    assert _rule_of("91310000631295002H") == "organization-code-check"


def test_rule_check_character() -> None:
    with pytest.raises(InvalidUsccError) as info:
        parse_uscc("91310000132260250Y")
    assert info.value.rule == "check-character"
    assert "'X'" in info.value.detail and "'Y'" in info.value.detail


def test_error_is_a_value_error_and_record_error() -> None:
    with pytest.raises(InvalidRecordError):
        parse_uscc("nope")
    with pytest.raises(ValueError, match=r"rule: length"):
        parse_uscc("nope")


def test_constructor_validates() -> None:
    with pytest.raises(InvalidUsccError):
        Uscc("91310000132260250Y")
    assert Uscc("91310000132260250X") == parse_uscc("91310000132260250X")


@pytest.mark.parametrize("value", [None, 91310000132260250, b"91310000132260250X", ["9"] * 18])
def test_is_valid_never_raises(value: object) -> None:
    assert is_valid_uscc(value) is False


def test_check_helpers_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        uscc_check_character("9131")
    with pytest.raises(ValueError, match="'I'"):
        uscc_check_character("9131000013226025I")
    with pytest.raises(ValueError, match="8 characters"):
        org_code_check_character("1322")
    with pytest.raises(ValueError, match="'a'"):
        org_code_check_character("1322602a")


# --- the check character's detection claims ----------------------------------------


def test_weights_detect_every_substitution_and_adjacent_transposition() -> None:
    # Weighted sum mod prime 31: substituting value a by b at position i changes the
    # sum by (b - a) * w_i, swapping neighbours by (a - b) * (w_i - w_{i+1}). Both are
    # non-zero mod 31 for every 0 < |a - b| < 31 iff these hold.
    weights = [pow(3, i, 31) for i in range(17)]
    assert weights[:6] == [1, 3, 9, 27, 19, 26]  # the table printed in GB 32100
    for w in weights:
        assert all((d * w) % 31 for d in range(1, 31))
    for w, w_next in itertools.pairwise(weights):
        assert all((d * (w - w_next)) % 31 for d in range(1, 31))


def test_org_check_alone_misses_some_substitutions() -> None:
    # Why the GB 32100 character matters: "1" (1) and "C" (12) agree mod 11, so this
    # substitution in the organization code passes GB 11714 and only char 18 catches it.
    valid = make_uscc("320100", int_from_base31("10000000")).code
    assert valid[8:16] == "10000000"
    changed = valid[:8] + "C" + valid[9:]
    assert org_code_check_character(changed[8:16]) == changed[16]
    assert _rule_of(changed) == "check-character"


@settings(database=None, max_examples=60)
@given(admin=admin_codes, serial=serials, registration=registrations)
def test_every_single_substitution_is_rejected(admin: str, serial: int, registration: str) -> None:
    code = make_uscc(admin, serial, registration=registration).code
    for i, old in enumerate(code):
        for new in USCC_ALPHABET:
            if new == old:
                continue
            changed = code[:i] + new + code[i + 1 :]
            assert not is_valid_uscc(changed), (code, i, new)
            if i < 17:
                # The GB 32100 character alone catches it, whatever rule fires first.
                assert uscc_check_character(changed[:17]) != changed[17]


@settings(database=None, max_examples=100)
@given(admin=admin_codes, serial=serials)
def test_every_adjacent_transposition_is_rejected(admin: str, serial: int) -> None:
    code = make_uscc(admin, serial).code
    for i in range(17):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not is_valid_uscc(swapped), (code, i)


# --- make_uscc / generate_usccs -----------------------------------------------------


@settings(database=None)
@given(admin=admin_codes, serial=serials, registration=registrations)
def test_make_uscc_parses_and_round_trips(admin: str, serial: int, registration: str) -> None:
    made = make_uscc(admin, serial, registration=registration)
    parsed = parse_uscc(made.code)
    assert parsed == made
    assert parsed.admin_code == admin
    assert parsed.registration_authority + parsed.organization_type == registration
    # The body is the serial in base 31 over the alphabet.
    assert int_from_base31(parsed.organization_code[:8]) == serial


def int_from_base31(body: str) -> int:
    value = 0
    for c in body:
        value = value * 31 + USCC_ALPHABET.index(c)
    return value


@settings(database=None)
@given(admin=admin_codes, a=serials, b=serials)
def test_distinct_serials_give_distinct_codes(admin: str, a: int, b: int) -> None:
    assert (make_uscc(admin, a) == make_uscc(admin, b)) == (a == b)


def test_make_uscc_edges_and_neighbours_are_distinct() -> None:
    edge = [*range(2000), *range(SERIAL_LIMIT - 2000, SERIAL_LIMIT)]
    codes = {make_uscc("320500", s).code for s in edge}
    assert len(codes) == len(edge)
    assert all(is_valid_uscc(c) for c in codes)
    assert make_uscc("320500", 0).code[8:16] == "00000000"
    assert make_uscc("320500", SERIAL_LIMIT - 1).code[8:16] == "YYYYYYYY"


def test_make_uscc_is_deterministic() -> None:
    assert make_uscc("340100", 123_456_789) == make_uscc("340100", 123_456_789)


@pytest.mark.parametrize("serial", [-1, SERIAL_LIMIT, SERIAL_LIMIT * 2])
def test_make_uscc_rejects_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match=str(serial)):
        make_uscc("310000", serial)


@pytest.mark.parametrize(
    ("admin", "registration", "named"),
    [
        ("990000", "91", "990000"),
        ("3100", "91", "3100"),
        ("310000", "94", "94"),
        ("310000", "9", "9"),
    ],
)
def test_make_uscc_rejects_bad_prefix(admin: str, registration: str, named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        make_uscc(admin, 0, registration=registration)
    assert not isinstance(info.value, InvalidUsccError)


def test_generate_usccs_is_distinct_valid_and_deterministic() -> None:
    first = [u.code for u in generate_usccs("321300", 5000, seed=7)]
    again = [u.code for u in generate_usccs("321300", 5000, seed=7)]
    other = [u.code for u in generate_usccs("321300", 5000, seed=8)]
    assert first == again
    assert first != other
    assert len(set(first)) == 5000
    assert all(is_valid_uscc(c) and c[2:8] == "321300" for c in first)


def test_generate_usccs_golden() -> None:
    # Pins the seeded order: changing it changes every simulated dataset.
    assert [u.code for u in generate_usccs("330100", 3, seed=1)] == [
        "913301007EQFJ8DA3K",
        "91330100HYLEUMW228",
        "91330100WFGE64BR4D",
    ]


def test_generate_usccs_validates_eagerly() -> None:
    with pytest.raises(ValueError, match="-1"):
        generate_usccs("310000", -1, seed=0)
    with pytest.raises(ValueError, match="990000"):
        generate_usccs("990000", 1, seed=0)
    assert list(generate_usccs("310000", 0, seed=0)) == []
