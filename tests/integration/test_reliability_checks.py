"""The crash and soak harnesses' checks can fail.

On a ledger built here, an acknowledged entry dropped, replaced or given another body, a
holder receipt that is not there, an edited body and a deleted row must each be reported;
the memory-growth flag needs both slope and growth; bad options get one sentence. The
harnesses themselves run on a real network in ``tests/e2e/test_reliability.py``.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.cli import invoke

from ledger import (
    AuthorizationEntry,
    Ledger,
    NoteSigner,
    ReceiptEntry,
    RecordDraft,
    entry_bytes,
    make_uscc,
)
from scenarios import localnet as net
from scenarios.reliability import (
    Ack,
    SoakConfig,
    body_digest,
    check_acks,
    check_mirrors,
    fit_slope,
    memory_figures,
    verify_file,
)


# --- the checks can fail ------------------------------------------------------------------------
@pytest.fixture
def small_ledger(tmp_path: Path) -> tuple[Path, list[Ack], str]:
    """A ledger with two records, an authorization and a holder receipt, and the acks a client would hold."""
    key = Ed25519PrivateKey.generate()
    signer = NoteSigner("yrd-credit-chain/test-1", key)
    path = tmp_path / "ledger.db"
    uscc = make_uscc("310000", 12345).code
    ledger = Ledger.create(path, origin="yrd-credit-chain/test-1", signer=signer)
    bodies = [{"decision_no": f"T-{k}", "amount_minor": 100 * (k + 1)} for k in range(2)]
    block = ledger.append(
        [
            RecordDraft(
                uscc, "admin_penalty", f"test-1:{uscc}:r{k}", "sh-amr", "2021-06-01T09:00:00Z", body
            )
            for k, body in enumerate(bodies)
        ]
    )
    auth = AuthorizationEntry(
        "auth-1",
        uscc,
        "bank-sh-001",
        ("post_loan",),
        "2021-01-01T00:00:00Z",
        "2031-01-01T00:00:00Z",
        "0" * 64,
    )
    receipt = ReceiptEntry(
        "q-1",
        uscc,
        "bank-hz-001",
        "hz-1",
        "test-1",
        "holder",
        "post_loan",
        "auth-1",
        "granted",
        "complete",
        2,
        "2021-06-01T10:00:00Z",
    )
    ledger.append([auth, receipt])
    verifier = ledger.verifier.key_string()
    ledger.close()
    acks = [
        Ack(
            "test-1",
            "record",
            block.size - 2 + k,
            f"test-1:{uscc}:r{k}",
            uscc,
            body_digest=body_digest(b),
        )
        for k, b in enumerate(bodies)
    ]
    acks.append(Ack("test-1", "authorization", 2, "auth-1", uscc, data=entry_bytes(auth)))
    acks.append(Ack("test-1", "holder-receipt", None, "q-1", uscc))
    return path, acks, verifier


def _check(path: Path, acks: list[Ack]) -> list[str]:
    ledger = Ledger.open(path, readonly=True)
    try:
        return check_acks(ledger, acks)
    finally:
        ledger.close()


def _unprotected_copy(path: Path, tmp_path: Path, name: str) -> sqlite3.Connection:
    """A copy of the ledger with its append-only triggers dropped, as an attacker or a bad disk would."""
    copy = tmp_path / name
    shutil.copyfile(path, copy)
    db = sqlite3.connect(copy)
    for (trigger,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    ).fetchall():
        db.execute(f"DROP TRIGGER {trigger}")
    return db


def test_acknowledged_entries_are_checked_and_a_loss_is_reported(
    small_ledger: tuple[Path, list[Ack], str],
) -> None:
    path, acks, verifier = small_ledger
    assert _check(path, acks) == []
    assert verify_file(path, verifier) == (4, [])

    record, _, auth, holder = acks
    dropped = Ack(
        auth.node_id, "authorization", 4, "auth-2", auth.uscc, data=auth.data
    )  # beyond the ledger
    replaced = Ack(
        auth.node_id, "authorization", 3, "auth-1", auth.uscc, data=auth.data
    )  # index 3 is the receipt
    other_body = Ack(
        record.node_id, "record", record.index, record.ref, record.uscc, body_digest="0" * 64
    )
    other_query = Ack(holder.node_id, "holder-receipt", None, "q-2", holder.uscc)
    problems = _check(path, [*acks, dropped, replaced, other_body, other_query])
    assert len(problems) == 4, problems
    assert "auth-2 at index 4" in problems[0] and "missing" in problems[0]
    assert "entry 3" in problems[1] and "not the acknowledged authorization auth-1" in problems[1]
    assert "not the acknowledged record" in problems[2] and "body sent" in problems[2]
    assert "query q-2" in problems[3]


def test_a_corrupted_ledger_copy_fails_verification(
    small_ledger: tuple[Path, list[Ack], str], tmp_path: Path
) -> None:
    path, acks, verifier = small_ledger
    db = _unprotected_copy(path, tmp_path, "edited.db")
    db.execute(
        "UPDATE bodies SET body = ? WHERE idx = 0", (b'{"amount_minor":1,"decision_no":"T-0"}',)
    )
    db.commit()
    db.close()
    entries, problems = verify_file(tmp_path / "edited.db", verifier)
    assert any("edited-body at entry 0" in p for p in problems), problems
    edited = _check(tmp_path / "edited.db", acks)
    assert len(edited) == 1 and "entry 0" in edited[0] and "does not match" in edited[0], edited

    db = _unprotected_copy(path, tmp_path, "dropped.db")
    db.execute("DELETE FROM entries WHERE idx = 2")  # the acknowledged authorization
    db.commit()
    db.close()
    _, problems = verify_file(tmp_path / "dropped.db", verifier)
    assert any("missing-entry at entry 2" in p for p in problems), problems
    lost = _check(tmp_path / "dropped.db", acks)
    assert len(lost) == 1 and "authorization auth-1 at index 2" in lost[0], lost

    assert (
        _check(path, acks) == [] and verify_file(path, verifier)[1] == []
    )  # the original is untouched


def test_mirror_check_reports_a_fork_a_lost_tail_and_an_alarm(tmp_path: Path) -> None:
    """Peers (faked over httpx.MockTransport) hold views of sh-1: one consistent, one from a fork,
    one larger than sh-1's tree (acknowledged history lost); another node has an alarm open."""
    cons = net.init_consortium(tmp_path / "c", "launch-2020", base_port=21000, check_ports=False)
    victim = "sh-1"
    info = cons.node(victim)
    signer = NoteSigner(info.origin, cons.node_key(victim))
    uscc = make_uscc("310000", 7).code

    def ledger(name: str, tag: str, sizes: list[int]) -> Ledger:
        led = Ledger.create(tmp_path / name, origin=info.origin, signer=signer)
        n = 0
        for size in sizes:
            led.append(
                [
                    RecordDraft(
                        uscc,
                        "tax_rating",
                        f"{tag}-{k}",
                        "sh-tax",
                        "2021-01-01T00:00:00Z",
                        {"grade": tag},
                    )
                    for k in range(n, size)
                ]
            )
            n = size
        return led

    real = ledger("real.db", "a", [2, 4])
    fork = ledger("fork.db", "b", [2, 6])
    views = {p: real.block(1).note for p in cons.node_ids if p != victim}  # size 2: consistent
    views["nj-1"] = fork.block(1).note  # size 2, another root
    views["sz-1"] = fork.block(2).note  # size 6 > 4
    by_port = {cons.ports[n]: n for n in cons.node_ids}

    def handler(request: httpx.Request) -> httpx.Response:
        node = by_port[request.url.port]
        path = request.url.path
        if path == "/v1/checkpoint" and node == victim:
            return httpx.Response(200, content=real.head.note)
        if path == "/v1/proofs/consistency" and node == victim:
            old, new = int(request.url.params["old"]), int(request.url.params["new"])
            proof = [base64.b64encode(p).decode() for p in real.consistency_proof(old, new)]
            return httpx.Response(200, json={"old": old, "new": new, "proof": proof})
        if path == "/v1/info":
            alarms = (
                [{"node_id": "tz-1", "fault": "equivocation", "detail": "two roots"}]
                if node == "hz-1"
                else []
            )
            return httpx.Response(200, json={"alarms": alarms, "peers": []})
        if path == "/v1/views":
            seen = (
                []
                if node == victim
                else [{"node_id": victim, "size": 0, "note": views[node].decode()}]
            )
            return httpx.Response(200, json={"views": seen})
        return httpx.Response(404)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        problems = check_mirrors(cons, victim, client)
    real.close()
    fork.close()
    assert len(problems) == 3, problems
    assert any(p.startswith("hz-1 has an open alarm against tz-1") for p in problems)
    assert any(p.startswith("nj-1's view of sh-1 (size 2) is not consistent") for p in problems)
    assert any(p.startswith("sz-1 saw sh-1 at size 6, beyond its current size 4") for p in problems)


