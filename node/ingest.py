"""Ingest from the node's local data sources: JSON Lines files of records.

A source file lives under ``<data_dir>/sources/`` (nothing outside it can be
named). Each line is one record ``{"uscc", "record_type", "record_id",
"source", "observed_at", "body"}`` or a correction (``supersedes`` and
``outcome`` instead of ``record_type``). Lines are appended in batches of
1,000 — one block each — by a background task whose progress is listed by
``GET /v1/ingest``. A bad line stops the job and names the line; the batches
before it stay on the ledger (each is a committed block), nothing after it
is written.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from ledger import CorrectionDraft, InvalidRecordError, LedgerError, RecordDraft, parse_uscc
from node.state import NodeState

__all__ = ["parse_record_line", "start_file_ingest"]

BATCH = 1000


def parse_record_line(line: str, where: str) -> RecordDraft | CorrectionDraft:
    try:
        r = json.loads(line)
        parse_uscc(r["uscc"])
        if r.get("supersedes"):
            return CorrectionDraft(
                r["uscc"],
                r["record_id"],
                r["supersedes"],
                r.get("outcome", "amended"),
                r["source"],
                r["observed_at"],
                r["body"],
            )
        return RecordDraft(
            r["uscc"], r["record_type"], r["record_id"], r["source"], r["observed_at"], r["body"]
        )
    except (ValueError, KeyError, TypeError, LedgerError) as exc:
        raise InvalidRecordError(f"{where}: {exc}") from exc


def start_file_ingest(st: NodeState, source: str) -> dict[str, Any]:
    base = (st.settings.data_dir / "sources").resolve()
    path = (base / source).resolve()
    if base not in path.parents or not path.is_file():
        raise InvalidRecordError(f"source must name a file under {base}, got {source!r}")
    job: dict[str, Any] = {
        "job_id": uuid.uuid4().hex[:12],
        "source": source,
        "status": "running",
        "records": 0,
        "error": None,
    }
    st.ingest_jobs[job["job_id"]] = job
    job["task"] = None
    task = asyncio.create_task(_run(st, path, job))
    st.metrics.setdefault("_tasks", set()).add(task)
    task.add_done_callback(st.metrics["_tasks"].discard)
    return {k: v for k, v in job.items() if k != "task"}


async def _run(st: NodeState, path: Path, job: dict[str, Any]) -> None:
    job.pop("task", None)
    batch: list[RecordDraft | CorrectionDraft] = []
    try:
        with path.open("r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                batch.append(parse_record_line(line, f"{path.name} line {n}"))
                if len(batch) >= BATCH:
                    await st.sequencer.append_now(batch)
                    job["records"] += len(batch)
                    batch = []
        if batch:
            await st.sequencer.append_now(batch)
            job["records"] += len(batch)
        job["status"] = "done"
    except Exception as exc:  # the job reports why it stopped; the ledger keeps committed batches
        job["status"] = "failed"
        job["error"] = str(exc)
    st.metrics["enterprises"], st.metrics["records"] = await asyncio.to_thread(
        st.ledger.store.record_counts
    )
