"""``creditchain`` commands for the local network: consortium init, up, status, down,
query, enterprises, institutions and report verify.

The commands only parse options and print; the work is in
:mod:`scenarios.localnet`. Every expected failure prints one plain sentence
on stderr (``error: …``) and exits 1; ``report verify`` exits 1 when a bundle
does not verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ledger import PURPOSES
from scenarios import localnet as net
from scenarios.cli.options import dir_option as _dir_option
from scenarios.cli.options import run_network as _run
from scenarios.cli.report_view import render_report, render_verification

__all__ = [
    "consortium_group",
    "down_cmd",
    "enterprises_cmd",
    "institutions_cmd",
    "query_cmd",
    "report_group",
    "status_cmd",
    "up_cmd",
]


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells])


def _num(v: object) -> str:
    return f"{v:,}" if isinstance(v, int) else "-" if v is None else str(v)


def _status_table(statuses: Sequence[net.NodeStatus], *, detail: bool) -> str:
    headers = ["city", "node", "URL", "height", "entries", "enterprises"]
    if detail:
        headers += ["pid", "peers mirrored", "alarms"]
    rows = []
    sizes = {x.node_id: int((x.info or {}).get("size", -1)) for x in statuses}
    for s in statuses:
        info = s.info or {}
        row: list[object] = [
            s.city,
            s.node_id,
            s.url,
            _num(info.get("height")),
            _num(info.get("size")),
            _num(s.enterprises),
        ]
        if detail:
            peers = info.get("peers", [])
            caught_up = sum(
                1
                for p in peers
                if p.get("mirrored") == sizes.get(p["node_id"])
                and p.get("seen_size") == sizes.get(p["node_id"])
            )
            row += [
                s.pid or "-",
                f"{caught_up}/{len(peers)}" if s.info else "DOWN",
                len(info.get("alarms", [])) if s.info else "-",
            ]
        rows.append(row)
    return _table(headers, rows, right=(3, 4, 5))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _dir_flag(directory: Path) -> str:
    """The ``--dir`` option to repeat in a suggested command ('' for the default directory)."""
    return "" if directory == net.DEFAULT_DIR else f" --dir {directory}"


# --- consortium init ---------------------------------------------------------------
@click.group("consortium")
def consortium_group() -> None:
    """Create and inspect the consortium: keys, manifest, institutions, node settings."""


@consortium_group.command("init")
@click.option(
    "--preset",
    default="launch-2020",
    show_default=True,
    help="launch-2020, oct-2021, yrd-41 or a topology YAML file.",
)
@_dir_option
@click.option(
    "--base-port",
    type=int,
    default=net.DEFAULT_BASE_PORT,
    show_default=True,
    help="Port of the first node; the others follow.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing consortium in --dir (deletes its keys and ledgers).",
)
def consortium_init(preset: str, directory: Path, base_port: int, force: bool) -> None:
    """Create the root key, a key per node and institution (0600), the signed manifest, node settings."""

    def go() -> None:
        cons = net.init_consortium(directory, preset, base_port=base_port, force=force)
        ports = sorted(cons.ports.values())
        click.echo(
            f"created the {cons.topology.name} consortium in {directory}: {len(cons.node_ids)} nodes "
            f"(ports {ports[0]}-{ports[-1]}), {len(cons.institutions)} institutions, manifest "
            f"{cons.manifest_path}"
        )
        click.echo(f"start it with: creditchain up{_dir_flag(directory)}")

    _run(go)


# --- up / status / down --------------------------------------------------------------
@click.command("up")
@click.option(
    "--preset",
    default=None,
    help=(
        "launch-2020 (default), oct-2021, yrd-41 or a topology YAML file; used when creating "
        "the consortium."
    ),
)
@click.option(
    "--enterprises",
    type=click.IntRange(min=1),
    default=None,
    help=f"Synthetic enterprises to seed (default {net.DEFAULT_ENTERPRISES}); only for empty ledgers.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help=f"Seed of the synthetic data (default {net.DEFAULT_SEED}).",
)
@click.option(
    "--base-port",
    type=int,
    default=None,
    help=f"Port of the first node when creating the consortium (default {net.DEFAULT_BASE_PORT}).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the nodes to answer, and at most without mirroring progress.",
)
@click.option(
    "--explorer",
    "explorer",
    is_flag=True,
    help="Then serve the explorer (a live map of the network) and print its URL; Ctrl-C stops it.",
)
@click.option(
    "--explorer-port",
    type=click.IntRange(1, 65535),
    default=8700,
    show_default=True,
    help="Port of the explorer (with --explorer; it listens on 127.0.0.1).",
)
@_dir_option
def up_cmd(
    preset: str | None,
    enterprises: int | None,
    seed: int | None,
    base_port: int | None,
    timeout_s: float,
    explorer: bool,
    explorer_port: int,
    directory: Path,
) -> None:
    """Start the network: create the consortium if needed, seed empty ledgers, start one process per node."""

    def go() -> None:
        d = _dir_flag(directory)
        try:
            res = net.up(
                directory,
                preset=preset,
                enterprises=enterprises,
                seed=seed,
                base_port=base_port,
                timeout_s=timeout_s,
                progress=True,
                echo=click.echo,
            )
        except net.MirrorStalledError as exc:
            raise net.NetworkError(
                f"{exc}; the nodes keep running: see `creditchain status{d}`, "
                f"stop them with `creditchain down{d}`"
            ) from exc
        for note in res.notes:
            click.echo(f"note: {note}")
        if res.already_running:
            click.echo(
                f"the network in {directory} is already running ({len(res.statuses)} nodes):"
            )
        else:
            new, _ = res.registered
            regs = (
                f"registered {new} institutions in {res.register_seconds:.1f} s"
                if new
                else "institutions already registered"
            )
            click.echo(
                f"network up: {_plural(len(res.started), 'node')} started in {res.start_seconds:.1f} s, "
                f"mirrored in {res.mirror_seconds:.1f} s; {regs}"
            )
        click.echo(_status_table(res.statuses, detail=False))
        click.echo(f"try: {_example_query(res.cons, d)}")
        click.echo(
            f"     (creditchain enterprises{d} lists more codes, creditchain institutions{d} the "
            "institutions;"
            f" creditchain down{d} stops the network, keeping its data)"
        )

    _run(go)
    if explorer:
        from scenarios.cli.explorer import run_explorer

        run_explorer(directory, "127.0.0.1", explorer_port)


def _example_query(cons: net.Consortium, d: str) -> str:
    """A query worth trying: an out-of-city enterprise with a penalty, asked by a bank of another city."""
    banks = [i for i in cons.institutions if "post_loan" in i.purposes]
    uscc = "CODE"
    inst = banks[0].institution_id if banks else "ID"
    try:
        for sample in net.sample_enterprises(cons, None, limit=3, negative=True):
            other = [
                b for b in banks if b.city != sample.city and b.home_node not in sample.holders
            ]
            if other:
                uscc, inst = sample.uscc, other[0].institution_id
                break
    except net.NetworkError:
        pass
    return f"creditchain query{d} --institution {inst} --uscc {uscc} --purpose post_loan"


@click.command("status")
@_dir_option
def status_cmd(directory: Path) -> None:
    """Show every node from its live /v1/info: height, entries, peers mirrored, alarms, down nodes."""

    def go() -> None:
        cons = net.load_consortium(directory)
        statuses = net.network_status(cons)
        click.echo(f"{cons.topology.name} consortium in {directory}")
        click.echo(_status_table(statuses, detail=True))
        down = [s.node_id for s in statuses if not s.up]
        if down:
            click.echo(f"down: {', '.join(down)} (start them with creditchain up)")
        for s in statuses:
            for alarm in (s.info or {}).get("alarms", []):
                click.echo(
                    f"ALARM at {s.node_id} against {alarm.get('node_id')}: {alarm.get('fault')} — "
                    f"{alarm.get('detail')}"
                )
            refused = [p["node_id"] for p in (s.info or {}).get("peers", []) if p.get("refused")]
            if refused:
                click.echo(
                    f"{s.node_id} refuses {', '.join(refused)} until its alarms are resolved"
                )
        for line in _clock_and_objections(statuses):
            click.echo(line)
        if not down and not any((s.info or {}).get("alarms") for s in statuses):
            click.echo("all nodes up, no alarms")

    _run(go)


def _clock_and_objections(statuses: Sequence[net.NodeStatus]) -> list[str]:
    """The network clock's offset (and nodes that disagree on it), then overdue objections."""
    lines = []
    offsets = {
        s.node_id: int((s.info or {}).get("clock", {}).get("offset_s", 0)) for s in statuses if s.up
    }
    if len(set(offsets.values())) > 1:
        lines.append(
            "network clock: nodes disagree on the offset: "
            + ", ".join(f"{n} {o / 86400:g} d" for n, o in sorted(offsets.items()))
            + " (set it with creditchain clock advance)"
        )
    elif offsets and max(offsets.values()) > 0:
        lines.append(
            f"network clock: advanced {max(offsets.values()) / 86400:g} days for simulation"
        )
    for s in statuses:
        counts = (s.info or {}).get("objections") or {}
        for o in counts.get("overdue_ids", []):
            lines.append(
                f"OVERDUE objection {o.get('objection_id')} at {s.node_id} on record "
                f"{o.get('record_id')} of {o.get('uscc')}: the reply was due {o.get('due_at')}"
            )
        if counts.get("open"):
            lines.append(
                f"{s.node_id}: {counts['open']} open objection"
                f"{'s' if counts['open'] != 1 else ''}, {counts.get('overdue', 0)} overdue"
            )
    return lines


