"""Manifest versions on a real two-city network, through the commands a user types.

``creditchain consortium manifest-next`` signs version 2 with the directory's root key,
keeps it in ``manifest-history.jsonl`` and hands it to both running node processes, which
follow it without a restart; a report made before and one made after each verify with
``creditchain report verify`` (against the version each names); a version that removes
a node goes to the node it keeps, and the removed one (not offered it) stays on version 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from scenarios import localnet as net
from scenarios.cli import cli
from scenarios.model.workloads import SyntheticData

pytestmark = pytest.mark.e2e

TOPOLOGY = """\
name: two-cities
origin_prefix: yrd-credit-chain
algorithm: sha256
institutions: 2
cities:
  - {code: hz, name: Hangzhou, name_zh: 杭州, admin_code: "330100", nodes: 1, share: 0.5,
     lat: 30.27, lon: 120.16}
  - {code: hf, name: Hefei, name_zh: 合肥, admin_code: "340100", nodes: 1, share: 0.5,
     lat: 31.82, lon: 117.23}
"""


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[net.Consortium]:
    root = tmp_path_factory.mktemp("two-cities")
    (root / "topology.yaml").write_text(TOPOLOGY, encoding="utf-8")
    directory = root / "cc"
    net.init_consortium(
        directory, str(root / "topology.yaml"), base_port=net.find_free_base_port(2)
    )
    try:
        result = net.up(directory, enterprises=200, seed=3, progress=False, timeout_s=150)
        yield result.cons
    finally:
        net.down(directory)


def _query(cons: net.Consortium, out: Path) -> None:
    inst = next(i for i in cons.institutions if i.home_node == cons.node_ids[0])
    uscc = SyntheticData(cons.topology, 200, 3).enterprise("hf", 0).uscc
    args = [
        "query",
        "--dir",
        str(cons.dir),
        "--institution",
        inst.institution_id,
        "--uscc",
        uscc,
        "--purpose",
        "post_loan",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output


def test_version_two_is_followed_live_and_old_bundles_still_verify(
    network: net.Consortium, tmp_path: Path
) -> None:
    cons = network
    runner = CliRunner()
    _query(cons, tmp_path / "before.json")

    bump = runner.invoke(cli, ["consortium", "manifest-next", "--dir", str(cons.dir)])
    assert bump.exit_code == 0, bump.output
    assert "signed manifest version 2" in bump.stdout
    for node_id in cons.node_ids:
        assert f"{node_id}: now follows version 2" in bump.stdout
        with httpx.Client(timeout=30) as c:
            assert c.get(cons.url(node_id) + "/v1/health").json()["manifest_version"] == 2

    listed = runner.invoke(cli, ["consortium", "manifest-history", "--dir", str(cons.dir)])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.count("version ") == 2 and "follows" in listed.stdout

    cons = net.load_consortium(cons.dir)
    _query(cons, tmp_path / "after.json")
    for name in ("before.json", "after.json"):
        ok = runner.invoke(cli, ["report", "verify", str(tmp_path / name), "--dir", str(cons.dir)])
        assert ok.exit_code == 0, (name, ok.output)
    old_only = runner.invoke(
        cli,
        ["report", "verify", str(tmp_path / "before.json"), "--manifest", str(cons.manifest_path)],
    )
    assert old_only.exit_code == 1
    assert "made under manifest version 1, not version 2" in old_only.stderr

    gone = cons.node_ids[-1]
    drop = runner.invoke(
        cli, ["consortium", "manifest-next", "--dir", str(cons.dir), "--remove-node", gone]
    )
    assert drop.exit_code == 0, drop.output
    kept = cons.node_ids[0]
    assert f"{kept}: now follows version 3" in drop.stdout
    with httpx.Client(timeout=30) as c:
        assert c.get(cons.url(gone) + "/v1/health").json()["manifest_version"] == 2

    bad = runner.invoke(
        cli, ["consortium", "manifest-next", "--dir", str(cons.dir), "--url", "nowhere"]
    )
    assert bad.exit_code != 0 and "--url takes NODE=http(s)://host:port" in bad.output
