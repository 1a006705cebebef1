"""The compose files and node configuration of ``creditchain compose`` (no Docker needed).

Checks that the committed ``docker/compose.<preset>.yaml`` files are what the
generator writes today, and that generated configuration is what a container
needs: settings a node accepts, a manifest naming ``http://<node>:8000``, keys
that match it, mode 0600 and readable by the container user.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from node.consortium import parse_manifest
from node.keys import load_private_key, public_b64
from node.settings import NodeSettings
from scenarios.containers.compose import CONTAINER_UID, ComposeError, compose_text, generate
from scenarios.model.topology import PRESETS, load_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset", PRESETS)
def test_committed_compose_file_is_current(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, out, _, _, text = compose_text(preset)
    committed = ROOT / out
    assert committed.is_file(), f"{out} is missing: run `creditchain compose --preset {preset}`"
    assert committed.read_text("utf-8") == text, (
        f"{out} is stale: run `creditchain compose --preset {preset}`"
    )


def test_compose_document_shape(tmp_path: Path) -> None:
    result = generate(
        "launch-2020",
        out=tmp_path / "compose.yaml",
        config_dir=tmp_path / "cfg",
        host_port_base=18100,
        project="yrd-t",
    )
    text = result.compose_file.read_text("utf-8")
    assert "$" not in text  # compose would interpolate it
    doc = yaml.safe_load(text)
    topology = load_topology("launch-2020")
    assert list(doc["services"]) == list(topology.node_ids)
    for i, node_id in enumerate(topology.node_ids, start=1):
        svc = doc["services"][node_id]
        assert svc["hostname"] == node_id
        assert svc["ports"] == [
            {"target": 8000, "published": 18100 + i, "protocol": "tcp", "mode": "host"}
        ]
        assert svc["networks"] == ["yrd"]
        data, config = svc["volumes"]
        assert data == {"type": "volume", "source": f"{node_id}-data", "target": "/data"}
        assert config == {
            "type": "bind",
            "source": f"./cfg/{node_id}",
            "target": "/config",
            "read_only": True,
        }
        assert doc["volumes"][f"{node_id}-data"] == {"name": f"yrd-t_{node_id}-data"}
        assert svc["healthcheck"]["test"][0] == "CMD"
        assert "/v1/health" in svc["healthcheck"]["test"][-1]
    assert doc["networks"] == {
        "yrd": {}
    }  # bridge under compose, overlay under `docker stack deploy`
    assert result.host_urls["sh-1"] == "http://127.0.0.1:18101"
    # What the host CLI needs to drive the containers: a consortium of target docker.
    from scenarios.localnet import load_consortium

    cons = load_consortium(result.config_dir)
    assert cons.target == "docker" and cons.project == "yrd-t"
    assert (
        cons.url("sh-1") == "http://127.0.0.1:18101"
        and cons.public_url("sh-1") == "http://sh-1:8000"
    )
    assert len(cons.institutions) == topology.institutions
    seed = json.loads((result.config_dir / "sh-1" / "seed.json").read_text("utf-8"))
    assert seed == {"topology": "launch-2020", "enterprises": 2000, "seed": 2020}


def test_node_config_is_usable_in_a_container(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    result = generate("launch-2020", out=tmp_path / "compose.yaml", config_dir=cfg)
    assert result.keys_created == len(result.node_ids) + 1 and result.keys_reused == 0
    manifest = parse_manifest((cfg / "manifest.json").read_bytes())
    assert {n.node_id: n.url for n in manifest.nodes} == {
        n: f"http://{n}:8000" for n in result.node_ids
    }
    for node_id in result.node_ids:
        node_dir = cfg / node_id
        raw = json.loads((node_dir / "settings.json").read_text("utf-8"))
        settings = NodeSettings.from_mapping(raw)
        assert settings.public_url == f"http://{node_id}:8000"
        assert (settings.host, settings.port) == ("0.0.0.0", 8000)
        assert (
            str(settings.key_file) == "/config/node.key"
            and str(settings.manifest) == "/config/manifest.json"
        )
        assert set(settings.latency_ms) == set(result.node_ids) - {node_id}
        assert (node_dir / "manifest.json").read_bytes() == (cfg / "manifest.json").read_bytes()
        key_path = node_dir / "node.key"
        st = key_path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        if os.geteuid() == 0:
            assert (st.st_uid, node_dir.stat().st_uid) == (CONTAINER_UID, CONTAINER_UID)
        assert public_b64(load_private_key(key_path)) == manifest.node(node_id).public_key


def test_rerun_keeps_keys_and_new_keys_replaces_them(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    generate("launch-2020", out=tmp_path / "c.yaml", config_dir=cfg)
    first = parse_manifest((cfg / "manifest.json").read_bytes())
    again = generate("launch-2020", out=tmp_path / "c.yaml", config_dir=cfg)
    assert again.keys_created == 0
    assert parse_manifest((cfg / "manifest.json").read_bytes()).nodes == first.nodes
    generate("launch-2020", out=tmp_path / "c.yaml", config_dir=cfg, new_keys=True)
    fresh = parse_manifest((cfg / "manifest.json").read_bytes())
    assert {n.public_key for n in fresh.nodes}.isdisjoint({n.public_key for n in first.nodes})


def test_bad_port_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="must lie in 1024..65535"):
        generate(
            "oct-2021", out=tmp_path / "c.yaml", config_dir=tmp_path / "cfg", host_port_base=65530
        )
    assert not (tmp_path / "cfg").exists()
