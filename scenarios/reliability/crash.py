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

import base64
import dataclasses
import hashlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ledger import (
    AuthorizationEntry,
    LedgerError,
    entry_bytes,
)
from node.bundle import verify_bundle
from node.errors import BundleError
from scenarios import localnet as net
from scenarios.errors import ReliabilityError
from scenarios.model.workloads import SyntheticData
from scenarios.reliability.checks import (
    Ack,
    body_digest,
    check_acks,
    check_mirrors,
    check_served,
    closing,
    open_readonly,
    verify_file,
)
from scenarios.reliability.common import (
    CLIENT_TIMEOUT_S,
    cross_city_targets,
    local_network,
    machine_facts,
    verifier_keys,
)

__all__ = [
    "CrashConfig",
    "run_crash",
]


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
                        cons, f"inst:{inst.institution_id}", inst.key(), timeout_s=CLIENT_TIMEOUT_S
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
            body, _ = net.authorization_request(
                cons,
                auth.authorization_id,
                uscc,
                inst.institution_id,
                auth.purposes,
                auth.not_before,
                auth.not_after,
                auth.document_digest,
            )
            auth = dataclasses.replace(auth, consent=body["consent"])  # the entry as acknowledged
            try:
                status, answer = client.call(home, "POST", "/v1/authorizations", body)
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
        t.join(timeout=CLIENT_TIMEOUT_S * 3)
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
        httpx.Client(timeout=CLIENT_TIMEOUT_S) as http,
    ):
        keys = verifier_keys(cons)
        data = net.synthetic_data(cons)
        report_targets = cross_city_targets(cons, rng, 12)
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
            with closing(open_readonly(cons.ledger_path(victim))) as ledger:
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
            with closing(open_readonly(cons.ledger_path(victim))) as ledger:
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
            with closing(open_readonly(cons.ledger_path(node_id))) as ledger:
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
        "machine": machine_facts(load_before),
        "seconds": round(time.monotonic() - t_start, 1),
    }
