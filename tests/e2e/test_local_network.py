"""The real launch-2020 network: 11 node processes on 127.0.0.1, started the way
``creditchain up`` starts them, in a temporary directory on free ports.

One enterprise is followed through: its synthetic records sit in two cities;
a third city's node ingests a penalty (later resolved) about it; an
institution of a fourth city files an authorization and gets a report that
spans the three holder cities, verifies offline (also through
``creditchain report verify``, which must also catch a re-signed bundle with
an edited body); a holder is SIGKILLed and the next report is explicitly
partial, naming it; ``up`` restarts just that node on its kept ledger and the
report is whole again. ``down`` runs at the end whatever happens.
"""

from __future__ import annotations

import base64
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import canonical_bytes
from scenarios import localnet as net
from scenarios.cli import cli
from scenarios.model.workloads import SyntheticData

pytestmark = pytest.mark.e2e

ENTERPRISES = 2000
SEED = 7


def city(node_id: str) -> str:
    return node_id.rsplit("-", 1)[0]


@dataclass
class Case:
    cons: net.Consortium
    uscc: str
    institution: net.Institution
    third_node: str  # the node that ingested records about the enterprise
    holders: tuple[str, ...]  # the synthetic holders (two cities)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[net.Consortium]:
    directory = tmp_path_factory.mktemp("network") / "cc"
    net.init_consortium(directory, "launch-2020", base_port=net.find_free_base_port(11))
    try:
        result = net.up(
            directory, enterprises=ENTERPRISES, seed=SEED, progress=False, timeout_s=150
        )
        assert sorted(result.started) == sorted(result.cons.node_ids)
        assert result.seeded is not None and result.seeded.records > ENTERPRISES
        yield result.cons
    finally:
        net.down(directory)
        assert net.running_nodes(directory) == {}


@pytest.fixture(scope="module")
def case(network: net.Consortium) -> Case:
    cons = network
    data = SyntheticData(cons.topology, ENTERPRISES, SEED)
    # A Hefei enterprise with a branch in another city (two holder cities) ...
    i = next(
        i for i in range(data.counts["hf"]) if len({city(h) for h in data.holders("hf", i)}) == 2
    )
    holders = tuple(data.holders("hf", i))
    taken = {city(h) for h in holders}
    # ... a third city that will hold records about it, and an institution in yet another city.
    third = next(c for c in cons.topology.cities if c.code not in taken).node_ids[0]
    inst = next(
        x
        for x in cons.institutions
        if x.city not in taken | {city(third)} and "post_loan" in x.purposes
    )
    uscc = data.enterprise("hf", i).uscc
    records = [
        {
            "uscc": uscc,
            "record_type": "admin_penalty",
            "record_id": f"{third}:{uscc}:e2e-penalty",
            "source": f"{city(third)}-amr",
            "observed_at": "2021-03-01T09:00:00Z",
            "body": {
                "authority": "market regulator",
                "decision_no": "E2E-1",
                "amount_minor": 5_000_000,
                "reason": "labelling",
                "status": "in_force",
            },
        },
        {
            "uscc": uscc,
            "record_id": f"{third}:{uscc}:e2e-penalty:c1",
            "supersedes": f"{third}:{uscc}:e2e-penalty",
            "outcome": "resolved",
            "source": f"{city(third)}-amr",
            "observed_at": "2021-09-01T09:00:00Z",
            "body": {
                "authority": "market regulator",
                "decision_no": "E2E-1",
                "amount_minor": 5_000_000,
                "reason": "labelling",
                "status": "resolved",
                "resolved_on": "2021-08-30",
            },
        },
    ]
    with net.operator_client(cons, third) as client:
        status, body = client.call(third, "POST", "/v1/ingest", {"records": records})
    assert status == 202, body
    net.wait_mirrored(cons, timeout_s=60)  # the institution's home node must know the third holder
    return Case(cons, uscc, inst, third, holders)


