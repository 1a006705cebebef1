"""Crash safety and a bounded soak, on a local multi-process network of its own.

``creditchain reliability crash`` (:func:`run_crash`) starts a network in a
fresh directory and, for each round, drives one kind of load — *ingest*
(operators post record batches) or *reports* (institutions file an
authorization, then ask for a report) — while a seeded random node is
SIGKILLed at a seeded random moment. Every entry a client got a 2xx for is an
:class:`Ack`: the node, the leaf index it answered and what must be there
(the exact entry bytes when the client knows them, else the record id, the
enterprise and a digest of the body). After the kill the dead node's ledger
file is verified as the crash left it; the node is restarted on it and then:

* every acknowledged entry of the node, from every round so far, is in its
  ledger (:func:`check_acks`), under the signed checkpoint it serves, with an
  inclusion proof it serves for a sample of them (:func:`check_served`);
* every peer's mirror of it is consistent: the checkpoint each peer accepted
  is signed by it, not larger than its tree, and a consistency proof links
  it to the current one; no node has an open alarm (:func:`check_mirrors`).

At the end all acknowledged entries are checked on every node and, with the
network stopped, every ledger passes full verification (``ledger verify``).

``creditchain reliability soak`` (:func:`run_soak`) measures the closed-loop
report capacity (the machinery of :mod:`scenarios.bench.query`), sends
open-loop reports at ``load`` × capacity for the duration while sampling the
RSS of every node process (psutil), then counts the receipts on the home and
holder ledgers against the requests sent and fits each node's RSS slope
(least squares, MiB/min, after a warm-up).

Invariants: a fault is something a client was promised and did not get, or a
ledger or mirror that does not verify; refused connections to the node that
was just killed are expected and counted, never faults. Nothing here writes
to a ledger except through a node's HTTP API. Every process started is
stopped, whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from ledger import (
    AuthorizationEntry,
    BlockHeader,
    Checkpoint,
    CorrectionEntry,
    Ledger,
    LedgerError,
    ReceiptEntry,
    RecordEntry,
    canonical_bytes,
    entry_bytes,
    leaf_hash,
    open_note,
    parse_entry,
    verify_consistency,
    verify_inclusion,
)
from ledger.fsck import verify_ledger
from node.bundle import verify_bundle
from node.errors import BundleError
from node.http import httpsig
from scenarios import localnet as net
from scenarios.bench.query import ProcSampler, closed_loop, open_loop
from scenarios.errors import ReliabilityError, TopologyError
from scenarios.model.topology import PRESETS, Topology, load_topology
from scenarios.model.workloads import SyntheticData

__all__ = [
    "PAGE_CACHE_FACTOR",
    "PAGE_CACHE_MIB",
    "Ack",
    "CrashConfig",
    "ReliabilityError",
    "SoakConfig",
    "body_digest",
    "check_acks",
    "check_mirrors",
    "check_served",
    "data_files_mib",
    "fit_slope",
    "local_network",
    "memory_figures",
    "remove_workdir",
    "run_crash",
    "run_soak",
    "verify_file",
    "write_results",
]

INCLUSION_SAMPLE = 20  # inclusion proofs asked of a restarted node per check
_CLIENT_TIMEOUT_S = 30.0


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


def _open_readonly(path: Path) -> Ledger:
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


# --- the network ---------------------------------------------------------------------------
def _topology_ref(preset: str, nodes: int | None, workdir: Path) -> tuple[str, Topology]:
    """The preset, or a topology file with ``nodes`` nodes spread over its cities by share."""
    try:
        topology = load_topology(preset)
    except TopologyError as exc:
        raise ReliabilityError(f"unknown preset or bad topology file: {exc}") from exc
    if nodes is None or nodes == len(topology.node_ids):
        return (preset if preset in PRESETS else str(Path(preset).resolve())), topology
    try:
        small = topology.with_node_counts(nodes)
    except TopologyError as exc:
        raise ReliabilityError(str(exc)) from exc
    path = workdir / f"topology-{nodes}n.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        "name": small.name,
        "algorithm": small.algorithm,
        "institutions": small.institutions,
        "cities": [
            {
                "code": c.code,
                "name": c.name,
                "name_zh": c.name_zh,
                "admin_code": c.admin_code,
                "nodes": c.nodes,
                "share": c.share,
                "lat": c.lat,
                "lon": c.lon,
            }
            for c in small.cities
        ],
    }
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")
    return str(path), small


@contextmanager
def local_network(
    workdir: Path,
    preset: str,
    nodes: int | None,
    enterprises: int,
    seed: int,
    echo: Callable[[str], None],
    timeout_s: float = 300.0,
) -> Iterator[net.Consortium]:
    """A freshly initialized, seeded and running network in ``workdir/network``; always stopped on exit."""
    ref, topology = _topology_ref(preset, nodes, workdir)
    directory = workdir / "network"
    if net.consortium_exists(directory):
        raise ReliabilityError(
            f"{directory} already holds a consortium; give an empty --out or work directory"
        )
    n = len(topology.node_ids)
    try:
        net.init_consortium(directory, ref, base_port=_base_port(n))
        echo(
            f"starting {topology.name}: {n} node processes, {enterprises:,} enterprises, in {directory}"
        )
        try:
            result = net.up(
                directory, enterprises=enterprises, seed=seed, progress=False, timeout_s=timeout_s
            )
            yield result.cons
        finally:
            net.down(directory)
    except net.NetworkError as exc:
        raise ReliabilityError(f"the local network failed: {exc}") from exc


def _base_port(count: int) -> int:
    """Free ports below the kernel's ephemeral range.

    So no outgoing connection takes one before a node binds it.
    """
    low = 32768
    with suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if low - count > 20000:
        return net.find_free_base_port(count, start=20000, end=low)
    return net.find_free_base_port(count)


def _verifier_keys(cons: net.Consortium) -> dict[str, str]:
    return {n: cons.node(n).note_verifier().key_string() for n in cons.node_ids}


def _cross_city_targets(
    cons: net.Consortium, rng: random.Random, n: int
) -> list[tuple[net.Institution, str]]:
    """(institution, enterprise) pairs, the enterprise held in two cities other than the institution's."""
    samples = net.sample_enterprises(cons, None, limit=max(2, n), min_cities=2)
    if not samples:
        raise ReliabilityError(
            "the seeded data has no enterprise held in two cities; seed more enterprises"
        )
    out = []
    for i in range(n):
        s = samples[i % len(samples)]
        insts = [x for x in cons.institutions if x.city != s.city and "post_loan" in x.purposes]
        if not insts:
            raise ReliabilityError(
                "no institution outside the enterprises' cities is registered for post_loan"
            )
        out.append((rng.choice(insts), s.uscc))
    return out


