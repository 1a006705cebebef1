"""The fast seeding path: bulk-loaded ledgers, vectorised synthetic data, counts without scans."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, NoteSigner, RecordDraft, verify_ledger
from ledger.errors import StoreError
from ledger.store import Store
from scenarios import localnet as network
from scenarios.model.topology import load_topology
from scenarios.model.workloads import BRANCH_MIX, BRANCH_SALT0, SyntheticData

ORIGIN = "test.example/seed"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _fixed_salt(n: int) -> bytes:
    return bytes(n)


def _make(path: Path, *, bulk: bool) -> Ledger:
    ledger = Ledger.create(
        path,
        origin=ORIGIN,
        signer=NoteSigner(ORIGIN, KEY),
        clock=lambda: "2021-10-31T00:00:00Z",
        bulk=bulk,
    )
    ledger._salt = _fixed_salt  # same salts in both ledgers, so the same commitments
    return ledger


@pytest.fixture(scope="module")
def drafts() -> list[RecordDraft]:
    data = SyntheticData(load_topology("oct-2021"), 10_000, 7)
    got = list(itertools.islice(data.records_for_node("hf-1"), 700))
    assert len(got) == 700
    return got  # type: ignore[return-value]


def test_bulk_load_writes_the_same_ledger(tmp_path, drafts):
    slow, fast = _make(tmp_path / "slow.db", bulk=False), _make(tmp_path / "fast.db", bulk=True)
    for i in range(0, len(drafts), 256):
        slow.append(drafts[i : i + 256])
        fast.append(drafts[i : i + 256])
    fast.finish_bulk()
    assert fast.head == slow.head and fast.size == len(drafts)
    fast.append(drafts[:1])  # a bulk-loaded ledger appends like any other afterwards
    slow.append(drafts[:1])
    assert fast.head == slow.head
    fast.close()
    slow.close()
    report = verify_ledger(tmp_path / "fast.db")
    assert report.ok, report.faults
    db = sqlite3.connect(tmp_path / "fast.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "entries_subject" in indexes
        plan = " ".join(
            str(r)
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT idx FROM entries WHERE subject = ?", (drafts[0].uscc,)
            )
        )
        assert "entries_subject" in plan
    finally:
        db.close()


def test_bulk_load_needs_a_new_file(tmp_path, drafts):
    _make(tmp_path / "a.db", bulk=False).close()
    with pytest.raises(StoreError, match="bulk load needs a new file"):
        Store(tmp_path / "a.db", bulk=True)


def test_counts_come_from_meta_plus_what_was_appended_since(tmp_path, drafts):
    fast = _make(tmp_path / "c.db", bulk=True)
    fast.append(drafts[:500])
    fast.finish_bulk()
    meta = fast.store.meta()
    assert int(meta["counts_size"]) == 500
    assert fast.store.record_counts() == fast.store.scan_record_counts()
    # New enterprises and new records of known ones, appended after the load.
    more = [
        RecordDraft(d.uscc, d.record_type, d.record_id + "-again", d.source, d.observed_at, d.body)
        for d in drafts[:3]
    ] + list(drafts[500:])
    fast.append(more)
    got = fast.store.record_counts()
    assert got == fast.store.scan_record_counts()
    assert got[1] == len(drafts) + 3
    fast.close()


def test_vectorised_hashes_match_the_scalar_definition():
    data = SyntheticData(load_topology("oct-2021"), 50_000, 2020)
    idx = np.array([0, 1, 2, 12345, 2**20 + 7], dtype=np.uint64)
    for city in ("sh", "hf"):
        for salt in (0, 1, 2, 26):
            assert data._hv(city, idx, salt).tolist() == [data._h(city, int(i), salt) for i in idx]


def test_branches_are_exactly_the_scalar_choice():
    topology = load_topology("oct-2021")
    data = SyntheticData(topology, 4000, 11)
    for node_id in ("sq-1", "hz-2"):
        city = topology.city_of_node(node_id).code
        got = {
            d.uscc
            for d in data.records_for_node(node_id)
            if d.uscc[2:8] != topology.city(city).admin_code
        }
        want = {
            data.enterprise(c.code, i).uscc
            for c in topology.cities
            if c.code != city
            for i in range(data.counts[c.code])
            if data.branch_node(c.code, i) == node_id
            and any(
                data._h(c.code, i, BRANCH_SALT0 + n) % 1000 < pm
                for n, (_, pm) in enumerate(BRANCH_MIX)
            )
        }
        assert got == want and want


def test_seeded_file_verifies_and_counts_are_recorded(tmp_path):
    cons = network.init_consortium(tmp_path / "net", "launch-2020", check_ports=False)
    topology = cons.topology
    from node.consortium import load_manifest

    result = network.seed_ledger_file(
        cons.ledger_path("sq-1"),
        topology=topology,
        manifest=load_manifest(cons.manifest_path),
        node_id="sq-1",
        key=cons.node_key("sq-1"),
        enterprises=3000,
        seed=5,
    )
    path = cons.ledger_path("sq-1")
    assert not path.with_name("ledger.db.seeding").exists()
    assert verify_ledger(path).ok
    ledger = Ledger.open(path, readonly=True)
    try:
        assert ledger.size == result["records"] > 0
        assert ledger.store.record_counts() == (result["enterprises"], result["records"])
    finally:
        ledger.close()


def test_catalogue_mode_by_volume_or_explicit(tmp_path):
    cons = network.init_consortium(tmp_path / "net", "launch-2020", check_ports=False)
    assert network.catalogue_mode(network.COMPACT_CATALOGUE_FROM - 1) == "full"
    assert network.catalogue_mode(network.COMPACT_CATALOGUE_FROM) == "compact"
    network.set_catalogue_mode(cons, ["sh-1"], "compact")
    from node.settings import NodeSettings

    settings = NodeSettings.from_env({"NODE_CONFIG": str(cons.settings_path("sh-1"))})
    assert settings.catalogue == "compact"
    assert (
        NodeSettings.from_env({"NODE_CONFIG": str(cons.settings_path("sh-2"))}).catalogue == "full"
    )
    with pytest.raises(network.NetworkError, match="catalogue mode must be one of"):
        network.set_catalogue_mode(cons, ["sh-1"], "sparse")
