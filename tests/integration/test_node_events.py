"""The node's event feed (GET /v1/events): operator only, idle without subscribers,
receipts and reports as they happen, bounded queues that say what they dropped."""

from __future__ import annotations

import asyncio

import pytest

from node.errors import NotFoundError, PushbackError
from node.events import EventHub


async def _subscribe(world, node_id: str) -> str:
    async with world.net.operator(node_id) as c:
        r = await c.get(f"http://{node_id}/v1/events")
    assert r.status_code == 200, r.text
    assert r.json()["events"] == []
    return str(r.json()["subscriber"])


async def _poll(world, node_id: str, sub: str, wait: float = 0) -> dict:
    async with world.net.operator(node_id) as c:
        r = await c.get(f"http://{node_id}/v1/events", params={"subscriber": sub, "wait": wait})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_only_the_operator_may_watch(world, problem):
    async with world.inst() as c:
        r = await c.get(f"http://{world.home}/v1/events")
    problem(r, 403, "unknown-peer")
    async with world.net.operator("hf-1") as c:  # another node's operator
        r = await c.get(f"http://{world.home}/v1/events")
    problem(r, 403, "unknown-peer")
    assert not world.state(world.home).events.active


async def test_a_report_shows_as_receipts_and_a_report_event(world):
    home_sub = await _subscribe(world, world.home)
    holder_sub = await _subscribe(world, "hf-1")
    r = await world.report()
    assert r.status_code == 200, r.text
    query_id = r.json()["report"]["query_id"]

    home = await _poll(world, world.home, home_sub)
    assert home["dropped"] == 0
    kinds = [(e["type"], e.get("role")) for e in home["events"]]
    assert ("receipt", "home") in kinds and ("report", None) in kinds
    report = next(e for e in home["events"] if e["type"] == "report")
    assert report["query_id"] == query_id and report["outcome"] == "complete"
    assert report["institution_id"] == "hzbank" and report["purpose"] == "post_loan"
    assert {h["node_id"] for h in report["holders"]} == {"hz-1", "hf-1", "sh-1"}
    assert report["latency_ms"] >= 0 and report["missing"] == []

    holder = await _poll(world, "hf-1", holder_sub)
    receipts = [e for e in holder["events"] if e["type"] == "receipt"]
    assert [(e["query_id"], e["role"], e["outcome"]) for e in receipts] == [
        (query_id, "holder", "granted")
    ]
    # sh-1 has no subscriber: it queued nothing.
    assert not world.state("sh-1").events.active


async def test_a_denied_report_is_an_event_too(world):
    sub = await _subscribe(world, world.home)
    r = await world.report(authorization_id="no-such-authorization")
    assert r.status_code == 403
    events = (await _poll(world, world.home, sub))["events"]
    report = next(e for e in events if e["type"] == "report")
    assert report["outcome"] == "denied" and "no-such-authorization" in report["reason"]
    assert any(e["type"] == "receipt" and e["outcome"] == "denied" for e in events)


async def test_a_poll_waits_for_the_next_event(world):
    sub = await _subscribe(world, world.home)
    waiting = asyncio.create_task(_poll(world, world.home, sub, wait=20))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    r = await world.report()
    assert r.status_code == 200
    got = await asyncio.wait_for(waiting, timeout=20)
    assert got["events"], got


async def test_an_unknown_subscriber_is_a_problem(world, problem):
    async with world.net.operator(world.home) as c:
        r = await c.get(f"http://{world.home}/v1/events", params={"subscriber": "nope"})
    problem(r, 404, "not-found")


def test_without_subscribers_nothing_is_kept() -> None:
    hub = EventHub()
    hub.publish([{"type": "x"}])
    assert not hub.active and hub.subscribers() == 0


async def test_a_full_queue_drops_and_says_so() -> None:
    hub = EventHub(max_queue=3)
    sub = hub.subscribe()
    hub.publish([{"type": "x", "n": i} for i in range(5)])
    got = await hub.poll(sub.id, 0)
    assert [e["n"] for e in got["events"]] == [0, 1, 2]
    assert got["dropped"] == 2
    again = await hub.poll(sub.id, 0)
    assert again["events"] == [] and again["dropped"] == 0


async def test_idle_subscribers_are_forgotten_and_capped() -> None:
    hub = EventHub(idle_s=0.0)
    hub.subscribe()
    await asyncio.sleep(0.01)
    hub.subscribe()  # the first, idle, was forgotten
    assert hub.subscribers() == 1
    capped = EventHub(max_subscribers=2)
    first, second = capped.subscribe(), capped.subscribe()
    await capped.poll(first.id, 0)  # first polled last: second is the longest idle
    third = capped.subscribe()
    assert capped.subscribers() == 2
    with pytest.raises(NotFoundError):
        await capped.poll(second.id, 0)
    assert (await capped.poll(third.id, 0))["events"] == []


async def test_when_every_subscriber_is_waiting_a_new_one_is_refused() -> None:
    hub = EventHub(max_subscribers=1)
    sub = hub.subscribe()
    waiting = asyncio.create_task(hub.poll(sub.id, 5))
    await asyncio.sleep(0.05)
    with pytest.raises(PushbackError, match="at most 1"):
        hub.subscribe()
    hub.publish([{"type": "x"}])
    assert (await waiting)["events"][0]["type"] == "x"