# --- crash harness ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CrashConfig:
    """Parameters of :func:`run_crash` (the CLI options)."""

    rounds: int = 6
    preset: str = "launch-2020"
    nodes: int | None = None  # None: the preset's own node count
    enterprises: int = 1000
    seed: int = 1
    load_s: float = 5.0  # load per round; the kill falls in its middle half
    workers: int = 2  # client threads per round
    batch: int = 20  # records per ingest request
    timeout_s: float = 300.0  # for starting the network and each restart


@dataclass
class _Load:
    """Shared between the load threads of one round."""

    round: int
    victim: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: list[Ack] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)

    def add(self, acks: Sequence[Ack], count: str, n: int = 1) -> None:
        with self.lock:
            self.acks.extend(acks)
            self.counts[count] += n

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def fault(self, sentence: str) -> None:
        with self.lock:
            self.faults.append(sentence)


def _unexpected(load: _Load, node_id: str, what: str, status: int, data: Any) -> None:
    """A node answered, but not 2xx: pushback (503) is allowed; anything else to valid input is a fault."""
    if status == 503:
        load.count("pushback")
        return
    detail = data.get("detail") if isinstance(data, dict) else data
    load.fault(f"{node_id} answered {status} to a valid {what}: {str(detail)[:300]}")


def _ingest_worker(
    cons: net.Consortium,
    load: _Load,
    targets: Sequence[str],
    rng: random.Random,
    batch: int,
    data: SyntheticData,
    worker: int,
) -> None:
    codes = [c.code for c in cons.topology.cities]
    with ExitStack() as stack:
        clients = {n: stack.enter_context(net.operator_client(cons, n)) for n in targets}
        n = 0
        while not load.stop.is_set():
            node_id = rng.choice(targets)
            code = rng.choice(codes)
            uscc = data.enterprise(code, rng.randrange(data.counts[code])).uscc
            records: list[dict[str, Any]] = []
            for k in range(batch):
                body = {
                    "authority": "market regulator",
                    "decision_no": f"CR-{load.round}-{worker}-{n}-{k}",
                    "amount_minor": rng.randrange(1, 10_000_000),
                    "reason": "crash-safety load",
                    "status": "in_force",
                }
                records.append(
                    {
                        "uscc": uscc,
                        "record_type": "admin_penalty",
                        "record_id": f"{node_id}:{uscc}:crash-r{load.round}-w{worker}-{n}-{k}",
                        "source": f"{node_id.rsplit('-', 1)[0]}-amr",
                        "observed_at": "2021-06-01T09:00:00Z",
                        "body": body,
                    }
                )
            n += 1
            try:
                status, answer = clients[node_id].call(
                    node_id, "POST", "/v1/ingest", {"records": records}
                )
            except net.NetworkError:
                load.count("ingest_unanswered")
                time.sleep(0.05)
                continue
            if status != 202:
                _unexpected(load, node_id, "ingest", status, answer)
                continue
            first = int(answer["first_index"])
            acks = [
                Ack(
                    node_id,
                    "record",
                    first + k,
                    r["record_id"],
                    uscc,
                    body_digest=body_digest(r["body"]),
                    round=load.round,
                )
                for k, r in enumerate(records)
            ]
            load.add(acks, "ingest_acknowledged")