@click.command("down")
@_dir_option
def down_cmd(directory: Path) -> None:
    """Stop the node processes (SIGTERM, then SIGKILL after a timeout); ledgers are kept."""

    def go() -> None:
        outcome = net.down(directory)
        if not outcome:
            click.echo(f"no node of {directory} was running")
            return
        killed = [n for n, how in outcome.items() if how == "killed"]
        click.echo(f"stopped {len(outcome)} nodes; data kept in {directory / 'nodes'}")
        if killed:
            click.echo(f"{', '.join(killed)} did not stop on SIGTERM and were killed")

    _run(go)


# --- query --------------------------------------------------------------------------
@click.command("query")
@click.option(
    "--institution", "institution_id", required=True, help="Institution id, e.g. bank-hz-001."
)
@click.option("--uscc", required=True, help="The enterprise's unified social credit code.")
@click.option("--purpose", required=True, help=f"One of {', '.join(PURPOSES)}.")
@click.option(
    "--authorization",
    "authorization_id",
    default=None,
    help="An authorization already on the home node; default: file a new one first.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save the bundle (default DIR/reports/<query_id>.json).",
)
@_dir_option
def query_cmd(
    institution_id: str,
    uscc: str,
    purpose: str,
    authorization_id: str | None,
    out: Path | None,
    directory: Path,
) -> None:
    """Get a verified cross-node credit report as an institution, and save its bundle."""

    def go() -> None:
        cons = net.load_consortium(directory)

        def filed(a: dict[str, str]) -> None:
            click.echo(
                f"filed authorization {a['authorization_id']} at {a['node_id']} (valid {a['not_before']} to "
                f"{a['not_after']}; consent document {a['document']}, sha256 {a['document_digest'][:16]}…)"
            )
            click.echo(
                f"the enterprise's consent is signed by {a['consent_signed_by']} on its behalf "
                "(the institution cannot sign it; every holder checks it)"
            )

        res = net.query_report(
            cons,
            institution_id,
            uscc,
            purpose,
            authorization_id=authorization_id,
            out=out,
            on_filed=filed,
        )
        inst = cons.institution(institution_id)
        click.echo(render_report(res.summary, res.bundle, cons.manifest, inst.name))
        click.echo("")
        click.echo(f"report took {res.seconds:.2f} s; bundle saved to {res.path}")
        click.echo(
            f"check it offline: creditchain report verify {res.path} --manifest {cons.manifest_path}"
        )

    _run(go)


