"""The checks behind the crash harness and the soak.

What a client was promised is on the ledger, whole; what a node serves and mirrors agrees
with its file.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    BlockHeader,
    Checkpoint,
    CorrectionEntry,
    Ledger,
    LedgerError,
    ReceiptEntry,
    RecordEntry,
    canonical_bytes,
    leaf_hash,
    open_note,
    parse_entry,
    verify_consistency,
    verify_inclusion,
)
from ledger.fsck import verify_ledger
from scenarios import localnet as net

INCLUSION_SAMPLE = 20  # inclusion proofs asked of a restarted node per check


# --- what a client was promised -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ack:
    """One entry a node acknowledged with a 2xx.

    ``index`` is the leaf index the node answered (None for a holder's receipt,
    which the client learns of only through the report and finds by query id).
    ``data`` is the exact entry when the client can know it (authorizations,
    home receipts); a record is salted by the node, so for it ``ref`` (the
    record id), ``uscc`` and ``body_digest`` (SHA-256 of the canonical body
    sent) are checked instead.
    """

    node_id: str
    kind: str  # "record", "authorization", "receipt" (home) or "holder-receipt"
    index: int | None
    ref: str  # record id, authorization id or query id
    uscc: str
    data: bytes | None = None
    body_digest: str | None = None
    round: int = 0

    def where(self) -> str:
        if self.index is None:
            return f"{self.kind} of query {self.ref} on {self.node_id}"
        return f"{self.kind} {self.ref} at index {self.index} on {self.node_id}"


def body_digest(body: Any) -> str:
    """What a record acknowledgement remembers of the body sent: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def check_acks(ledger: Ledger, acks: Sequence[Ack]) -> list[str]:
    """What is missing or different in ``ledger`` among the acknowledged entries ``acks``.

    Returns one sentence per problem (empty: every acknowledged entry is there).
    """
    problems: list[str] = []
    size = ledger.size
    receipts: dict[str, set[str]] = {}
    for ack in acks:
        if ack.kind == "holder-receipt":
            if ack.uscc not in receipts:
                receipts[ack.uscc] = {
                    e.query_id
                    for _, e in ledger.by_subject(ack.uscc, ("receipt",))
                    if isinstance(e, ReceiptEntry) and e.role == "holder"
                }
            if ack.ref not in receipts[ack.uscc]:
                problems.append(
                    f"the holder receipt of query {ack.ref} (round {ack.round}) is not on "
                    f"{ack.node_id}'s ledger"
                )
            continue
        assert ack.index is not None
        if ack.index >= size:
            problems.append(
                f"acknowledged {ack.kind} {ack.ref} at index {ack.index} (round {ack.round}) is missing: "
                f"{ack.node_id}'s ledger has {size} entries"
            )
            continue
        try:
            data = ledger.entry_data(ack.index)
        except LedgerError as exc:
            problems.append(
                f"acknowledged {ack.kind} {ack.ref} at index {ack.index} (round {ack.round}) cannot be "
                f"read from {ack.node_id}'s ledger: {exc}"
            )
            continue
        if ack.data is not None:
            if data != ack.data:
                problems.append(
                    f"entry {ack.index} on {ack.node_id} is not the acknowledged {ack.kind} {ack.ref} "
                    f"(round {ack.round})"
                )
            continue
        try:
            entry = parse_entry(data)
            ok = (
                isinstance(entry, RecordEntry | CorrectionEntry)
                and entry.record_id == ack.ref
                and entry.uscc == ack.uscc
            )
            if ok and ack.body_digest is not None:
                ok = body_digest(ledger.body(ack.index)[1]) == ack.body_digest
        except LedgerError as exc:
            problems.append(
                f"entry {ack.index} on {ack.node_id} (acknowledged record {ack.ref}) is unreadable: {exc}"
            )
            continue
        if not ok:
            problems.append(
                f"entry {ack.index} on {ack.node_id} is not the acknowledged record {ack.ref} "
                f"(round {ack.round}) with the body sent"
            )
    return problems


def verify_file(path: Path, verifier_key: str | None = None) -> tuple[int, list[str]]:
    """Full verification of one ledger file (``creditchain ledger verify``).

    Returns the entries verified and one sentence per fault.
    """
    try:
        report = verify_ledger(path, verifier_key=verifier_key)
    except LedgerError as exc:
        return 0, [f"{path} cannot be verified: {exc}"]
    return report.entries, [f"{path}: {fault}" for fault in report.faults]


def open_readonly(path: Path) -> Ledger:
    return Ledger.open(path, readonly=True)


def _header(note: bytes, cons: net.Consortium, node_id: str) -> BlockHeader:
    opened = open_note(note, [cons.node(node_id).note_verifier()])
    return BlockHeader.from_checkpoint(Checkpoint.from_text(opened.text))


def _b64list(items: Any) -> list[bytes]:
    return [base64.b64decode(str(p), validate=True) for p in items]


