"""A node checks its ledger before it signs anything on it, and refuses a bad one.

One node (Hangzhou) in process takes records through ``POST /v1/ingest``, then
stops; its ledger file is then damaged or rolled back behind its back, and the
node is started again, both as ``build_state`` (what ``create_app`` runs) and as
the command line (``python -m node``'s ``main``, in process):

* a ledger smaller than a size the node signed (a restored backup, a ledger file
  gone) or a witness cosigned is refused with ``LedgerBehindError``, naming the
  file and both sizes;
* a damaged file (one 4 KiB page overwritten; a last block, tile or entry changed
  with the SQLite file still well formed) is refused with ``CorruptLedgerError``,
  naming the file;
* either way the command line prints one sentence and exits 2, and the ledger file
  is left exactly as it was.

The real-process version (SIGKILL, then the WAL deleted) is
``tests/e2e/test_startup_refusals.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.inproc import Net, make_net
from support.inproc_world import net_dir

from ledger import CorruptLedgerError, Ledger, StoreError, make_uscc
from ledger.fsck import verify_ledger
from ledger.store import LEDGER_TABLES, Store
from node.__main__ import main
from node.app import build_state
from node.errors import LedgerBehindError
from node.peers.mirror import mirror_once
from node.settings import NodeSettings
from node.views import PeerViews
from scenarios.cli import cli

HZ = ("hz-1", "hz", "330100")
HF = ("hf-1", "hf", "340100")
PAGE = 4096


def records(batch: int, n: int = 100) -> list[dict[str, object]]:
    return [
        {
            "uscc": make_uscc("330100", 1000 * batch + k).code,
            "record_type": "tax_rating",
            "record_id": f"hz-1:t{batch}-{k}",
            "source": "hz-tax",
            "observed_at": "2021-10-31T08:00:00Z",
            "body": {"rating": "ABCDM"[k % 5], "note": "x" * 200},
        }
        for k in range(n)
    ]


async def ingest(net: Net, batch: int, n: int = 100) -> int:
    """Post one batch to hz-1; returns the ledger size the node acknowledged."""
    async with net.operator("hz-1") as c:
        r = await c.post("http://hz-1/v1/ingest", json={"records": records(batch, n)})
    assert r.status_code == 202, r.text
    return int(r.json()["size"])


def backup(path: Path, to: Path) -> None:
    """A consistent copy of a live ledger (SQLite's online backup)."""
    src, dst = sqlite3.connect(str(path)), sqlite3.connect(str(to))
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def replace_ledger(path: Path, with_file: Path | None) -> None:
    """Put ``with_file`` where the ledger was (None: no ledger at all); no WAL survives."""
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.unlink()
    if with_file is not None:
        shutil.copyfile(with_file, path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Stopped:
    """A node that ran and stopped: its settings, and the config file ``main`` reads."""

    settings: NodeSettings
    config: Path
    acknowledged: int
    backup: Path  # a copy of the ledger after the first batch

    @property
    def ledger(self) -> Path:
        return self.settings.ledger_path


def write_config(settings: NodeSettings, path: Path) -> Path:
    path.write_text(json.dumps(settings.to_dict()))
    return path


@pytest.fixture
async def stopped(tmp_path: Path) -> AsyncIterator[Stopped]:
    """hz-1 took three batches of 100 records (a backup kept after the first), then stopped."""
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", [HZ])
        try:
            st = net.states["hz-1"]
            first = await ingest(net, 1)
            backup(st.settings.ledger_path, root / "backup.db")
            assert Ledger.open(root / "backup.db", readonly=True).size == first
            acked = [await ingest(net, b) for b in (2, 3)][-1]
            settings = st.settings
        finally:
            await net.close()
        yield Stopped(
            settings, write_config(settings, root / "hz-1.json"), acked, root / "backup.db"
        )


def refused_on_the_command_line(
    stopped: Stopped, capsys: pytest.CaptureFixture[str], *words: str
) -> str:
    """``python -m node`` exits 2 with one sentence on stderr holding ``words``."""
    assert main(["--config", str(stopped.config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


# --- the signed high-water mark -----------------------------------------------------------------


async def test_the_signed_size_is_recorded_before_the_ingest_is_answered(tmp_path: Path) -> None:
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", [HZ])
        try:
            st = net.states["hz-1"]
            for batch in (1, 2):
                size = await ingest(net, batch, 10)
                assert st.views.signed_size() == size == st.ledger.size
        finally:
            await net.close()


async def test_an_intact_ledger_starts_again(stopped: Stopped) -> None:
    st = build_state(stopped.settings)
    try:
        assert st.ledger.size == stopped.acknowledged
        assert st.views.signed_size() == stopped.acknowledged
    finally:
        await st.close()


def test_a_restored_backup_behind_the_signed_size_is_refused(
    stopped: Stopped, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_ledger(stopped.ledger, stopped.backup)
    before = digest(stopped.ledger)
    with pytest.raises(LedgerBehindError) as caught:
        build_state(stopped.settings)
    assert (caught.value.size, caught.value.signed_size) == (100, stopped.acknowledged)
    assert caught.value.path == str(stopped.ledger)
    refused_on_the_command_line(
        stopped,
        capsys,
        f"ledger {stopped.ledger} holds 100 entries",
        f"fewer than the {stopped.acknowledged} this node has signed",
        str(stopped.settings.state_path),
    )
    assert digest(stopped.ledger) == before  # nothing signed on top of it
    assert Ledger.open(stopped.ledger, readonly=True).size == 100


def test_a_missing_ledger_is_not_created_afresh_when_the_node_signed_one(
    stopped: Stopped, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_ledger(stopped.ledger, None)
    with pytest.raises(LedgerBehindError):
        build_state(stopped.settings)
    refused_on_the_command_line(
        stopped, capsys, f"ledger {stopped.ledger} holds 0 entries", str(stopped.acknowledged)
    )
    assert not stopped.ledger.exists()  # a fresh ledger would be a second history


async def test_a_witness_cosignature_beyond_the_ledger_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state.db with no signed size (written before it was kept) still holds the
    cosignatures a witness gave; a ledger behind the largest is refused."""
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", [HZ, HF])
        try:
            hz, hf = net.states["hz-1"], net.states["hf-1"]
            await ingest(net, 1)
            backup(hz.settings.ledger_path, root / "backup.db")
            acked = await ingest(net, 2)
            await mirror_once(hf)  # hf-1 verifies hz-1's checkpoint and cosigns it
            assert hz.views.cosigned_size() == acked
            settings = hz.settings
        finally:
            await net.close()
        views = PeerViews(settings.state_path)
        views._x("DELETE FROM counters WHERE name = 'signed_size'", [()])
        views.close()
        stopped = Stopped(settings, write_config(settings, root / "hz-1.json"), acked, root)
        replace_ledger(settings.ledger_path, root / "backup.db")
        with pytest.raises(LedgerBehindError) as caught:
            build_state(settings)
        assert (caught.value.size, caught.value.signed_size) == (100, acked)
        refused_on_the_command_line(
            stopped, capsys, "holds 100 entries", f"the {acked} a witness has cosigned"
        )


# --- a damaged file ---------------------------------------------------------------------------


def overwrite_page(which: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        pages = path.stat().st_size // PAGE
        page = {"first": 1, "middle": pages // 2, "last": pages}[which]
        with path.open("r+b") as f:
            f.seek((page - 1) * PAGE)
            f.write(random.Random(page).randbytes(PAGE))

    return damage


def with_sql(*statements: str) -> Callable[[Path], None]:
    """Run SQL on the file with the append-only triggers dropped (the file stays well formed)."""

    def damage(path: Path) -> None:
        db = sqlite3.connect(str(path), isolation_level=None)
        try:
            for table in LEDGER_TABLES:
                for op in ("update", "delete"):
                    db.execute(f"DROP TRIGGER {table}_no_{op}")
            for sql in statements:
                db.execute(sql)
        finally:
            db.close()
        Store(path).close()  # the triggers back: a well-formed ledger file, its data changed

    return damage


def flip_last_signature(path: Path) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        note = bytes(db.execute("SELECT note FROM blocks ORDER BY height DESC").fetchone()[0])
    finally:
        db.close()
    text, _, line = note.decode().rstrip("\n").rpartition("\n")
    dash, name, sig = line.split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    forged = f"{text}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    with_sql(
        f"UPDATE blocks SET note = x'{forged.hex()}' WHERE height = (SELECT max(height) FROM blocks)"
    )(path)


DAMAGE = {
    "first page overwritten": (overwrite_page("first"), "quick_check"),
    "middle page overwritten": (overwrite_page("middle"), "quick_check"),
    "last page overwritten": (overwrite_page("last"), "quick_check"),
    "last block's signature": (flip_last_signature, "does not verify"),
    "partial tile edited": (
        with_sql(
            "UPDATE tiles SET hashes = zeroblob(length(hashes)) WHERE level = 0 AND "
            "width = (SELECT max(width) FROM tiles WHERE level = 0 AND idx = "
            "(SELECT max(idx) FROM tiles WHERE level = 0)) AND idx = "
            "(SELECT max(idx) FROM tiles WHERE level = 0)"
        ),
        "do not hash to the signed root",
    ),
    "entry of the last tile edited": (
        # the last tile holds entries 256..299; its stored leaf hashes are left as they were
        with_sql("UPDATE entries SET data = CAST(data || ' ' AS BLOB) WHERE idx = 290"),
        "entry 290 does not hash to its leaf",
    ),
    "last entry deleted": (
        with_sql("DELETE FROM entries WHERE idx = 299"),
        "299 entries are stored",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_ledger_is_refused(
    stopped: Stopped, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    damage, found = DAMAGE[case]
    assert not Path(f"{stopped.ledger}-wal").exists()  # the node checkpointed on close
    damage(stopped.ledger)
    try:  # what the issue saw: ledger verify finds it (or cannot read the file at all)
        seen_by_verify = not verify_ledger(stopped.ledger).ok
    except StoreError:
        seen_by_verify = True
    assert seen_by_verify
    before = digest(stopped.ledger)
    checked = CliRunner().invoke(cli, ["ledger", "check", str(stopped.ledger)])
    assert checked.exit_code == 1, checked.output
    assert f"ledger {stopped.ledger} is damaged" in checked.output and found in checked.output
    assert digest(stopped.ledger) == before
    with pytest.raises(CorruptLedgerError) as caught:
        build_state(stopped.settings)
    assert caught.value.path == str(stopped.ledger)
    assert found in caught.value.reason, caught.value.reason
    refused_on_the_command_line(
        stopped, capsys, f"ledger {stopped.ledger} is damaged", found, "refusing to use it"
    )
    assert digest(stopped.ledger) == before


def test_ledger_check_passes_an_undamaged_ledger(stopped: Stopped) -> None:
    """`creditchain ledger check` is the node's open-time check, run by hand."""
    before = digest(stopped.ledger)
    checked = CliRunner().invoke(cli, ["ledger", "check", str(stopped.ledger)])
    assert checked.exit_code == 0, checked.output
    assert "300 entries" in checked.output and "ok in" in checked.output
    assert digest(stopped.ledger) == before
    missing = CliRunner().invoke(cli, ["ledger", "check", str(stopped.ledger) + ".gone"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
