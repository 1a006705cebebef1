"""Node processes: spawned detached with their logs, waited for until healthy.

And until they have mirrored each other (``wait_mirrored``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ledger import parse_json, utc_now
from scenarios.errors import MirrorStalledError, NetworkError
from scenarios.localnet.consortium import (
    Consortium,
    pid_alive,
)


# --- node processes ------------------------------------------------------------------
def spawn(cons: Consortium, node_id: str) -> int:
    """Start ``python -m node`` for one node: its own session, output to its log file."""
    log = cons.log_path(node_id)
    # Logs are the node operator's alone (0700 directory, 0600 files), like its data.
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log.parent.chmod(0o700)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"--- {utc_now()} starting {node_id} on port {cons.ports[node_id]}\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NODE_")
    }  # NODE_* would override settings
    env["PYTHONUNBUFFERED"] = "1"
    # -P: do not put the current directory on sys.path (a stray ./node must not shadow the package).
    argv = [
        sys.executable,
        "-P",
        "-m",
        "node",
        "--config",
        str(cons.settings_path(node_id).resolve()),
    ]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # posix_spawn, not subprocess.Popen: the node outlives this process, and a
    # Popen object for a still-running child warns when collected.
    pid = os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
    cons.pid_path(node_id).write_text(f"{pid}\n")
    return pid


def _log_tail(cons: Consortium, node_id: str, lines: int = 3) -> str:
    try:
        text = cons.log_path(node_id).read_text("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    tail = [ln for ln in text if not ln.startswith("---")][-lines:]
    return " | ".join(t.strip() for t in tail)


def _get(client: httpx.Client, url: str) -> dict[str, Any] | None:
    try:
        r = client.get(url)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        data = parse_json(r.content, "health")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def wait_healthy(cons: Consortium, pids: Mapping[str, int], timeout_s: float) -> float:
    """Wait until every node in ``pids`` answers /v1/health; returns the seconds waited."""
    t0 = time.monotonic()
    waiting = set(pids)
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            for node_id in sorted(waiting):
                if not pid_alive(pids[node_id], cons.settings_path(node_id)):
                    tail = _log_tail(cons, node_id)
                    raise NetworkError(
                        f"node {node_id} exited while starting ({tail or 'no output'}); "
                        f"see {cons.log_path(node_id)}"
                    )
                h = _get(client, cons.url(node_id) + "/v1/health")
                if h and h.get("node_id") == node_id:
                    waiting.discard(node_id)
            if not waiting:
                break
            if time.monotonic() - t0 > timeout_s:
                raise NetworkError(
                    f"nodes {', '.join(sorted(waiting))} did not become healthy within {timeout_s:.0f} s; "
                    f"see their logs in {cons.dir / 'logs'}"
                )
            time.sleep(0.2)
    return time.monotonic() - t0


def node_infos(
    cons: Consortium, node_ids: Iterable[str] | None = None, timeout_s: float = 3.0
) -> dict[str, dict[str, Any] | None]:
    """GET /v1/info of each node in parallel; None for a node that does not answer."""
    ids = list(node_ids if node_ids is not None else cons.node_ids)
    with (
        httpx.Client(timeout=timeout_s) as client,
        ThreadPoolExecutor(max_workers=max(1, len(ids))) as pool,
    ):
        answers = list(pool.map(lambda n: _get(client, cons.url(n) + "/v1/info"), ids))
    return dict(zip(ids, answers, strict=True))


def mirror_lag(infos: Mapping[str, dict[str, Any] | None]) -> list[tuple[str, str, int, int]]:
    """(node, peer, entries the node has of the peer, peer's size) for every lagging pair."""
    sizes = {n: int(i["size"]) for n, i in infos.items() if i}
    lag = []
    for n, info in infos.items():
        if not info:
            continue
        for p in info.get("peers", []):
            peer = p["node_id"]
            if peer not in sizes:
                continue
            have = min(int(p.get("seen_size") or 0), int(p.get("mirrored") or 0))
            if have != sizes[peer]:
                lag.append((n, peer, have, sizes[peer]))
    return lag


def wait_mirrored(
    cons: Consortium,
    timeout_s: float,
    node_ids: Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> float:
    """Wait until every node has seen and mirrored every peer's current tree; returns seconds waited.

    A big network mirrors for minutes (every node pulls every peer's entry
    metadata), so ``timeout_s`` bounds the time *without progress*, not the
    total. With ``progress`` a tqdm bar counts mirrored entries.

    Raises:
        NetworkError: no progress for ``timeout_s`` (names the slowest links) or a node stopped answering.
    """
    from tqdm import tqdm

    ids = list(node_ids or cons.node_ids)
    t0 = last_move = time.monotonic()
    least_behind = math.inf  # progress is a new low of the entries still to mirror
    bar = None
    silent_since: dict[str, float] = {}
    try:
        while True:
            # A node busy catching up (millions of catalogue rows) may take seconds to answer:
            # it has stopped only when it stays silent for timeout_s.
            infos = node_infos(cons, ids, timeout_s=10.0)
            now = time.monotonic()
            silent = [n for n, i in infos.items() if i is None]
            for n in ids:
                if n in silent:
                    silent_since.setdefault(n, now)
                else:
                    silent_since.pop(n, None)
            gone = [n for n in silent if now - silent_since[n] > timeout_s]
            if gone:
                raise NetworkError(
                    f"nodes {', '.join(gone)} stopped answering while the network was mirroring; "
                    f"see their logs in {cons.dir / 'logs'}"
                )
            if silent:
                time.sleep(0.5)
                continue
            lag = mirror_lag(infos)
            if not silent and not lag:
                if bar is not None:
                    bar.update(bar.total - bar.n)
                return time.monotonic() - t0
            behind = sum(size - have for _, _, have, size in lag)
            if bar is None and progress and behind > 20_000:
                bar = tqdm(
                    total=behind,
                    unit="entry",
                    unit_scale=True,
                    desc="mirroring",
                    dynamic_ncols=True,
                )
            if bar is not None:
                bar.total = max(bar.total, bar.n + behind)
                bar.update(max(0, bar.total - behind - bar.n))
            if behind < least_behind:
                least_behind, last_move = behind, time.monotonic()
            if time.monotonic() - last_move > timeout_s:
                worst = sorted(lag, key=lambda t: t[2] - t[3])[:3]
                detail = "; ".join(
                    f"{n} has {have} of {p}'s {size} entries" for n, p, have, size in worst
                )
                raise MirrorStalledError(
                    f"mirroring made no progress for {timeout_s:.0f} s ({len(lag)} links "
                    f"behind: {detail})"
                )
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.close()
