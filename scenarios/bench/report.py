"""The bench matrix report: ``report.md``, ``report.html`` and ``charts/<figure>.png``.

Input is the ``results.json`` dictionary of :mod:`scenarios.bench.matrix`.
Every figure gets one chart with two panels: the figure against node count
(one line per enterprise volume) and against volume (one line per node
count, log scale); the chain is drawn solid, its baseline dashed in the same
colour. Both reports carry the same tables: per figure, value and ratio to
the baseline for every cell.

Charts use matplotlib's Agg backend (no display needed); labels are ASCII so
no font lacks a glyph. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["fmt", "write_report"]


def fmt(value: Any) -> str:
    """A figure for a table: 3 significant digits, thousands separated; '-' for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v)))))
    return f"{v:,.{digits}f}"


def _ratio_text(r: Any) -> str:
    return "-" if r is None else f"{fmt(r)}x"


def _chart(path: Path, fig_def: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label, unit = fig_def["key"], fig_def["label"], fig_def["unit"]
    has_base = fig_def["baseline"] is not None
    volumes = sorted({int(r["enterprises"]) for r in rows})
    counts = sorted({int(r["nodes"]) for r in rows})
    fig, (ax_n, ax_v) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def series(pairs: list[tuple[int, dict[str, Any]]], k: str) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for x, r in sorted(pairs, key=lambda p: p[0]):
            v = r.get(k)
            if isinstance(v, int | float) and math.isfinite(v):
                xs.append(x)
                ys.append(float(v))
        return xs, ys

    for i, vol in enumerate(volumes):
        pairs = [(int(r["nodes"]), r) for r in rows if int(r["enterprises"]) == vol]
        c = colours[i % len(colours)]
        ax_n.plot(*series(pairs, key), marker="o", color=c, label=f"{vol:,} ent.")
        if has_base:
            ax_n.plot(
                *series(pairs, f"{key}_baseline"),
                marker="x",
                linestyle="--",
                color=c,
                label=f"{vol:,} ent. baseline",
            )
    for i, n in enumerate(counts):
        pairs = [(int(r["enterprises"]), r) for r in rows if int(r["nodes"]) == n]
        c = colours[i % len(colours)]
        ax_v.plot(*series(pairs, key), marker="o", color=c, label=f"{n} nodes")
        if has_base:
            ax_v.plot(
                *series(pairs, f"{key}_baseline"),
                marker="x",
                linestyle="--",
                color=c,
                label=f"{n} nodes baseline",
            )
    ax_n.set_xlabel("nodes")
    ax_n.set_xticks(counts)
    ax_v.set_xlabel("enterprises")
    if len(volumes) > 1:
        ax_v.set_xscale("log")
    ax_v.set_xticks(volumes)
    ax_v.set_xticklabels([f"{v:,}" for v in volumes], rotation=20)
    for ax, title in ((ax_n, "against node count"), (ax_v, "against volume")):
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    base = f" (dashed: {fig_def['baseline']})" if has_base else " (no baseline)"
    fig.suptitle(f"{label}{base}", fontsize=11)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def _figure_table(
    fig_def: dict[str, Any], rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    """Header and body: one line per node count, one column per volume: 'value (baseline, ratio)'."""
    key = fig_def["key"]
    volumes = sorted({int(r["enterprises"]) for r in rows})
    counts = sorted({int(r["nodes"]) for r in rows})
    by_cell = {(int(r["nodes"]), int(r["enterprises"])): r for r in rows}
    header = ["nodes"] + [f"{v:,} enterprises" for v in volumes]
    body = []
    for n in counts:
        line = [str(n)]
        for v in volumes:
            r = by_cell.get((n, v))
            if r is None:
                line.append("")
            elif fig_def["baseline"] is None:
                line.append(fmt(r.get(key)))
            else:
                line.append(
                    f"{fmt(r.get(key))} (baseline {fmt(r.get(key + '_baseline'))}, "
                    f"{_ratio_text(r.get(key + '_ratio'))})"
                )
        body.append(line)
    return header, body


_SUMMARY = (
    ("nodes", "nodes"),
    ("enterprises", "enterprises"),
    ("ingest rec/s", "ingest_records_per_s"),
    ("mirror s", "mirror_catchup_s"),
    ("capacity rep/s", "capacity_rps"),
    ("open-loop rate", "open_loop_rate"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("proof B", "proof_bytes_per_report"),
    ("B/enterprise", "storage_bytes_per_enterprise"),
    ("CPU ms/report", "cpu_ms_per_report"),
    ("peak RSS MiB", "node_rss_peak_mib"),
)


def _range(r: dict[str, Any], key: str) -> str:
    lo, hi = r.get(f"{key}_min"), r.get(f"{key}_max")
    return f"{fmt(r.get(f'{key}_median'))} [{fmt(lo)}-{fmt(hi)}]"


def _headline_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Node CPU per report, chain against the fan-out-matched baseline, beside the capacity ratio."""
    header = [
        "nodes",
        "enterprises",
        "node CPU ms/report (idle out)",
        "baseline ms/report",
        "CPU ratio",
        "per-round CPU ratio median [min-max]",
        "gross ms/report",
        "idle CPU s/s",
        "capacity ratio median [min-max] (IQR)",
        "rounds",
        "fan-out",
        "client ms/request chain / baseline",
        "client CPU share chain / baseline",
    ]
    body = []
    for r in rows:
        body.append(
            [
                fmt(r.get("nodes")),
                fmt(r.get("enterprises")),
                fmt(r.get("cpu_ms_per_report")),
                fmt(r.get("cpu_ms_per_report_baseline")),
                _ratio_text(r.get("cpu_ms_per_report_ratio")),
                _range(r, "cpu_ratio"),
                fmt(r.get("cpu_ms_per_report_gross")),
                fmt(r.get("idle_cpu_s_per_s")),
                f"{_range(r, 'capacity_ratio')} ({fmt(r.get('capacity_ratio_q1'))}-"
                f"{fmt(r.get('capacity_ratio_q3'))})",
                fmt(r.get("rounds")),
                fmt(r.get("fanout_per_report")),
                f"{fmt(r.get('client_cpu_ms_per_request'))} / "
                f"{fmt(r.get('client_cpu_ms_per_request_baseline'))}",
                f"{fmt(r.get('client_cpu_share'))} / {fmt(r.get('client_cpu_share_baseline'))}",
            ]
        )
    return header, body


def _stage_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One line per stage (ms per report, all nodes) and per background stage (s/s),
    one column per cell."""
    from scenarios.bench.figures import (
        BACKGROUND_STAGES,
        REPORT_STAGES,
        background_column,
        stage_column,
    )

    header = ["stage (area)"] + [f"{r['nodes']} nodes, {r['enterprises']:,}" for r in rows]
    body = [
        [f"{s} ({a}), ms/report"] + [fmt(r.get(stage_column(s, a))) for r in rows]
        for s, a in REPORT_STAGES
    ]
    for s, a in BACKGROUND_STAGES:
        for idle in (False, True):
            when = "idle" if idle else "under load"
            body.append(
                [f"{s} ({a}), s/s {when}"] + [fmt(r.get(background_column(s, idle))) for r in rows]
            )
    return header, body


_STAGES_TEXT = (
    "Wall time per report in each stage, from the nodes' node_stage_seconds histograms "
    "(scraped from /metrics before and after every phase), summed over the nodes and "
    "divided by the chain phases' reports; stages nest (request contains the rest, "
    "holder_call contains the holder's stages and peer_transport), and stages that wait "
    "(calls, transport, receipts) include the waiting. Background lines are seconds of "
    "background work per second of the phase."
)


_HEADLINE = (
    "Node CPU per report counts the node processes only (the load generator is excluded and "
    "shown apart), with the idle network's background CPU per second times the phase's "
    "seconds taken out; the baseline is the plain home with the same fan-out. The capacity "
    "ratio is the median of chain / baseline over alternated pairs of phases, with its range."
)


def _summary_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [h for h, _ in _SUMMARY]
    body = []
    for r in rows:
        line = []
        for _, k in _SUMMARY:
            v = r.get(k)
            ratio = r.get(f"{k}_ratio")
            line.append(f"{fmt(v)} ({_ratio_text(ratio)})" if ratio is not None else fmt(v))
        body.append(line)
    return header, body


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in line) + " |" for line in body]
    return "\n".join(lines)


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>" for line in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_METHOD = [
    "Each cell is a fresh network of N node processes on 127.0.0.1 (the preset's first N nodes in an order "
    "that spreads cities), seeded with E synthetic enterprises through the ledger library.",
    "Ingest: records and enterprises per second of seeding (wall time, all ledgers), beside plain "
    "SQLite inserts "
    "of the same records with the same pragmas and worker processes, run after the network is stopped.",
    "Mirroring catch-up: seconds from all nodes healthy until every node has mirrored every peer.",
    "Background: an idle phase with no requests measures the CPU-seconds per second the network "
    "burns on its own (mirroring, witnessing); it is reported apart and taken out of CPU per report.",
    "Capacity: verified cross-city reports per second with a closed loop of workers, in short "
    "phases that alternate with the baseline's (chain, baseline, chain, ...) while the network "
    "keeps running; the ratio is the median over the pairs, with its range and quartiles. "
    "Baseline: a plain FastAPI home that asks as many plain holder processes as the chain's "
    "report on that enterprise asks, concurrently, for the same record bodies (no signatures, "
    "proofs or receipts).",
    "Throughput and latency: an open loop at a constant arrival rate (load x the chain's median "
    "capacity); latency counts from the scheduled send time, so queueing behind slow responses is "
    "not hidden; the baseline runs at the same rate.",
    "The network keeps running (and mirroring) while the baseline is measured, so both sides "
    "see the same machine; node_cpu_s_per_s_in_baseline_phases (results.csv) says how much CPU "
    "its background took from the baseline's phases.",
    "Load generator: the bench process's own CPU (time.process_time) per request sent, and its "
    "largest share of one core in a phase (near 1 means the side was client-bound).",
    "Proof bytes: inclusion and consistency proof hashes plus signed checkpoint notes in a bundle; "
    "ratio to the "
    "baseline's whole response, i.e. proof overhead per byte of data.",
    "Storage: bytes of every node's ledger and state files per enterprise, after mirroring, before "
    "the queries.",
    "CPU and RSS: psutil samples of every node process during the query phases; baseline: the "
    "plain home and holder processes.",
    "Ratios are figure / baseline from the same run; read them rather than absolute numbers on a "
    "shared machine.",
]


