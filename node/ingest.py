"""Ingest from the node's local data sources: JSON Lines files of records.

A source file lives under ``<data_dir>/sources/`` (nothing outside it can be
named). Each line is one record ``{"uscc", "record_type", "record_id",
"source", "observed_at", "body"}`` or a correction (``supersedes`` and
``outcome`` instead of ``record_type``). Lines are appended in batches of
1,000 — one block each — by a background task whose progress is listed by
``GET /v1/ingest``. A bad line stops the job and names the line; the batches
before it stay on the ledger (each is a committed block), nothing after it
is written. A line is at most ``max_body_bytes`` long and nests at most
:data:`ledger.MAX_JSON_DEPTH` levels; a record body (from a file or a request)
nests at most :data:`ledger.MAX_BODY_DEPTH`, so that every answer and bundle
that later carries it stays within the JSON depth limit, and a record's body
and source must fit its item of the report (:func:`ledger.check_record`).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from ledger import (
    MAX_BODY_DEPTH,
    CorrectionDraft,
    InvalidRecordError,
    LedgerError,
    RecordDraft,
    check_record,
    json_depth,
    parse_json,
    parse_uscc,
)
from node.state import NodeState

__all__ = ["check_body_depth", "parse_record_line", "start_file_ingest"]

BATCH = 1000


def check_body_depth(body: Any, where: str) -> None:
    """Refuse a record body that nests deeper than :data:`ledger.MAX_BODY_DEPTH`.

    Raises:
        InvalidRecordError: naming ``where`` and both depths.
    """
    depth = json_depth(body)
    if depth > MAX_BODY_DEPTH:
        raise InvalidRecordError(
            f"{where} nests {depth} levels of arrays and objects; a record body may nest "
            f"at most {MAX_BODY_DEPTH}"
        )


def parse_record_line(line: str, where: str) -> RecordDraft | CorrectionDraft:
    try:
        r = parse_json(line, "the line")
        parse_uscc(r["uscc"])
        check_body_depth(r["body"], "body")
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
        check_record(r["record_type"], r["source"], r["body"])
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
    limit = st.settings.max_body_bytes
    try:
        with path.open("r", encoding="utf-8") as f:
            n = 0
            while line := f.readline(limit + 1):
                n += 1
                if len(line.rstrip("\n")) > limit:
                    raise InvalidRecordError(
                        f"{path.name} line {n} is longer than {limit} characters"
                    )
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
