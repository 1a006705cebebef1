"""The rogue node: rewrite a node's history behind its back, as a dishonest operator would."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import (
    CorrectionDraft,
    CorrectionEntry,
    Ledger,
    LedgerError,
    NoteSigner,
    RecordDraft,
    RecordEntry,
    parse_entry,
)
from scenarios import localnet as net
from scenarios.errors import StepFailedError

PAD_SOURCE = "rogue-pad"


# --- rogue history --------------------------------------------------------------------------------
def rewrite_history(
    cons: net.Consortium,
    node_id: str,
    alter: Mapping[str, Any],
    remove: set[str],
    pad: int | None,
    *,
    tag: str = "",
    path: Path | None = None,
) -> dict[str, Any]:
    """Rebuild a stopped node's ledger (at ``path``, default its local ledger file) with the
    same key but a different history.

    Entries are copied in order (records with their original salts, so the copy
    is identical up to the first change); records in ``remove`` are left out,
    those in ``alter`` get their body fields replaced; then ``pad`` filler
    records are appended (default: enough that the new log is longer than the
    old one, as a node that keeps operating would be). The old file is kept
    beside it as ``ledger.db.before-rogue-<time>``.
    """
    from ledger.store import Store

    path = path or cons.ledger_path(node_id)
    old = Ledger.open(path, readonly=True)
    tmp = path.with_name("ledger.db.rogue")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    signer = NoteSigner(old.origin, cons.node_key(node_id))
    Ledger.create(tmp, origin=old.origin, signer=signer, algorithm=old.algorithm).close()
    queue: list[bytes] = []

    def salts(n: int) -> bytes:
        out = b"".join(queue)
        queue.clear()
        if len(out) != n:
            raise LedgerError(f"rogue rewrite: {n} salt bytes asked, {len(out)} prepared")
        return out

    new = Ledger(Store(tmp), signer=signer, salt=salts)
    altered, removed, first_change = [], [], None
    subject = None
    try:
        size = old.size
        for start in range(0, size, 1000):
            batch: list[Any] = []
            for index, data in old.entries(start, min(size, start + 1000)):
                entry = parse_entry(data)
                if isinstance(entry, RecordEntry | CorrectionEntry):
                    salt, body = old.body(index)
                    if entry.record_id in remove:
                        removed.append(entry.record_id)
                        first_change = index if first_change is None else first_change
                        subject = subject or entry.uscc
                        continue
                    if entry.record_id in alter:
                        body = (
                            {**body, **alter[entry.record_id]}
                            if isinstance(body, dict)
                            else alter[entry.record_id]
                        )
                        altered.append(entry.record_id)
                        first_change = index if first_change is None else first_change
                        subject = subject or entry.uscc
                    queue.append(salt)
                    if isinstance(entry, RecordEntry):
                        batch.append(
                            RecordDraft(
                                entry.uscc,
                                entry.record_type,
                                entry.record_id,
                                entry.source,
                                entry.observed_at,
                                body,
                            )
                        )
                    else:
                        batch.append(
                            CorrectionDraft(
                                entry.uscc,
                                entry.record_id,
                                entry.supersedes,
                                entry.outcome,
                                entry.source,
                                entry.observed_at,
                                body,
                            )
                        )
                else:
                    batch.append(entry)
            if batch:
                new.append(batch)
        missing = (set(alter) | remove) - set(altered) - set(removed)
        if missing:
            raise StepFailedError(f"{node_id} holds no record {', '.join(sorted(missing))}")
        count = pad if pad is not None else max(1, size - new.size + 1)
        if count:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fillers = [
                RecordDraft(
                    str(subject),
                    "tax_rating",
                    f"{PAD_SOURCE}-{tag}-{k}",
                    PAD_SOURCE,
                    now,
                    {"note": "appended by the rogue node after rewriting its history"},
                )
                for k in range(count)
            ]
            queue.extend(os.urandom(16) for _ in fillers)
            new.append(fillers)
        new_size, new_height = new.size, new.height
    except BaseException:
        new.close()
        old.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        raise
    new.close()
    old.close()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"ledger.db.before-rogue-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, str(backup) + suffix)
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(tmp) + suffix)
        if src.exists():
            os.replace(src, str(path) + suffix)
    return {
        "node": node_id,
        "old_size": size,
        "new_size": new_size,
        "new_height": new_height,
        "altered": altered,
        "removed": removed,
        "padded": count,
        "first_changed_index": first_change,
        "backup": str(backup),
    }
