"""A node's data directory: private to its owner, held by one process at a time.

The directory holds the ledger (every record body and its salt), ``state.db`` and their
SQLite ``-wal``/``-shm`` files. Two rules, whatever the umask a process was started with:

* **Private.** The directory is 0700 and everything directly in it loses its group and
  other bits (files 0600). Node processes, ``creditchain up``, ``creditchain compose`` and
  the container entrypoint run under :data:`PRIVATE_UMASK`, so a file is private from the
  moment it is created; :func:`make_private` also tightens what an older version left.
* **One holder.** A running node holds an exclusive ``flock`` on ``<data_dir>/node.lock``
  for its lifetime and writes its pid there. A second process on the same directory (which
  would serve a stale checkpoint that witnesses read as a shrinking log, and fail every write)
  gets :class:`~node.errors.DataDirLockedError` naming that pid, before it opens the ledger.
  The kernel drops the lock when the holder exits, however it exits (SIGKILL included), so a
  lock file left behind never blocks a restart.

Invariants: the lock file is opened without following symlinks and read at most
``_PID_BYTES`` bytes; the lock descriptor is not inherited by child processes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from node.errors import ConfigError, DataDirLockedError

__all__ = [
    "LOCK_NAME",
    "PRIVATE_UMASK",
    "DataDirLock",
    "make_private",
    "private_umask",
    "set_private_umask",
]

#: Files and directories created under it are readable by their owner alone (0600 / 0700).
PRIVATE_UMASK = 0o077
LOCK_NAME = "node.lock"
_PID_BYTES = 32  # a pid and a newline, with room to spare


def set_private_umask() -> None:
    """Make this process's umask at least as strict as :data:`PRIVATE_UMASK`, for good."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block (or, as ``@private_umask()``, the function) under :data:`PRIVATE_UMASK`
    (at least as strict), then restore the umask.

    The umask belongs to the process: threads creating files meanwhile get it too, which
    only ever makes their files more private.
    """
    old = os.umask(PRIVATE_UMASK)
    os.umask(old | PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def make_private(data_dir: Path) -> None:
    """Make ``data_dir`` 0700 and strip group and other bits from every entry directly in it.

    Symbolic links are left alone (their mode means nothing and ``chmod`` would follow them).

    Raises:
        ConfigError: the directory or one of its entries cannot be made private (another
            user owns it): the node does not run on data others can read.
    """
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        entries = list(os.scandir(data_dir))
    except OSError as exc:
        raise ConfigError(f"cannot make data directory {data_dir} private: {exc}") from exc
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                os.chmod(entry.path, mode & 0o700)
        except FileNotFoundError:
            continue  # an SQLite -wal or -shm file that went away meanwhile
        except OSError as exc:
            raise ConfigError(
                f"{entry.path} is readable by other users and cannot be made private: {exc}"
            ) from exc


class DataDirLock:
    """The exclusive hold of one process on a data directory (see the module docstring).

    ``DataDirLock.acquire(data_dir)`` takes it or raises; ``release()`` (or leaving a
    ``with`` block) gives it back. The file stays: removing it would let a third process lock
    a fresh file while a second still waits on the old one.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Create ``data_dir`` (0700) if needed and lock it for this process.

        Raises:
            DataDirLockedError: another process (or another open of this one) holds it.
            ConfigError: the directory or its lock file cannot be created or opened.
        """
        path = data_dir / LOCK_NAME
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the lock file {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataDirLockedError(os.path.abspath(data_dir), holder) from exc
            raise ConfigError(f"cannot lock {path}: {exc}") from exc
        try:
            os.fchmod(fd, 0o600)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise ConfigError(f"cannot write the lock file {path}: {exc}") from exc
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the directory back (closing the descriptor drops the lock); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, or None (not written yet, or not a pid)."""
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < len(text) <= 10 else None
