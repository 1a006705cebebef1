"""Typed ledger entries and their canonical form.

Each entry kind of DESIGN.md §3 is a frozen dataclass with ``to_dict`` /
``from_dict``; :func:`entry_bytes` and :func:`parse_entry` are the only ways an
entry becomes bytes or comes back from them (through :mod:`ledger.codec`).

Invariants:
    * ``to_dict`` of every kind carries ``"kind"`` and ``"v"`` (format version).
    * Field checks happen in ``__post_init__``: a constructed entry is valid.
    * A ``record`` or ``correction`` carries a salted commitment
      H(salt ‖ canonical_bytes(body)); the body and salt stay off the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ledger.codec import MAX_SAFE_INTEGER, JsonValue, _encode, canonical_bytes, decode_canonical
from ledger.errors import DecodeError, InvalidRecordError
from ledger.items import ITEMS, LEGACY_RECORD_TYPES
from ledger.merkle import hasher

__all__ = [
    "OBJECTION_OUTCOMES",
    "PURPOSES",
    "RECORD_TYPES",
    "AlarmEntry",
    "AuthorizationEntry",
    "CorrectionEntry",
    "Entry",
    "InstitutionEntry",
    "ObjectionEntry",
    "ObjectionOutcomeEntry",
    "ReceiptEntry",
    "RecordEntry",
    "RevocationEntry",
    "check_time",
    "commitment",
    "consent_message",
    "current_view",
    "entry_bytes",
    "entry_from_dict",
    "entry_subject",
    "entry_to_dict",
    "objection_message",
    "parse_entry",
]

FORMAT_VERSION = 1

# The report's 29 items (ledger.items): the eight first-format types keep their
# names and come first, so error messages and old ledgers read as before.
RECORD_TYPES = LEGACY_RECORD_TYPES + tuple(
    i.record_type for i in ITEMS if i.record_type not in LEGACY_RECORD_TYPES
)

PURPOSES = ("pre_loan", "post_loan", "credit_line", "guarantee", "supervision")

CORRECTION_OUTCOMES = ("amended", "withdrawn", "resolved")

# fullmatch everywhere: '$' would accept a trailing newline; [0-9], not \d,
# which matches non-ASCII digits.
_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def check_time(name: str, value: str) -> None:
    """Raise unless ``value`` is an RFC 3339 UTC time to the second ending in Z."""
    if type(value) is not str or not _TIME.fullmatch(value):
        raise InvalidRecordError(
            f"{name} must be an RFC 3339 UTC time like 2021-10-31T08:00:00Z, got {value!r}"
        )
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    # strptime would do, but costs a third of an append; the shape is already right.
    if day > 28 and day > _days_in_month(year, month):
        raise InvalidRecordError(f"{name} is not a calendar date and time: {value!r}")


def _check_id(name: str, value: str) -> None:
    if type(value) is not str or not _ID.fullmatch(value):
        raise InvalidRecordError(
            f"{name} must be 1-128 characters of [A-Za-z0-9._:-], got {value!r}"
        )


def _check_hex(name: str, value: str) -> None:
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise InvalidRecordError(f"{name} must be 64 lower-case hex digits, got {value!r}")


def _check_uscc_shape(value: str) -> None:
    # Full GB 32100 validation lives in ledger.uscc and runs at the node's
    # edge; entries re-check only the shape so stored data stays decodable.
    if type(value) is not str or not _USCC_SHAPE.fullmatch(value):
        raise InvalidRecordError(
            f"uscc must be 18 characters of the GB 32100 alphabet, got {value!r}"
        )


def _check_text(name: str, value: str, limit: int = 512) -> None:
    if type(value) is not str or not 0 < len(value) <= limit:
        raise InvalidRecordError(
            f"{name} must be a non-empty string of at most {limit} characters, got {value!r}"
        )


def commitment(salt: bytes, body: JsonValue, algorithm: str = "sha256") -> str:
    """Hex commitment H(salt ‖ canonical_bytes(body))."""
    if len(salt) < 16:
        raise InvalidRecordError(f"salt must be at least 16 bytes, got {len(salt)}")
    return hasher(algorithm).digest(salt + canonical_bytes(body)).hex()


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """Metadata and commitment of one credit record held by this node."""

    kind: ClassVar[str] = "record"
    uscc: str
    record_type: str
    record_id: str
    source: str
    observed_at: str
    commitment: str

    def __post_init__(self) -> None:
        _check_uscc_shape(self.uscc)
        if self.record_type not in RECORD_TYPES:
            raise InvalidRecordError(
                f"record_type must be one of {RECORD_TYPES}, got {self.record_type!r}"
            )
        _check_id("record_id", self.record_id)
        _check_id("source", self.source)
        check_time("observed_at", self.observed_at)
        _check_hex("commitment", self.commitment)


@dataclass(frozen=True, slots=True)
class CorrectionEntry:
    """Outcome of a dispute: supersedes an earlier record, which stays in history."""

    kind: ClassVar[str] = "correction"
    uscc: str
    record_id: str
    supersedes: str
    outcome: str
    source: str
    observed_at: str
    commitment: str

    def __post_init__(self) -> None:
        _check_uscc_shape(self.uscc)
        _check_id("record_id", self.record_id)
        _check_id("supersedes", self.supersedes)
        if self.supersedes == self.record_id:
            raise InvalidRecordError(f"a correction cannot supersede itself ({self.record_id!r})")
        if self.outcome not in CORRECTION_OUTCOMES:
            raise InvalidRecordError(
                f"outcome must be one of {CORRECTION_OUTCOMES}, got {self.outcome!r}"
            )
        _check_id("source", self.source)
        check_time("observed_at", self.observed_at)
        _check_hex("commitment", self.commitment)


@dataclass(frozen=True, slots=True)
class InstitutionEntry:
    """A query institution registered at this node, with its Ed25519 key."""

    kind: ClassVar[str] = "institution"
    institution_id: str
    name: str
    public_key: str  # base64 of the 32-byte Ed25519 public key
    purposes: tuple[str, ...]
    registered_at: str

    def __post_init__(self) -> None:
        _check_id("institution_id", self.institution_id)
        _check_text("name", self.name, 200)
        _check_text("public_key", self.public_key, 64)
        _check_purposes(self.purposes)
        check_time("registered_at", self.registered_at)


def _check_purposes(purposes: tuple[str, ...]) -> None:
    if type(purposes) is not tuple:
        raise InvalidRecordError(
            f"purposes must be a tuple of strings, got {type(purposes).__name__}"
        )
    if (
        not purposes
        or any(p not in PURPOSES for p in purposes)
        or len(set(purposes)) != len(purposes)
    ):
        raise InvalidRecordError(
            f"purposes must be distinct values from {PURPOSES}, got {list(purposes)!r}"
        )


@dataclass(frozen=True, slots=True)
class AuthorizationEntry:
    """An enterprise's consent for an institution, purposes and validity window."""

    kind: ClassVar[str] = "authorization"
    authorization_id: str
    uscc: str
    institution_id: str
    purposes: tuple[str, ...]
    not_before: str
    not_after: str
    document_digest: str
    # The enterprise's consent: base64 Ed25519 signature over consent_message(self)
    # by the registry of the enterprise's city (the manifest names its key). Entries
    # written before consents were signed have none, and authorize nothing.
    consent: str = ""

    def __post_init__(self) -> None:
        _check_id("authorization_id", self.authorization_id)
        _check_uscc_shape(self.uscc)
        _check_id("institution_id", self.institution_id)
        _check_purposes(self.purposes)
        check_time("not_before", self.not_before)
        check_time("not_after", self.not_after)
        if self.not_after <= self.not_before:
            raise InvalidRecordError(
                f"not_after ({self.not_after}) must be later than not_before ({self.not_before})"
            )
        _check_hex("document_digest", self.document_digest)
        if type(self.consent) is not str or len(self.consent) > 128:
            raise InvalidRecordError("consent must be a base64 signature of at most 128 characters")


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    """Withdraws an authorization from a moment on."""

    kind: ClassVar[str] = "revocation"
    authorization_id: str
    uscc: str
    revoked_at: str
    reason: str

    def __post_init__(self) -> None:
        _check_id("authorization_id", self.authorization_id)
        _check_uscc_shape(self.uscc)
        check_time("revoked_at", self.revoked_at)
        _check_text("reason", self.reason)


