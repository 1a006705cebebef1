"""Who witnesses whom: bounded witness sets drawn from the manifest, and when to poll a log.

Each log (one per node) is *witnessed* by ``k`` peers (the node setting
``witnesses``, default 3). The set is a pure function of the manifest, so every
node computes the same sets without talking to anyone:

* **Rendezvous hashing.** Every other node gets a score
  ``SHA-256("yrd-credit-chain/witness/" ‖ log ‖ 0 ‖ peer)`` and peers are taken
  in descending score order. Adding or removing a node moves only the logs
  whose set that node enters or leaves: every other set stays as it was.
* **Spread across cities.** The first pass takes, in score order, only peers of
  a city that is neither the log's own city nor already in the set; a second
  pass fills what is left in score order. A city (one operator, one
  jurisdiction) can then not hold every witness of another city's log.
* ``k`` at or above the number of peers: every peer witnesses the log (the
  all-to-all witnessing of small networks).

A witness of a log polls its checkpoint every ``mirror_interval_s`` while it
moves, backing off to ``WITNESS_IDLE_ROUNDS`` intervals while it does not (a
conditional fetch: an unchanged head costs one bodyless ``304`` and nothing
else), verifies its signature and a consistency proof from the last head it
accepted, pulls the new entries and cosigns new heads. Every other node still
*follows* the log for routing (the catalogue of who holds which enterprise's
records is derived from verified entries, see :mod:`node.catalogue`): the
same checks, no cosignature, and polls that back off from
``mirror_interval_s`` to ``follow_interval_s`` while the head does not move
(:class:`Schedule`). A follower that hears of a newer head (gossip, a report
answer) polls at once.

What a lying witness can still do (and what it cannot):

* **Withhold cosignatures.** A witness may never cosign, or cosign late. A
  log's checkpoints then carry fewer cosignatures; nothing in the consortium
  requires a quorum of them (a bundle verifies on the log's own signature,
  the cosignatures are extra evidence), so no report is refused. It removes
  one independent check: with all ``k`` witnesses silent, a fork of that log
  is caught only by followers (within ``follow_interval_s``), by gossip, and
  by every node that takes a report answer from it (the report path checks
  consistency with the last head it saw).
* **Cosign a fork.** A witness's cosignature vouches only that *it* saw the
  head consistent with its own earlier view. A witness colluding with a
  forking log can cosign both branches; honest witnesses and followers still
  raise their own alarms from the consistency proofs, and gossip between any
  two nodes holding different branches raises one with both signed notes as
  evidence. A cosignature is never taken as a reason to skip a check.
* **Miss a node that is down.** The sets are computed from the manifest, not
  from who is up: a log whose witness is down has ``k - 1`` live witnesses
  until the node comes back (no reassignment, so a flapping node cannot steer
  which peers watch which log). Followers keep checking the log meanwhile.
* **Cannot** make a node accept a checkpoint: every node verifies the log's
  signature and a consistency proof itself, and a ``304`` only keeps the head
  the node already verified.

Invariants: the sets depend only on the manifest's node ids and cities and
``k``; a node is never its own witness; each set has ``min(k, peers)``
distinct members.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from node.consortium import Manifest, NodeInfo

__all__ = ["WITNESS_IDLE_ROUNDS", "Schedule", "witnessed_by", "witnesses_of"]

_DOMAIN = b"yrd-credit-chain/witness/"
#: A witness of an idle log polls it at least every this many mirror intervals (8 s at 2 s):
#: a fork is a new head, so this bounds the time to see one that appears after a quiet spell.
WITNESS_IDLE_ROUNDS = 4


def _score(log_id: str, peer_id: str) -> bytes:
    return hashlib.sha256(_DOMAIN + log_id.encode() + b"\0" + peer_id.encode()).digest()


def witnesses_of(nodes: Iterable[NodeInfo], log_id: str, k: int) -> list[str]:
    """The ``k`` witnesses of ``log_id``'s log among ``nodes`` (best score first).

    Raises:
        ValueError: ``k`` is below 1 or ``log_id`` is not among ``nodes``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    nodes = list(nodes)
    own = [n for n in nodes if n.node_id == log_id]
    if not own:
        raise ValueError(f"{log_id!r} is not a node of the manifest")
    ranked = sorted(
        (n for n in nodes if n.node_id != log_id),
        key=lambda n: _score(log_id, n.node_id),
        reverse=True,
    )
    chosen: list[str] = []
    cities = {own[0].city}
    for n in ranked:
        if len(chosen) == k:
            break
        if n.city not in cities:
            chosen.append(n.node_id)
            cities.add(n.city)
    for n in ranked:
        if len(chosen) == k:
            break
        if n.node_id not in chosen:
            chosen.append(n.node_id)
    return chosen


def witnessed_by(manifest: Manifest, node_id: str, k: int) -> frozenset[str]:
    """The logs ``node_id`` witnesses under ``manifest`` with sets of ``k``."""
    return frozenset(
        n.node_id
        for n in manifest.nodes
        if n.node_id != node_id and node_id in witnesses_of(manifest.nodes, n.node_id, k)
    )


@dataclass
class _Follow:
    due: float = 0.0
    wait_s: float = 0.0
    etag: str = ""
    size: int = -1  # the tree size of the head the ETag names


@dataclass
class Schedule:
    """When this node next polls each peer's checkpoint, and the ETag it last got.

    A log is due when its back-off has passed: ``fast_s`` after a change,
    doubling on each unchanged poll up to ``WITNESS_IDLE_ROUNDS × fast_s`` for
    a witnessed log and ``slow_s`` for a followed one (``node.peers.mirror.mirror_once`` also
    polls it at once when a newer head of it was accepted elsewhere).
    """

    witnessed: frozenset[str]
    fast_s: float
    slow_s: float
    _peers: dict[str, _Follow] = field(default_factory=dict)

    def _get(self, peer: str) -> _Follow:
        return self._peers.setdefault(peer, _Follow())

    def due(self, peer: str, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self._get(peer).due

    def etag(self, peer: str, size: int) -> str:
        """The ETag to send, if the head it names still has the ``size`` of our view."""
        f = self._get(peer)
        return f.etag if f.size == size else ""

    def polled(
        self, peer: str, *, changed: bool, etag: str, size: int, now: float | None = None
    ) -> None:
        """Record a poll's outcome: ``changed`` resets the back-off, else it doubles."""
        f = self._get(peer)
        now = time.monotonic() if now is None else now
        f.etag, f.size = etag, size
        cap = self.fast_s * WITNESS_IDLE_ROUNDS if peer in self.witnessed else self.slow_s
        f.wait_s = self.fast_s if changed else min(cap, max(self.fast_s, f.wait_s * 2))
        f.due = now + f.wait_s

    def failed(self, peer: str) -> None:
        """A poll that got no answer: forget the ETag, try again next round."""
        f = self._get(peer)
        f.etag, f.size, f.due = "", -1, 0.0