def _report_worker(
    cons: net.Consortium,
    load: _Load,
    targets: Sequence[tuple[net.Institution, str]],
    rng: random.Random,
) -> None:
    manifest = cons.manifest
    with ExitStack() as stack:
        clients: dict[str, net.NodeClient] = {}
        while not load.stop.is_set():
            inst, uscc = rng.choice(targets)
            if inst.institution_id not in clients:
                clients[inst.institution_id] = stack.enter_context(
                    net.NodeClient(
                        cons, f"inst:{inst.institution_id}", inst.key(), timeout_s=_CLIENT_TIMEOUT_S
                    )
                )
            client = clients[inst.institution_id]
            home = inst.home_node
            now = datetime.now(UTC).replace(microsecond=0)
            auth = AuthorizationEntry(
                f"auth-{inst.institution_id}-{uscc}-r{load.round}-{rng.getrandbits(48):012x}",
                uscc,
                inst.institution_id,
                ("post_loan",),
                now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                hashlib.sha256(f"consent {uscc} {inst.institution_id} {now}".encode()).hexdigest(),
            )
            try:
                status, answer = client.call(
                    home,
                    "POST",
                    "/v1/authorizations",
                    {
                        "authorization_id": auth.authorization_id,
                        "uscc": uscc,
                        "institution_id": inst.institution_id,
                        "purposes": list(auth.purposes),
                        "not_before": auth.not_before,
                        "not_after": auth.not_after,
                        "document_digest": auth.document_digest,
                    },
                )
            except net.NetworkError:
                load.count("authorization_unanswered")
                time.sleep(0.05)
                continue
            if status != 201:
                _unexpected(load, home, "authorization", status, answer)
                continue
            load.add(
                [
                    Ack(
                        home,
                        "authorization",
                        int(answer["index"]),
                        auth.authorization_id,
                        uscc,
                        data=entry_bytes(auth),
                        round=load.round,
                    )
                ],
                "authorization_acknowledged",
            )
            try:
                status, bundle = client.call(
                    home,
                    "POST",
                    "/v1/reports",
                    {
                        "uscc": uscc,
                        "purpose": "post_loan",
                        "authorization_id": auth.authorization_id,
                    },
                )
            except net.NetworkError:
                load.count("report_unanswered")
                continue
            if status != 200:
                _unexpected(load, home, "report", status, bundle)
                continue
            try:
                summary = verify_bundle(bundle, manifest)
            except (BundleError, LedgerError, KeyError, TypeError, ValueError) as exc:
                load.fault(f"a report {home} acknowledged does not verify offline: {exc}")
                continue
            receipt = bundle["report"]["home_receipt"]
            acks = [
                Ack(
                    home,
                    "receipt",
                    int(receipt["index"]),
                    summary.query_id,
                    uscc,
                    data=base64.b64decode(receipt["entry"]),
                    round=load.round,
                )
            ]
            acks += [
                Ack(h, "holder-receipt", None, summary.query_id, uscc, round=load.round)
                for h in summary.holders
                if h != home
            ]
            load.add(acks, "report_acknowledged")
            if summary.partial:
                load.count("report_partial")
                if any(m["node_id"] != load.victim for m in summary.missing):
                    # Not lost data, but on an otherwise healthy network worth seeing: a live node missed.
                    load.count("report_partial_naming_a_live_node")


