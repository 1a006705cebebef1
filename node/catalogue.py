"""Compact catalogue: mirroring that scales to the real chain's 16.82 million enterprises.

In the ``full`` catalogue mode (``node.peers.mirror``) every node pulls the metadata
of every entry of every peer, hashes it into a compact range and checks the
peer's root: with 14 nodes each entry is fetched and hashed 13 times, which
does not fit a 2-core machine at full scale. The ``compact`` mode (the node
setting ``catalogue``) keeps what the consortium needs from mirroring and drops
the rest:

* **Witnessing is unchanged.** Each round a node fetches every peer's signed
  checkpoint, proves it consistent with the last one it accepted, cosigns it
  and gossips views with another witness, so a peer that forks its log
  (equivocation) raises an alarm and is refused exactly as in ``full`` mode.
* **The catalogue comes as deltas.** A holder serves ``GET /v1/catalogue``: for
  a range of its log, the hashed USCC (:func:`node.views.uscc_key`) of every
  enterprise registered *outside* the cities it serves that it holds records
  or corrections about there (once per page, with the first such index), and
  the revoked authorizations. Records about an
  enterprise of the holder's own city need no catalogue row: a report always
  asks every node of the enterprise's city (``node.reports.route``). About 8 %
  of entries are such cross-city rows in the synthetic region.
* **Deltas are spot-checked.** Of every page a node takes a share of the
  listed rows and a share of indexes drawn uniformly from the page's range
  (:class:`Sampling`: about four entries per 100,000-entry page), fetches those
  entries with inclusion proofs against the checkpoint it accepted, and checks
  that the page lists exactly what the entries say. A mismatch raises a
  ``catalogue-mismatch`` alarm: the holder is refused like an equivocating one.

Trust trade-off, precisely. What a lying holder can do:

* In both modes it can answer a report query without some of its records (no
  mode checks a holder's answer for completeness), and in both modes it cannot
  forge a record (bodies are checked against commitments, entries against its
  signed, witnessed checkpoints) nor show two histories to two peers without
  an alarm (consistency proofs and gossip).
* In ``full`` mode it cannot misstate its catalogue at all: every witness
  derives the catalogue from the entries themselves and checks that they hash
  to the signed root, so also every revocation it holds is seen by all.
* In ``compact`` mode it can leave rows out of a delta (a cross-city enterprise
  it holds records about is then not routed to it by nodes of other cities:
  the holder only hides its own data, which it could also do by withholding
  answers) or list rows it does not hold (queries are then routed to it and
  come back empty). Each is caught only when a sample hits it: every entry
  is checked with probability ``Sampling.drawn`` (1 in 25,000) and every
  listed row with ``Sampling.listed`` (1 in 2,000), so a holder that omits or
  forges *k* rows escapes with probability about ``(1 - 1/25,000)^k`` resp.
  ``(1 - 1/2,000)^k``: a systematic lie (thousands of rows) is caught within
  the first catch-up, a single row most likely never. Leaving
  out a *revocation* is the one lie that matters to others: a holder of a
  different city would honour the revoked authorization until a sample hits
  it (or the home node of the authorization, which checks its own ledger,
  refuses the query first — it always does for queries it handles).
  Everything that is caught is caught with evidence (the entry, its proof and
  the signed checkpoint) and leads to the same alarm and refusal as in
  ``full`` mode.

Invariants: a page is applied only after all its samples verified; the view's
``mirrored`` size advances only over applied pages; the outbound catalogue is
derived from our own ledger and rebuilt from any point (``INSERT OR IGNORE``).
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request

from ledger import (
    BlockHeader,
    CorrectionEntry,
    InvalidRecordError,
    LedgerError,
    ProofError,
    RecordEntry,
    RevocationEntry,
    leaf_hash,
    parse_entry,
    verify_inclusion,
)
from node.api.schemas import MAX_INDEX
from node.errors import PeerMisbehavedError
from node.state import NodeState, b64, require_node, signed_caller, unb64
from node.views import PeerView, uscc_key

__all__ = [
    "CHECK_ALL",
    "DEFAULT_SAMPLING",
    "CatalogueMismatchError",
    "Sampling",
    "catalogue_router",
    "mirror_compact",
    "outbound_page",
]

PAGE = 100_000  # log indexes per catalogue page
SCAN_CHUNK = 200_000  # own entries read per step when building the outbound catalogue


@dataclass(frozen=True, slots=True)
class Sampling:
    """How many entries of a catalogue page are fetched and checked.

    ``listed`` is the share of listed rows checked, ``drawn`` the share of the
    page's indexes drawn at random and checked; a fractional count is rounded
    up or down at random, so small pages (a round's few receipts) cost nothing
    most of the time and every entry has the same chance of being checked.
    """

    listed: float = 1 / 2_000
    drawn: float = 1 / 25_000

    def count(self, rate: float, n: int, rng: random.Random) -> int:
        expected = min(float(n), rate * n)
        whole = int(expected)
        return whole + (1 if rng.random() < expected - whole else 0)


#: About four entries checked per full page of the synthetic data (8 % of rows listed).
DEFAULT_SAMPLING = Sampling()
#: Every listed row and every index checked (tests).
CHECK_ALL = Sampling(listed=1.0, drawn=1.0)

_KINDS = ("record", "correction", "revocation")


class CatalogueMismatchError(Exception):
    """A catalogue page disagrees with the holder's own entries; carries the evidence."""

    def __init__(self, index: int, detail: str, evidence: list[str]) -> None:
        super().__init__(f"entry {index}: {detail}")
        self.index = index
        self.evidence = evidence


# --- holder side ---------------------------------------------------------------------
class Outbound:
    """Builds and serves this node's outbound catalogue (state.db ``outbound`` table)."""

    def __init__(self, st: NodeState) -> None:
        self.st = st
        self._lock = threading.Lock()
        self._own = frozenset(st.info.admin_codes)

    def ensure(self, upto: int) -> None:
        """Scan our ledger up to ``upto`` once (runs in a worker thread)."""
        views, store = self.st.views, self.st.ledger.store
        with self._lock:
            done = views.counter("outbound_scanned")
            while done < upto:
                stop = min(upto, done + SCAN_CHUNK)
                rows: list[tuple[int, bytes | None, str | None]] = []
                for idx, kind, subject in store.kinds_in_range(done, stop, _KINDS):
                    if kind == "revocation":
                        entry = self.st.ledger.entry(idx)
                        if isinstance(entry, RevocationEntry):
                            rows.append((idx, None, entry.authorization_id))
                    elif subject is not None and subject[2:8] not in self._own:
                        rows.append((idx, uscc_key(subject), None))
                views.add_outbound(rows, stop)
                done = stop

    def page(self, start: int, end: int) -> dict[str, Any]:
        size = self.st.ledger.size
        end = max(start, min(end, start + PAGE, size))
        # Never scan past our own log: a ``start`` beyond it asks for an empty page, and must
        # not walk the scanner to an index the ledger does not have (2^62 entries, say).
        self.ensure(min(end, size))
        rows = self.st.views.outbound(start, end)
        first: dict[bytes, int] = {}
        for i, k, _ in rows:
            if k is not None and k not in first:
                first[k] = i
        return {
            "node_id": self.st.node_id,
            "start": start,
            "end": end,
            "size": size,
            "records": [[i, b64(k)] for k, i in first.items()],
            "revoked": [[i, a] for i, _, a in rows if a is not None],
        }


def outbound_page(st: NodeState, outbound: Outbound, start: int, end: int) -> dict[str, Any]:
    if end < start:
        raise InvalidRecordError(f"end must be >= start, got {start}..{end}")
    return outbound.page(start, end)


def catalogue_router(st: NodeState) -> APIRouter:
    """``GET /v1/catalogue``: this node's catalogue delta for a log range (consortium nodes only)."""
    router = APIRouter()
    outbound = Outbound(st)
    # One thread of its own: the first pages after a bulk load scan millions of entries, and
    # thirteen peers asking at once must queue here, not fill the default pool that signature
    # checks and ledger reads of every other request need.
    scanner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbound")

    @router.get(
        "/v1/catalogue",
        summary="Catalogue delta for a range of this ledger: hashed USCCs of "
        "cross-city records and revoked authorizations (nodes)",
    )
    async def catalogue(
        request: Request,
        start: int = Query(ge=0, le=MAX_INDEX),
        end: int = Query(ge=0, le=MAX_INDEX),
    ) -> dict[str, Any]:
        require_node(await signed_caller(st, request))
        return await asyncio.get_running_loop().run_in_executor(
            scanner, outbound_page, st, outbound, start, end
        )

    return router


# --- mirroring side --------------------------------------------------------------------
def _parse_page(
    peer: str, page: dict[str, Any], start: int, end: int
) -> tuple[dict[int, bytes], dict[int, str]]:
    try:
        records = {int(i): unb64(k) for i, k in page["records"]}
        revoked = {int(i): str(a) for i, a in page["revoked"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise PeerMisbehavedError(peer, f"malformed catalogue page: {exc}") from exc
    if any(not start <= i < end for i in (*records, *revoked)):
        raise PeerMisbehavedError(
            peer, f"catalogue page {start}..{end} lists indexes outside its range"
        )
    if any(len(k) != len(uscc_key("0" * 18)) for k in records.values()):
        raise PeerMisbehavedError(peer, "catalogue page holds keys of the wrong length")
    return records, revoked


async def _check_sample(
    st: NodeState,
    peer: str,
    view: PeerView,
    header: BlockHeader,
    index: int,
    records: dict[int, bytes],
    listed: set[bytes],
    revoked: dict[int, str],
    own: frozenset[str],
) -> None:
    """Fetch entry ``index`` with its inclusion proof and check what the page says of it.

    A page lists each key once, at the first index that has it: a cross-city
    record must have its key listed somewhere in the page, and a listed index
    must hold a cross-city record of exactly that key.
    """
    got = await st.peers.call(peer, "GET", "/v1/entries", params={"start": index, "end": index + 1})
    proof_doc = await st.peers.fetch(
        peer, "/v1/proofs/inclusion", params={"index": index, "size": header.size}
    )
    try:
        items = got["entries"]
        data = unb64(items[0]["data"]) if items and int(items[0]["index"]) == index else b""
        proof = [base64.b64decode(p, validate=True) for p in proof_doc["proof"]]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PeerMisbehavedError(
            peer, f"malformed sample answer for entry {index}: {exc}"
        ) from exc
    evidence = [
        view.note.decode(),
        f"entry {index}: {b64(data)}",
        "proof: " + " ".join(b64(p) for p in proof),
    ]
    try:
        verify_inclusion(
            leaf_hash(data, st.ledger.algorithm),
            index,
            header.size,
            proof,
            header.root,
            st.ledger.algorithm,
        )
        entry = parse_entry(data)
    except (ProofError, LedgerError) as exc:
        raise CatalogueMismatchError(
            index, f"sampled entry is not in the signed tree: {exc}", evidence
        ) from exc
    if isinstance(entry, RecordEntry | CorrectionEntry) and entry.uscc[2:8] not in own:
        key = uscc_key(entry.uscc)
        if (index in records and records[index] != key) or key not in listed:
            raise CatalogueMismatchError(
                index, "a cross-city record is missing from the catalogue page", evidence
            )
    elif isinstance(entry, RevocationEntry):
        if revoked.get(index) != entry.authorization_id:
            raise CatalogueMismatchError(
                index, "a revocation is missing from the catalogue page", evidence
            )
    elif index in records or index in revoked:
        raise CatalogueMismatchError(
            index, f"the page lists a {entry.kind} entry as a catalogue row", evidence
        )


def in_budget(deadline: float | None) -> bool:
    """Whether a mirroring round may still start a page (``deadline``: ``time.monotonic()``, or none)."""
    return deadline is None or time.monotonic() < deadline


async def mirror_compact(
    st: NodeState,
    peer: str,
    view: PeerView,
    sampling: Sampling = DEFAULT_SAMPLING,
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Bring the catalogue rows of ``peer`` up to its accepted checkpoint, page by page.

    No page is started after ``deadline`` (``time.monotonic()``; ``None``: no limit).

    Returns ``{"pulled": rows applied, "alarm": bool}``.
    """
    own = frozenset(st.manifest.node(peer).admin_codes)
    applied = 0
    mirrored = view.mirrored
    rng = random.Random()
    while mirrored < view.size and in_budget(deadline):
        # Reports and gossip may advance the view meanwhile: prove against the latest.
        header = BlockHeader("-", view.height, view.size, view.root, "", b"")
        page = await st.peers.call(
            peer,
            "GET",
            "/v1/catalogue",
            params={"start": mirrored, "end": min(view.size, mirrored + PAGE)},
        )
        try:
            end = int(page["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerMisbehavedError(peer, f"malformed catalogue page: {exc}") from exc
        if not mirrored < end <= view.size:
            raise PeerMisbehavedError(
                peer, f"catalogue page ends at {end}, outside {mirrored + 1}..{view.size}"
            )
        records, revoked = _parse_page(peer, page, mirrored, end)
        indexes = sorted(records)
        keys = set(records.values())
        picks = set(rng.sample(indexes, sampling.count(sampling.listed, len(indexes), rng)))
        picks |= set(
            rng.sample(range(mirrored, end), sampling.count(sampling.drawn, end - mirrored, rng))
        )
        try:
            for index in sorted(picks):
                await _check_sample(st, peer, view, header, index, records, keys, revoked, own)
        except CatalogueMismatchError as exc:
            await st.raise_alarm(peer, "catalogue-mismatch", str(exc), exc.evidence)
            return {"pulled": applied, "alarm": True}
        await asyncio.to_thread(st.views.add_catalogue_keys, peer, records.values())
        if revoked:
            st.views.add_revoked(peer, revoked.values())
        applied += len(records) + len(revoked)
        mirrored = end
        view = st.views.view(peer) or view
        st.views.set_view(
            peer,
            BlockHeader("-", view.height, view.size, view.root, "", b""),
            view.note,
            mirrored=mirrored,
            peaks=b"",
        )
    return {"pulled": applied, "alarm": False}
