"""``creditchain consortium manifest-next`` and ``manifest-history``: the manifest's versions.

The work is in :mod:`scenarios.localnet.manifests`; these commands parse options and print.
"""

from __future__ import annotations

from pathlib import Path

import click

from scenarios import localnet as net
from scenarios.cli.base import CommandError
from scenarios.cli.options import dir_option as _dir_option
from scenarios.localnet import manifests

__all__ = ["manifest_history_cmd", "manifest_next_cmd"]


def _urls(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        node_id, sep, url = pair.partition("=")
        if not sep or not node_id or not url.startswith(("http://", "https://")):
            raise CommandError(f"--url takes NODE=http(s)://host:port, got {pair!r}")
        out[node_id] = url
    return out


@click.command("manifest-next")
@_dir_option
@click.option("--url", "url_pairs", multiple=True, help="NODE=URL: the node's new URL (repeat).")
@click.option("--remove-node", "remove", multiple=True, help="A node the new version drops.")
@click.option(
    "--effective-at", default=None, help="When the version takes effect (RFC 3339; default now)."
)
@click.option("--no-push", is_flag=True, help="Sign and keep the version; tell no node.")
def manifest_next_cmd(
    directory: Path,
    url_pairs: tuple[str, ...],
    remove: tuple[str, ...],
    effective_at: str | None,
    no_push: bool,
) -> None:
    """Sign the manifest's next version with the root key and hand it to every running node."""
    try:
        cons = net.load_consortium(directory)
        new = manifests.next_manifest(
            cons, urls=_urls(url_pairs), remove=remove, effective_at=effective_at
        )
        history = manifests.publish_manifest(cons, new)
        click.echo(
            f"signed manifest version {new.version} ({len(new.nodes)} nodes, digest "
            f"{new.digest[:16]}…), kept in {cons.dir / manifests.HISTORY_FILE} "
            f"with versions {history.versions[0].version}-{new.version}"
        )
        if no_push:
            return
        running = net.running_nodes(directory) if cons.target == "local" else {}
        targets = [n.node_id for n in new.nodes if cons.target != "local" or n.node_id in running]
        for node_id, outcome in manifests.push_manifest(cons, new, targets).items():
            click.echo(f"  {node_id}: {outcome}")
        idle = [n.node_id for n in new.nodes if n.node_id not in targets]
        if idle:
            click.echo(
                f"  not running (they read version {new.version} when they start): "
                f"{', '.join(idle)}"
            )
    except net.NetworkError as exc:
        raise CommandError(str(exc)) from exc


@click.command("manifest-history")
@_dir_option
def manifest_history_cmd(directory: Path) -> None:
    """List the manifest's versions kept in the consortium directory, oldest first."""
    try:
        cons = net.load_consortium(directory)
        history = manifests.load_history(cons)
    except net.NetworkError as exc:
        raise CommandError(str(exc)) from exc
    for m in history.versions:
        click.echo(
            f"version {m.version}: {len(m.nodes)} nodes, effective {m.effective_at or m.issued_at}, "
            f"digest {m.digest[:16]}…" + (f", follows {m.prev[:16]}…" if m.prev else "")
        )