def test_memory_growth_flag_needs_both_slope_and_growth() -> None:
    assert fit_slope([(0, 1.0), (1, 4.0), (2, 7.0)]) == pytest.approx(3.0)
    assert fit_slope([(5, 1.0)]) is None
    cfg = SoakConfig(max_slope_mib_per_min=2.0, min_growth_mib=16.0, warmup=0.2)
    minutes = range(0, 11)
    leak = [
        (60.0 * m, {"a": 80.0 + 3 * m, "b": 80.0 + (m % 2), "c": 80.0 + 40 * m / 600})
        for m in minutes
    ]
    figures = memory_figures(leak, ["a", "b", "c"], cfg)
    assert figures["a"]["unbounded"] and figures["a"]["slope_mib_per_min"] == pytest.approx(3.0)
    assert not figures["b"]["unbounded"]  # flat, with noise
    assert not figures["c"]["unbounded"]
    assert (
        figures["a"]["start_mib"] == 80.0
        and figures["a"]["end_mib"] == 110.0
        and figures["a"]["samples"] == 11
    )
    # A steep rise over a short soak that adds only a few MiB is not called unbounded.
    short = [(2.0 * i, {"a": 70.0 + 0.1 * i}) for i in range(16)]
    assert memory_figures(short, ["a"], cfg)["a"]["slope_mib_per_min"] == pytest.approx(3.0)
    assert not memory_figures(short, ["a"], cfg)["a"]["unbounded"]
    # Growth that the node's database files explain (the SQLite page cache filling) is not a leak...
    cached = memory_figures(leak, ["a"], cfg, file_growth_mib={"a": 20.0})["a"]
    assert not cached["unbounded"] and cached["unexplained_growth_mib"] == pytest.approx(
        30.0 - 1.5 * 20.0
    )
    # ...but only as much as they explain, and never more than the cache holds.
    partly = memory_figures(leak, ["a"], cfg, file_growth_mib={"a": 5.0})["a"]
    assert partly["unbounded"] and partly["unexplained_growth_mib"] == pytest.approx(22.5)
    big = [(60.0 * m, {"a": 80.0 + 15 * m}) for m in minutes]  # 150 MiB
    assert memory_figures(big, ["a"], cfg, file_growth_mib={"a": 500.0})["a"][
        "unbounded"
    ]  # cache capped at 64 MiB


def test_bad_options_get_one_sentence(tmp_path: Path) -> None:
    code, _, err = invoke(
        ["reliability", "crash", "--preset", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]
    )
    assert code == 1
    assert (
        err.startswith("error: unknown preset or bad topology file")
        and len(err.strip().splitlines()) == 1
    )
    code, _, err = invoke(["reliability", "soak", "--duration", "10 minutes"])
    assert code == 2 and "expected a duration such as 45s, 10m or 1h" in err
    (tmp_path / "w" / "network").mkdir(parents=True)
    code, _, err = invoke(["reliability", "soak", "--workdir", str(tmp_path / "w")])
    assert code == 1 and "already exists" in err
