"""The in-process world as pytest fixtures, for every directory that needs it.

``tests/integration/conftest.py`` and ``tests/security/conftest.py`` both
import these names, which is how pytest registers fixtures defined elsewhere;
defining them once here keeps the two suites on the same world.

``net3`` is a bare network (Hangzhou, Hefei, Shanghai) wired by a
RoutingTransport. ``world`` seeds it: records of one Hefei enterprise in all
three cities (with a corrected penalty at Hefei), two institutions registered
at Hangzhou, every node mirrored once, and a valid authorization ``a1`` for
``hzbank``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from support.inproc import Net, make_net
from support.inproc_world import NODES, World, assert_problem, net_dir, seed_world

__all__ = ["make_world", "net3", "problem", "shared_world", "world"]


@pytest.fixture
def problem() -> Callable[..., dict[str, Any]]:
    """``problem(response, status, slug, **fields)`` asserts an RFC 9457 problem and returns its body."""
    return assert_problem


@pytest.fixture
async def net3(tmp_path: Path) -> AsyncIterator[Net]:
    with net_dir(tmp_path) as root:
        net = make_net(root / "net", NODES)
        try:
            yield net
        finally:
            await net.close()


@pytest.fixture
async def world(net3: Net) -> World:
    """A freshly seeded world, for tests that change it (alarms, revocations)."""
    return await seed_world(net3)


@pytest.fixture
def make_world(net3: Net) -> Callable[..., Awaitable[World]]:
    """``await make_world(mirror=False)``: the seeded world, optionally before any mirroring."""

    async def make(*, mirror: bool = True) -> World:
        return await seed_world(net3, mirror=mirror)

    return make


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One seeded world for a whole module whose tests each undo nothing they need:
    the module must mark its tests ``pytest.mark.asyncio(loop_scope="module")``."""
    with net_dir(tmp_path_factory.mktemp("shared")) as root:
        net = make_net(root / "net", NODES)
        try:
            yield await seed_world(net)
        finally:
            await net.close()
