"""Unified social credit codes (统一社会信用代码, GB 32100-2015): parse, check, build.

A USCC is 18 characters over :data:`USCC_ALPHABET` (digits and the upper-case
letters except I, O, S, V, Z; a character's value is its index)::

    position  1     2     3-8              9-16            17            18
              reg.  type  admin division   org-code body   GB 11714      GB 32100
              auth.       (GB/T 2260)      (GB 11714)      check char    check char

Invariants:

* Every :class:`Uscc` instance holds a code that passes every rule below;
  constructing one from a bad string raises :class:`~ledger.errors.InvalidUsccError`.
* :func:`parse_uscc` applies the rules in a fixed order and reports the first one
  broken, as ``InvalidUsccError.rule``: ``"length"``, ``"alphabet"``,
  ``"registration-type"``, ``"admin-code"``, ``"organization-code-check"``,
  ``"check-character"``.
* Codes are case-sensitive: lower case is rejected, never folded, because the
  standard defines upper case only and a folded code would not be the code given.
* The GB 32100 check character (weights ``3**(i-1) mod 31``) detects every
  single-character substitution and every adjacent transposition in positions
  1-17: 31 is prime and every weight, and every difference of neighbouring
  weights, is non-zero mod 31. The GB 11714 check (mod 11 over values up to 35)
  is weaker; it is enforced because the standard requires it, not relied upon.
* :func:`make_uscc` is a bijection from ``range(SERIAL_LIMIT)`` onto the
  organization-code bodies of one (registration, admin code) prefix, so distinct
  serials give distinct codes.

Registration authority / organization type pairs (chars 1-2) follow the GB 32100
table as published with its amendments (checked against several public copies;
the standard itself is not freely redistributable): 1 机构编制 {1,2,3,9},
2 外交 {1,9}, 3 司法行政 {1,2,3,4,5,9}, 4 文化 {1,9}, 5 民政 {1,2,3,9},
6 旅游 {1,2,9}, 7 宗教 {1,2,9}, 8 工会 {1,9}, 9 工商 {1,2,3},
A 中央军委改革和编制办公室 {1,9}, N 农业 {1,2,3,9}, Y 其他 {1}.

Administrative division (chars 3-8): six digits whose first two are a GB/T 2260
province code, or exactly ``100000``, the code central registration authorities
use for national-level registrations (e.g. ICBC ``91100000100003962T``). Only the
province prefix is checked: registration authorities also use development-zone
codes that are not in GB/T 2260 (e.g. Nanjing ``320191``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ledger.errors import InvalidUsccError

__all__ = [
    "REGISTRATION_TYPES",
    "SERIAL_LIMIT",
    "USCC_ALPHABET",
    "Uscc",
    "generate_usccs",
    "is_valid_uscc",
    "make_uscc",
    "org_code_check_character",
    "parse_uscc",
    "uscc_check_character",
]

USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of GB 32100; a character's value is its index."""

REGISTRATION_TYPES: Final[dict[str, frozenset[str]]] = {
    "1": frozenset("1239"),
    "2": frozenset("19"),
    "3": frozenset("123459"),
    "4": frozenset("19"),
    "5": frozenset("1239"),
    "6": frozenset("129"),
    "7": frozenset("129"),
    "8": frozenset("19"),
    "9": frozenset("123"),
    "A": frozenset("19"),
    "N": frozenset("1239"),
    "Y": frozenset("1"),
}
"""Registration-authority code (char 1) → organization-type codes (char 2) it may use."""

SERIAL_LIMIT: Final = 31**8
"""Exclusive upper bound of the ``serial`` accepted by :func:`make_uscc`."""

_PROVINCES: Final = frozenset(
    f"{p:02d}"
    for p in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)
_NATIONAL_ADMIN_CODE: Final = "100000"
_PROVINCE_TEXT: Final = "11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82"

_PAIRS: Final = frozenset(a + t for a, types in REGISTRATION_TYPES.items() for t in types)
_VALUE: Final[dict[str, int]] = {c: i for i, c in enumerate(USCC_ALPHABET)}
_ALPHABET_SET: Final = frozenset(USCC_ALPHABET)
_USCC_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 11714 values: digits are themselves, letters A..Z are 10..35 (ord - 55).
_ORG_VALUE: Final[dict[str, int]] = {
    c: int(c) if c.isdigit() else ord(c) - 55 for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
}
# Index = sum mod 11 (org code) or sum mod 31 (USCC) → check character.
_ORG_CHECK: Final = tuple({11: "0", 10: "X"}.get(11 - s, str(11 - s)) for s in range(11))
_USCC_CHECK: Final = tuple(USCC_ALPHABET[(31 - s) % 31] for s in range(31))


