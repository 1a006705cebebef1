"""The ledger bench's result as a table and its failed checks."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("MiB", "bytes") or value < 100:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def format_table(result: dict[str, Any]) -> str:
    """The result as a plain-text table: figure, ours, baseline, ratio (ours / baseline)."""
    pm = result["pymerkle"]
    if "skipped" in pm:
        pm_note = f"pymerkle {pm['skipped']}"
    else:
        pm_note = (
            f"pymerkle {pm['version']}: "
            f"{pm['sqlite_inclusion_count']}/{pm['sqlite_consistency_count']} SqliteTree and "
            f"{pm['inmemory_inclusion_count']}/{pm['inmemory_consistency_count']} InmemoryTree "
            "inclusion/consistency proofs "
            f"(of {pm['proofs_requested']} asked, {pm['budget_s']:.0f} s budget each)"
        )
    m = result["machine"]
    lines = [
        f"bench ledger: n={result['n']:,} batch={result['batch']:,} proofs={result['proofs']:,} "
        f"algorithm={result['algorithm']} seed={result['seed']}",
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, SQLite {m['sqlite']}",
        pm_note,
        "",
    ]
    header = ("figure", "unit", "ours", "baseline", "ratio", "baseline is")
    rows = [header] + [
        (
            f["figure"],
            f["unit"],
            _fmt(f["ours"], f["unit"]),
            _fmt(f["baseline"], f["unit"]),
            "-" if f["ratio"] is None else f"{f['ratio']:.3g}",
            f["baseline_name"],
        )
        for f in result["figures"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 3, 4}
    for k, r in enumerate(rows):
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    checks = result["checks"]
    d = checks["differential"]
    lines.append("")
    lines.append(f"differential: {d['message']}")
    if "inclusion_paths_agree" in d:
        lines.append(
            f"  inclusion paths equal ours: {_yes(d['inclusion_paths_agree'])}; "
            "pymerkle consistency proofs reach our old and new roots: "
            f"{_yes(d['consistency_proofs_reach_our_roots'])}"
        )
    lines.append(
        "verify_ledger: "
        f"{'ok' if checks['verify_ledger_ok'] else 'FAULTS ' + '; '.join(checks['verify_ledger_faults'])}; "
        f"root recompute {'ok' if checks['root_recompute_ok'] else 'MISMATCH'}"
    )
    det = result["details"]
    lines.append(
        f"append {det['ledger']['append_s']:.1f} s over {det['ledger']['blocks']:,} blocks "
        f"(generation {det['ledger']['generate_s']:.1f} s, excluded); baseline inserts "
        f"{det['baseline']['insert_s']:.1f} s; "
        f"wall {result['wall_s']:.0f} s"
    )
    if "json_path" in result:
        lines.append(f"wrote {result['json_path']}")
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def failed_checks(result: dict[str, Any]) -> list[str]:
    """Names of the checks in ``result`` that did not pass (skipped ones are not failures)."""
    checks = result["checks"]
    failed = [name for name in ("verify_ledger_ok", "root_recompute_ok") if not checks[name]]
    d = checks["differential"]
    failed += [
        name
        for name in ("roots_agree", "inclusion_paths_agree", "consistency_proofs_reach_our_roots")
        if d.get(name) is False
    ]
    return failed
