"""``creditchain objection`` (file, decide, show, list) and ``creditchain clock`` (show, advance).

The work is in :mod:`scenarios.localnet.objections`; these commands parse options and
print. Every expected failure is one plain sentence and exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from scenarios import localnet as net
from scenarios.cli.base import CommandError
from scenarios.cli.options import dir_option as _dir_option
from scenarios.cli.options import run_network as _run

__all__ = ["clock_group", "objection_group"]

OUTCOMES = ("corrected", "upheld", "unverifiable")


def _answer(node: str, status: int, data: Any, ok: int) -> dict[str, Any]:
    if status != ok or not isinstance(data, dict):
        raise CommandError(net.problem_sentence(node, status, data))
    return data


@click.group("objection")
def objection_group() -> None:
    """File an enterprise's objection to a record, reply to it as the holder, and follow it."""


@objection_group.command("file")
@click.option("--uscc", required=True, help="The objecting enterprise.")
@click.option("--holder", required=True, help="The node holding the record, e.g. hf-1.")
@click.option("--record", "record_id", required=True, help="The record id, as the report shows it.")
@click.option("--reason", required=True, help="Why the record is wrong, in one sentence.")
@_dir_option
def objection_file(uscc: str, holder: str, record_id: str, reason: str, directory: Path) -> None:
    """File an objection as the enterprise (signed through its city's registry) at its home node."""

    def go() -> None:
        cons = net.load_consortium(directory)
        body = net.objection_request(cons, uscc, holder, record_id, reason)
        home = net.enterprise_home(cons, uscc)
        data = _answer(home, *net.file_objection(cons, body, home), ok=201)
        click.echo(
            f"objection {data['objection_id']} filed at {home} and recorded by {holder} on "
            f"{record_id}: disputed from now on, reply due {data['due_at']}"
        )

    _run(go)


@objection_group.command("decide")
@click.argument("objection_id")
@click.option("--holder", required=True, help="The node holding the record (its operator replies).")
@click.option("--outcome", required=True, type=click.Choice(OUTCOMES))
@click.option("--verification", required=True, help="What the holder checked, in one sentence.")
@click.option(
    "--correction",
    default=None,
    help='With corrected: the correction as JSON, {"record_id": ..., "body": {...}}.',
)
@_dir_option
def objection_decide(
    objection_id: str,
    holder: str,
    outcome: str,
    verification: str,
    correction: str | None,
    directory: Path,
) -> None:
    """Reply to an objection as its holder: corrected, upheld or unverifiable."""

    def go() -> None:
        cons = net.load_consortium(directory)
        body: dict[str, Any] = {"outcome": outcome, "verification": verification}
        if correction is not None:
            try:
                body["correction"] = json.loads(correction)
            except ValueError as exc:
                raise CommandError(f"--correction is not JSON: {exc}") from exc
        data = _answer(holder, *net.decide_objection(cons, holder, objection_id, body), ok=201)
        late = " after the deadline" if data.get("late") else ""
        sent = (
            "sent to the enterprise's home node"
            if data.get("delivered")
            else f"not delivered ({data.get('delivery_error')})"
        )
        click.echo(f"objection {objection_id}: {outcome}{late}; the signed outcome is {sent}")

    _run(go)


@objection_group.command("list")
@click.option("--node", required=True, help="The holder whose objections to list.")
@click.option(
    "--status",
    type=click.Choice(("open", "overdue", "closed", *OUTCOMES)),
    default=None,
    help="Only these.",
)
@_dir_option
def objection_list(node: str, status: str | None, directory: Path) -> None:
    """List the objections a node holds, with their deadlines on the network's clock."""

    def go() -> None:
        cons = net.load_consortium(directory)
        path = "/v1/objections" + (f"?status={status}" if status else "")
        with net.operator_client(cons, node) as client:
            data = _answer(node, *client.call(node, "GET", path), ok=200)
        click.echo(f"{node}: now {data['now']} on the network clock")
        for o in data["objections"]:
            flag = " OVERDUE" if o.get("overdue") else ""
            click.echo(
                f"  {o['objection_id']} {o['uscc']} {o['record_id']}: {o['status']}{flag}, "
                f"due {o['due_at']}"
            )
        if not data["objections"]:
            click.echo("  none")

    _run(go)


@click.group("clock")
def clock_group() -> None:
    """Show or advance the network's clock, for simulating deadlines."""


@clock_group.command("advance")
@click.argument("days", type=click.FloatRange(min=0))
@_dir_option
def clock_advance(days: float, directory: Path) -> None:
    """Advance every node's clock by DAYS (all nodes must be up to agree)."""

    def go() -> None:
        cons = net.load_consortium(directory)
        offsets = net.advance_clock(cons, int(days * 86400))
        offset = next(iter(offsets.values()))
        click.echo(
            f"network clock advanced on {len(offsets)} nodes: now {offset / 86400:g} days ahead"
        )

    _run(go)


@clock_group.command("show")
@_dir_option
def clock_show(directory: Path) -> None:
    """Show each node's network time and offset."""

    def go() -> None:
        cons = net.load_consortium(directory)
        for node, info in net.node_infos(cons).items():
            clock = (info or {}).get("clock")
            click.echo(
                f"{node}: {clock['now']} (offset {clock['offset_s'] / 86400:g} d)"
                if clock
                else f"{node}: down"
            )

    _run(go)
