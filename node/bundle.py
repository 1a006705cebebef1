"""Report bundles: self-contained, verifiable offline with the manifest alone.

A bundle is ``{"report": {...}, "signature": b64}``; the home node signs
``canonical_bytes(report)``. :func:`verify_bundle` checks, without any
network: the home node's signature; for the authorization, the home node's
signed checkpoint, the entry's inclusion proof and the enterprise's consent
signature on it (:mod:`node.consent`); for every holder, its
signed checkpoint, every record's inclusion proof, that the body and salt
match the record's commitment, that each record is about the queried
enterprise, and that the section's counts agree with the holder's signed
receipt (a holder over its ``max_records_per_holder`` says so: ``truncated``,
with ``records_total``); every objection and outcome a section carries, and that its
dispute marks are the ones those proven entries give (``node.disputes``); the home
receipt's inclusion. It returns the enterprise's
current view (corrections resolved) and history.

:func:`verification_steps` runs the same checks and never raises: it returns every step
it checked by name, pass or fail (verification stops at the first failure, as
:func:`verify_bundle` does), for a reader that shows each check (``creditchain report
verify``, the explorer's report page).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ledger import (
    SECTIONS,
    AuthorizationEntry,
    BlockHeader,
    Checkpoint,
    CorrectionEntry,
    LedgerError,
    ReceiptEntry,
    RecordEntry,
    canonical_bytes,
    commitment,
    current_view,
    item_for,
    leaf_hash,
    open_note,
    parse_entry,
    verify_inclusion,
)
from node.consent import verify_consent
from node.consortium import Manifest, ManifestHistory
from node.disputes import verify_objection_items
from node.errors import AuthorizationError, BundleError, ConfigError, UnknownPeerError

__all__ = [
    "BundleSummary",
    "VerificationStep",
    "bundle_manifest_version",
    "verification_steps",
    "verify_bundle",
    "verify_bundle_in_history",
    "verify_checkpoint_note",
    "verify_record_item",
]


@dataclass
class BundleSummary:
    query_id: str
    uscc: str
    purpose: str
    institution_id: str
    home_node: str
    partial: bool
    missing: list[dict[str, str]]
    holders: dict[str, int]  # node → records verified
    # holders whose section is cut at their max_records_per_holder: node, total, included
    truncated: list[dict[str, Any]] = field(default_factory=list)
    current: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    # one mark per objection (node.disputes), each proven against its holder's checkpoint
    disputes: list[dict[str, Any]] = field(default_factory=list)
    # current records per section of the report, in the standard's order (ledger.SECTIONS);
    # "unknown" last, for corrections whose superseded record is not in the bundle
    sections: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerificationStep:
    """One check of a bundle: its name, whether it passed, and why not (``reason`` slug)."""

    name: str
    ok: bool
    detail: str = ""
    reason: str = ""


class _Trail:
    """The steps checked so far, and the one under way (the failing one if a check raises)."""

    def __init__(self) -> None:
        self.steps: list[VerificationStep] = []
        self.current = "bundle structure"

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        self.current = name
        yield
        self.steps.append(VerificationStep(name, True, detail))


def _b(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError as exc:
        raise BundleError("malformed", f"{what} is not base64") from exc


def verify_checkpoint_note(
    manifest: Manifest, node_id: str, note: str, algorithm: str
) -> BlockHeader:
    try:
        verifier = manifest.node(node_id).note_verifier()
        opened = open_note(note.encode(), [verifier])
        header = BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text))
    except UnknownPeerError as exc:
        raise BundleError("unknown-node", f"{node_id} is not in the manifest") from exc
    except LedgerError as exc:
        raise BundleError("bad-checkpoint", f"checkpoint of {node_id}: {exc}") from exc
    if header.origin != verifier.name:
        raise BundleError("bad-checkpoint", f"checkpoint of {node_id} has origin {header.origin}")
    return header


def _included(
    entry_b: bytes, index: int, proof: list[Any], header: BlockHeader, algorithm: str, what: str
) -> None:
    try:
        verify_inclusion(
            leaf_hash(entry_b, algorithm),
            index,
            header.size,
            [_b(p, what) for p in proof],
            header.root,
            algorithm,
        )
    except LedgerError as exc:
        raise BundleError("bad-proof", f"{what}: {exc}") from exc


def verify_record_item(
    item: dict[str, Any], uscc: str, header: BlockHeader, algorithm: str, what: str
) -> RecordEntry | CorrectionEntry:
    """Check one record of a holder's answer: entry, commitment, inclusion."""
    try:
        entry_b = _b(item["entry"], what)
        entry = parse_entry(entry_b)
        index = int(item["index"])
        salt = _b(item["salt"], what)
        body = item["body"]
        proof = list(item["proof"])
    except (KeyError, TypeError, ValueError, LedgerError) as exc:
        raise BundleError("malformed", f"{what}: {exc}") from exc
    if not isinstance(entry, RecordEntry | CorrectionEntry):
        raise BundleError("wrong-entry", f"{what} is a {entry.kind} entry, not a record")
    if entry.uscc != uscc:
        raise BundleError("wrong-entry", f"{what} is about {entry.uscc}, not {uscc}")
    try:
        if commitment(salt, body, algorithm) != entry.commitment:
            raise BundleError("bad-body", f"{what}: body does not match its commitment")
    except LedgerError as exc:
        raise BundleError("bad-body", f"{what}: {exc}") from exc
    _included(entry_b, index, proof, header, algorithm, what)
    return entry


