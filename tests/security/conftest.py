"""Fixtures for the security tests: the integration suite's in-process network.

The seeded three-city world and its fixtures come from
``tests/integration/world_fixtures.py`` (never from the other conftest).
"""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from inproc_world import NODES, World, make_net, seed_world  # noqa: E402
from world_fixtures import net3, problem, shared_world, world  # noqa: E402

__all__ = ["NODES", "World", "make_net", "net3", "problem", "seed_world", "shared_world", "world"]
