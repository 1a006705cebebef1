"""Fixtures for the security tests: the integration suite's in-process network.

The seeded three-city world of ``tests/integration/conftest.py`` is reused as is
(loaded under its own module name, so the two conftest files never clash).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))


def _load_integration_conftest() -> Any:
    spec = importlib.util.spec_from_file_location("integration_fixtures", INTEGRATION / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fixtures = _load_integration_conftest()
NODES = fixtures.NODES
World = fixtures.World
seed_world = fixtures.seed_world
make_net = fixtures.make_net


@pytest.fixture
def problem() -> Callable[..., dict[str, Any]]:
    """``problem(response, status, slug, **fields)`` asserts an RFC 9457 problem and returns its body."""
    return fixtures._assert_problem  # type: ignore[no-any-return]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Any]:
    """A freshly seeded world for tests that change it (alarms, revocations)."""
    with fixtures._net_dir(tmp_path) as root:
        net = make_net(root / "net", NODES)
        try:
            yield await seed_world(net)
        finally:
            await net.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """One seeded world per module (tests marked ``asyncio(loop_scope="module")``)."""
    with fixtures._net_dir(tmp_path_factory.mktemp("shared")) as root:
        net = make_net(root / "net", NODES)
        try:
            yield await seed_world(net)
        finally:
            await net.close()
