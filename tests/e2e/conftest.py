"""Every test under ``tests/e2e`` starts real processes (nodes, containers): all are marked
``e2e``, so ``pytest -m "not e2e"`` runs the in-process suite alone."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
