"""Every record reaches the report: a holder pages a long answer, and a holder
over its cap says so, per holder, with counts, checked offline.

Reproduced on the old code: with 604 records for one enterprise the signed
bundle carried the oldest 500, ``partial: false``, nothing in ``missing``: the
newest record (an administrative penalty) was gone.
"""

from __future__ import annotations

import base64

import pytest

from ledger import canonical_bytes, parse_entry
from node.bundle import verify_bundle
from node.errors import BundleError


def _records(uscc: str, n: int, *, first: int = 0) -> list[dict]:
    out = [
        {
            "uscc": uscc,
            "record_type": "social_insurance",
            "record_id": f"hf-1:si{i}",
            "source": "hf-hrss",
            "observed_at": "2021-01-01T00:00:00Z",
            "body": {"month": i, "insured": 10 + i % 7},
        }
        for i in range(first, first + n)
    ]
    return out


async def _ingest(world, records: list[dict]) -> None:
    async with world.net.operator("hf-1") as c:
        for start in range(0, len(records), 1000):
            r = await c.post(
                "http://hf-1/v1/ingest", json={"records": records[start : start + 1000]}
            )
            assert r.status_code == 202, r.text


def _penalty(uscc: str) -> dict:
    return {
        "uscc": uscc,
        "record_type": "admin_penalty",
        "record_id": "hf-1:p-newest",
        "source": "hf-amr",
        "observed_at": "2021-10-01T00:00:00Z",
        "body": {"amount_minor": 5_000_000},
    }


def _ids(section: dict) -> list[str]:
    return [parse_entry(base64.b64decode(r["entry"])).record_id for r in section["records"]]


@pytest.mark.asyncio
async def test_ten_thousand_records_of_one_enterprise_all_reach_the_report(world):
    await _ingest(world, [*_records(world.uscc, 10_000), _penalty(world.uscc)])
    hf = world.state("hf-1")
    assert hf.settings.records_per_page == 500  # so this answer takes 21 pages
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    [section] = [h for h in bundle["report"]["holders"] if h["node_id"] == "hf-1"]
    ids = _ids(section)
    assert len(ids) == 10_004 == len(set(ids)) == section["records_total"]
    assert section["truncated"] is False
    assert "hf-1:p-newest" in ids and "hf-1:p1c" in ids
    assert bundle["report"]["partial"] is False and bundle["report"]["missing"] == []
    summary = verify_bundle(bundle, world.manifest)
    assert summary.holders["hf-1"] == 10_004 and summary.truncated == []
    assert "hf-1:p-newest" in {d["record_id"] for d in summary.current}
    receipt = parse_entry(base64.b64decode(section["receipt"]["entry"]))
    assert (receipt.records, receipt.reason) == (10_004, "complete")
    assert hf.pages == {}  # the paged answer is closed once its last page is sent

    # A section cut on the way (even re-signed by the home node) contradicts the
    # holder's receipt, offline.
    report = bundle["report"]
    section["records"] = section["records"][:500]
    section["records_total"] = 500
    signature = world.net.keys["hz-1"].sign(canonical_bytes(report))
    cut = {"report": report, "signature": base64.b64encode(signature).decode()}
    with pytest.raises(BundleError) as caught:
        verify_bundle(cut, world.manifest)
    assert caught.value.reason == "inconsistent"
    assert "served 10004" in str(caught.value)


@pytest.mark.asyncio
async def test_a_holder_over_its_cap_says_so_and_keeps_corrections_and_current_records(world):
    hf = world.state("hf-1")
    hf.settings = hf.settings.with_(max_records_per_holder=50, records_per_page=20)
    await _ingest(world, [*_records(world.uscc, 100), _penalty(world.uscc)])
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    [section] = [h for h in bundle["report"]["holders"] if h["node_id"] == "hf-1"]
    ids = _ids(section)
    assert (len(ids), section["records_total"], section["truncated"]) == (50, 104, True)
    # the correction and the newest records stay; the record it superseded goes first,
    # then the oldest current records
    assert "hf-1:p1c" in ids and "hf-1:p-newest" in ids and "hf-1:si99" in ids
    assert "hf-1:p1" not in ids and "hf-1:r1" not in ids
    summary = verify_bundle(bundle, world.manifest)
    assert summary.truncated == [{"node_id": "hf-1", "total": 104, "included": 50}]
    from scenarios.cli.report_view import render_report

    printed = render_report(summary, bundle, world.manifest)
    assert "TRUNCATED — hf-1" in printed and "holds 104 records" in printed
    receipt = parse_entry(base64.b64decode(section["receipt"]["entry"]))
    assert receipt.records == 50
    assert receipt.reason == "truncated: 50 of 104 records (max_records_per_holder)"


@pytest.mark.asyncio
async def test_a_page_of_a_query_never_granted_is_refused(world, problem):
    async with world.net.operator("hz-1") as c:
        r = await c.post(
            "http://hf-1/v1/peer/records",
            json={
                "query_id": "never-asked",
                "uscc": world.uscc,
                "purpose": "post_loan",
                "institution_id": "hzbank",
                "page": {"after": 0},
            },
        )
    problem(r, 404, "not-found")