def _check_counts(
    manifest: Manifest, report: dict[str, Any], section: dict[str, Any], n: int, algorithm: str
) -> None:
    """A holder section's counts agree with its records and with the holder's own receipt.

    The receipt (signed into the holder's ledger) says how many records the
    holder served for this query, so a section cut short on the way is caught
    offline; ``records_total`` and ``truncated`` say whether the holder itself cut it.
    """
    node_id = str(section["node_id"])
    if "records_total" in section:
        total = int(section["records_total"])
        if total < n or bool(section.get("truncated")) != (n < total):
            raise BundleError(
                "inconsistent",
                f"{node_id}'s section holds {n} records but says {total} in all, "
                f"truncated={bool(section.get('truncated'))}",
            )
    receipt = section.get("receipt")
    if receipt is None:
        return
    r_header = verify_checkpoint_note(manifest, node_id, receipt["checkpoint"], algorithm)
    r_b = _b(receipt["entry"], f"receipt of {node_id}")
    r_entry = parse_entry(r_b)
    if (
        not isinstance(r_entry, ReceiptEntry)
        or r_entry.query_id != report["query_id"]
        or r_entry.holder_node != node_id
        or r_entry.outcome != "granted"
    ):
        raise BundleError("wrong-entry", f"{node_id}'s receipt is not its grant of this query")
    if r_entry.records != n:
        raise BundleError(
            "inconsistent",
            f"{node_id}'s receipt says it served {r_entry.records} records, the section holds {n}",
        )
    _included(r_b, int(receipt["index"]), receipt["proof"], r_header, algorithm, "receipt")


def verify_bundle(bundle: dict[str, Any], manifest: Manifest) -> BundleSummary:
    """Verify a report bundle offline. Raises BundleError naming the first problem."""
    return _checked(bundle, manifest, _Trail())


def verification_steps(
    bundle: dict[str, Any], manifest: Manifest
) -> tuple[list[VerificationStep], BundleSummary | None]:
    """The checks of :func:`verify_bundle`, each by name; never raises.

    Returns the steps in the order checked (the last one failed if the bundle does not
    verify, and nothing after it was checked) and the summary (None if it failed).
    """
    trail = _Trail()
    try:
        summary = _checked(bundle, manifest, trail)
    except BundleError as exc:
        trail.steps.append(VerificationStep(trail.current, False, exc.detail, exc.reason))
        return trail.steps, None
    return trail.steps, summary


def _checked(bundle: dict[str, Any], manifest: Manifest, trail: _Trail) -> BundleSummary:
    try:
        return _verify_bundle(bundle, manifest, trail)
    except BundleError:
        raise
    except LedgerError as exc:
        raise BundleError("malformed", f"bundle holds an undecodable item: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(
            "malformed", f"bundle is malformed ({type(exc).__name__}: {exc})"
        ) from exc