def _crash_round(
    cons: net.Consortium,
    r: int,
    kind: str,
    rng: random.Random,
    cfg: CrashConfig,
    data: SyntheticData,
    report_targets: Sequence[tuple[net.Institution, str]],
    echo: Callable[[str], None],
) -> tuple[_Load, dict[str, Any]]:
    victim = rng.choice(cons.node_ids)
    kill_at = rng.uniform(0.25, 0.75) * cfg.load_s
    load = _Load(r, victim)
    threads = []
    for w in range(cfg.workers):
        wrng = random.Random(rng.getrandbits(64))
        if kind == "ingest":
            # Ingest goes to the victim and one other node, so the kill lands in the middle of appends.
            others = [n for n in cons.node_ids if n != victim]
            targets = [victim, rng.choice(others)] if others else [victim]
            t = threading.Thread(
                target=_ingest_worker,
                args=(cons, load, targets, wrng, cfg.batch, data, w),
                name=f"ingest-{w}",
                daemon=True,
            )
        else:
            t = threading.Thread(
                target=_report_worker,
                args=(cons, load, report_targets, wrng),
                name=f"reports-{w}",
                daemon=True,
            )
        threads.append(t)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
    with load.lock:
        acked_before_kill = len(load.acks)
    try:
        pid = net.kill_node(cons, victim, signal.SIGKILL)
    except net.NetworkError as exc:
        load.stop.set()
        raise ReliabilityError(f"round {r}: could not kill {victim}: {exc}") from exc
    killed_after = time.monotonic() - t0
    time.sleep(max(0.0, t0 + cfg.load_s - time.monotonic()))
    load.stop.set()
    for t in threads:
        t.join(timeout=_CLIENT_TIMEOUT_S * 3)
    detail = {
        "round": r,
        "load": kind,
        "victim": victim,
        "pid": pid,
        "killed_after_s": round(killed_after, 2),
        "acknowledged_before_kill": acked_before_kill,
    }
    echo(f"round {r}: {kind} load, SIGKILL {victim} (pid {pid}) after {killed_after:.1f} s")
    return load, detail


