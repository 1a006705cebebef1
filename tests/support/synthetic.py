"""Deterministic synthetic drafts from the simulator's workload model."""

from __future__ import annotations

from ledger import CorrectionDraft, RecordDraft
from scenarios.model.topology import load_topology
from scenarios.model.workloads import SyntheticData


def node_drafts(node_id: str, enterprises: int) -> list[RecordDraft | CorrectionDraft]:
    """The drafts ``node_id`` holds in the launch-2020 network of ``enterprises`` enterprises."""
    data = SyntheticData(load_topology("launch-2020"), enterprises)
    return list(data.records_for_node(node_id))