def verify_bundle_in_history(bundle: dict[str, Any], history: ManifestHistory) -> BundleSummary:
    """Verify a bundle against the manifest version it names, taken from ``history``.

    Raises:
        BundleError: the history lacks that version (``manifest-version``), or the
            bundle does not verify against it.
    """
    version = bundle_manifest_version(bundle)
    try:
        manifest = history.at(version)
    except ConfigError as exc:
        raise BundleError(
            "manifest-version", f"the report names manifest version {version}; {exc}"
        ) from exc
    return verify_bundle(bundle, manifest)


def bundle_manifest_version(bundle: dict[str, Any]) -> int:
    """The manifest version a bundle's report was made under (1 before versions existed).

    Raises:
        BundleError: the report names no usable version.
    """
    try:
        version = bundle["report"].get("manifest_version", 1)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BundleError("malformed", f"bundle lacks {exc}") from exc
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError("malformed", f"the report names manifest version {version!r}")
    return version


def _verify_bundle(bundle: dict[str, Any], manifest: Manifest, trail: _Trail) -> BundleSummary:
    algorithm = manifest.algorithm
    with trail.step("bundle structure"):
        try:
            report = bundle["report"]
            sig = _b(bundle["signature"], "signature")
            home = str(report["home_node"])
            uscc = str(report["uscc"])
        except (KeyError, TypeError) as exc:
            raise BundleError("malformed", f"bundle lacks {exc}") from exc
        made_under = bundle_manifest_version(bundle)
        if made_under != manifest.version:
            raise BundleError(
                "manifest-version",
                f"the report was made under manifest version {made_under}, not version "
                f"{manifest.version}: check it against that version (a manifest history)",
            )
    with trail.step("home node's signature", f"{home} signed the report"):
        try:
            manifest.node(home).key().verify(sig, canonical_bytes(report))
        except UnknownPeerError as exc:
            raise BundleError("unknown-node", f"home node {home} is not in the manifest") from exc
        except Exception as exc:  # cryptography's InvalidSignature or a bad value
            raise BundleError(
                "bad-signature",
                f"the home node's signature over the report does not verify ({type(exc).__name__})",
            ) from exc

    auth = report["authorization"]
    with trail.step("authorization: home checkpoint", f"signed by {home}"):
        auth_header = verify_checkpoint_note(manifest, home, auth["checkpoint"], algorithm)
    with trail.step("authorization: entry", "for this enterprise, institution and purpose"):
        auth_b = _b(auth["entry"], "authorization entry")
        try:
            auth_entry = parse_entry(auth_b)
        except LedgerError as exc:
            raise BundleError("malformed", f"authorization entry: {exc}") from exc
        if not isinstance(auth_entry, AuthorizationEntry) or auth_entry.uscc != uscc:
            raise BundleError(
                "wrong-entry", "the authorization is not an authorization for this enterprise"
            )
        if (
            auth_entry.institution_id != report["institution_id"]
            or report["purpose"] not in auth_entry.purposes
        ):
            raise BundleError(
                "wrong-entry", "the authorization is for another institution or purpose"
            )
    with trail.step("authorization: inclusion", f"entry {auth['index']} of {home}'s log"):
        _included(
            auth_b, int(auth["index"]), auth["proof"], auth_header, algorithm, "authorization"
        )
    with trail.step("authorization: enterprise consent"):
        try:
            verify_consent(manifest, auth_entry)
        except AuthorizationError as exc:
            raise BundleError("bad-consent", f"the authorization's consent: {exc}") from exc

    holders: dict[str, int] = {}
    history: list[tuple[str, int, RecordEntry | CorrectionEntry, Any]] = []
    truncated: list[dict[str, Any]] = []
    disputes: list[dict[str, Any]] = []
    for h in report["holders"]:
        node_id = str(h["node_id"])
        with trail.step(f"{node_id}: checkpoint", f"signed by {node_id}"):
            header = verify_checkpoint_note(manifest, node_id, h["checkpoint"], algorithm)
        for i, item in enumerate(h["records"]):
            what = f"record {i} from {node_id}"
            with trail.step(f"{node_id}: record {i}", "inclusion proof and body commitment"):
                entry = verify_record_item(item, uscc, header, algorithm, what)
            history.append((node_id, int(item["index"]), entry, item["body"]))
        for mark in verify_objection_items(manifest, h, uscc, header, algorithm):
            disputes.append({"node_id": node_id, **mark})
        n = len(h["records"])
        holders[node_id] = n
        with trail.step(f"{node_id}: receipt and counts", f"{n} records served"):
            _check_counts(manifest, report, h, n, algorithm)
        if h.get("truncated"):
            truncated.append({"node_id": node_id, "total": int(h["records_total"]), "included": n})

    receipt = report.get("home_receipt")
    if receipt is not None:
        with trail.step("home receipt", f"included in {home}'s log"):
            r_header = verify_checkpoint_note(manifest, home, receipt["checkpoint"], algorithm)
            r_b = _b(receipt["entry"], "home receipt")
            r_entry = parse_entry(r_b)
            if not isinstance(r_entry, ReceiptEntry) or r_entry.query_id != report["query_id"]:
                raise BundleError("wrong-entry", "the home receipt is not this query's receipt")
            _included(
                r_b, int(receipt["index"]), receipt["proof"], r_header, algorithm, "home receipt"
            )

    missing = [dict(m) for m in report.get("missing", [])]
    with trail.step("missing holders", f"{len(missing)} missing"):
        if bool(report.get("partial")) != bool(missing):
            raise BundleError(
                "inconsistent", "the report's partial flag disagrees with its missing list"
            )
    entries = [e for _, _, e, _ in history]
    keep = {id(e) for e in current_view(entries)}
    item_of = _items_of(entries)
    as_dicts = [
        {
            "node_id": n,
            "index": i,
            "record_type": getattr(e, "record_type", "correction"),
            "record_id": e.record_id,
            "kind": e.kind,
            "supersedes": getattr(e, "supersedes", None),
            "observed_at": e.observed_at,
            "body": body,
            **_dispute_of(disputes, n, e.record_id),
            # the report item (a correction: the item of the record it supersedes), its
            # section of the report and the registry the record came from
            "item": item_of.get(e.record_id),
            "section": _section(item_of.get(e.record_id)),
            "source": e.source,
        }
        for n, i, e, body in history
    ]
    sections: dict[str, int] = {}
    for d, (_, _, e, _) in zip(as_dicts, history, strict=True):
        if id(e) in keep:
            sections[str(d["section"])] = sections.get(str(d["section"]), 0) + 1
    return BundleSummary(
        query_id=str(report["query_id"]),
        uscc=uscc,
        purpose=str(report["purpose"]),
        institution_id=str(report["institution_id"]),
        home_node=home,
        partial=bool(missing),
        missing=missing,
        holders=holders,
        truncated=truncated,
        current=[d for d, (_, _, e, _) in zip(as_dicts, history, strict=True) if id(e) in keep],
        history=as_dicts,
        disputes=disputes,
        sections={k: sections[k] for k in [*(x.key for x in SECTIONS), "unknown"] if k in sections},
    )


