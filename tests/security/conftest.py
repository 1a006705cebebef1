"""Fixtures for the security tests: the integration suite's in-process network.

The seeded three-city world of ``tests/integration/conftest.py`` is reused as is
(imported from ``tests/integration/inproc_world.py``, never from the other conftest).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from inproc_world import NODES, World, assert_problem, make_net, net_dir, seed_world  # noqa: E402

__all__ = ["NODES", "World", "make_net", "seed_world"]


@pytest.fixture
def problem() -> Callable[..., dict[str, Any]]:
    """``problem(response, status, slug, **fields)`` asserts an RFC 9457 problem and returns its body."""
    return assert_problem


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Any]:
    """A freshly seeded world for tests that change it (alarms, revocations)."""
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", NODES)
        try:
            yield await seed_world(net)
        finally:
            await net.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """One seeded world per module (tests marked ``asyncio(loop_scope="module")``)."""
    with net_dir(tmp_path_factory.mktemp("shared")) as root:
        net = make_net(root / "net", NODES)
        try:
            yield await seed_world(net)
        finally:
            await net.close()