def run_crash(
    cfg: CrashConfig, workdir: Path, echo: Callable[[str], None] = lambda s: None
) -> dict[str, Any]:
    """Run the crash harness in ``workdir`` (a new network in ``workdir/network``); returns the results."""
    if cfg.rounds < 1:
        raise ReliabilityError(f"--rounds must be at least 1, got {cfg.rounds}")
    t_start = time.monotonic()
    load_before = os.getloadavg()
    rng = random.Random(cfg.seed)  # victims, kill moments, load: the same for the same seed
    sample_rng = random.Random(cfg.seed + 1)  # which acknowledgements get inclusion proofs
    faults: list[dict[str, Any]] = []
    acks: list[Ack] = []
    rounds: list[dict[str, Any]] = []
    totals: Counter[str] = Counter()
    kills: Counter[str] = Counter()
    checked = 0
    verified = 0
    verified_entries = 0

    def fault(r: int | None, node: str | None, check: str, sentences: Sequence[str]) -> None:
        for s in sentences:
            faults.append({"round": r, "node": node, "check": check, "detail": s})
            echo(f"FAULT round {r} {check}: {s}")

    with (
        local_network(
            workdir, cfg.preset, cfg.nodes, cfg.enterprises, cfg.seed, echo, cfg.timeout_s
        ) as cons,
        httpx.Client(timeout=_CLIENT_TIMEOUT_S) as http,
    ):
        keys = _verifier_keys(cons)
        data = net.synthetic_data(cons)
        report_targets = _cross_city_targets(cons, rng, 12)
        for r in range(1, cfg.rounds + 1):
            kind = ("ingest", "reports")[(r + cfg.seed) % 2]
            load, detail = _crash_round(cons, r, kind, rng, cfg, data, report_targets, echo)
            victim = detail["victim"]
            kills[kind] += 1
            acks.extend(load.acks)
            totals.update(load.counts)
            fault(r, None, "load", load.faults)
            # The ledger exactly as SIGKILL left it, before the node reopens it: it verifies
            # and already holds everything acknowledged (durable at the acknowledgement).
            mine = [a for a in acks if a.node_id == victim]
            at_kill, crash_state = verify_file(cons.ledger_path(victim), keys[victim])
            fault(r, victim, "ledger-verify-after-kill", crash_state)
            with _closing(_open_readonly(cons.ledger_path(victim))) as ledger:
                fault(r, victim, "acknowledged-entries-at-kill", check_acks(ledger, mine))
            checked += len(mine)
            detail["entries_at_kill_verified"] = at_kill
            verified += 1
            try:
                again = net.up(cons.dir, progress=False, timeout_s=cfg.timeout_s)
            except net.NetworkError as exc:
                fault(r, victim, "restart", [f"{victim} did not come back: {exc}"])
                rounds.append({**detail, "counts": dict(load.counts), "restarted": False})
                break
            if again.started != [victim]:
                fault(
                    r,
                    victim,
                    "restart",
                    [f"expected to restart only {victim}, restarted {again.started}"],
                )
            with _closing(_open_readonly(cons.ledger_path(victim))) as ledger:
                fault(r, victim, "acknowledged-entries", check_acks(ledger, mine))
                fault(
                    r,
                    victim,
                    "served-checkpoint",
                    check_served(cons, victim, ledger, mine, sample_rng, http),
                )
            checked += len(mine)
            fault(r, victim, "mirrors", check_mirrors(cons, victim, http))
            rounds.append(
                {
                    **detail,
                    "counts": dict(load.counts),
                    "acknowledged": len(load.acks),
                    "acknowledged_on_victim_checked": len(mine),
                    "restarted": True,
                    "restart_seconds": round(again.start_seconds + again.mirror_seconds, 2),
                }
            )
        # Every node, every acknowledged entry, then full verification with the network stopped.
        for node_id in cons.node_ids:
            mine = [a for a in acks if a.node_id == node_id]
            with _closing(_open_readonly(cons.ledger_path(node_id))) as ledger:
                fault(None, node_id, "acknowledged-entries", check_acks(ledger, mine))
            checked += len(mine)
        net.down(cons.dir)
        for node_id in cons.node_ids:
            entries, problems = verify_file(cons.ledger_path(node_id), keys[node_id])
            fault(None, node_id, "ledger-verify", problems)
            verified_entries += entries
            verified += 1
        preset_name, node_count = cons.topology.name, len(cons.node_ids)
    by_kind = Counter(a.kind for a in acks)
    return {
        "command": "crash",
        "ok": not faults and len(rounds) == cfg.rounds,
        "preset": preset_name,
        "nodes": node_count,
        "seed": cfg.seed,
        "rounds_requested": cfg.rounds,
        "rounds": len(rounds),
        "kills": {"ingest": kills["ingest"], "reports": kills["reports"]},
        "acknowledged": {
            "records": by_kind["record"],
            "authorizations": by_kind["authorization"],
            "home_receipts": by_kind["receipt"],
            "holder_receipts": by_kind["holder-receipt"],
            "total": len(acks),
        },
        "acknowledged_checks": checked,
        "ledger_verifications": verified,
        "entries_verified_at_end": verified_entries,
        "unanswered_during_outage": {k: v for k, v in totals.items() if k.endswith("_unanswered")},
        "partial_reports": totals["report_partial"],
        "partial_reports_naming_a_live_node": totals["report_partial_naming_a_live_node"],
        "pushback": totals["pushback"],
        "faults": faults,
        "rounds_detail": rounds,
        "config": asdict(cfg),
        "machine": _machine(load_before),
        "seconds": round(time.monotonic() - t_start, 1),
    }


@contextmanager
def _closing(ledger: Ledger) -> Iterator[Ledger]:
    try:
        yield ledger
    finally:
        ledger.close()


# --- soak ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SoakConfig:
    """Parameters of :func:`run_soak` (the CLI options).

    A node's memory growth is flagged as unbounded when the least-squares
    slope of its RSS exceeds ``max_slope_mib_per_min`` *and* the growth that
    slope implies over the fitted window exceeds ``min_growth_mib``. The
    defaults are generous: 2 MiB/min is 20 MiB over ten minutes, about a
    quarter of an idle node's RSS, where a node whose caches and nonce window
    have filled should be near 0; the 16 MiB floor keeps a short soak's noise
    (a MiB or two of caches filling, which looks steep over 30 s) from being
    called unbounded. The fit skips the first ``warmup`` fraction of the soak.

    Growth that the node's own database files explain is not held against
    it: SQLite keeps the pages of a growing ledger in its page cache (up to
    ``PAGE_CACHE_MIB`` per ledger), about ``PAGE_CACHE_FACTOR`` bytes of RSS
    per byte of file. A node is flagged only if, beyond that, its RSS also
    grew by more than ``min_growth_mib``.
    """

    preset: str = "oct-2021"
    nodes: int | None = None
    duration_s: float = 600.0
    load: float = 0.5
    capacity_s: float = 20.0
    concurrency: int = 8
    enterprises: int = 2000
    seed: int = 7
    targets: int = 40
    sample_every_s: float = 5.0
    warmup: float = 0.2
    max_slope_mib_per_min: float = 2.0
    min_growth_mib: float = 16.0
    verify_every: int = 10
    timeout_s: float = 600.0