@dataclass(frozen=True, slots=True)
class ReceiptEntry:
    """One query about an enterprise, granted or denied, as seen by one end."""

    kind: ClassVar[str] = "receipt"
    query_id: str
    uscc: str
    institution_id: str
    home_node: str
    holder_node: str
    role: str  # "home" or "holder"
    purpose: str
    authorization_id: str
    outcome: str  # "granted" or "denied"
    reason: str
    records: int
    at: str

    def __post_init__(self) -> None:
        _check_id("query_id", self.query_id)
        _check_uscc_shape(self.uscc)
        _check_id("institution_id", self.institution_id)
        _check_id("home_node", self.home_node)
        _check_id("holder_node", self.holder_node)
        if self.role not in ("home", "holder"):
            raise InvalidRecordError(f"role must be 'home' or 'holder', got {self.role!r}")
        _check_text("purpose", self.purpose, 64)
        _check_text("authorization_id", self.authorization_id, 128)
        if self.outcome not in ("granted", "denied"):
            raise InvalidRecordError(f"outcome must be 'granted' or 'denied', got {self.outcome!r}")
        _check_text("reason", self.reason)
        if type(self.records) is not int or not 0 <= self.records <= MAX_SAFE_INTEGER:
            raise InvalidRecordError(
                f"records must be a non-negative integer, got {self.records!r}"
            )
        check_time("at", self.at)


