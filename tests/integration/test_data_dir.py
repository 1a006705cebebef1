"""A node's data directory (``node.datadir``): private whatever the umask, one node at a time.

Before: ``ledger.db``, ``state.db`` and their ``-wal``/``-shm`` files were 0644 in 0755
directories (every body and salt readable by any local user), and a second node on the same
directory opened the same ledger and served a checkpoint of its own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inproc import b64key, seeded_key
from support.inproc_world import NODES, make_net

from node.app import build_state
from node.datadir import LOCK_NAME, DataDirLock, make_private, private_umask
from node.errors import ConfigError, DataDirLockedError

NODE = NODES[0][0]
SQLITE_FILES = {"ledger.db", "ledger.db-wal", "ledger.db-shm", "state.db"}


def _modes(data_dir: Path) -> dict[str, str]:
    """Mode of the directory ('.') and of everything in it, recursively."""
    out = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    for p in data_dir.rglob("*"):
        out[str(p.relative_to(data_dir))] = oct(stat.S_IMODE(p.lstat().st_mode))
    return out


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)  # the most permissive a caller could start a node with
    try:
        yield
    finally:
        os.umask(old)


async def test_data_files_are_private_whatever_the_umask(tmp_path: Path, umask_zero: None) -> None:
    net = make_net(tmp_path / "net", NODES[:1])
    try:
        st = net.states[NODE]
        async with net.operator(NODE) as c:
            r = await c.post(
                f"http://{NODE}/v1/institutions",
                json={
                    "institution_id": "bank-1",
                    "name": "Bank",
                    "public_key": b64key(seeded_key("inst/bank-1")),
                    "purposes": ["pre_loan"],
                },
            )
        assert r.status_code == 201, r.text  # a write: SQLite's -wal and -shm exist now
        modes = _modes(st.settings.data_dir)
        assert SQLITE_FILES | {LOCK_NAME} <= set(modes), modes
        assert modes["."] == "0o700"
        assert {m for name, m in modes.items() if name != "."} == {"0o600"}, modes
    finally:
        await net.close()


async def test_an_existing_readable_data_dir_is_made_private(tmp_path: Path) -> None:
    net = make_net(tmp_path / "net", NODES[:1])
    settings = net.states[NODE].settings
    await net.close()
    data_dir = settings.data_dir
    os.chmod(data_dir, 0o755)  # what an earlier version left
    for p in data_dir.iterdir():
        os.chmod(p, 0o644)
    st = build_state(settings)
    try:
        modes = _modes(data_dir)
        assert modes["."] == "0o700"
        assert {m for name, m in modes.items() if name != "."} == {"0o600"}, modes
    finally:
        await st.close()


async def test_a_second_node_on_one_data_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    net = make_net(tmp_path / "net", NODES[:1])
    first = net.states[NODE]
    try:
        size = first.ledger.size
        with pytest.raises(DataDirLockedError) as caught:
            build_state(first.settings)
        err = caught.value
        assert err.holder_pid == os.getpid()
        assert str(first.settings.data_dir) in str(err) and str(os.getpid()) in str(err)
        assert "\n" not in str(err)  # one sentence, for the command line
        # The refused one touched nothing: the holder's ledger serves and writes on.
        assert (first.settings.data_dir / LOCK_NAME).read_text().strip() == str(os.getpid())
        async with net.operator(NODE) as c:
            r = await c.get(f"http://{NODE}/v1/checkpoint")
        assert r.status_code == 200 and first.ledger.size == size
    finally:
        await net.close()
    # Once the holder closes, the directory is free again.
    again = build_state(first.settings)
    await again.close()


def test_the_lock_is_refused_through_a_symlink(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / LOCK_NAME).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="lock file"):
        DataDirLock.acquire(data_dir)
    assert not (tmp_path / "elsewhere").exists()


def test_private_umask_restores_the_callers_umask(tmp_path: Path, umask_zero: None) -> None:
    with private_umask():
        (tmp_path / "inside").write_text("x")
    (tmp_path / "after").write_text("x")
    assert stat.S_IMODE((tmp_path / "inside").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "after").stat().st_mode) == 0o666


def test_make_private_leaves_symlink_targets_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.chmod(outside, 0o644)
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    (data_dir / "link").symlink_to(outside)
    make_private(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