def _by_holder(records: Sequence[str]) -> str:
    groups: dict[str, list[str]] = {}
    for r in records:
        node, _, what = r.partition(":")
        groups.setdefault(node, []).append(what)
    return "; ".join(f"{node}: {', '.join(kinds)}" for node, kinds in groups.items())


@click.command("enterprises")
@click.option(
    "--city",
    default=None,
    help="City code (sh, nj, sz, cz, sq, hz, tz, hf, ...); default: all cities.",
)
@click.option("--limit", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--min-cities",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Only enterprises with records held in at least this many cities.",
)
@click.option(
    "--negative",
    is_flag=True,
    help="Only enterprises with a penalty, enforcement or black-list record.",
)
@_dir_option
def enterprises_cmd(
    city: str | None, limit: int, min_cities: int, negative: bool, directory: Path
) -> None:
    """List sample enterprises of the seeded synthetic data, with the records each holder keeps on them."""

    def go() -> None:
        cons = net.load_consortium(directory)
        rows = [
            (s.uscc, cons.topology.city(s.city).name, _by_holder(s.records))
            for s in net.sample_enterprises(
                cons, city, limit=limit, min_cities=min_cities, negative=negative
            )
        ]
        if not rows:
            click.echo("no enterprise matches; try --min-cities 1 or another --city")
            return
        click.echo(_table(["uscc", "registered in", "records by holder"], rows))

    _run(go)


