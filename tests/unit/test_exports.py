"""ledger's public face is exactly its __all__ (the httpx pattern)."""

from __future__ import annotations

import ledger


def test_all_names_exist_and_are_public() -> None:
    for name in ledger.__all__:
        assert hasattr(ledger, name), name
        assert not name.startswith("_")
    assert len(set(ledger.__all__)) == len(ledger.__all__)
    assert sorted(ledger.__all__, key=str.casefold) == sorted(ledger.__all__, key=str.casefold)


def test_no_private_module_leaks() -> None:
    public = {n for n in dir(ledger) if not n.startswith("_")}
    modules = {
        "codec",
        "entries",
        "errors",
        "log",
        "merkle",
        "note",
        "store",
        "uscc",
        "fsck",
        "annotations",
    }
    assert public - modules == set(ledger.__all__)


def test_ledger_imports_no_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ledger, ledger.fsck; "
        "bad = [m for m in ('fastapi','httpx','starlette','node','scenarios') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
