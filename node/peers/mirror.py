"""Mirroring and witnessing of peers.

Each log is witnessed by a bounded set of ``witnesses`` peers drawn from the
manifest (:mod:`node.peers.witnesses`); every other node follows it for the
catalogue. Every ``mirror_interval_s`` a node, for each peer not under alarm
that is due (every witnessed log; a followed log when its back-off has passed
or a newer head of it was seen elsewhere):

1. asks for the peer's signed checkpoint with the ETag of the last answer: an
   unchanged head answers ``304`` and the round ends there for that peer (no
   proof, no entries, no cosignature); a new one is accepted only if its
   signature verifies and a consistency proof links it to the last one we
   accepted;
2. pulls the new entries' metadata (never bodies), folds their leaf hashes
   into a compact range and checks the result equals the checkpoint's root;
3. adds the enterprises it holds records for to the catalogue (hashed USCC →
   holders) and notes revoked authorizations;

   (steps 2–3 are those of the ``full`` catalogue mode; in the ``compact`` mode
   the node instead takes the peer's catalogue deltas and spot-checks them
   with inclusion proofs, see :mod:`node.catalogue` for what that trades);
4. if it is one of the log's witnesses, cosigns a new head (C2SP
   tlog-cosignature) and sends the cosignature to the peer, which serves it
   with its checkpoint.

It also gossips: every few rounds it asks one peer for the checkpoints *it*
has accepted and checks those against its own views, so a node that shows
different histories to different peers is caught. Any inconsistency raises an
``alarm`` entry on our ledger; the peer is refused until an operator resolves
it. See :mod:`node.peers.witnesses` for what a lying witness can still do.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from ledger import (
    BlockHeader,
    CompactRange,
    CorrectionEntry,
    CosignatureSigner,
    LedgerError,
    ProofError,
    RecordEntry,
    RevocationEntry,
    hasher,
    parse_entry,
)
from node.catalogue import DEFAULT_SAMPLING, Sampling, in_budget, mirror_compact
from node.errors import NodeError, PeerMisbehavedError, PeerUnavailableError
from node.peers.witnesses import Schedule, witnessed_by
from node.stages import bound, stage
from node.state import NodeState, unb64
from node.views import PeerView

__all__ = ["gossip", "mirror_forever", "mirror_once", "mirror_peer", "pause_after", "schedule"]

log = logging.getLogger("node.peers.mirror")

PAGE = 2000
GOSSIP_EVERY = 5  # rounds between gossip exchanges with a random peer
COSIGN_EVERY_S = 10.0
MAX_DUTY = (
    0.25  # largest share of wall time mirroring rounds may take under demand (see pause_after)
)
MAX_REST_S = 30.0  # longest rest between rounds, so witnessing never stalls (see pause_after)
ROUND_BUDGET_S = 10.0  # catch-up per peer per round: later pages wait for the next round


def schedule(st: NodeState) -> Schedule:
    """This node's polling schedule (built on first use from the manifest and settings)."""
    got = st.metrics.get("_schedule")
    if not isinstance(got, Schedule):
        got = Schedule(
            witnessed_by(st.manifest, st.node_id, st.settings.witnesses),
            fast_s=st.settings.mirror_interval_s,
            slow_s=max(st.settings.mirror_interval_s, st.settings.follow_interval_s),
        )
        st.metrics["_schedule"] = got
    return got


async def _accept(
    st: NodeState,
    peer: str,
    note: bytes,
    source: str,
    *,
    latest: bool = True,
    proof: list[bytes] | None = None,
    proof_from: int | None = None,
) -> BlockHeader | None:
    old = st.views.view(peer)
    try:
        return await st.views.accept_checkpoint(
            peer,
            note,
            st.verifier_for(peer),
            st.peers.consistency_fetcher(peer),
            latest=latest,
            proof=proof,
            proof_from=proof_from,
        )
    except ProofError as exc:
        evidence = [old.note.decode() if old else "", note.decode()]
        await st.raise_alarm(
            peer,
            "equivocation",
            f"checkpoint from {source} is inconsistent with the one accepted before: {exc}",
            evidence,
        )
        log.warning("alarm: %s equivocated (%s)", peer, exc)
        return None


