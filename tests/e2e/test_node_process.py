"""One real node process (``python -m node``, started as ``creditchain up`` starts it): what
only a real process shows.

* A second process on the same data directory (another port) exits with status 2 and one
  sentence naming the first one's pid, instead of serving a stale checkpoint beside it.
* A slowloris flood: 600 connections that each send half a request head. The node, with its
  default limits (``header_timeout_s`` 10 s, ``max_connections`` 512), refuses those past
  the cap with a 503 problem at once, answers the others 408 at the deadline, never holds
  more descriptors than the cap allows, and serves again afterwards. The figures are printed
  (``pytest -s``); only counts are asserted.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from node.datadir import LOCK_NAME
from node.http.server import DESCRIPTOR_RESERVE
from node.settings import NodeSettings
from scenarios import localnet as net

TOPOLOGY = """\
name: one-node
origin_prefix: yrd-credit-chain
algorithm: sha256
institutions: 1
cities:
  - {code: hz, name: Hangzhou, name_zh: 杭州, admin_code: "330100", nodes: 1, share: 1.0,
     lat: 30.27, lon: 120.16}
"""
HANG_GUARD_S = 300.0
FLOOD = 600


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[net.Consortium, str]]:
    root = tmp_path_factory.mktemp("one-node")
    (root / "topology.yaml").write_text(TOPOLOGY, encoding="utf-8")
    directory = root / "cc"
    net.init_consortium(
        directory, str(root / "topology.yaml"), base_port=net.find_free_base_port(1)
    )
    try:
        result = net.up(directory, enterprises=50, seed=5, progress=False, timeout_s=150)
        yield result.cons, result.cons.node_ids[0]
    finally:
        net.down(directory)


def _pid(cons: net.Consortium, node_id: str) -> int:
    return int(cons.pid_path(node_id).read_text().strip())


def test_a_second_process_on_the_data_dir_exits_naming_the_holder(
    node: tuple[net.Consortium, str],
) -> None:
    cons, node_id = node
    pid = _pid(cons, node_id)
    settings_path = cons.settings_path(node_id).resolve()
    data_dir = NodeSettings.from_env({"NODE_CONFIG": str(settings_path)}).data_dir
    assert (data_dir / LOCK_NAME).read_text().strip() == str(pid)
    with httpx.Client(timeout=60) as c:
        before = c.get(cons.url(node_id) + "/v1/checkpoint").text
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    env["NODE_PORT"] = str(net.find_free_base_port(1))  # the port is not what stops it
    second = subprocess.Popen(
        [sys.executable, "-P", "-m", "node", "--config", str(settings_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = second.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        second.kill()
        _, err = second.communicate()
        pytest.fail(f"a second node ran on {data_dir}: {err[-400:]}")
    lines = err.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, err
    assert str(pid) in lines[0] and str(data_dir) in lines[0], lines[0]
    with httpx.Client(timeout=60) as c:
        assert c.get(cons.url(node_id) + "/v1/checkpoint").text == before
        assert c.get(cons.url(node_id) + "/v1/health").status_code == 200
    assert (data_dir / LOCK_NAME).read_text().strip() == str(pid)


def test_a_slowloris_flood_is_refused_or_cut_and_the_node_serves_on(
    node: tuple[net.Consortium, str],
) -> None:
    cons, node_id = node
    settings = NodeSettings.from_env({"NODE_CONFIG": str(cons.settings_path(node_id).resolve())})
    cap = settings.max_connections
    assert cap < FLOOD  # the defaults: some are refused, the rest cut at the deadline
    proc = psutil.Process(_pid(cons, node_id))
    fds_before = proc.num_fds()
    port = cons.ports[node_id]
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    answers: dict[socket.socket, bytes] = {}
    held_s: dict[socket.socket, float] = {}
    t0 = time.monotonic()
    try:
        for _ in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S)
            # A refused one may be closed already: its answer is still there to be read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
            sock.setblocking(False)
            opened[sock] = time.monotonic()
            answers[sock] = b""
            selector.register(sock, selectors.EVENT_READ)
        fds_peak = proc.num_fds()
        while len(held_s) < FLOOD:
            assert time.monotonic() - t0 < HANG_GUARD_S, f"{FLOOD - len(held_s)} still held"
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    answers[sock] += data
                    continue
                held_s[sock] = time.monotonic() - opened[sock]
                selector.unregister(sock)
            fds_peak = max(fds_peak, proc.num_fds())
    finally:
        selector.close()
        for sock in opened:
            sock.close()
    statuses = {s: a.split(b"\r\n", 1)[0] for s, a in answers.items()}
    refused = [s for s, line in statuses.items() if line.startswith(b"HTTP/1.1 503")]
    cut = [s for s, line in statuses.items() if line.startswith(b"HTTP/1.1 408")]
    assert len(refused) + len(cut) == FLOOD, {line for line in statuses.values()}
    assert len(cut) <= cap and len(refused) >= FLOOD - cap
    assert all(b"too-many-connections" in answers[s] for s in refused)
    assert all(b"request-timeout" in answers[s] for s in cut)
    assert fds_peak < cap + DESCRIPTOR_RESERVE
    with httpx.Client(timeout=60) as c:
        assert c.get(cons.url(node_id) + "/v1/health").status_code == 200

    def span(socks: list[socket.socket]) -> str:
        times = sorted(held_s[s] for s in socks)
        return f"{times[0]:.2f}-{times[-1]:.2f} s" if times else "-"

    print(
        f"\nslowloris, {FLOOD} connections against max_connections={cap}, "
        f"header_timeout_s={settings.header_timeout_s:g}: {len(refused)} refused 503 after "
        f"{span(refused)}, {len(cut)} answered 408 after {span(cut)}; node descriptors "
        f"{fds_before} before, {fds_peak} at most; all closed {time.monotonic() - t0:.1f} s "
        "after the first connect"
    )


def test_node_files_are_private(node: tuple[net.Consortium, str]) -> None:
    """The data directory and the log of a node started by ``up``."""
    cons, node_id = node
    settings = NodeSettings.from_env({"NODE_CONFIG": str(cons.settings_path(node_id).resolve())})
    data_dir = settings.data_dir
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in data_dir.iterdir()}
    assert {"ledger.db", "state.db", LOCK_NAME} <= set(modes), modes
    assert set(modes.values()) == {"0o600"}, modes
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    log = Path(cons.log_path(node_id))
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert oct(log.parent.stat().st_mode & 0o777) == "0o700"