#: The ledger's SQLite page cache (``cache_size`` in ledger/store.py), and the RSS it takes
#: per byte of cached file: 1.28–1.42 measured over 14 nodes of a 10-minute soak.
PAGE_CACHE_MIB = 64.0
PAGE_CACHE_FACTOR = 1.5


def data_files_mib(cons: net.Consortium) -> dict[str, float]:
    """Size of each node's data directory (ledger, state, WAL files) in MiB."""
    out = {}
    for node_id in cons.node_ids:
        data = cons.ledger_path(node_id).parent
        out[node_id] = (
            sum(f.stat().st_size for f in data.iterdir() if f.is_file()) / 2**20
            if data.is_dir()
            else 0.0
        )
    return out


def fit_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(x, y)`` points; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    slope, _ = statistics.linear_regression([x for x, _ in points], [y for _, y in points])
    return slope


def memory_figures(
    samples: Sequence[tuple[float, Mapping[str, float]]],
    node_ids: Sequence[str],
    cfg: SoakConfig,
    exited: Sequence[str] = (),
    file_growth_mib: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per node: RSS at start, end and max, the fitted slope after the warm-up, and the unbounded flag.

    ``samples`` are ``(seconds since the soak started, node → RSS in MiB)``;
    ``file_growth_mib`` is how much each node's data files grew meanwhile.
    """
    files = file_growth_mib or {}
    out = {}
    end = samples[-1][0] if samples else 0.0
    for node_id in node_ids:
        series = [(t, row[node_id]) for t, row in samples if node_id in row]
        fitted = [(t / 60, v) for t, v in series if t >= cfg.warmup * end]
        slope = fit_slope(fitted)
        growth = None if slope is None else slope * (fitted[-1][0] - fitted[0][0])
        cached = PAGE_CACHE_FACTOR * min(PAGE_CACHE_MIB, max(0.0, files.get(node_id, 0.0)))
        unexplained = (series[-1][1] - series[0][1]) - cached if series else 0.0
        out[node_id] = {
            "start_mib": round(series[0][1], 1) if series else None,
            "end_mib": round(series[-1][1], 1) if series else None,
            "max_mib": round(max(v for _, v in series), 1) if series else None,
            "slope_mib_per_min": None if slope is None else round(slope, 3),
            "fitted_growth_mib": None if growth is None else round(growth, 2),
            "samples": len(series),
            "file_growth_mib": round(files.get(node_id, 0.0), 2),
            "unexplained_growth_mib": round(unexplained, 2),
            "unbounded": (
                slope is not None
                and growth is not None
                and slope > cfg.max_slope_mib_per_min
                and growth > cfg.min_growth_mib
                and unexplained > cfg.min_growth_mib
            ),
            "exited": node_id in exited,
        }
    return out


def _receipts_since(path: Path, start: int) -> list[ReceiptEntry]:
    with _closing(_open_readonly(path)) as ledger:
        out = []
        for first in range(start, ledger.size, 5000):
            for _, data in ledger.entries(first, first + 5000):
                entry = parse_entry(data)
                if isinstance(entry, ReceiptEntry):
                    out.append(entry)
        return out


@dataclass
class _Sent:
    requests: int = 0
    ok: dict[str, tuple[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # query id → (home, answering holders)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    partial: int = 0
    partial_examples: list[str] = field(default_factory=list)
    verified_offline: int = 0


@dataclass(frozen=True, slots=True)
class _Target:
    institution_id: str
    home_node: str
    uscc: str
    authorization_id: str


def _soak_targets(cons: net.Consortium, n: int, seed: int) -> list[_Target]:
    """``n`` cross-city (institution, enterprise) pairs, each with an authorization filed at the home node."""
    out = []
    for inst, uscc in _cross_city_targets(cons, random.Random(seed), n):
        try:
            filed = net.file_authorization(cons, inst, uscc, ["post_loan"])
        except net.NetworkError as exc:
            raise ReliabilityError(
                f"could not file the authorizations the soak uses: {exc}"
            ) from exc
        out.append(
            _Target(inst.institution_id, inst.home_node, uscc, str(filed["authorization_id"]))
        )
    return out


async def _soak_load(
    cons: net.Consortium,
    targets: Sequence[_Target],
    cfg: SoakConfig,
    echo: Callable[[str], None],
    on_soak_start: Callable[[], None],
) -> tuple[_Sent, list[dict[str, Any]], float]:
    sent = _Sent()
    clients = {}
    for inst_id in sorted({t.institution_id for t in targets}):
        inst = cons.institution(inst_id)
        clients[inst_id] = httpx.AsyncClient(
            auth=httpsig.RequestSigner(f"inst:{inst_id}", inst.key()),
            timeout=120,
            limits=httpx.Limits(max_connections=cfg.concurrency * 2),
        )

    def error(kind: str, detail: str) -> bool:
        sent.errors[kind] += 1
        if len(sent.error_examples) < 20:
            sent.error_examples.append(f"{kind}: {detail[:300]}")
        return False

    async def report(i: int) -> bool:
        t = targets[i % len(targets)]
        sent.requests += 1
        try:
            r = await clients[t.institution_id].post(
                cons.url(t.home_node) + "/v1/reports",
                json={
                    "uscc": t.uscc,
                    "purpose": "post_loan",
                    "authorization_id": t.authorization_id,
                },
            )
        except httpx.HTTPError as exc:
            return error("unanswered", f"{t.home_node}: {type(exc).__name__} {exc}")
        if r.status_code != 200:
            return error(f"status {r.status_code}", f"{t.home_node}: {r.text}")
        try:
            bundle = r.json()
            report = bundle["report"]
            holders = tuple(str(h["node_id"]) for h in report["holders"])
            sent.ok[str(report["query_id"])] = (t.home_node, holders)
            if report["partial"]:
                sent.partial += 1
                if len(sent.partial_examples) < 20:
                    sent.partial_examples += [
                        f"query {report['query_id']} at {t.home_node}: missing {m['node_id']} "
                        f"({str(m['reason'])[:200]})"
                        for m in report["missing"]
                    ]
            if i % cfg.verify_every == 0:
                verify_bundle(bundle, cons.manifest)
                sent.verified_offline += 1
        except (BundleError, LedgerError, KeyError, TypeError, ValueError) as exc:
            return error("bad report", f"{t.home_node}: {exc}")
        return True

    try:
        echo(f"capacity: closed loop, {cfg.concurrency} workers, {cfg.capacity_s:.0f} s")
        for i in range(len(targets)):
            await report(i)
        cap = await closed_loop("capacity", report, cfg.concurrency, cfg.capacity_s)
        capacity = cap.rate
        rate = max(0.2, capacity * cfg.load)
        echo(
            f"capacity {capacity:.1f} reports/s; soak: open loop at {rate:.2f}/s for {cfg.duration_s:.0f} s"
        )
        on_soak_start()
        soak = await open_loop("soak", report, rate, cfg.duration_s)
    finally:
        for c in clients.values():
            await c.aclose()
    return sent, [cap.summary(), soak.summary()], rate


def run_soak(
    cfg: SoakConfig, workdir: Path, echo: Callable[[str], None] = lambda s: None
) -> dict[str, Any]:
    """Run the bounded soak in ``workdir`` (a new network in ``workdir/network``); returns the results."""
    if cfg.duration_s <= 0 or not 0 < cfg.load <= 1:
        raise ReliabilityError(
            f"need a positive duration and 0 < load <= 1, got {cfg.duration_s} s and {cfg.load}"
        )
    t_start = time.monotonic()
    load_before = os.getloadavg()
    with local_network(
        workdir, cfg.preset, cfg.nodes, cfg.enterprises, cfg.seed, echo, cfg.timeout_s
    ) as cons:
        echo(f"filing {cfg.targets} authorizations")
        targets = _soak_targets(cons, cfg.targets, cfg.seed)
        net.wait_mirrored(
            cons, timeout_s=cfg.timeout_s
        )  # every holder knows the new authorizations' home
        starts = {}
        for node_id in cons.node_ids:
            with _closing(_open_readonly(cons.ledger_path(node_id))) as ledger:
                starts[node_id] = ledger.size
        pids = net.running_nodes(cons.dir)
        sampler = ProcSampler(pids, cfg.sample_every_s)
        files_before: dict[str, float] = {}

        def soak_starts() -> None:
            files_before.update(data_files_mib(cons))
            sampler.start()

        try:
            sent, phases, rate = asyncio.run(_soak_load(cons, targets, cfg, echo, soak_starts))
        finally:
            if sampler.started:
                sampler.stop()
        files_after = data_files_mib(cons)
        file_growth = {n: files_after[n] - files_before.get(n, files_after[n]) for n in files_after}
        alive = net.running_nodes(cons.dir)
        homes: Counter[str] = Counter()
        home_ids: dict[str, str] = {}
        holder_ids: set[tuple[str, str]] = set()
        for node_id in cons.node_ids:
            for e in _receipts_since(cons.ledger_path(node_id), starts[node_id]):
                if e.role == "home" and e.home_node == node_id:
                    homes[node_id] += 1
                    home_ids[e.query_id] = node_id
                elif e.role == "holder" and e.holder_node == node_id:
                    holder_ids.add((e.query_id, node_id))
        preset_name, node_count = cons.topology.name, len(cons.node_ids)
    home_found = sum(1 for q, (home, _) in sent.ok.items() if home_ids.get(q) == home)
    expected_holder = {
        (q, h) for q, (home, holders) in sent.ok.items() for h in holders if h != home
    }
    holder_found = len(expected_holder & holder_ids)
    errors = sum(sent.errors.values())
    memory = memory_figures(sampler.series, sampler.names, cfg, sorted(sampler.gone), file_growth)
    slopes = [m["slope_mib_per_min"] for m in memory.values() if m["slope_mib_per_min"] is not None]
    receipts = {
        "requests_sent": sent.requests,
        "reports_ok": len(sent.ok),
        "home_receipts_found": home_found,
        "home_receipts_on_ledgers": sum(homes.values()),
        "holder_receipts_expected": len(expected_holder),
        "holder_receipts_found": holder_found,
        "lost": (len(sent.ok) - home_found) + (len(expected_holder) - holder_found),
    }
    problems = []
    if errors:
        problems.append(
            f"{errors} requests failed ({', '.join(f'{k}: {v}' for k, v in sent.errors.items())})"
        )
    if sent.partial:
        problems.append(f"{sent.partial} reports were partial on a network with no fault injected")
    if receipts["lost"]:
        problems.append(
            f"{receipts['lost']} receipts of answered reports are missing from the ledgers"
        )
    if receipts["home_receipts_on_ledgers"] != sent.requests:
        problems.append(
            f"{sent.requests} requests sent, {receipts['home_receipts_on_ledgers']} home receipts "
            "on the ledgers"
        )
    grown = [n for n, m in memory.items() if m["unbounded"]]
    if grown:
        problems.append(
            f"RSS grows faster than {cfg.max_slope_mib_per_min} MiB/min (and by more than "
            f"{cfg.min_growth_mib} MiB beyond what its growing database files explain) on "
            f"{', '.join(grown)}"
        )
    down = [n for n in pids if n not in alive]
    if down:
        problems.append(f"node processes exited during the soak: {', '.join(down)}")
    return {
        "command": "soak",
        "ok": not problems,
        "problems": problems,
        "preset": preset_name,
        "nodes": node_count,
        "duration_s": cfg.duration_s,
        "load": cfg.load,
        "capacity_per_s": phases[0]["per_second"],
        "open_loop_rate_per_s": round(rate, 3),
        "phases": phases,
        "errors": errors,
        "error_kinds": dict(sent.errors),
        "error_examples": sent.error_examples,
        "partial_reports": sent.partial,
        "partial_examples": sent.partial_examples,
        "verified_offline": sent.verified_offline,
        "receipts": receipts,
        "memory": {
            "sample_every_s": cfg.sample_every_s,
            "samples": len(sampler.series),
            "warmup_fraction": cfg.warmup,
            "max_slope_mib_per_min": cfg.max_slope_mib_per_min,
            "min_growth_mib": cfg.min_growth_mib,
            "max_fitted_slope_mib_per_min": max(slopes) if slopes else None,
            "nodes": memory,
            "series": [
                {"t_s": round(t, 1), **{n: round(v, 2) for n, v in row.items()}}
                for t, row in sampler.series
            ],
        },
        "config": asdict(cfg),
        "machine": _machine(load_before),
        "seconds": round(time.monotonic() - t_start, 1),
    }


def _machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The host, with its load average before and after: other work on it shows in the figures."""
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }


# --- output ----------------------------------------------------------------------------------
def write_results(result: Mapping[str, Any], out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


def remove_workdir(path: Path) -> None:
    with suppress(OSError):
        shutil.rmtree(path)