def test_up_again_says_it_is_running(network: net.Consortium) -> None:
    result = CliRunner().invoke(cli, ["up", "--dir", str(network.dir)])
    assert result.exit_code == 0, result.output
    assert "already running" in result.stdout
    status = CliRunner().invoke(cli, ["status", "--dir", str(network.dir)])
    assert status.exit_code == 0
    assert "all nodes up, no alarms" in status.stdout
    assert status.stdout.count("10/10") == 11


def test_report_spans_three_cities_and_verifies_offline(case: Case, tmp_path: Path) -> None:
    res = net.query_report(case.cons, case.institution.institution_id, case.uscc, "post_loan")
    s = res.summary
    assert res.authorization is not None  # filed for us
    assert not s.partial and s.missing == []
    assert set(s.holders) == {*case.holders, case.third_node}
    assert len({city(n) for n in s.holders}) >= 3
    assert s.home_node == case.institution.home_node
    ids = {d["record_id"] for d in s.current}
    assert f"{case.third_node}:{case.uscc}:e2e-penalty:c1" in ids
    assert (
        f"{case.third_node}:{case.uscc}:e2e-penalty" not in ids
    )  # superseded, but still in the history
    assert f"{case.third_node}:{case.uscc}:e2e-penalty" in {d["record_id"] for d in s.history}
    assert res.path.is_file()

    runner = CliRunner()
    ok = runner.invoke(
        cli, ["report", "verify", str(res.path), "--manifest", str(case.cons.manifest_path)]
    )
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.stdout

    # Edit a body and re-sign the report with the home node's own key: only the commitment catches it.
    bundle = json.loads(res.path.read_text())
    section = next(h for h in bundle["report"]["holders"] if h["node_id"] == case.third_node)
    section["records"][0]["body"]["amount_minor"] = 1
    key = case.cons.node_key(bundle["report"]["home_node"])
    bundle["signature"] = base64.b64encode(key.sign(canonical_bytes(bundle["report"]))).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(bundle))
    bad = runner.invoke(
        cli, ["report", "verify", str(forged), "--manifest", str(case.cons.manifest_path)]
    )
    assert bad.exit_code == 1
    assert "body does not match its commitment" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    # The same through the command line, with a fresh authorization.
    q = runner.invoke(
        cli,
        [
            "query",
            "--dir",
            str(case.cons.dir),
            "--institution",
            case.institution.institution_id,
            "--uscc",
            case.uscc,
            "--purpose",
            "post_loan",
            "--out",
            str(tmp_path / "q.json"),
        ],
    )
    assert q.exit_code == 0, q.output
    assert "filed authorization" in q.stdout
    assert "consent is signed by registry:" in q.stdout
    assert "RESOLVED by correction" in q.stdout and "superseded by" in q.stdout
    assert (tmp_path / "q.json").is_file()


def test_holder_down_gives_a_partial_report_then_restart_heals(case: Case) -> None:
    victim = next(h for h in (case.third_node, *case.holders) if h != case.institution.home_node)
    net.kill_node(case.cons, victim, signal.SIGKILL)
    assert victim not in net.running_nodes(case.cons.dir)

    res = net.query_report(case.cons, case.institution.institution_id, case.uscc, "post_loan")
    assert res.summary.partial
    assert [m["node_id"] for m in res.summary.missing] == [victim], res.summary.missing
    assert "unavailable" in res.summary.missing[0]["reason"]
    assert victim not in res.summary.holders
    ok = CliRunner().invoke(
        cli, ["report", "verify", str(res.path), "--manifest", str(case.cons.manifest_path)]
    )
    assert ok.exit_code == 0, ok.output
    assert f"partial: missing {victim}" in ok.stdout

    status = CliRunner().invoke(cli, ["status", "--dir", str(case.cons.dir)])
    assert f"down: {victim}" in status.stdout

    again = net.up(case.cons.dir, progress=False, timeout_s=120)
    assert again.started == [victim]
    assert again.seeded is None  # its ledger was kept, nothing reseeded

    res = net.query_report(case.cons, case.institution.institution_id, case.uscc, "post_loan")
    assert not res.summary.partial
    assert set(res.summary.holders) == {*case.holders, case.third_node}