def _dispute_of(disputes: list[dict[str, Any]], node_id: str, record_id: str) -> dict[str, Any]:
    """The record's dispute mark: the latest objection to it at its holder, if any.

    ``disputed`` is true while an objection is open (the regulations' flag); an
    ``unverifiable`` outcome keeps the objection on file beside the record.
    """
    mine = [d for d in disputes if d["node_id"] == node_id and d["record_id"] == record_id]
    if not mine:
        return {}
    last = mine[-1]
    return {
        "disputed": any(d["status"] == "open" for d in mine),
        "objection": {k: v for k, v in last.items() if k not in ("node_id", "record_id")},
    }


def _items_of(entries: list[RecordEntry | CorrectionEntry]) -> dict[str, str]:
    """record_id → the record type of its report item, corrections through what they supersede."""
    by_id = {e.record_id: e for e in entries}
    out: dict[str, str] = {}
    for e in entries:
        seen: set[str] = set()
        cur: RecordEntry | CorrectionEntry | None = e
        while isinstance(cur, CorrectionEntry) and cur.record_id not in seen:
            seen.add(cur.record_id)
            cur = by_id.get(cur.supersedes)
        if isinstance(cur, RecordEntry):
            out[e.record_id] = cur.record_type
    return out


def _section(record_type: str | None) -> str:
    # a correction whose record is not in the bundle has no known item
    return item_for(record_type).section if record_type is not None else "unknown"
