"""node: the FastAPI service one city of the credit chain runs.

Its public face is ``__all__`` below: what the simulator's harness (``scenarios/``) and an
operator's own tooling need — building the app, the consortium manifest, keys, offline
bundle verification and the error root. Names load on first use (PEP 562), so that
``import node.keys`` does not pull in FastAPI.

Rooms::

    app.py         create_app: wiring, lifespan, middleware
    api/           RFC 9457 problem details; the routes' wire models
    http/          RFC 9421 HTTP message signatures (profile, nonces) and request limits
    peers/         the signed peer client and the mirroring loop
    bundle.py      offline verification of a report bundle
    consortium.py  the signed manifest: nodes, keys, institutions
    reports.py, ingest.py, catalogue.py, sequencer.py, views.py, state.py, settings.py, keys.py
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.app import create_app
    from node.bundle import BundleSummary, verify_bundle, verify_checkpoint_note
    from node.consortium import Manifest, NodeInfo, load_manifest, sign_manifest
    from node.errors import BundleError, ConfigError, NodeError
    from node.keys import generate_key_file, load_private_key, public_b64
    from node.settings import CATALOGUE_MODES, NodeSettings

__all__ = [
    "CATALOGUE_MODES",
    "BundleError",
    "BundleSummary",
    "ConfigError",
    "Manifest",
    "NodeError",
    "NodeInfo",
    "NodeSettings",
    "create_app",
    "generate_key_file",
    "load_manifest",
    "load_private_key",
    "public_b64",
    "sign_manifest",
    "verify_bundle",
    "verify_checkpoint_note",
]

_WHERE = {
    "CATALOGUE_MODES": "node.settings",
    "BundleError": "node.errors",
    "BundleSummary": "node.bundle",
    "ConfigError": "node.errors",
    "Manifest": "node.consortium",
    "NodeError": "node.errors",
    "NodeInfo": "node.consortium",
    "NodeSettings": "node.settings",
    "create_app": "node.app",
    "generate_key_file": "node.keys",
    "load_manifest": "node.consortium",
    "load_private_key": "node.keys",
    "public_b64": "node.keys",
    "sign_manifest": "node.consortium",
    "verify_bundle": "node.bundle",
    "verify_checkpoint_note": "node.bundle",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'node' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
