"""ledger: one node's verifiable, append-only ledger of enterprise credit records.

A pure library (no network, no web framework, no environment variables):
canonical encoding, the RFC 6962 Merkle tree and its proofs, C2SP signed-note
checkpoints, SQLite storage that refuses updates and deletes, full
verification, entry models and USCC validation. ``node/`` imports only the
names listed in ``__all__``.
"""

from __future__ import annotations

from ledger.codec import canonical_bytes, decode_canonical
from ledger.entries import (
    PURPOSES,
    RECORD_TYPES,
    AlarmEntry,
    AuthorizationEntry,
    CorrectionEntry,
    Entry,
    InstitutionEntry,
    ReceiptEntry,
    RecordEntry,
    RevocationEntry,
    check_time,
    commitment,
    current_view,
    entry_bytes,
    entry_from_dict,
    entry_to_dict,
    parse_entry,
)
from ledger.errors import (
    AppendOnlyError,
    CommitmentError,
    DecodeError,
    InconsistentLogError,
    InvalidRecordError,
    InvalidUsccError,
    LedgerError,
    NoteFormatError,
    ProofError,
    SignatureError,
    StorageFullError,
    StoreError,
    VerificationError,
)
from ledger.fsck import Fault, VerifyReport, verify_ledger
from ledger.log import Block, BlockHeader, CorrectionDraft, Item, Ledger, RecordDraft, utc_now
from ledger.merkle import (
    CompactRange,
    consistency_proof,
    hasher,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from ledger.note import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    add_signatures,
    open_note,
    sign_note,
)
from ledger.store import rollback_if_active, store_error
from ledger.uscc import Uscc, is_valid_uscc, make_uscc, parse_uscc

__all__ = [
    "PURPOSES",
    "RECORD_TYPES",
    "AlarmEntry",
    "AppendOnlyError",
    "AuthorizationEntry",
    "Block",
    "BlockHeader",
    "Checkpoint",
    "CommitmentError",
    "CompactRange",
    "CorrectionDraft",
    "CorrectionEntry",
    "CosignatureSigner",
    "CosignatureVerifier",
    "DecodeError",
    "Entry",
    "Fault",
    "InconsistentLogError",
    "InstitutionEntry",
    "InvalidRecordError",
    "InvalidUsccError",
    "Item",
    "Ledger",
    "LedgerError",
    "NoteFormatError",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "ReceiptEntry",
    "RecordDraft",
    "RecordEntry",
    "RevocationEntry",
    "SignatureError",
    "StorageFullError",
    "StoreError",
    "Uscc",
    "VerificationError",
    "VerifyReport",
    "add_signatures",
    "canonical_bytes",
    "check_time",
    "commitment",
    "consistency_proof",
    "current_view",
    "decode_canonical",
    "entry_bytes",
    "entry_from_dict",
    "entry_to_dict",
    "hasher",
    "inclusion_proof",
    "is_valid_uscc",
    "leaf_hash",
    "make_uscc",
    "open_note",
    "parse_entry",
    "parse_uscc",
    "rollback_if_active",
    "root",
    "sign_note",
    "store_error",
    "utc_now",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
]
