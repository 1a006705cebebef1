"""Objections as a report shows them: signed by the enterprise, proven, marked on the record.

No I/O: used by the holder to build the dispute marks of its report section, by the home
node to check them, and by offline bundle verification (``node.bundle``).

A holder section of a report bundle may carry ``objections`` (the holder's objection and
objection-outcome entries about the enterprise, each with its inclusion proof against the
section's signed checkpoint) and ``disputes`` (one mark per objection: record, status,
filing time and deadline). Verification recomputes the marks from the proven entries and
refuses a bundle whose marks differ: a record shown as disputed is backed by a proven
objection carrying the enterprise's consent signature, and a proven objection is shown.

Status of an objection: ``open`` (the record is disputed), or its outcome: ``corrected``
(a correction supersedes the record), ``upheld`` (the flag is removed, the record stands),
``unverifiable`` (the record stands with the objection and the verification on file).

Invariants: the consent on an objection is the signature of the registry serving the
enterprise's administrative code over :func:`ledger.objection_message`, bound to the
holder and the record.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import (
    BlockHeader,
    InvalidUsccError,
    LedgerError,
    ObjectionEntry,
    ObjectionOutcomeEntry,
    leaf_hash,
    objection_message,
    parse_entry,
    parse_uscc,
    verify_inclusion,
)
from node.consortium import Manifest
from node.errors import BundleError, NotByEnterpriseError

__all__ = [
    "OBJECTION_DAYS",
    "dispute_marks",
    "sign_objection",
    "verify_objection_consent",
    "verify_objection_items",
]

OBJECTION_DAYS = 20  # 征信业管理条例: verify and reply within 20 days of the objection


def sign_objection(
    registry_key: Ed25519PrivateKey,
    objection_id: str,
    uscc: str,
    holder_node: str,
    record_id: str,
    reason: str,
) -> str:
    """The base64 signature a registry gives an enterprise's objection."""
    message = objection_message(objection_id, uscc, holder_node, record_id, reason)
    return base64.b64encode(registry_key.sign(message)).decode()


def verify_objection_consent(
    manifest: Manifest,
    *,
    objection_id: str,
    uscc: str,
    holder_node: str,
    record_id: str,
    reason: str,
    consent: str,
) -> str:
    """Check that the enterprise itself signed this objection; returns the signer's key id.

    Raises:
        NotByEnterpriseError: no signature, no registry for the area, or a signature
            that is not the enterprise's registry's over exactly this objection.
    """
    what = f"objection {objection_id}"
    if not consent:
        raise NotByEnterpriseError(f"{what} carries no signature of enterprise {uscc}")
    try:
        admin = parse_uscc(uscc).admin_code
    except InvalidUsccError as exc:
        raise NotByEnterpriseError(f"{what}: {exc}") from exc
    registry = manifest.registry_for_admin_code(admin)
    if registry is None:
        raise NotByEnterpriseError(
            f"no registry in the manifest signs for enterprises of area {admin}, so {what} "
            "cannot carry the enterprise's signature"
        )
    message = objection_message(objection_id, uscc, holder_node, record_id, reason)
    try:
        registry.key().verify(base64.b64decode(consent, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise NotByEnterpriseError(
            f"{what} is not signed by enterprise {uscc} (its registry {registry.key_id}): only "
            "the enterprise may object to its records"
        ) from exc
    return registry.key_id


def dispute_marks(
    entries: Sequence[ObjectionEntry | ObjectionOutcomeEntry],
) -> list[dict[str, Any]]:
    """One mark per objection, in ledger order: record, status, times, outcome.

    Raises:
        ValueError: an outcome without its objection among ``entries``, or two outcomes.
    """
    objections = [e for e in entries if isinstance(e, ObjectionEntry)]
    outcomes: dict[str, ObjectionOutcomeEntry] = {}
    for e in entries:
        if isinstance(e, ObjectionOutcomeEntry):
            if e.objection_id in outcomes:
                raise ValueError(f"objection {e.objection_id} has two outcomes")
            outcomes[e.objection_id] = e
    known = {o.objection_id for o in objections}
    stray = sorted(set(outcomes) - known)
    if stray:
        raise ValueError(f"outcomes without their objection: {', '.join(stray)}")
    marks = []
    for o in objections:
        mark: dict[str, Any] = {
            "objection_id": o.objection_id,
            "record_id": o.record_id,
            "status": "open",
            "filed_at": o.filed_at,
            "due_at": o.due_at,
        }
        done = outcomes.get(o.objection_id)
        if done is not None:
            mark["status"] = done.outcome
            mark["decided_at"] = done.decided_at
            mark["late"] = done.decided_at > o.due_at
            if done.correction_id:
                mark["correction_id"] = done.correction_id
        marks.append(mark)
    return marks


def verify_objection_items(
    manifest: Manifest,
    section: dict[str, Any],
    uscc: str,
    header: BlockHeader,
    algorithm: str,
) -> list[dict[str, Any]]:
    """Check a holder section's objections and its dispute marks; returns the marks.

    A section without ``objections`` (bundles made before objections existed) has none.

    Raises:
        BundleError: an item does not decode, is not about ``uscc`` or this holder, is not
            included in the section's checkpoint, lacks the enterprise's signature, or the
            marks differ from the ones the proven entries give.
    """
    node_id = str(section["node_id"])
    items = section.get("objections") or []
    entries: list[ObjectionEntry | ObjectionOutcomeEntry] = []
    for i, item in enumerate(items):
        what = f"objection item {i} from {node_id}"
        try:
            entry_b = base64.b64decode(str(item["entry"]), validate=True)
            entry = parse_entry(entry_b)
            index = int(item["index"])
            proof = [base64.b64decode(str(p), validate=True) for p in item["proof"]]
        except (KeyError, TypeError, ValueError, LedgerError) as exc:
            raise BundleError("malformed", f"{what}: {exc}") from exc
        if not isinstance(entry, ObjectionEntry | ObjectionOutcomeEntry):
            raise BundleError("wrong-entry", f"{what} is a {entry.kind} entry, not an objection")
        if entry.uscc != uscc:
            raise BundleError("wrong-entry", f"{what} is about {entry.uscc}, not {uscc}")
        try:
            verify_inclusion(
                leaf_hash(entry_b, algorithm), index, header.size, proof, header.root, algorithm
            )
        except LedgerError as exc:
            raise BundleError("bad-proof", f"{what}: {exc}") from exc
        if isinstance(entry, ObjectionEntry):
            if entry.holder_node != node_id:
                raise BundleError(
                    "wrong-entry", f"{what} is an objection to {entry.holder_node}, not {node_id}"
                )
            try:
                verify_objection_consent(
                    manifest,
                    objection_id=entry.objection_id,
                    uscc=entry.uscc,
                    holder_node=entry.holder_node,
                    record_id=entry.record_id,
                    reason=entry.reason,
                    consent=entry.consent,
                )
            except NotByEnterpriseError as exc:
                raise BundleError("bad-consent", f"{what}: {exc}") from exc
        entries.append(entry)
    try:
        marks = dispute_marks(entries)
    except ValueError as exc:
        raise BundleError("inconsistent", f"{node_id}'s objections: {exc}") from exc
    shown = section.get("disputes") or []
    if shown != marks:
        raise BundleError(
            "inconsistent",
            f"{node_id}'s dispute marks do not match its proven objection entries "
            f"({len(shown)} marks shown, {len(marks)} proven)",
        )
    return marks
