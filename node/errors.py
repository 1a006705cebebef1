"""Errors raised by the node service.

    NodeError
    ├── ConfigError             settings, keys or manifest cannot be used
    │   └── ManifestRefusedError a new manifest version cannot follow the current one
    ├── UnknownPeerError        a key id that is not in the manifest (.peer_id)
    ├── UnknownInstitutionError an institution not registered here (.institution_id)
    ├── AuthorizationError      the cited authorization does not allow the query (.reason)
    ├── ObjectionError          an objection or its outcome is refused (.reason)
    │   ├── UnknownRecordObjectionError  the holder holds no such record of the enterprise
    │   ├── NotByEnterpriseError         no valid consent signature of the enterprise
    │   └── ObjectionClosedError         the objection already has its outcome
    ├── DuplicateEntryError     an id that is already on the ledger (.ref)
    ├── NotFoundError           nothing at that id or index
    ├── PushbackError           too busy: retry later (.retry_after_s)
    │   └── RateLimitedError    this caller sends too many of a kind of request (.retry_after_s)
    ├── DenialNoticeError       a peer's notice of a denied query is not backed by its ledger
    ├── PeerUnavailableError    a peer is down, slow or refused (.peer_id)
    ├── PeerMisbehavedError     a peer's answer failed verification (.peer_id)
    ├── BundleError             a report bundle does not verify (.reason)
    ├── DataDirLockedError      another process runs on this data directory (.path, .holder_pid)
    ├── HeadTimeoutError        a request head not received within the deadline (.timeout_s)
    ├── TooManyConnectionsError the server's connection cap is reached (.retry_after_s)
    ├── LedgerBehindError       the ledger is smaller than a size this node signed (.size, .signed_size)
    └── HttpSignatureError      an RFC 9421 signature or digest fails (.reason; node.http.httpsig)

Ledger errors (``ledger.errors``) pass through. ``node.api.problems`` maps every class to its
problem details in one table (``PROBLEM_TYPES``): status, type slug, title and the attributes
that become extension members.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "BodyTimeoutError",
    "BundleError",
    "ConfigError",
    "DataDirLockedError",
    "DenialNoticeError",
    "DuplicateEntryError",
    "HeadTimeoutError",
    "LedgerBehindError",
    "ManifestRefusedError",
    "NodeError",
    "NotByEnterpriseError",
    "NotFoundError",
    "ObjectionClosedError",
    "ObjectionError",
    "PeerMisbehavedError",
    "PeerUnavailableError",
    "PushbackError",
    "RateLimitedError",
    "TooManyConnectionsError",
    "UnknownInstitutionError",
    "UnknownPeerError",
    "UnknownRecordObjectionError",
]


class NodeError(Exception):
    """Root of the node's errors."""


class ConfigError(NodeError):
    """Settings, keys or the manifest are missing or invalid."""


class ManifestRefusedError(ConfigError):
    """A manifest version offered to a running node cannot follow its current one.

    The message is one sentence naming why (:func:`node.consortium.successor_problem`);
    nothing was changed.
    """