async def mirror_peer(
    st: NodeState,
    peer: str,
    sampling: Sampling = DEFAULT_SAMPLING,
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """One mirroring round for one peer; returns what happened.

    ``sampling`` is how much of a compact catalogue delta is spot-checked.
    Catch-up stops taking new pages at ``deadline`` (``time.monotonic()``;
    ``None``: not before the accepted checkpoint is reached); the next round
    goes on from there against the peer's then latest checkpoint.
    """
    if st.views.refused(peer):
        return {"peer": peer, "status": "refused"}
    sched = schedule(st)
    try:
        fetched = await _fetch_checkpoint(st, peer, sched)
    except NodeError:
        sched.failed(peer)
        raise
    before = st.views.view(peer)
    if fetched is not None:
        note, proof, proof_from, etag = fetched
        # Our cosignature lines and other witnesses' follow the signed checkpoint;
        # accept_checkpoint checks the peer's own signature and ignores the rest.
        header = await _accept(st, peer, note, peer, proof=proof, proof_from=proof_from)
        if header is None:
            return {"peer": peer, "status": "alarm"}
        view = st.views.view(peer)
        assert view is not None
        changed = before is None or (view.size, view.height) != (before.size, before.height)
        sched.polled(peer, changed=changed, etag=etag, size=view.size)
    else:  # 304: the head we hold is still the peer's latest
        assert before is not None
        view = before
        sched.polled(peer, changed=False, etag=sched.etag(peer, view.size), size=view.size)
        vouched = peer not in sched.witnessed or st.cosigned.get(peer, (-1, 0.0))[0] == view.size
        if view.mirrored >= view.size and vouched:
            return _idle(peer, view)
    if st.settings.catalogue == "compact":
        done = await mirror_compact(st, peer, view, sampling, deadline=deadline)
        if done["alarm"]:
            return {"peer": peer, "status": "alarm"}
        return await _cosign(st, peer, view.note, st.views.view(peer) or view, int(done["pulled"]))
    h = hasher(st.ledger.algorithm)
    peaks = [view.peaks[i : i + 32] for i in range(0, len(view.peaks), 32)]
    if len(peaks) != view.mirrored.bit_count():
        # Mirrored in compact mode before (no peaks kept): fold the peer's log from the start.
        peaks, mirrored = [], 0
    else:
        mirrored = view.mirrored
    compact = CompactRange(h, mirrored, peaks)
    pulled = 0
    while compact.size < view.size and in_budget(deadline):
        page = await st.peers.call(
            peer,
            "GET",
            "/v1/entries",
            params={"start": compact.size, "end": min(view.size, compact.size + PAGE)},
        )
        items = page["entries"]
        if not items:
            break
        try:
            usccs, revoked = await asyncio.to_thread(_fold_page, items, compact, h)
        except ValueError as exc:
            raise PeerMisbehavedError(peer, str(exc)) from exc
        pulled += len(items)
        await asyncio.to_thread(st.views.add_catalogue, peer, usccs)
        if revoked:
            st.views.add_revoked(peer, revoked)
        if compact.size == view.size and compact.root() != view.root:
            await st.raise_alarm(
                peer,
                "entries-mismatch",
                f"entries 0..{compact.size} do not hash to the root of its checkpoint",
                [view.note.decode()],
            )
            return {"peer": peer, "status": "alarm"}
        st.views.set_view(
            peer,
            BlockHeader("-", view.height, view.size, view.root, "", b""),
            view.note,
            mirrored=compact.size,
            peaks=b"".join(compact.peaks),
        )
        view = st.views.view(peer) or view
    return await _cosign(st, peer, view.note, view, pulled)


def _idle(peer: str, view: PeerView) -> dict[str, Any]:
    return {
        "peer": peer,
        "status": "ok",
        "size": view.size,
        "pulled": 0,
        "cosigned": False,
        "unchanged": True,
    }


async def _fetch_checkpoint(
    st: NodeState, peer: str, sched: Schedule
) -> tuple[bytes, list[bytes] | None, int | None, str] | None:
    """The peer's latest checkpoint and, in the same exchange, its consistency proof from our view.

    ``None`` when the peer answers ``304``: its head is the one we hold (the
    ETag is sent only while our view is still the head it named). Both parts
    of a full answer are self-authenticating (the note's signature, the proof
    against the two roots), so the fetch is unsigned; ``accept_checkpoint``
    checks them.
    """
    view = st.views.view(peer)
    if view is None:
        note, etag = await st.peers.fetch_if_changed(
            peer, "/v1/checkpoint", params={"by": st.node_id}, raw=True
        )
        return note, None, None, etag
    got, etag = await st.peers.fetch_if_changed(
        peer,
        "/v1/checkpoint/consistency",
        # ``by`` tells the peer which head of its log we hold, so the report requests it
        # sends us carry their consistency proof from there (node.reports).
        params={"old": view.size, "by": st.node_id},
        etag=sched.etag(peer, view.size),
    )
    if got is None:
        return None
    try:
        note = str(got["checkpoint"]).encode()
        proof = [unb64(p) for p in got["proof"]]
        proof_from = int(got["old"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PeerMisbehavedError(peer, f"malformed checkpoint answer: {exc}") from exc
    return note, proof, proof_from, etag


async def _cosign(
    st: NodeState, peer: str, note: bytes, view: PeerView, pulled: int
) -> dict[str, Any]:
    cosigned = False
    if peer not in schedule(st).witnessed:
        # A follower checks the log for its catalogue but does not vouch for it.
        return {
            "peer": peer,
            "status": "ok",
            "size": view.size,
            "pulled": pulled,
            "cosigned": False,
        }
    last = st.cosigned.get(peer)
    # Cosign the first checkpoint seen, then at most every COSIGN_EVERY_S: a
    # witness vouches for a recent head, not for every block a busy peer seals.
    if last is None or (last[0] != view.size and time.monotonic() - last[1] >= COSIGN_EVERY_S):
        signer = CosignatureSigner(st.info.origin, st.key)
        body = note.decode().split("\n\n", 1)[0] + "\n"
        line = signer.cosign(body, int(time.time()))
        try:
            await st.peers.call(
                peer, "POST", "/v1/cosignatures", json_body={"size": view.size, "line": line}
            )
            st.cosigned[peer] = (view.size, time.monotonic())
            cosigned = True
        except NodeError:
            pass
    return {"peer": peer, "status": "ok", "size": view.size, "pulled": pulled, "cosigned": cosigned}


def _fold_page(
    items: list[dict[str, Any]], compact: CompactRange, h: Any
) -> tuple[list[str], list[str]]:
    """Hash a page of peer entries into the compact range (off the event loop).

    Returns the enterprises it holds records for and the revoked authorizations.
    Raises ValueError on entries out of order or undecodable.
    """
    usccs: list[str] = []
    revoked: list[str] = []
    for item in items:
        if int(item["index"]) != compact.size:
            raise ValueError(f"entries out of order at {compact.size}")
        data = unb64(item["data"])
        compact.append(h.leaf(data))
        try:
            entry = parse_entry(data)
        except LedgerError as exc:
            raise ValueError(f"entry {item['index']} is not a valid entry: {exc}") from exc
        if isinstance(entry, RecordEntry | CorrectionEntry):
            usccs.append(entry.uscc)
        elif isinstance(entry, RevocationEntry):
            revoked.append(entry.authorization_id)
    return usccs, revoked


async def gossip(st: NodeState, via: str) -> int:
    """Check the checkpoints ``via`` accepted against ours; returns how many were checked."""
    got = await st.peers.fetch(via, "/v1/views")
    checked = 0
    for item in got.get("views", []):
        peer = str(item.get("node_id"))
        if peer == st.node_id or not st.manifest.has(peer) or st.views.refused(peer):
            continue
        note = str(item["note"]).encode()
        mine = st.views.view(peer)
        if mine is not None and _signed_text(mine.note) == _signed_text(note):
            # The very checkpoint we verified and hold (other cosignature lines at most):
            # it can show no other history, so there is nothing to check.
            checked += 1
            continue
        await _accept(st, peer, note, f"{via}'s view", latest=False)
        checked += 1
    return checked


def _signed_text(note: bytes) -> bytes:
    """A note's checkpoint text and the first signature line (the log's own, which comes first)."""
    text, _, sigs = note.partition(b"\n\n")
    return text + b"\n\n" + sigs.split(b"\n", 1)[0]


async def mirror_once(
    st: NodeState, *, sampling: Sampling = DEFAULT_SAMPLING, deadline: float | None = None
) -> list[dict[str, Any]]:
    """Witness and mirror every due peer once, concurrently (``deadline``: see :func:`mirror_peer`).

    Due: every log this node witnesses; a followed log whose back-off has
    passed, or of which a newer head than we pulled was accepted meanwhile
    (gossip, a report answer). Peers not due are left out of the results.
    """
    sched = schedule(st)
    now = time.monotonic()
    peers = []
    for n in st.manifest.nodes:
        if n.node_id == st.node_id:
            continue
        view = st.views.view(n.node_id) if n.node_id not in sched.witnessed else None
        if sched.due(n.node_id, now) or (view is not None and view.mirrored < view.size):
            peers.append(n.node_id)

    async def one(peer: str) -> dict[str, Any]:
        try:
            return await mirror_peer(st, peer, sampling, deadline=deadline)
        except PeerUnavailableError as exc:
            return {"peer": peer, "status": "unavailable", "detail": exc.detail}
        except (PeerMisbehavedError, LedgerError, KeyError, TypeError, ValueError) as exc:
            return {"peer": peer, "status": "error", "detail": str(exc)}

    with bound(st.stages, "background"), stage("mirror_round"):
        results = list(await asyncio.gather(*(one(p) for p in peers)))
    live = [r["peer"] for r in results if r["status"] == "ok"]
    rounds = st.metrics.get("mirror_rounds", 0)
    if not live and rounds % GOSSIP_EVERY == 0:
        # No peer was polled this round (a follower's back-off): gossip with any peer we
        # do not refuse, so views are still compared every GOSSIP_EVERY rounds.
        live = [
            n.node_id
            for n in st.manifest.nodes
            if n.node_id != st.node_id and not st.views.refused(n.node_id)
        ]
    if live and rounds % GOSSIP_EVERY == 0:
        try:
            await gossip(st, random.choice(live))
        except (NodeError, LedgerError, KeyError, TypeError, ValueError) as exc:
            log.info("gossip failed: %s", exc)
    st.metrics["mirror_rounds"] = st.metrics.get("mirror_rounds", 0) + 1
    st.metrics["last_mirror"] = results
    return results


def pause_after(round_s: float, interval_s: float, *, demand: bool = True) -> float:
    """Seconds to rest after a mirroring round that took ``round_s``.

    Rounds start every ``interval_s`` while they are short. When the node
    served foreground requests (``demand``: reports, holder answers,
    authorizations...) during a longer round, the round is followed by
    ``(1 - MAX_DUTY) / MAX_DUTY`` times its own length of rest, so witnessing
    takes at most ``MAX_DUTY`` of the node's time under load: the catalogue and
    witness views trail by a few more seconds instead of the background work
    starving the reports. The rest never exceeds ``MAX_REST_S`` (or
    ``interval_s``, if longer), so a fork is still seen within a bounded time.
    Without demand nothing waits for the node, so a long round (catch-up after a
    bulk load or an outage) is followed only by what is left of the interval.
    """
    floor = max(0.05, interval_s - round_s)
    if not demand:
        return floor
    return max(floor, min(MAX_REST_S, round_s * (1 - MAX_DUTY) / MAX_DUTY))


async def mirror_forever(st: NodeState) -> None:
    await asyncio.sleep(random.uniform(0, st.settings.mirror_interval_s))
    while True:
        started = time.monotonic()
        served = st.metrics.get("foreground", 0)
        try:
            await mirror_once(st, deadline=started + ROUND_BUDGET_S)
        except Exception:  # the loop must survive anything a peer sends
            log.exception("mirror round failed")
        demand = st.metrics.get("foreground", 0) != served
        await asyncio.sleep(
            pause_after(time.monotonic() - started, st.settings.mirror_interval_s, demand=demand)
        )