@dataclass(frozen=True, slots=True)
class AlarmEntry:
    """Evidence that a peer misbehaved (for example, equivocation)."""

    kind: ClassVar[str] = "alarm"
    peer: str
    fault: str
    detail: str
    evidence: tuple[str, ...]  # signed notes, base64 proof hashes, etc.
    at: str

    def __post_init__(self) -> None:
        _check_id("peer", self.peer)
        _check_id("fault", self.fault)
        _check_text("detail", self.detail, 2000)
        if type(self.evidence) is not tuple or any(type(e) is not str for e in self.evidence):
            raise InvalidRecordError(
                f"evidence must be a list of strings, got {type(self.evidence).__name__}"
            )
        check_time("at", self.at)


# --- objections (征信业管理条例): flag, verify within the deadline, reply in writing ---
OBJECTION_OUTCOMES = ("corrected", "upheld", "unverifiable")


@dataclass(frozen=True, slots=True)
class ObjectionEntry:
    """An enterprise's objection to one record held here: from now on the record is disputed.

    ``consent`` is the enterprise's signature (through its city's registry, as for
    authorizations) over :func:`objection_message`; ``due_at`` is the verification
    deadline on the network's clock.
    """

    kind: ClassVar[str] = "objection"
    objection_id: str
    uscc: str
    record_id: str
    holder_node: str
    home_node: str
    reason: str
    filed_at: str
    due_at: str
    consent: str

    def __post_init__(self) -> None:
        _check_id("objection_id", self.objection_id)
        _check_uscc_shape(self.uscc)
        _check_id("record_id", self.record_id)
        _check_id("holder_node", self.holder_node)
        _check_id("home_node", self.home_node)
        _check_text("reason", self.reason)
        check_time("filed_at", self.filed_at)
        check_time("due_at", self.due_at)
        if self.due_at <= self.filed_at:
            raise InvalidRecordError(
                f"due_at ({self.due_at}) must be later than filed_at ({self.filed_at})"
            )
        _check_text("consent", self.consent, 128)


@dataclass(frozen=True, slots=True)
class ObjectionOutcomeEntry:
    """The holder's written reply to an objection; closes it.

    ``corrected``: the correction ``correction_id`` supersedes the record; ``upheld``:
    the record stands and the flag is removed; ``unverifiable``: the record stands with
    the objection and this verification on file.
    """

    kind: ClassVar[str] = "objection_outcome"
    objection_id: str
    uscc: str
    record_id: str
    outcome: str
    verification: str
    decided_at: str
    correction_id: str = ""

    def __post_init__(self) -> None:
        _check_id("objection_id", self.objection_id)
        _check_uscc_shape(self.uscc)
        _check_id("record_id", self.record_id)
        if self.outcome not in OBJECTION_OUTCOMES:
            raise InvalidRecordError(
                f"outcome must be one of {OBJECTION_OUTCOMES}, got {self.outcome!r}"
            )
        _check_text("verification", self.verification, 2000)
        check_time("decided_at", self.decided_at)
        if self.outcome == "corrected":
            _check_id("correction_id", self.correction_id)
        elif self.correction_id != "":
            raise InvalidRecordError(
                f"only a corrected outcome names a correction, not {self.outcome!r}"
            )


Entry = (
    RecordEntry
    | CorrectionEntry
    | InstitutionEntry
    | AuthorizationEntry
    | RevocationEntry
    | ReceiptEntry
    | AlarmEntry
    | ObjectionEntry
    | ObjectionOutcomeEntry
)

_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        RecordEntry,
        CorrectionEntry,
        InstitutionEntry,
        AuthorizationEntry,
        RevocationEntry,
        ReceiptEntry,
        AlarmEntry,
        ObjectionEntry,
        ObjectionOutcomeEntry,
    )
}
_FIELDS: dict[str, tuple[str, ...]] = {
    k: tuple(f.name for f in fields(c)) for k, c in _KINDS.items()
}


# Fields added after format version 1 was fixed: absent from an entry's
# dictionary when empty, so entries written before them keep their bytes.
_OPTIONAL: dict[str, dict[str, JsonValue]] = {
    "authorization": {"consent": ""},
    "objection_outcome": {"correction_id": ""},
}

CONSENT_CONTEXT = "yrd-credit-chain/consent/v1"


