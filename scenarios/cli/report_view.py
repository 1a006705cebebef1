"""A verified report bundle as text a loan officer can read.

Works only on what :func:`node.bundle.verify_bundle` accepted: the summary's
current view and history, plus the bundle's own entries (parsed again for the
correction outcomes the summary leaves out). No I/O.

The current view is grouped by the sections of the group standard's report
(``ledger.SECTIONS``; the 29 items are a reconstruction from the standard's
published outline, see ``ledger/items.py``), items in the standard's order, each
record with the registry or platform that supplied it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ledger import SECTIONS, CorrectionEntry, LedgerError, item_for, parse_entry, source_for
from node.bundle import BundleSummary
from node.consortium import Manifest

__all__ = ["render_report", "render_verification"]

# The first-format items keep the fields their reports always showed, in that order.
_KEY_FIELDS: Mapping[str, tuple[str, ...]] = {
    "registration": (
        "name",
        "status",
        "industry",
        "size",
        "registered_capital_minor",
        "legal_representative",
    ),
    "admin_penalty": (
        "decision_no",
        "amount_minor",
        "reason",
        "status",
        "resolved_on",
        "authority",
    ),
    "judicial_enforcement": ("case_no", "amount_minor", "status", "court"),
}


def _money(minor: Any) -> str:
    if isinstance(minor, int) and not isinstance(minor, bool):
        return f"¥{minor // 100:,}.{minor % 100:02d}"
    return str(minor)


def _known(record_type: str) -> bool:
    try:
        item_for(record_type)
    except LedgerError:
        return False
    return True


def _fields(record_type: str, body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)
    names = _KEY_FIELDS.get(record_type) or (
        item_for(record_type).summary if _known(record_type) else tuple(list(body)[:5])
    )
    parts = []
    for name in names:
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, list):
            parts.append(f"{name.replace('_', ' ')}: {len(value)}")
        elif name.endswith("_bp") and isinstance(value, int):
            parts.append(f"{name[:-3].replace('_', ' ')} {value / 100:.2f}%")
        elif name.endswith("_minor"):
            parts.append(f"{name[:-6].replace('_', ' ')} {_money(value)}")
        else:
            parts.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(parts)


def _entries(bundle: Mapping[str, Any]) -> dict[tuple[str, int], Any]:
    """(node, index) → parsed entry, for every record in the (already verified) bundle."""
    out: dict[tuple[str, int], Any] = {}
    for holder in bundle.get("report", {}).get("holders", []):
        for item in holder.get("records", []):
            try:
                out[(str(holder["node_id"]), int(item["index"]))] = parse_entry(
                    base64.b64decode(item["entry"])
                )
            except (LedgerError, KeyError, TypeError, ValueError):
                continue
    return out


def _authorization_id(report: Mapping[str, Any]) -> str:
    try:
        entry = parse_entry(base64.b64decode(report["authorization"]["entry"]))
    except (LedgerError, KeyError, TypeError, ValueError):
        return "?"
    return str(getattr(entry, "authorization_id", "?"))


def _city(manifest: Manifest | None, node_id: str) -> str:
    if manifest is not None and manifest.has(node_id):
        return manifest.node(node_id).city_name
    return ""


def render_verification(summary: BundleSummary) -> str:
    """What offline verification checked, in one line."""
    n = sum(summary.holders.values())
    return (
        f"verified offline against the manifest: the home node's signature, the authorization's inclusion, "
        f"{len(summary.holders)} holder checkpoint{'s' if len(summary.holders) != 1 else ''}, {n} "
        f"record{'s' if n != 1 else ''} "
        "(inclusion proofs and body commitments), "
        "the home receipt"
        + (
            f", {len(summary.disputes)} objection{'s' if len(summary.disputes) != 1 else ''} "
            "(the enterprise's signature, inclusion, dispute marks)"
            if summary.disputes
            else ""
        )
    )


def render_report(
    summary: BundleSummary,
    bundle: Mapping[str, Any],
    manifest: Manifest | None = None,
    institution_name: str | None = None,
) -> str:
    """The readable report: enterprise, holders, current view by type, superseded history, gaps."""
    report = bundle.get("report", {})
    entries = _entries(bundle)
    by_id = {d["record_id"]: d for d in summary.history}

    def base_type(d: dict[str, Any]) -> str:
        seen = set()
        while (
            d.get("kind") == "correction"
            and d.get("supersedes") in by_id
            and d["record_id"] not in seen
        ):
            seen.add(d["record_id"])
            d = by_id[d["supersedes"]]
        return str(d.get("record_type") or "correction")

    name = next(
        (
            d["body"].get("name")
            for d in summary.current
            if d.get("record_type") == "registration" and isinstance(d.get("body"), dict)
        ),
        None,
    )
    lines = [f"Credit report on {summary.uscc}" + (f" — {name}" if name else "")]
    inst = summary.institution_id + (f" ({institution_name})" if institution_name else "")
    lines.append(
        f"  query {summary.query_id}, asked {report.get('asked_at', '?')} by {inst} through "
        f"{summary.home_node} ({_city(manifest, summary.home_node)})"
    )
    lines.append(f"  purpose {summary.purpose}, authorization {_authorization_id(report)}")
    lines.append("  " + render_verification(summary))
    if summary.partial:
        gone = "; ".join(
            f"{m.get('node_id')} ({_city(manifest, str(m.get('node_id')))}): {m.get('reason')}"
            for m in summary.missing
        )
        lines.append(
            f"  PARTIAL REPORT — {len(summary.missing)} "
            f"holder{'s' if len(summary.missing) != 1 else ''} missing: {gone}"
        )
    else:
        lines.append("  complete: every holder answered")
    for t in summary.truncated:
        lines.append(
            f"  TRUNCATED — {t['node_id']} ({_city(manifest, str(t['node_id']))}) holds "
            f"{t['total']} records on this enterprise and sent {t['included']} (its cap); "
            "superseded records were left out first, corrections last"
        )

    lines.append("")
    lines.append("Holders")
    lines.append(f"  {'node':<8} {'city':<12} {'records':>7}")
    cut = {str(t["node_id"]): t for t in summary.truncated}
    for node_id, count in sorted(summary.holders.items()):
        of = f" of {cut[node_id]['total']}" if node_id in cut else ""
        lines.append(f"  {node_id:<8} {_city(manifest, node_id):<12} {count:>7}{of}")
    for m in summary.missing:
        lines.append(
            f"  {m.get('node_id', '?'):<8} {_city(manifest, str(m.get('node_id'))):<12} {'missing':>7}"
        )

    lines.append("")
    lines.append(
        "Current view (corrections applied), by the sections of the group standard's report"
    )
    if not summary.current:
        lines.append("  (no records)")
    groups: dict[str, list[dict[str, Any]]] = {}
    for d in summary.current:
        rtype = base_type(d)
        section = item_for(rtype).section if _known(rtype) else "unknown"
        groups.setdefault(section, []).append(d)
    titles = {x.key: f"{x.title} {x.title_zh}" for x in SECTIONS}
    for key in [*titles, "unknown"] if summary.current else []:
        rows = sorted(
            groups.get(key, []),
            key=lambda d: (_rank(base_type(d)), d["observed_at"], d["node_id"]),
        )
        if key == "unknown" and not rows:
            continue
        title = titles.get(key, "Records of no known item")
        tally = f"{len(rows)} record{'s' if len(rows) != 1 else ''}" if rows else "no records"
        lines.append(f"  {title} — {tally}")
        for d in rows:
            rtype = base_type(d)
            text = _fields(rtype, d["body"])
            if d["kind"] == "correction":
                entry = entries.get((d["node_id"], d["index"]))
                outcome = entry.outcome if isinstance(entry, CorrectionEntry) else "amended"
                text = (
                    f"{outcome.upper()} by correction {d['record_id']} "
                    f"(supersedes {d['supersedes']}): {text}"
                )
            number = f"{item_for(rtype).number:02d}" if _known(rtype) else "--"
            lines.append(
                f"    {number} {rtype:<21} {d['node_id']:<6} {d['observed_at'][:10]}  {text}"
                f"  [source {_source(d)}]"
            )
            if d.get("objection"):
                lines.append(f"    {'':<24} {_dispute_text(d)}")

    current_keys = {(d["node_id"], d["index"]) for d in summary.current}
    superseded = [d for d in summary.history if (d["node_id"], d["index"]) not in current_keys]
    if superseded:
        lines.append("")
        lines.append(
            f"History: {len(superseded)} superseded record{'s' if len(superseded) != 1 else ''}, "
            "kept on the ledgers"
        )
        later = {d.get("supersedes"): d for d in summary.history if d.get("kind") == "correction"}
        for d in sorted(superseded, key=lambda d: (d["observed_at"], d["node_id"])):
            by = later.get(d["record_id"])
            tail = (
                f" → superseded by {by['record_id']} ({by['observed_at'][:10]})"
                if by
                else " → withdrawn"
            )
            lines.append(
                f"  {base_type(d):<21} {d['node_id']:<6} {d['observed_at'][:10]}  "
                f"{_fields(base_type(d), d['body'])}{tail}  [source {_source(d)}]"
            )
            if d.get("objection"):
                lines.append(f"  {'':<21} {_dispute_text(d)}")
    return "\n".join(lines)


def _dispute_text(d: Mapping[str, Any]) -> str:
    """The record's objection, as the report shows it (node.disputes)."""
    o = d["objection"]
    if d.get("disputed"):
        return (
            f"DISPUTED — objection {o['objection_id']} filed {o['filed_at'][:10]}, "
            f"reply due {o['due_at'][:10]}"
        )
    late = " (after the deadline)" if o.get("late") else ""
    said = {
        "upheld": "record upheld, flag removed",
        "unverifiable": "could not be verified; the objection and the verification are on file",
        "corrected": f"corrected by {o.get('correction_id')}",
    }.get(str(o["status"]), str(o["status"]))
    return f"objection {o['objection_id']}: {said}, {str(o.get('decided_at', ''))[:10]}{late}"


def _rank(record_type: str) -> int:
    return item_for(record_type).number if _known(record_type) else 99


def _source(d: Mapping[str, Any]) -> str:
    """The record's source id and the registry behind it: ``hz-amr, market regulator``."""
    source = str(d.get("source") or "?")
    found = source_for(source)
    return f"{source}, {found.name} {found.name_zh}" if found else source