def _alphabet_detail(code: str) -> str:
    bad = [(i, c) for i, c in enumerate(code, 1) if c not in _ALPHABET_SET]
    pos, char = bad[0]
    detail = f"character {char!r} at position {pos} is not in the GB 32100 alphabet {USCC_ALPHABET}"
    if char.islower():
        detail += " (lower case is rejected, not upper-cased: codes are compared as given)"
    if len(bad) > 1:
        detail += f"; {len(bad)} characters are outside the alphabet in all"
    return detail


def _admin_code_problem(admin: str) -> str | None:
    """Say why ``admin`` is not a plausible division code, or return None if it is."""
    if len(admin) != 6 or not (admin.isascii() and admin.isdigit()):
        return f"admin code {admin!r} (chars 3-8) must be 6 digits"
    if admin[:2] not in _PROVINCES and admin != _NATIONAL_ADMIN_CODE:
        return (
            f"admin code {admin!r} starts with {admin[:2]!r}, which is not a GB/T 2260 "
            f"province code ({_PROVINCE_TEXT}) and the code is not {_NATIONAL_ADMIN_CODE}"
        )
    return None


def _registration_problem(pair: str) -> str | None:
    """Say why ``pair`` (chars 1-2) is not in the GB 32100 table, or return None."""
    if pair in _PAIRS:
        return None
    types = REGISTRATION_TYPES.get(pair[:1])
    if types is None:
        known = "".join(REGISTRATION_TYPES)
        return f"registration authority {pair[:1]!r} (char 1) is not one of {known!r}"
    return (
        f"organization type {pair[1:2]!r} (char 2) is not defined for registration "
        f"authority {pair[:1]!r}; allowed: {''.join(sorted(types))!r}"
    )