def write_report(out: Path, results: dict[str, Any]) -> list[Path]:
    """Write charts, report.md and report.html into ``out``; returns the paths written."""
    rows = results["rows"]
    figures = results["figures"]
    charts = out / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if rows:
        for f in figures:
            path = charts / f"{f['key']}.png"
            _chart(path, f, rows)
            written.append(path)

    cfg = results["config"]
    title = f"creditchain bench: {cfg['preset']}"
    machine = results["machine"]
    mline = (
        f"{machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), "
        f"{machine.get('memory_total_mib')} MiB, Python {machine.get('python')}, SQLite "
        f"{machine.get('sqlite')}; "
        f"load average at the end {machine.get('load_average')}"
    )
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    status = []
    if results["interrupted"]:
        status.append("Interrupted: the results below are partial.")
    if results["cells_missing"]:
        status.append(f"Cells without results: {', '.join(results['cells_missing'])}.")
    for cell, err in results["cells_failed"].items():
        status.append(f"Cell {cell} failed: {err}")
    params = (
        f"open loop {cfg['duration_s']} s at {cfg['load']} x capacity, {cfg.get('rounds', 1)} "
        f"alternated pairs of {cfg['capacity_s']} s capacity phases with {cfg['concurrency']} "
        f"workers, idle phase {cfg.get('idle_s', 0)} s, {cfg['targets']} enterprise/institution "
        f"pairs, seed {cfg['seed']}"
    )

    md = [
        f"# {title}",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {mline}",
        "",
        f"Versions: {versions}",
        "",
        f"Written {results['written_at']} (started {results['started_at']}); {params}.",
        "",
    ]
    md += [s + "\n" for s in status]
    hh = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Command: <code>{html.escape(results['command'])}</code></p>",
        f"<p>Machine: {html.escape(mline)}</p>",
        f"<p>Versions: {html.escape(versions)}</p>",
        f"<p>Written {html.escape(results['written_at'])} (started {html.escape(results['started_at'])}); "
        f"{html.escape(params)}.</p>",
    ]
    hh += [f"<p class='warn'>{html.escape(s)}</p>" for s in status]
    if rows:
        header, body = _headline_table(rows)
        md += [
            "## Headline: node CPU per report and capacity",
            "",
            _HEADLINE,
            "",
            _md_table(header, body),
            "",
        ]
        hh += [
            "<h2>Headline: node CPU per report and capacity</h2>",
            f"<p>{html.escape(_HEADLINE)}</p>",
            _html_table(header, body),
        ]
        header, body = _stage_table(rows)
        md += ["## Per-stage breakdown", "", _STAGES_TEXT, "", _md_table(header, body), ""]
        hh += [
            "<h2>Per-stage breakdown</h2>",
            f"<p>{html.escape(_STAGES_TEXT)}</p>",
            _html_table(header, body),
        ]
        header, body = _summary_table(rows)
        md += [
            "## Summary",
            "",
            "Each figure with its ratio to the baseline of the same run.",
            "",
            _md_table(header, body),
            "",
        ]
        hh += [
            "<h2>Summary</h2>",
            "<p>Each figure with its ratio to the baseline of the same run.</p>",
            _html_table(header, body),
        ]
        md += ["## Figures", ""]
        hh += ["<h2>Figures</h2>"]
        for f in figures:
            header, body = _figure_table(f, rows)
            base = (
                f"Baseline: {f['baseline']}."
                if f["baseline"]
                else "No baseline: a plain stack has nothing like it."
            )
            better = "higher is better" if f["higher_is_better"] else "lower is better"
            md += [
                f"### {f['label']} ({f['unit']})",
                "",
                f"`{f['key']}`; {better}. {base}",
                "",
                _md_table(header, body),
                "",
                f"![{f['label']}](charts/{f['key']}.png)",
                "",
            ]
            hh += [
                f"<h3>{html.escape(f['label'])} ({html.escape(f['unit'])})</h3>",
                f"<p><code>{f['key']}</code>; {better}. {html.escape(base)}</p>",
                _html_table(header, body),
                f"<img src='charts/{f['key']}.png' alt='{html.escape(f['label'])}'>",
            ]
    else:
        md += ["No cell has finished yet.", ""]
        hh += ["<p>No cell has finished yet.</p>"]
    md += ["## How it is measured", ""] + [f"* {m}" for m in _METHOD] + [""]
    hh += [
        "<h2>How it is measured</h2>",
        "<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in _METHOD) + "</ul>",
    ]

    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
        ".warn{color:#a00}"
    )
    page = (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(hh) + "\n</body></html>\n"
    )
    for name, text in (("report.md", "\n".join(md)), ("report.html", page)):
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
