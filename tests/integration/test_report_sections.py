"""A report groups its records by the sections of the group standard, each with its source."""

from __future__ import annotations

import pytest

from ledger import SECTIONS
from node.bundle import verify_bundle
from scenarios.cli.report_view import render_report

BALANCE = {
    "year": 2020,
    "total_assets_minor": 500_000_000,
    "total_liabilities_minor": 200_000_000,
    "equity_minor": 300_000_000,
    "current_assets_minor": 250_000_000,
    "current_liabilities_minor": 120_000_000,
}
WATER = {"tonnes": 12_000, "year": 2020, "paid_minor": 5_400_000, "arrears_minor": 0,
         "overdue_months": 0}  # fmt: skip


def _record(uscc: str, rid: str, record_type: str, source: str, body: dict) -> dict:
    return {
        "uscc": uscc,
        "record_type": record_type,
        "record_id": rid,
        "source": source,
        "observed_at": "2021-05-01T00:00:00Z",
        "body": body,
    }


@pytest.mark.asyncio
async def test_a_report_groups_by_section_and_names_each_source(world, problem):
    u = world.uscc
    async with world.net.operator("hf-1") as c:
        r = await c.post(
            "http://hf-1/v1/ingest",
            json={
                "records": [
                    _record(u, "hf-1:bs", "balance_sheet", "hf-tax", BALANCE),
                    _record(u, "hf-1:w", "water_payment", "hf-water", WATER),
                ]
            },
        )
        assert r.status_code == 202, r.text
        # a new item's body is checked at ingest: a malformed one is a problem, nothing written
        bad = dict(BALANCE, year="2020")
        r = await c.post(
            "http://hf-1/v1/ingest",
            json={"records": [_record(u, "hf-1:bs2", "balance_sheet", "hf-tax", bad)]},
        )
        body = problem(r, 422, "invalid-record")
        assert "records[0]: the body of a balance_sheet record (item 12" in body["detail"]
        assert "body.year" in body["detail"]
        r = await c.post(
            "http://hf-1/v1/ingest",
            json={"records": [_record(u, "hf-1:w2", "water_payment", "hf-court", WATER)]},
        )
        assert "<place>-water (water utility)" in problem(r, 422, "invalid-record")["detail"]
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    summary = verify_bundle(bundle, world.manifest)
    # registration + resolved penalty (hf-1), enforcement (sh-1), tax rating (hz-1), two new
    assert summary.sections == {
        "registration": 1,
        "operations": 1,
        "finances": 1,
        "tax": 1,
        "public_credit": 1,
        "judicial": 1,
    }
    by_id = {d["record_id"]: d for d in summary.history}
    assert by_id["hf-1:p1c"]["item"] == "admin_penalty"  # a correction keeps its item
    assert by_id["hf-1:p1c"]["section"] == "public_credit"
    assert by_id["hf-1:bs"]["source"] == "hf-tax"

    printed = render_report(summary, bundle, world.manifest)
    lines = printed.splitlines()
    heads = [n for n, line in enumerate(lines) if line.startswith("  ") and " — " in line
             and not line.startswith("    ")]  # fmt: skip
    titles = [lines[n].strip().split(" — ")[0] for n in heads]
    assert titles == [f"{s.title} {s.title_zh}" for s in SECTIONS]
    assert "Other 其他信息 — no records" in printed

    def section_of(text: str) -> str:
        n = next(n for n, line in enumerate(lines) if text in line)
        return lines[max(h for h in heads if h < n)].strip().split(" ")[0]

    assert section_of("12 balance_sheet") == "Finances"
    assert section_of("08 water_payment") == "Operations"
    assert section_of("19 admin_penalty") == "Public"
    assert section_of("24 judicial_enforcement") == "Judicial"
    water = next(line for line in lines if "08 water_payment" in line)
    assert "[source hf-water, water utility 供水企业]" in water
    assert "[source hf-amr, market regulator" in next(
        line for line in lines if "01 registration" in line
    )
