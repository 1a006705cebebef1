"""The report path without waste: no extra consistency-proof fetch in the common case,
one verification per checkpoint note, parsed institution and authorization entries cached.

Fork detection stays on the report path: every answer's checkpoint is still checked
against the view the other side holds (tests/integration/test_node_mirror.py and
test_node_holders.py cover the forks).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from support.inproc import Net

import ledger.entries
import node.bundle
import node.views

REMOTE_HOLDERS = 2  # hf-1 and sh-1 answer hz-1's reports on the world's enterprise


@contextmanager
def counting(net: Net, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count consistency-proof fetches, note verifications and entry parses by kind."""
    assert net.transport is not None
    counts: Counter[str] = Counter()
    transport = net.transport
    original = transport.handle_async_request

    async def spy(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/proofs/consistency":
            counts["consistency_fetch"] += 1
        return await original(request)

    def wrap_open_note(real: Any) -> Any:
        def open_note(*args: Any, **kwargs: Any) -> Any:
            counts["note_verify"] += 1
            return real(*args, **kwargs)

        return open_note

    real_decode = ledger.entries.decode_canonical

    def decode(data: bytes, what: str = "value") -> Any:
        value = real_decode(data, what)
        if isinstance(value, dict) and value.get("kind") in ("institution", "authorization"):
            counts[f"parse_{value['kind']}"] += 1
        return value

    monkeypatch.setattr(transport, "handle_async_request", spy)
    monkeypatch.setattr(node.views, "open_note", wrap_open_note(node.views.open_note))
    monkeypatch.setattr(node.bundle, "open_note", wrap_open_note(node.bundle.open_note))
    monkeypatch.setattr(ledger.entries, "decode_canonical", decode)
    yield counts


async def _report(world: Any) -> dict[str, Any]:
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert not bundle["report"]["partial"], bundle["report"]["missing"]
    return bundle


async def test_reports_fetch_no_consistency_proof(world, monkeypatch):
    """The proofs each side carries start from the size the other side holds: the first
    report after mirroring, reports after a mirroring round moved the views, and
    concurrent reports all verify with what the exchange carried."""
    with counting(world.net, monkeypatch) as counts:
        await _report(world)
        await world.mirror_all()  # every view moves: the home's receipt, the holders' receipts
        await _report(world)
        await asyncio.gather(*(_report(world) for _ in range(3)))
        await world.mirror_all()
        await _report(world)
    assert counts["consistency_fetch"] == 0, counts


async def test_each_checkpoint_note_is_verified_once(world, monkeypatch):
    await _report(world)  # warm: first views of each other taken
    with counting(world.net, monkeypatch) as counts:
        for _ in range(3):
            await _report(world)
    # Per report and remote holder: the holder opens the home's checkpoint once, the home
    # opens the holder's once.
    assert counts["note_verify"] == 3 * 2 * REMOTE_HOLDERS, counts


async def test_institution_and_authorization_entries_are_parsed_once(world, monkeypatch):
    await _report(world)
    with counting(world.net, monkeypatch) as counts:
        for _ in range(3):
            await _report(world)
    assert counts["parse_institution"] == 0, counts
    assert counts["parse_authorization"] == 0, counts