def check_served(
    cons: net.Consortium,
    node_id: str,
    ledger: Ledger,
    acks: Sequence[Ack],
    rng: random.Random,
    client: httpx.Client,
) -> list[str]:
    """The running node serves a signed checkpoint covering ``acks`` and proves a sample of them included."""
    url = cons.url(node_id)
    try:
        note = client.get(url + "/v1/checkpoint").raise_for_status().content
        head = _header(note, cons, node_id)
    except (httpx.HTTPError, LedgerError) as exc:
        return [f"{node_id} does not serve a valid signed checkpoint: {exc}"]
    problems = []
    if head.size > ledger.size:
        return [
            f"{node_id} serves a checkpoint of size {head.size}, beyond the {ledger.size} entries "
            "of its ledger file"
        ]
    if ledger.root_at(head.size) != head.root:
        problems.append(
            f"{node_id}'s served checkpoint (size {head.size}) does not match its ledger file"
        )
    indexed = [a for a in acks if a.index is not None]
    beyond = [a for a in indexed if a.index is not None and a.index >= head.size]
    if beyond:
        problems.append(
            f"{node_id}'s checkpoint (size {head.size}) does not cover {len(beyond)} acknowledged entries, "
            f"e.g. {beyond[0].where()}"
        )
    sample = rng.sample(indexed, min(INCLUSION_SAMPLE, len(indexed)))
    for ack in sample:
        if ack.index is None or ack.index >= head.size:
            continue
        try:
            got = client.get(
                url + "/v1/proofs/inclusion", params={"index": ack.index, "size": head.size}
            )
            proof = _b64list(got.raise_for_status().json()["proof"])
            leaf = leaf_hash(
                ack.data if ack.data is not None else ledger.entry_data(ack.index), ledger.algorithm
            )
            verify_inclusion(leaf, ack.index, head.size, proof, head.root, ledger.algorithm)
        except (httpx.HTTPError, LedgerError, KeyError, ValueError) as exc:
            problems.append(
                f"{node_id} does not prove {ack.where()} included in its checkpoint: {exc}"
            )
    return problems


def check_mirrors(cons: net.Consortium, node_id: str, client: httpx.Client) -> list[str]:
    """Every peer's view of ``node_id`` is a checkpoint it signed, within and consistent with its tree;
    no node has an open alarm or refuses a peer."""
    url = cons.url(node_id)
    try:
        head = _header(client.get(url + "/v1/checkpoint").raise_for_status().content, cons, node_id)
    except (httpx.HTTPError, LedgerError) as exc:
        return [f"{node_id} does not serve a valid signed checkpoint: {exc}"]
    algorithm = cons.manifest.algorithm
    problems = []
    for peer in cons.node_ids:
        try:
            info = client.get(cons.url(peer) + "/v1/info").raise_for_status().json()
            views = client.get(cons.url(peer) + "/v1/views").raise_for_status().json()["views"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            problems.append(f"{peer} did not answer for the mirror check: {exc}")
            continue
        for alarm in info.get("alarms", []):
            problems.append(
                f"{peer} has an open alarm against {alarm.get('node_id')}: {alarm.get('fault')} "
                f"({str(alarm.get('detail'))[:200]})"
            )
        refused = [p["node_id"] for p in info.get("peers", []) if p.get("refused")]
        if refused:
            problems.append(f"{peer} refuses {', '.join(refused)}")
        if peer == node_id:
            continue
        view = next((v for v in views if v.get("node_id") == node_id), None)
        if view is None:
            problems.append(f"{peer} has no view of {node_id}")
            continue
        try:
            seen = _header(str(view["note"]).encode(), cons, node_id)
        except (LedgerError, KeyError) as exc:
            problems.append(
                f"{peer}'s view of {node_id} is not a checkpoint {node_id} signed: {exc}"
            )
            continue
        if seen.size > head.size:
            problems.append(
                f"{peer} saw {node_id} at size {seen.size}, beyond its current size {head.size}: "
                "acknowledged history was lost"
            )
            continue
        try:
            proof: list[bytes] = []
            if 0 < seen.size < head.size:
                got = client.get(
                    url + "/v1/proofs/consistency", params={"old": seen.size, "new": head.size}
                )
                proof = _b64list(got.raise_for_status().json()["proof"])
            if seen.size == head.size and seen.root != head.root:
                raise LedgerError("same size, different roots")
            if 0 < seen.size < head.size:
                verify_consistency(seen.size, head.size, seen.root, head.root, proof, algorithm)
        except (httpx.HTTPError, LedgerError, KeyError, ValueError) as exc:
            problems.append(
                f"{peer}'s view of {node_id} (size {seen.size}) is not consistent with its tree "
                f"(size {head.size}): {exc}"
            )
    return problems


@contextmanager
def closing(ledger: Ledger) -> Iterator[Ledger]:
    """Close ``ledger`` when the block ends."""
    try:
        yield ledger
    finally:
        ledger.close()
