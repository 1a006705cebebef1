"""Fixtures for the node integration tests: three city nodes in one process.

The fixtures (``net3``, ``world``, ``make_world``, ``shared_world``,
``problem``) live in ``tests/support/world_fixtures.py``, shared with ``tests/security``.
The tests ask Hangzhou (the institution's home node) for reports.
"""

from support.world_fixtures import make_world, net3, problem, shared_world, world

__all__ = ["make_world", "net3", "problem", "shared_world", "world"]