def org_code_check_character(first8: str) -> str:
    """Compute the GB 11714 check character of an organization-code body.

    Args:
        first8: the 8 body characters, each a digit or an upper-case letter A-Z.

    Returns:
        ``"0"``-``"9"`` or ``"X"``.

    Raises:
        ValueError: ``first8`` is not 8 characters from 0-9A-Z.
    """
    if len(first8) != 8:
        raise ValueError(f"organization code body must be 8 characters, got {first8!r}")
    try:
        total = sum(_ORG_VALUE[c] * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(
            f"organization code body {first8!r} has {exc.args[0]!r}, not in 0-9A-Z"
        ) from exc
    return _ORG_CHECK[total % 11]


def uscc_check_character(first17: str) -> str:
    """Compute the GB 32100 check character (char 18) of the first 17 characters.

    Args:
        first17: 17 characters from :data:`USCC_ALPHABET`.

    Returns:
        One character of :data:`USCC_ALPHABET`.

    Raises:
        ValueError: ``first17`` is not 17 characters from :data:`USCC_ALPHABET`.
    """
    if len(first17) != 17:
        raise ValueError(f"USCC body must be 17 characters, got {len(first17)}: {first17!r}")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(
            f"USCC body {first17!r} has {exc.args[0]!r}, not in {USCC_ALPHABET}"
        ) from exc
    return _USCC_CHECK[total % 31]


def _check(code: str) -> None:
    """Raise :class:`InvalidUsccError` for the first rule ``code`` breaks."""
    if len(code) != 18:
        raise InvalidUsccError(code, "length", f"expected 18 characters, got {len(code)}")
    if not _ALPHABET_SET.issuperset(code):
        raise InvalidUsccError(code, "alphabet", _alphabet_detail(code))
    problem = _registration_problem(code[:2])
    if problem is not None:
        raise InvalidUsccError(code, "registration-type", problem)
    problem = _admin_code_problem(code[2:8])
    if problem is not None:
        raise InvalidUsccError(code, "admin-code", problem)
    expected = org_code_check_character(code[8:16])
    if code[16] != expected:
        raise InvalidUsccError(
            code,
            "organization-code-check",
            f"GB 11714 check character (char 17) of {code[8:16]!r} is {expected!r}, "
            f"found {code[16]!r}",
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise InvalidUsccError(
            code,
            "check-character",
            f"GB 32100 check character (char 18) is {expected!r}, found {code[17]!r}",
        )


@dataclass(frozen=True, slots=True)
class Uscc:
    """A unified social credit code that passes every GB 32100 / GB 11714 rule.

    Attributes:
        code: the 18-character code.

    Raises:
        InvalidUsccError: on construction, if ``code`` breaks a rule.
    """

    code: str

    def __post_init__(self) -> None:
        _check(self.code)

    @property
    def registration_authority(self) -> str:
        """Char 1: the registration-authority code, e.g. ``"9"`` (industry & commerce)."""
        return self.code[0]

    @property
    def organization_type(self) -> str:
        """Char 2: the organization-type code, e.g. ``"1"`` (enterprise under authority 9)."""
        return self.code[1]

    @property
    def admin_code(self) -> str:
        """Chars 3-8: the registering authority's 6-digit administrative division."""
        return self.code[2:8]

    @property
    def organization_code(self) -> str:
        """Chars 9-17: the GB 11714 organization code, check character included."""
        return self.code[8:17]

    @property
    def check_character(self) -> str:
        """Char 18: the GB 32100 check character."""
        return self.code[17]

    def __str__(self) -> str:
        return self.code


def _trusted(code: str) -> Uscc:
    # make_uscc builds codes valid by construction; re-checking them would cost
    # more than building them, at 16.8M codes per run.
    uscc = object.__new__(Uscc)
    object.__setattr__(uscc, "code", code)
    return uscc


def parse_uscc(code: str) -> Uscc:
    """Validate ``code`` and return it as a :class:`Uscc`.

    Args:
        code: the candidate code, exactly as received (not stripped or upper-cased).

    Returns:
        The parsed code.

    Raises:
        InvalidUsccError: the first rule broken, in the order ``length``,
            ``alphabet``, ``registration-type``, ``admin-code``,
            ``organization-code-check``, ``check-character``.
    """
    return Uscc(code)


def is_valid_uscc(code: object) -> bool:
    """Return whether ``code`` is a valid USCC; never raises (non-strings are invalid)."""
    if not isinstance(code, str):
        return False
    try:
        _check(code)
    except InvalidUsccError:
        return False
    return True


# make_uscc tables. The serial is written in base 31 as 8 digits, most significant
# first, each digit d becoming USCC_ALPHABET[d] (all 31 are also GB 11714 body
# characters). Digits are taken two at a time (31**2 = 961 entries per pair), each
# entry holding the two characters and their contributions to the GB 11714 sum
# (mod 11) and the GB 32100 sum (mod 31), so a code costs four lookups.
_PAIR_BASE: Final = 31 * 31


def _pair_table(pair_index: int) -> tuple[tuple[str, int, int], ...]:
    i = 2 * pair_index  # offset within the 8-character body
    table = []
    for n in range(_PAIR_BASE):
        hi, lo = divmod(n, 31)
        chars = USCC_ALPHABET[hi] + USCC_ALPHABET[lo]
        org = sum(_ORG_VALUE[c] * _ORG_WEIGHTS[i + k] for k, c in enumerate(chars)) % 11
        uscc = sum(_VALUE[c] * _USCC_WEIGHTS[8 + i + k] for k, c in enumerate(chars)) % 31
        table.append((chars, org, uscc))
    return tuple(table)


_PAIR0, _PAIR1, _PAIR2, _PAIR3 = (_pair_table(k) for k in range(4))
# Indexed by the unreduced org sum (four terms < 11, so < 44): the GB 11714 check
# character and its contribution at position 17 to the GB 32100 sum.
_ORG_TAIL: Final = tuple(
    (ch, _VALUE[ch] * _USCC_WEIGHTS[16] % 31) for ch in (_ORG_CHECK[s % 11] for s in range(44))
)
# Indexed by the unreduced GB 32100 sum (six terms < 31, so < 186).
_USCC_TAIL: Final = tuple(_USCC_CHECK[s % 31] for s in range(186))
_prefixes: dict[tuple[str, str], tuple[str, int]] = {}


def _prefix(registration: str, admin_code: str) -> tuple[str, int]:
    """Return chars 1-8 and their GB 32100 weighted sum mod 31, validating once."""
    key = (registration, admin_code)
    cached = _prefixes.get(key)
    if cached is not None:
        return cached
    if len(registration) != 2:
        raise ValueError(f"registration must be 2 characters, got {registration!r}")
    problem = _registration_problem(registration)
    if problem is not None:
        raise ValueError(f"registration {registration!r}: {problem}")
    problem = _admin_code_problem(admin_code)
    if problem is not None:
        raise ValueError(problem)
    text = registration + admin_code
    total = sum(_VALUE[c] * w for c, w in zip(text, _USCC_WEIGHTS, strict=False)) % 31
    _prefixes[key] = (text, total)
    return text, total


def make_uscc(admin_code: str, serial: int, *, registration: str = "91") -> Uscc:
    """Build the valid USCC numbered ``serial`` under one registration and admin code.

    The organization-code body (chars 9-16) is ``serial`` in base 31 over
    :data:`USCC_ALPHABET`, most significant digit first, so serial 0 gives body
    ``"00000000"`` and the mapping is a bijection from ``range(SERIAL_LIMIT)``;
    both check characters are then computed. Deterministic; about a microsecond.

    Args:
        admin_code: 6-digit administrative division, e.g. ``"320500"`` (Suzhou).
        serial: ``0 <= serial < SERIAL_LIMIT`` (``31**8``).
        registration: chars 1-2, a pair from :data:`REGISTRATION_TYPES`.

    Returns:
        A code that :func:`parse_uscc` accepts.

    Raises:
        ValueError: ``serial`` is out of range, or ``admin_code`` or
            ``registration`` would not parse; the message names the value.
    """
    if not 0 <= serial < SERIAL_LIMIT:
        raise ValueError(f"serial must be in [0, 31**8 = {SERIAL_LIMIT}), got {serial}")
    text, total = _prefix(registration, admin_code)
    high, low = divmod(serial, 923521)  # 31**4
    c0, o0, u0 = _PAIR0[high // _PAIR_BASE]
    c1, o1, u1 = _PAIR1[high % _PAIR_BASE]
    c2, o2, u2 = _PAIR2[low // _PAIR_BASE]
    c3, o3, u3 = _PAIR3[low % _PAIR_BASE]
    org_char, u_org = _ORG_TAIL[o0 + o1 + o2 + o3]
    check = _USCC_TAIL[total + u0 + u1 + u2 + u3 + u_org]
    return _trusted(text + c0 + c1 + c2 + c3 + org_char + check)


def _permutation(seed: int | str | bytes) -> tuple[int, int]:
    """Derive ``(a, b)`` with ``gcd(a, 31) == 1`` for ``i -> (a*i + b) % SERIAL_LIMIT``."""
    material = seed if isinstance(seed, bytes) else str(seed).encode()
    digest = hashlib.sha256(b"yrd-credit-chain/uscc/" + material).digest()
    a = int.from_bytes(digest[:16], "big") % SERIAL_LIMIT
    if a % 31 == 0:  # SERIAL_LIMIT is a power of 31: a is a unit iff 31 does not divide it
        a += 1
    b = int.from_bytes(digest[16:], "big") % SERIAL_LIMIT
    return a, b


def generate_usccs(
    admin_code: str, count: int, *, seed: int | str | bytes, registration: str = "91"
) -> Iterator[Uscc]:
    """Yield ``count`` distinct valid codes for one admin code, in a seeded order.

    Serial ``i`` of the output is ``(a*i + b) mod 31**8`` with ``a`` a unit mod
    ``31**8``, so the serials, and hence the codes, never repeat. ``a`` and ``b``
    come from SHA-256 of the seed, so the sequence is the same on every platform
    and Python version. The permutation is for spreading codes, not for secrecy.

    Args:
        admin_code: 6-digit administrative division, e.g. ``"330100"`` (Hangzhou).
        count: how many codes, ``0 <= count <= SERIAL_LIMIT``.
        seed: selects the permutation.
        registration: chars 1-2, as for :func:`make_uscc`.

    Yields:
        Valid, pairwise distinct codes.

    Raises:
        ValueError: ``count``, ``admin_code`` or ``registration`` is out of range;
            raised on the call, before any code is yielded.
    """
    if not 0 <= count <= SERIAL_LIMIT:
        raise ValueError(f"count must be in [0, 31**8 = {SERIAL_LIMIT}], got {count}")
    _prefix(registration, admin_code)
    a, b = _permutation(seed)
    return (
        make_uscc(admin_code, (a * i + b) % SERIAL_LIMIT, registration=registration)
        for i in range(count)
    )
