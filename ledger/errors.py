"""Errors raised by the ledger library.

Every error derives from :class:`LedgerError` and carries the evidence that
made the check fail as attributes, so callers can report it without parsing
messages::

    LedgerError
    ├── DecodeError                 bytes that are not what they claim to be
    │   ├── NoteFormatError         a signed note breaks a rule of the C2SP format (.rule)
    │   └── JsonDepthError          JSON nested deeper than the limit (.max_depth, .offset)
    ├── InvalidRecordError          a value outside the model's domain
    │   └── InvalidUsccError        a USCC that breaks a GB 32100 / GB 11714 rule (.rule)
    ├── SignatureError              a signature that does not verify (.key_name)
    ├── ProofError                  an inclusion or consistency proof that does not verify
    │   └── InconsistentLogError    two tree heads that cannot both be honest
    ├── StoreError                  the database refused or failed (.cause)
    │   ├── AppendOnlyError         an attempt to change or remove ledger rows
    │   └── StorageFullError        the file system is full (.path); nothing was written
    │   └── CorruptLedgerError      a ledger file fails its open-time check (.path, .reason)
    ├── CommitmentError             a body that does not match its record's commitment
    └── VerificationError           `verify` found a fault (.fault: first bad item)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppendOnlyError",
    "CommitmentError",
    "CorruptLedgerError",
    "DecodeError",
    "InconsistentLogError",
    "InvalidRecordError",
    "InvalidUsccError",
    "JsonDepthError",
    "LedgerError",
    "NoteFormatError",
    "ProofError",
    "SignatureError",
    "StorageFullError",
    "StoreError",
    "VerificationError",
]


class LedgerError(Exception):
    """Root of every error the ledger library raises."""


class DecodeError(LedgerError):
    """Bytes could not be decoded as the structure they claim to be."""


class NoteFormatError(DecodeError):
    """A signed note or checkpoint breaks a rule of its format.

    Attributes:
        rule: short name of the broken rule, e.g. ``"final-newline"``.
    """

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{detail} (rule: {rule})")
        self.rule = rule
        self.detail = detail


class JsonDepthError(DecodeError, ValueError):
    """JSON whose arrays and objects nest deeper than the limit, refused before parsing.

    A ``ValueError`` too, like the errors of ``json.loads``, so code that reads
    JSON and handles ``ValueError`` handles this the same way.

    Attributes:
        what: what the JSON was (``"request body"``, a file name).
        max_depth: the limit.
        offset: where in the text the limit was passed (a byte or character index).
    """

    def __init__(self, what: str, max_depth: int, offset: int) -> None:
        super().__init__(
            f"{what} nests arrays and objects more than {max_depth} levels deep "
            f"(passed at offset {offset})"
        )
        self.what = what
        self.max_depth = max_depth
        self.offset = offset


class InvalidRecordError(LedgerError, ValueError):
    """A value is outside the domain of the model it was given to."""


class InvalidUsccError(InvalidRecordError):
    """A unified social credit code breaks a rule of GB 32100-2015 or GB 11714.

    Attributes:
        code: the offending code as given.
        rule: short name of the broken rule, e.g. ``"check-character"``.
    """

    def __init__(self, code: str, rule: str, detail: str) -> None:
        super().__init__(f"invalid USCC {code!r}: {detail} (rule: {rule})")
        self.code = code
        self.rule = rule
        self.detail = detail


class SignatureError(LedgerError):
    """A signature is missing, malformed or does not verify.

    Attributes:
        key_name: the signer the signature was checked against, if known.
    """

    def __init__(self, message: str, key_name: str | None = None) -> None:
        super().__init__(message)
        self.key_name = key_name


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify."""


class InconsistentLogError(ProofError):
    """Two tree heads of one log are not consistent: evidence of a fork.

    Attributes:
        old_head / new_head: the two heads (whatever object the caller had).
        proof: the consistency proof that failed, as a list of hashes.
    """

    def __init__(self, old_head: Any, new_head: Any, proof: list[bytes], detail: str = "") -> None:
        super().__init__(detail or "tree heads are not consistent")
        self.old_head = old_head
        self.new_head = new_head
        self.proof = proof


class StoreError(LedgerError):
    """The SQLite store failed or refused an operation."""


class AppendOnlyError(StoreError):
    """An UPDATE or DELETE on a ledger table was refused."""


class StorageFullError(StoreError):
    """The file system holding a database is full (SQLite's ``SQLITE_FULL``).

    The transaction that hit it was rolled back whole: nothing of it is
    stored, everything committed before it still is, and the same write
    succeeds once space is freed.

    Attributes:
        path: the database file that could not grow.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class CorruptLedgerError(StoreError):
    """A ledger file is damaged: it fails the check made before anything builds on it.

    Attributes:
        path: the ledger file.
        reason: what was found wrong (SQLite's ``quick_check`` report, a block
            signature or root that does not match, entries missing at the tail).
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"ledger {path} is damaged: {reason}; refusing to use it")
        self.path = str(path)
        self.reason = reason


class CommitmentError(LedgerError):
    """A record body and salt do not match the commitment on the ledger.

    Attributes:
        index: the ledger index of the record entry.
    """

    def __init__(self, index: int, detail: str = "") -> None:
        super().__init__(detail or f"body of entry {index} does not match its commitment")
        self.index = index


class VerificationError(LedgerError):
    """Full verification found a fault.

    Attributes:
        fault: the first fault found (a :class:`ledger.fsck.Fault`).
    """

    def __init__(self, fault: Any) -> None:
        super().__init__(str(fault))
        self.fault = fault