class UnknownPeerError(NodeError):
    """A key id or node id that is not in the consortium manifest (``peer_id``)."""

    def __init__(self, peer_id: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{peer_id!r} is not a node of the consortium manifest")
        self.peer_id = peer_id


class UnknownInstitutionError(NodeError):
    """An institution that is not registered at this node (``institution_id``)."""

    def __init__(self, institution_id: str) -> None:
        super().__init__(f"institution {institution_id!r} is not registered at this node")
        self.institution_id = institution_id


class AuthorizationError(NodeError):
    """The cited authorization does not allow this query; ``reason`` is the denial code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ObjectionError(NodeError):
    """An objection or its outcome is refused; ``reason`` is the refusal code
    (``unknown-record``, ``not-enterprise``, ``not-home-node``, ``already-disputed``,
    ``closed``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class UnknownRecordObjectionError(ObjectionError):
    """An objection names a record the holder does not hold for that enterprise."""

    def __init__(self, detail: str) -> None:
        super().__init__("unknown-record", detail)


class NotByEnterpriseError(ObjectionError):
    """An objection without the enterprise's own consent signature."""

    def __init__(self, detail: str) -> None:
        super().__init__("not-enterprise", detail)


class ObjectionClosedError(ObjectionError):
    """An outcome for an objection that already has one."""

    def __init__(self, detail: str) -> None:
        super().__init__("closed", detail)


class DuplicateEntryError(NodeError):
    """An id that is already on the ledger (``ref``)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"{ref} is already on the ledger")
        self.ref = ref


class NotFoundError(NodeError):
    """Nothing exists at the requested id or index."""


class PushbackError(NodeError):
    """Too busy to take the request now; retry after ``retry_after_s`` seconds."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class RateLimitedError(PushbackError):
    """One caller sent more of a kind of request than its share; retry after ``retry_after_s``."""


class DenialNoticeError(NodeError):
    """A notice of a denied query that does not cite the sender's own denied receipt,
    included in its signed checkpoint."""


class PeerUnavailableError(NodeError):
    """A peer is down, too slow or refused the request (``peer_id``, ``detail``)."""

    def __init__(self, peer_id: str, detail: str, problem: dict[str, object] | None = None) -> None:
        super().__init__(f"peer {peer_id}: {detail}")
        self.peer_id = peer_id
        self.detail = detail
        # A signed problem answer's body (a refusal, not an outage), for callers that relay it.
        self.problem = problem


class PeerMisbehavedError(NodeError):
    """A peer's answer failed verification (``peer_id``, ``detail``)."""

    def __init__(self, peer_id: str, detail: str) -> None:
        super().__init__(f"peer {peer_id} misbehaved: {detail}")
        self.peer_id = peer_id
        self.detail = detail


class BundleError(NodeError):
    """A report bundle does not verify offline; ``reason`` names the failed check."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{detail} ({reason})")
        self.reason = reason
        self.detail = detail


class DataDirLockedError(NodeError):
    """Another process holds this node's data directory (``path``; ``holder_pid`` when known).

    Two processes on one ledger would each serve their own checkpoint: witnesses would see a
    log that shrinks, and every write of the second would fail. The second one stops instead.
    """

    def __init__(self, path: str, holder_pid: int | None) -> None:
        holder = f"node process {holder_pid}" if holder_pid else "another node process"
        super().__init__(
            f"data directory {path} is in use by {holder}; stop it first, "
            "or give this node its own data_dir"
        )
        self.path = path
        self.holder_pid = holder_pid


class HeadTimeoutError(NodeError):
    """A client did not send a whole request head within ``timeout_s`` seconds of connecting
    (or of starting its next request): the connection is answered 408 and closed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the request head was not received within {timeout_s:g} s; the connection is closed"
        )
        self.timeout_s = timeout_s


class BodyTimeoutError(NodeError):
    """A client sent a request head but not its whole body within ``timeout_s`` seconds of
    the head: the connection is answered 408 and closed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"the request body was not received within {timeout_s:g} s of its head; the "
            "connection is closed"
        )
        self.timeout_s = timeout_s


class TooManyConnectionsError(NodeError):
    """The node already serves its maximum of ``limit`` connections: a new one is answered 503
    with ``Retry-After`` and closed before any request is read."""

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"this node already serves its maximum of {limit} connections; retry later"
        )
        self.limit = limit
        self.retry_after_s = retry_after_s


class LedgerBehindError(NodeError):
    """The ledger holds fewer entries than a tree this node has already signed, or a
    witness has cosigned: acknowledged entries were lost (a deleted WAL, a restored
    backup). The node refuses to start rather than sign a second, shorter history.

    Attributes:
        path: the ledger file.
        size: entries it holds.
        signed_size: the largest size signed or cosigned before.
        evidence: where ``signed_size`` comes from (the state file and which record).
    """

    def __init__(self, path: object, size: int, signed_size: int, evidence: str) -> None:
        super().__init__(
            f"ledger {path} holds {size} entries, fewer than the {signed_size} {evidence}, "
            "so acknowledged entries are missing and the node will not start: restore the "
            "ledger (from a backup, or the entries its peers mirror), or move the state file "
            "aside to accept the loss"
        )
        self.path = str(path)
        self.size = size
        self.signed_size = signed_size
        self.evidence = evidence
