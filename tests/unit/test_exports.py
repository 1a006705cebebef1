"""Each package's public face is exactly its __all__ (the httpx pattern), kept sorted."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import ledger


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions and modules."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


@pytest.mark.parametrize("package", ["ledger", "node", "scenarios"])
def test_all_is_sorted_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names, key=_isort_key), f"{package}.__all__ is not sorted"
    assert len(set(names)) == len(names)
    for name in names:
        assert not name.startswith("_")
        assert getattr(module, name) is not None, name


def test_sort_check_can_fail() -> None:
    assert sorted(["b", "a"], key=_isort_key) != ["b", "a"]
    assert sorted(["Entry", "PURPOSES"], key=_isort_key) != ["Entry", "PURPOSES"]


def test_node_face_is_lazy_and_refuses_unknown_names() -> None:
    code = "import sys, node; node.public_b64; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    import node

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        node.nope  # noqa: B018


def test_all_names_exist_and_are_public() -> None:
    for name in ledger.__all__:
        assert hasattr(ledger, name), name
        assert not name.startswith("_")
    assert len(set(ledger.__all__)) == len(ledger.__all__)


def test_no_private_module_leaks() -> None:
    public = {n for n in dir(ledger) if not n.startswith("_")}
    modules = {
        "codec",
        "entries",
        "errors",
        "items",
        "log",
        "merkle",
        "note",
        "sm2",
        "store",
        "uscc",
        "fsck",
        "annotations",
    }
    assert public - modules == set(ledger.__all__)


def test_ledger_imports_no_web_framework() -> None:
    code = (
        "import sys, ledger, ledger.fsck; "
        "bad = [m for m in ('fastapi','httpx','starlette','node','scenarios') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