def consent_message(auth: AuthorizationEntry) -> bytes:
    """What the enterprise (through its city's registry) signs to consent to ``auth``.

    Canonical JSON of every field of the authorization but the signature itself,
    under a context string so the signature means nothing anywhere else.
    """
    return canonical_bytes(
        {
            "context": CONSENT_CONTEXT,
            "authorization_id": auth.authorization_id,
            "uscc": auth.uscc,
            "institution_id": auth.institution_id,
            "purposes": list(auth.purposes),
            "not_before": auth.not_before,
            "not_after": auth.not_after,
            "document_digest": auth.document_digest,
        }
    )


OBJECTION_CONTEXT = "yrd-credit-chain/objection/v1"


def objection_message(
    objection_id: str, uscc: str, holder_node: str, record_id: str, reason: str
) -> bytes:
    """What the enterprise (through its city's registry) signs to object to one record.

    Binds the holder and the record, under its own context string: a consent to a
    query means nothing as an objection, and an objection nothing at another holder.
    """
    return canonical_bytes(
        {
            "context": OBJECTION_CONTEXT,
            "objection_id": objection_id,
            "uscc": uscc,
            "holder_node": holder_node,
            "record_id": record_id,
            "reason": reason,
        }
    )


def entry_to_dict(entry: Entry) -> dict[str, JsonValue]:
    """The dictionary form of an entry (tuples become lists)."""
    d: dict[str, JsonValue] = {"kind": entry.kind, "v": FORMAT_VERSION}
    optional = _OPTIONAL.get(entry.kind, {})
    for name in _FIELDS[entry.kind]:
        value = getattr(entry, name)
        if name in optional and value == optional[name]:
            continue
        d[name] = list(value) if type(value) is tuple else value
    return d


def entry_bytes(entry: Entry) -> bytes:
    """Canonical bytes of an entry: what the Merkle leaf hashes.

    Entries check every field's type and range on construction, so the
    codec's domain walk is skipped here (it is the hot path of appends).
    """
    return _encode(entry_to_dict(entry))


def entry_from_dict(d: Mapping[str, JsonValue]) -> Entry:
    """Build a typed entry from its dictionary form.

    Raises:
        InvalidRecordError: unknown kind or version, missing/extra fields, bad values.
    """
    kind = d.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidRecordError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    if d.get("v") != FORMAT_VERSION:
        raise InvalidRecordError(
            f"entry format version must be {FORMAT_VERSION}, got {d.get('v')!r}"
        )
    names = _FIELDS[cls.kind]
    optional = _OPTIONAL.get(cls.kind, {})
    if any(d.get(n) == v for n, v in optional.items()):
        # Only the absent form is canonical: an explicit empty value would give one
        # entry two encodings (two leaf hashes).
        raise InvalidRecordError(f"{cls.kind} entry: an empty optional field must be absent")
    extra = set(d) - set(names) - {"kind", "v"}
    missing = [n for n in names if n not in d and n not in optional]
    if extra or missing:
        raise InvalidRecordError(
            f"{cls.kind} entry: missing fields {missing}, unexpected fields {sorted(extra)}"
        )
    args = {n: tuple(d[n]) if isinstance(d[n], list) else d[n] for n in names if n in d}
    try:
        entry: Entry = cls(**args)
    except TypeError as exc:
        raise InvalidRecordError(f"{cls.kind} entry: {exc}") from exc
    return entry


def parse_entry(data: bytes) -> Entry:
    """Decode canonical entry bytes into a typed entry.

    Raises:
        DecodeError: the bytes are not canonical JSON or not a valid entry.
    """
    value = decode_canonical(data, "entry")
    if not isinstance(value, dict):
        raise DecodeError("entry: not a JSON object")
    try:
        return entry_from_dict(value)
    except InvalidRecordError as exc:
        raise DecodeError(f"entry: {exc}") from exc


def entry_subject(entry: Entry) -> str | None:
    """The key an entry is indexed under: the enterprise's USCC, or the institution id."""
    t = type(entry)
    if t is InstitutionEntry:
        return entry.institution_id  # type: ignore[union-attr]
    if t is AlarmEntry:
        return entry.peer  # type: ignore[union-attr]
    return entry.uscc  # type: ignore[union-attr]


def current_view(
    entries: list[RecordEntry | CorrectionEntry],
) -> list[RecordEntry | CorrectionEntry]:
    """Resolve corrections: the records and corrections not superseded by a later one.

    A correction supersedes the record (or earlier correction) whose
    ``record_id`` it names; a ``withdrawn`` correction removes the record from
    the current view altogether. The history (the input) keeps everything.
    """
    superseded = {e.supersedes for e in entries if isinstance(e, CorrectionEntry)}
    return [
        e
        for e in entries
        if e.record_id not in superseded
        and not (isinstance(e, CorrectionEntry) and e.outcome == "withdrawn")
    ]
