"""Fixtures for the security tests: the integration suite's in-process network.

The seeded three-city world and its fixtures come from ``tests/support/``.
"""

from __future__ import annotations

from support.inproc_world import NODES, World, make_net, seed_world
from support.world_fixtures import net3, problem, shared_world, world

__all__ = ["NODES", "World", "make_net", "net3", "problem", "seed_world", "shared_world", "world"]
