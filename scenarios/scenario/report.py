"""A scenario run's report directory: ``results.json``, ``summary.md`` and PNG charts.

* ``results.json`` — every step (action, timing, detail, each expectation with
  expected and actual values), every query, the network used, the failures;
* ``summary.md`` — the same as tables a person reads: steps and expectations, pass/fail;
* ``latency.png`` — seconds per query, coloured by outcome;
* ``cities.png`` — a heat map of which cities each query touched (home node,
  holders that answered, holders that were missing);
* ``bundles/<query>.json`` — the report bundles (written by the runner).

Charts use matplotlib's Agg backend (no display needed); labels are ASCII so no
font lacks a glyph.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from scenarios.scenario.results import RunResult

__all__ = ["CITY_LEVELS", "results_dict", "write_report"]

# Heat-map cell values: what a query did in a city.
CITY_LEVELS = {"": 0, "home": 1, "answered": 2, "missing": 3}
_LEVEL_NAMES = ("not touched", "home node only", "holder answered", "holder missing")
_LEVEL_COLOURS = ("#f4f4f4", "#9ecae1", "#31a354", "#de2d26")
_STATUS_COLOURS = {"granted": "#31a354", "denied": "#fd8d3c", "error": "#de2d26"}


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, set | frozenset | tuple):
        return (
            [_jsonable(x) for x in sorted(v, key=str)]
            if isinstance(v, set | frozenset)
            else [_jsonable(x) for x in v]
        )
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def results_dict(result: RunResult) -> dict[str, Any]:
    spec = result.scenario
    checks = result.checks
    steps = []
    for s in result.steps:
        steps.append(
            {
                "index": s.index,
                "id": s.id,
                "action": s.action,
                "line": s.line,
                "note": s.note,
                "started_at": s.started_at,
                "seconds": round(s.seconds, 4),
                "ok": s.ok,
                "passed": s.passed,
                "error": s.error,
                "detail": _jsonable(s.detail),
                "expectations": [
                    {
                        "key": c.key,
                        "expected": _jsonable(c.expected),
                        "actual": _jsonable(c.actual),
                        "ok": c.ok,
                        "message": c.message,
                        "line": c.line,
                    }
                    for c in s.checks
                ],
                **({"traceback": s.traceback} if s.traceback else {}),
            }
        )
    queries = []
    for q in result.queries:
        d = dataclasses.asdict(q)
        d["seconds"] = round(q.seconds, 4)
        queries.append(_jsonable(d))
    return {
        "scenario": {
            "name": spec.name,
            "description": spec.description,
            "file": spec.source,
            "topology": spec.topology.name,
            "nodes": list(spec.topology.node_ids),
            "cities": [c.code for c in spec.topology.cities],
        },
        "network": _jsonable(result.network),
        "run_tag": result.run_tag,
        "started_at": result.started_at,
        "seconds": round(result.seconds, 2),
        "ok": result.ok,
        "counts": {
            "steps": len(result.steps),
            "steps_failed": sum(not s.passed for s in result.steps),
            "expectations": len(checks),
            "passed": sum(c.ok for c in checks),
            "failed": sum(not c.ok for c in checks),
        },
        "steps": steps,
        "queries": queries,
        "failures": [c.sentence() for c in result.failures],
        "cleanup": result.cleanup,
        "charts": ["latency.png", "cities.png"],
    }


def _cell(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(_jsonable(v), ensure_ascii=False)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 90 else text[:87] + "..."


def summary_markdown(result: RunResult, data: dict[str, Any]) -> str:
    spec = result.scenario
    c = data["counts"]
    net = result.network
    lines = [
        f"# Scenario {spec.name}: {'PASS' if result.ok else 'FAIL'}",
        "",
        spec.description.strip() if spec.description else "",
        "",
        f"- file: `{spec.source}`",
        f"- network: {spec.topology.name}, {len(spec.topology.node_ids)} nodes, "
        f"{net.get('enterprises', '?')} synthetic "
        f"enterprises (seed {net.get('seed', '?')}), "
        f"{'reused' if net.get('reused') else 'started'} in `{net.get('dir')}`",
        f"- run {result.run_tag}, started {result.started_at}, {result.seconds:.1f} s "
        f"(network setup {net.get('seconds', 0):.1f} s)",
        f"- steps: {c['steps']} ({c['steps_failed']} failed); expectations: "
        f"{c['passed']}/{c['expectations']} passed",
        "",
        "## Steps",
        "",
        "| # | step | action | line | seconds | checks | result | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in data["steps"]:
        ok = sum(e["ok"] for e in s["expectations"])
        detail = s["error"] or _step_detail(s)
        lines.append(
            f"| {s['index'] + 1} | {s['id']} | {s['action']} | {s['line'] or ''} | {s['seconds']:.2f} | "
            f"{ok}/{len(s['expectations'])} | {'pass' if s['passed'] else '**FAIL**'} | {_cell(detail)} |"
        )
    lines += [
        "",
        "## Expectations",
        "",
        "| step | expectation | line | expected | actual | result |",
        "|---|---|---|---|---|---|",
    ]
    for s in data["steps"]:
        for e in s["expectations"]:
            lines.append(
                f"| {s['id']} | {e['key']} | {e['line'] or ''} | {_cell(e['expected'])} | "
                f"{_cell(e['actual'])} | "
                f"{'pass' if e['ok'] else '**FAIL**: ' + _cell(e['message'])} |"
            )
    if data["queries"]:
        lines += [
            "",
            "## Queries",
            "",
            "| query | institution | home | purpose | status | seconds | holders | missing |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for q in data["queries"]:
            status = q["status"] + (f" ({q['reason']})" if q.get("reason") else "")
            holders = ", ".join(f"{n}:{k}" for n, k in q["holders"].items())
            missing = ", ".join(m["node_id"] for m in q["missing"])
            lines.append(
                f"| {q['alias']} | {q['institution']} | {q['home_node']} | {q['purpose']} | {status} | "
                f"{q['seconds']:.3f} | {holders} | {missing} |"
            )
    if data["failures"]:
        lines += ["", "## Failures", ""] + [f"- {f}" for f in data["failures"]]
    if data["cleanup"]:
        lines += ["", "## Cleanup", ""] + [f"- {n}" for n in data["cleanup"]]
    lines += [
        "",
        "## Charts",
        "",
        "![query latency](latency.png)",
        "",
        "![cities touched](cities.png)",
        "",
    ]
    return "\n".join(lines)


def _step_detail(s: dict[str, Any]) -> str:
    d = s["detail"] or {}
    if s["action"] == "query":
        why = f" ({d.get('reason')})" if d.get("reason") else ""
        return f"{d.get('status')}{why} in {d.get('seconds', 0):.3f} s"
    if s["action"] in ("ingest", "correct"):
        return f"{len(d.get('records', []))} record(s) at {d.get('node')}"
    if s["action"] == "rogue":
        return f"{d.get('node')}: {d.get('old_size')} → {d.get('new_size')} entries"
    return ", ".join(f"{k} {v}" for k, v in d.items() if not isinstance(v, dict | list))


def _charts(result: RunResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    queries = result.queries
    cities = [c.code for c in result.scenario.topology.cities]
    names = {c.code: c.name for c in result.scenario.topology.cities}
    labels = [q.alias for q in queries]

    # Latency per query.
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(queries) + 1.5)), layout="constrained")
    if queries:
        ys = list(range(len(queries)))
        ax.barh(
            ys,
            [q.seconds for q in queries],
            color=[_STATUS_COLOURS.get(q.status, "#999999") for q in queries],
        )
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        for y, q in zip(ys, queries, strict=True):
            ax.text(q.seconds, y, f" {q.seconds:.2f} s", va="center", fontsize=8)
        ax.legend(
            handles=[Patch(color=c, label=s) for s, c in _STATUS_COLOURS.items()],
            loc="lower right",
            fontsize=8,
        )
        ax.set_xlim(0, max(q.seconds for q in queries) * 1.25 + 0.05)
    else:
        ax.text(
            0.5,
            0.5,
            "no queries in this scenario",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_yticks([])
    ax.set_xlabel("seconds (request to signed bundle)")
    ax.set_title(f"{result.scenario.name}: latency per query")
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)

    # Cities touched: query × city.
    fig, ax = plt.subplots(
        figsize=(max(6, 0.9 * len(cities) + 2.5), max(2.5, 0.45 * len(queries) + 1.8)),
        layout="constrained",
    )
    grid = [[CITY_LEVELS.get(q.cities.get(c, ""), 0) for c in cities] for q in queries] or [
        [0] * len(cities)
    ]
    cmap = ListedColormap(list(_LEVEL_COLOURS))
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], cmap.N)
    ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cities)), [names[c] for c in cities], rotation=30, ha="right")
    ax.set_yticks(range(len(grid)), labels or ["(no queries)"])
    ax.set_xticks([x - 0.5 for x in range(1, len(cities))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(grid))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.legend(
        handles=[
            Patch(color=c, label=n) for n, c in zip(_LEVEL_NAMES, _LEVEL_COLOURS, strict=True)
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )
    ax.set_title(f"{result.scenario.name}: cities each query touched")
    fig.savefig(out / "cities.png", dpi=110)
    plt.close(fig)


def write_report(result: RunResult) -> Path:
    """Write results.json, summary.md and the charts into ``result.out_dir``; returns it."""
    out = Path(result.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = results_dict(result)
    _charts(result, out)
    (out / "results.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    (out / "summary.md").write_text(summary_markdown(result, data), "utf-8")
    return out
