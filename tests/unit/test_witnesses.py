"""Bounded witness sets: rendezvous assignment from the manifest, and the polling schedule."""

from __future__ import annotations

import pytest

from node.consortium import NodeInfo
from node.peers.witnesses import Schedule, witnesses_of


def _nodes(spec: dict[str, int]) -> list[NodeInfo]:
    return [
        NodeInfo(f"{city}-{i}", city, city, ("000000",), f"http://{city}-{i}", "")
        for city, count in spec.items()
        for i in range(1, count + 1)
    ]


OCT_2021 = {"sh": 2, "nj": 2, "sz": 2, "cz": 2, "sq": 1, "hz": 2, "tz": 1, "hf": 2}


def test_assignment_is_deterministic_distinct_and_never_self():
    nodes = _nodes(OCT_2021)
    for n in nodes:
        got = witnesses_of(nodes, n.node_id, 3)
        assert got == witnesses_of(list(reversed(nodes)), n.node_id, 3)  # order-free
        assert len(got) == 3 == len(set(got))
        assert n.node_id not in got


def test_witnesses_come_from_other_cities_while_there_are_some():
    nodes = _nodes(OCT_2021)
    city = {n.node_id: n.city for n in nodes}
    for n in nodes:
        got = witnesses_of(nodes, n.node_id, 3)
        cities = [city[w] for w in got]
        assert n.city not in cities and len(set(cities)) == 3, (n.node_id, got)


def test_cities_run_out_then_the_best_scores_fill_in():
    nodes = _nodes({"sh": 3, "hz": 1})  # only one other city for a Shanghai log
    got = witnesses_of(nodes, "sh-1", 3)
    assert len(got) == 3 and got[0] == "hz-1" and set(got) == {"hz-1", "sh-2", "sh-3"}


def test_small_networks_are_witnessed_by_every_peer():
    nodes = _nodes({"hz": 1, "hf": 1, "sh": 1})
    assert set(witnesses_of(nodes, "hz-1", 3)) == {"hf-1", "sh-1"}
    assert witnesses_of(_nodes({"hz": 1}), "hz-1", 3) == []


def test_adding_an_unrelated_node_moves_no_other_set():
    nodes = _nodes(OCT_2021)
    grown = [*nodes, *_nodes({"wx": 1})]
    moved = 0
    for n in nodes:
        before, after = witnesses_of(nodes, n.node_id, 3), witnesses_of(grown, n.node_id, 3)
        if "wx-1" in after:
            moved += 1
        else:
            assert after == before, n.node_id
    assert moved < len(nodes)  # the new node enters some sets, not all


def test_load_is_spread():
    nodes = _nodes(OCT_2021)
    counts = {n.node_id: 0 for n in nodes}
    for n in nodes:
        for w in witnesses_of(nodes, n.node_id, 3):
            counts[w] += 1
    assert sum(counts.values()) == 3 * len(nodes)
    assert max(counts.values()) <= 3 * 3  # no node witnesses a large share of the region


def test_bad_k_and_unknown_log_are_refused():
    nodes = _nodes({"hz": 1, "hf": 1})
    with pytest.raises(ValueError, match="k must be >= 1"):
        witnesses_of(nodes, "hz-1", 0)
    with pytest.raises(ValueError, match="not a node"):
        witnesses_of(nodes, "zz-9", 3)


def test_schedule_backs_off_for_followed_logs():
    s = Schedule(witnessed=frozenset({"w"}), fast_s=2.0, slow_s=30.0)
    assert s.due("w", 0.0) and s.due("f", 0.0)
    now = 0.0
    witness_waits = []
    for _ in range(4):
        s.polled("w", changed=False, etag='"1.1"', size=1, now=now)
        witness_waits.append(s._get("w").due - now)
        now = s._get("w").due
    assert witness_waits == [2.0, 4.0, 8.0, 8.0]  # a witness backs off to 4 intervals only
    s.polled("w", changed=True, etag='"2.2"', size=2, now=now)
    assert s.due("w", now + 2.0) and not s.due("w", now + 1.9)
    waits = []
    now = 0.0
    for _ in range(6):
        s.polled("f", changed=False, etag='"5.2"', size=5, now=now)
        waits.append(s._get("f").due - now)
        now = s._get("f").due
    assert waits == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert not s.due("f", now - 1) and s.due("f", now)
    s.polled("f", changed=True, etag='"6.3"', size=6, now=now)
    assert s._get("f").due == now + 2.0


def test_schedule_sends_an_etag_only_for_the_head_it_names():
    s = Schedule(witnessed=frozenset(), fast_s=2.0, slow_s=30.0)
    s.polled("f", changed=True, etag='"5.2"', size=5, now=0.0)
    assert s.etag("f", 5) == '"5.2"'
    assert s.etag("f", 6) == ""  # our view moved (gossip, a report): ask for the full answer
    s.failed("f")
    assert s.due("f", 0.0) and s.etag("f", 5) == ""