@click.command("institutions")
@click.option("--city", default=None, help="Only institutions of this city code.")
@_dir_option
def institutions_cmd(city: str | None, directory: Path) -> None:
    """List the simulated query institutions, their home nodes and purposes."""

    def go() -> None:
        cons = net.load_consortium(directory)
        rows = [
            (i.institution_id, i.name, i.home_node, ", ".join(i.purposes))
            for i in cons.institutions
            if city is None or i.city == city
        ]
        if not rows:
            raise net.NetworkError(f"no institution in city {city!r}")
        click.echo(_table(["institution", "name", "home node", "purposes"], rows))

    _run(go)


# --- report verify ---------------------------------------------------------------------
@click.group("report")
def report_group() -> None:
    """Work with saved report bundles."""


@report_group.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The consortium manifest (default DIR/manifest.json).",
)
@click.option(
    "--manifest-history",
    "history_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Every manifest version, one per line: the bundle is checked against the version it "
    "names (default DIR/manifest-history.jsonl when it exists and --manifest is not given).",
)
@click.option(
    "--root-key",
    default=None,
    help="Trusted root public key (base64); default: the key the manifest names.",
)
@click.option(
    "--steps",
    "show_steps",
    is_flag=True,
    help="List every check by name (signature, authorization, each holder's checkpoint and record).",
)
@_dir_option
def report_verify(
    bundle: Path,
    manifest_path: Path | None,
    history_path: Path | None,
    root_key: str | None,
    show_steps: bool,
    directory: Path,
) -> None:
    """Verify a report bundle offline, with the manifest alone; exit 1 naming the problem if it fails."""

    def go() -> None:
        history = history_path
        if history is None and manifest_path is None:
            kept = directory / "manifest-history.jsonl"
            history = kept if kept.exists() else None
        m = manifest_path or directory / "manifest.json"
        if history is None and not m.exists():
            raise net.NetworkError(f"manifest {m} does not exist; pass --manifest")
        steps, s = net.verify_bundle_steps(
            *net.load_bundle_file(bundle, None if history else m, root_key, history)
        )
        if show_steps:
            for step in steps:
                click.echo(f"  ok  {step.name}" + (f" — {step.detail}" if step.detail else ""))
        click.echo(
            f"valid: report {s.query_id} on {s.uscc} for {s.institution_id} ({s.purpose}) from {s.home_node}"
        )
        click.echo(f"  {render_verification(s)}")
        click.echo(
            f"  holders: {', '.join(f'{n} ({c})' for n, c in sorted(s.holders.items())) or 'none'}; "
            f"{len(s.current)} current records, {len(s.history) - len(s.current)} superseded"
        )
        if s.partial:
            click.echo(f"  partial: missing {', '.join(str(m.get('node_id')) for m in s.missing)}")
        for d in s.disputes:
            click.echo(
                f"  objection {d['objection_id']} on {d['record_id']} at {d['node_id']}: "
                f"{'DISPUTED (open)' if d['status'] == 'open' else d['status']}, due {d['due_at']}"
                " (proven entry, enterprise's signature checked)"
            )

    _run(go)


def _add_manifest_commands() -> None:
    from scenarios.cli.manifest import manifest_history_cmd, manifest_next_cmd

    consortium_group.add_command(manifest_next_cmd)
    consortium_group.add_command(manifest_history_cmd)


_add_manifest_commands()
