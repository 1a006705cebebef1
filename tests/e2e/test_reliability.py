"""Crash safety and soak, at a bounded size.

Through the command line, on a 4-node network spread over the launch-2020
cities: the crash harness (three SIGKILL-and-restart rounds, alternating
ingest and report load) must find nothing lost, and a 30 s soak must find a
receipt on the home and every holder ledger for every request sent. That the
checks can fail is shown in ``tests/integration/test_reliability_checks.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import invoke

from scenarios import localnet as net

SMALL = ["--preset", "launch-2020", "--nodes", "4", "--enterprises", "400"]


# --- the real network --------------------------------------------------------------------------
@pytest.mark.e2e
def test_crash_rounds_lose_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    code, out, err = invoke(
        [
            "reliability",
            "crash",
            "--rounds",
            "3",
            "--seed",
            "5",
            "--load-seconds",
            "3",
            *SMALL,
            "--out",
            str(tmp_path / "out"),
            "--workdir",
            str(work),
        ]
    )
    assert net.running_nodes(work / "network") == {}
    assert code == 0, out + err
    result = json.loads((tmp_path / "out" / "crash.json").read_text())
    assert result["ok"] and result["faults"] == []
    assert result["rounds"] == 3 and result["nodes"] == 4
    assert result["kills"]["ingest"] >= 1 and result["kills"]["reports"] >= 1
    assert result["kills"]["ingest"] + result["kills"]["reports"] == 3
    acked = result["acknowledged"]
    assert acked["records"] > 0 and acked["total"] == sum(
        v for k, v in acked.items() if k != "total"
    )
    assert (
        result["acknowledged_checks"] >= acked["total"]
    )  # every one at the end, the victim's after each restart
    assert result["ledger_verifications"] == 3 + 4  # each crash state, then every ledger
    for r in result["rounds_detail"]:
        assert r["restarted"] and r["entries_at_kill_verified"] > 0
    assert "faults: 0" in out and "kills: " in out


@pytest.mark.e2e
def test_short_soak_finds_a_receipt_for_every_request(tmp_path: Path) -> None:
    work = tmp_path / "work"
    code, out, err = invoke(
        [
            "reliability",
            "soak",
            "--duration",
            "30s",
            "--capacity-duration",
            "6s",
            "--sample-every",
            "2s",
            "--targets",
            "12",
            *SMALL,
            "--out",
            str(tmp_path / "out"),
            "--workdir",
            str(work),
        ]
    )
    assert net.running_nodes(work / "network") == {}
    assert code == 0, out + err
    result = json.loads((tmp_path / "out" / "soak.json").read_text())
    assert result["ok"] and result["problems"] == []
    assert result["errors"] == 0 and result["partial_reports"] == 0
    rc = result["receipts"]
    assert rc["requests_sent"] > 0
    assert (
        rc["requests_sent"]
        == rc["reports_ok"]
        == rc["home_receipts_found"]
        == rc["home_receipts_on_ledgers"]
    )
    assert (
        rc["holder_receipts_expected"] > 0
        and rc["holder_receipts_found"] == rc["holder_receipts_expected"]
    )
    assert rc["lost"] == 0
    mem = result["memory"]
    assert mem["samples"] >= 2 and len(mem["series"]) == mem["samples"]
    assert set(mem["nodes"]) == set(net.load_consortium(work / "network").node_ids)
    for m in mem["nodes"].values():
        assert m["start_mib"] > 0 and m["end_mib"] > 0 and m["slope_mib_per_min"] is not None
        assert not m["unbounded"] and not m["exited"]
    assert "PASS" in out
