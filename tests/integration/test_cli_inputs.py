"""Bad input to the network commands: one plain sentence on stderr, exit 1, no traceback.

No node process is started here; a consortium is created where a test needs
one (keys and manifest only, a second or so).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from scenarios import localnet as net
from scenarios.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_sentence(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "cc"
    net.init_consortium(d, "launch-2020", base_port=net.find_free_base_port(11))
    return d


def test_init_writes_keys_manifest_settings_and_institutions(consortium: Path) -> None:
    cons = net.load_consortium(consortium)
    assert len(cons.node_ids) == 11
    assert len(cons.institutions) == 24
    for path in [
        consortium / "keys" / "root.key",
        *(consortium / "keys" / "nodes").iterdir(),
        *(consortium / "keys" / "institutions").iterdir(),
    ]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (consortium / "keys").stat().st_mode & 0o777 == 0o700
    settings = json.loads(cons.settings_path("hz-1").read_text())
    assert settings["latency_ms"]["hz-2"] == net.SAME_CITY_LATENCY_MS
    assert (
        settings["latency_ms"]["hf-1"] > settings["latency_ms"]["sh-1"] > 1.0
    )  # Hefei is farther than Shanghai
    assert cons.url("sh-1") == f"http://127.0.0.1:{cons.ports['sh-1']}"
    for inst in cons.institutions:
        assert cons.topology.city_of_node(inst.home_node).code == inst.city
        assert inst.institution_id.split("-")[1] == inst.city


def test_unknown_preset(tmp_path: Path) -> None:
    code, _, err = run("consortium", "init", "--preset", "nosuch", "--dir", str(tmp_path / "x"))
    assert code == 1
    assert "neither a preset" in one_sentence(err)


def test_existing_consortium_needs_force(consortium: Path) -> None:
    code, _, err = run("consortium", "init", "--dir", str(consortium))
    assert code == 1
    assert "--force" in one_sentence(err)


def test_force_replaces_the_consortium(tmp_path: Path) -> None:
    d = tmp_path / "cc"
    base = net.find_free_base_port(11)
    net.init_consortium(d, base_port=base)
    old = (d / "manifest.json").read_bytes()
    code, out, err = run("consortium", "init", "--dir", str(d), "--force", "--base-port", str(base))
    assert code == 0, err
    assert (d / "manifest.json").read_bytes() != old


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = run(
            "consortium", "init", "--dir", str(tmp_path / "cc"), "--base-port", str(port)
        )
    assert code == 1
    assert f"port {port}" in one_sentence(err) and "in use" in err
    assert not (tmp_path / "cc" / "manifest.json").exists()


def test_base_port_out_of_range(tmp_path: Path) -> None:
    code, _, err = run("consortium", "init", "--dir", str(tmp_path / "cc"), "--base-port", "80")
    assert code == 1
    assert "--base-port" in one_sentence(err)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["down"],
        ["enterprises"],
        ["institutions"],
        ["query", "--institution", "x", "--uscc", "y", "--purpose", "post_loan"],
    ],
)
def test_no_consortium(tmp_path: Path, command: list[str]) -> None:
    code, _, err = run(*command, "--dir", str(tmp_path / "none"))
    assert code == 1
    assert "no consortium" in one_sentence(err)


def test_up_with_another_preset(consortium: Path) -> None:
    code, _, err = run("up", "--dir", str(consortium), "--preset", "oct-2021")
    assert code == 1
    assert "launch-2020" in one_sentence(err)


def test_up_with_an_unknown_preset(consortium: Path) -> None:
    code, _, err = run("up", "--dir", str(consortium), "--preset", "nosuch")
    assert code == 1
    assert "neither a preset" in one_sentence(err)


@pytest.mark.parametrize(
    ("institution", "uscc", "purpose", "expected"),
    [
        ("nobody", "91340100KY3T5DWT5N", "post_loan", "unknown institution 'nobody'"),
        ("bank-hz-001", "91340100KY3T5DWT5X", "post_loan", "rule: check-character"),
        ("bank-hz-001", "9134010KY3T5DWT5N", "post_loan", "rule: length"),
        ("bank-hz-001", "91340100KY3T5DWT5I", "post_loan", "rule: alphabet"),
        (
            "bank-hz-001",
            "91440300000000051N",
            "post_loan",
            "which no node of this consortium serves",
        ),
        ("bank-hz-001", "91340100KY3T5DWT5N", "fun", "purpose must be one of"),
        ("bank-hz-001", "91340100KY3T5DWT5N", "guarantee", "is registered for pre_loan"),
    ],
)
def test_query_bad_input(
    consortium: Path, institution: str, uscc: str, purpose: str, expected: str
) -> None:
    code, _, err = run(
        "query",
        "--dir",
        str(consortium),
        "--institution",
        institution,
        "--uscc",
        uscc,
        "--purpose",
        purpose,
    )
    assert code == 1
    assert expected in one_sentence(err)


def test_query_when_the_network_is_down(consortium: Path) -> None:
    code, _, err = run(
        "query",
        "--dir",
        str(consortium),
        "--institution",
        "bank-hz-001",
        "--uscc",
        "91340100KY3T5DWT5N",
        "--purpose",
        "post_loan",
    )
    assert code == 1
    assert "is not answering" in one_sentence(err)


def test_enterprises_before_seeding(consortium: Path) -> None:
    code, _, err = run("enterprises", "--dir", str(consortium))
    assert code == 1
    assert "not been seeded" in one_sentence(err)


def test_status_of_a_stopped_network(consortium: Path) -> None:
    code, out, err = run("status", "--dir", str(consortium))
    assert code == 0, err
    assert "down: sh-1, sh-2" in out


def test_down_when_nothing_runs(consortium: Path) -> None:
    code, out, _ = run("down", "--dir", str(consortium))
    assert code == 0
    assert "no node" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("not json", "is not JSON"),
        ("[" * 200_000, "more than 64 levels deep"),
        ("[1, 2]", "not a report bundle"),
        ('{"report": {}, "signature": "AAAA"}', "does not verify"),
        ('{"report": {"home_node": "hz-1", "uscc": "x"}, "signature": "AAAA"}', "signature"),
        (
            '{"report": {"home_node": "zz-9", "uscc": "x"}, "signature": "AAAA"}',
            "zz-9 is not in the manifest",
        ),
    ],
)
def test_report_verify_bad_bundle(
    consortium: Path, tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "bundle.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(
        "report", "verify", str(path), "--manifest", str(consortium / "manifest.json")
    )
    assert code == 1
    assert expected in one_sentence(err)


def test_report_verify_bad_manifest(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "m.json").write_text("{}")
    code, _, err = run(
        "report", "verify", str(tmp_path / "b.json"), "--manifest", str(tmp_path / "m.json")
    )
    assert code == 1
    assert "manifest" in one_sentence(err)


def test_report_verify_signed_but_malformed(consortium: Path, tmp_path: Path) -> None:
    """A report signed by a manifest node but missing its parts is named malformed, not a traceback."""
    import base64

    from ledger import canonical_bytes

    report = {"home_node": "hz-1", "uscc": "91340100KY3T5DWT5N"}
    key = net.load_consortium(consortium).node_key("hz-1")
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(
            {
                "report": report,
                "signature": base64.b64encode(key.sign(canonical_bytes(report))).decode(),
            }
        )
    )
    code, _, err = run(
        "report", "verify", str(path), "--manifest", str(consortium / "manifest.json")
    )
    assert code == 1
    assert "malformed" in one_sentence(err) and "authorization" in err


@pytest.mark.parametrize(("preset", "count"), [("launch-2020", 24), ("oct-2021", 326)])
def test_institutions_follow_the_preset(preset: str, count: int) -> None:
    from scenarios.model.topology import load_topology

    topology = load_topology(preset)
    plan = net.institution_plan(topology)
    assert len(plan) == count
    assert len({p[0] for p in plan}) == count
    assert {p[2] for p in plan} == {
        c.code for c in topology.cities
    }  # every city has a query institution
    for inst_id, _, city, home, _ in plan:
        assert inst_id.split("-")[1] == city and home in topology.city(city).node_ids
