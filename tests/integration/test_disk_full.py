"""A full disk: the node answers 507 with Retry-After, logs the cause, and loses nothing.

Each test mounts its own small tmpfs (the machine runs the tests as root; where
mounting is not permitted the tests are skipped and say why), fills it with a
filler file until the kernel says ENOSPC, and then writes: to the ledger through
``POST /v1/ingest``, and to the node state (``state.db``) directly.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inproc import make_net
from support.inproc_world import NODES, assert_problem

from ledger import Ledger, StorageFullError, make_uscc, verify_ledger
from node.api.problems import STORAGE_FULL_RETRY_S
from node.views import PeerViews


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 16 MiB tmpfs, unmounted afterwards."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("no mount(8) here to make a small file system to fill")
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run([umount, "-l", str(where)], check=False)


def fill(fs: Path) -> Path:
    """Write a filler file until the file system has no room left; return its path."""
    filler = fs / "filler"
    chunk = b"\xa5" * 65536
    with filler.open("wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk[:size])
    probe = fs / "probe"
    with pytest.raises(OSError) as no_room, probe.open("wb", buffering=0) as f:
        f.write(chunk)
    assert no_room.value.errno == errno.ENOSPC
    probe.unlink()
    return filler


def batch(n: int, size: int = 20) -> list[dict[str, object]]:
    return [
        {
            "uscc": make_uscc("330100", n * 1000 + i).code,
            "record_type": "registration",
            "record_id": f"hz-1:disk-{n}-{i}",
            "source": "hz-amr",
            "observed_at": "2020-01-01T00:00:00Z",
            "body": {"name": f"enterprise {n}-{i}", "note": "x" * 1500},
        }
        for i in range(size)
    ]


async def test_ingest_on_a_full_disk_is_507_and_loses_nothing(small_fs, caplog):
    net = make_net(small_fs / "net", NODES[:1])
    st = net.states["hz-1"]
    ledger_path = st.settings.ledger_path
    try:
        acknowledged = 0
        async with net.operator("hz-1") as c:
            for n in range(4):
                r = await c.post("http://hz-1/v1/ingest", json={"records": batch(n)})
                assert r.status_code == 202, r.text
                acknowledged = r.json()["size"]
            filler = fill(small_fs)
            caplog.set_level(logging.ERROR, logger="node.api.problems")
            r = await c.post("http://hz-1/v1/ingest", json={"records": batch(4)})
            body = assert_problem(r, 507, "storage-full", node_id="hz-1", instance="/v1/ingest")
            assert r.headers["retry-after"] == str(STORAGE_FULL_RETRY_S)
            assert "full" in body["detail"]
            assert str(small_fs) not in body["detail"]  # the file's path stays in the log
            logged = "\n".join(rec.getMessage() for rec in caplog.records)
            assert "database or disk is full" in logged and str(ledger_path) in logged
            assert "no transaction is active" not in caplog.text

            assert st.ledger.size == acknowledged  # the refused batch left no trace
            filler.unlink()
            r = await c.post("http://hz-1/v1/ingest", json={"records": batch(4)})
            assert r.status_code == 202, r.text
            assert r.json()["first_index"] == acknowledged
            total = r.json()["size"]
    finally:
        await net.close()
    reopened = Ledger.open(ledger_path)
    try:
        assert reopened.size == total
    finally:
        reopened.close()
    report = verify_ledger(ledger_path)
    assert report.ok, report


def test_node_state_on_a_full_disk_is_storage_full(small_fs):
    views = PeerViews(small_fs / "state.db")
    try:
        views.add_revoked("hf-1", [f"before-{i}" for i in range(100)])
        filler = fill(small_fs)
        wanted = [f"a-long-authorization-id-{i:06d}-{'y' * 40}" for i in range(20_000)]
        with pytest.raises(StorageFullError, match="database or disk is full") as full:
            views.add_revoked("hf-1", wanted)
        assert full.value.path == str(small_fs / "state.db")
        assert views.is_revoked("hf-1", "before-99")  # what was there still is
        assert not views.is_revoked("hf-1", wanted[0])  # and the refused write left nothing
        filler.unlink()
        views.add_revoked("hf-1", wanted)
        assert views.is_revoked("hf-1", wanted[-1])
    finally:
        views.close()
