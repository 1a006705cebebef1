"""New manifest versions for a consortium directory: sign version n+1 and hand it to every node.

The root key in the directory signs the next version (URLs changed, nodes removed,
an effective time), naming the current version's digest. The directory keeps every
version in ``manifest-history.jsonl`` (one signed manifest per line, version 1
first), written before ``manifest.json`` moves on, so a bundle made under any
earlier version still verifies offline against the version it names. Each running
node gets the new version through its operator route ``POST /v1/manifest`` and
follows it live; a node that refuses says why in one sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from ledger import parse_json
from node.consortium import (
    Manifest,
    ManifestHistory,
    NodeInfo,
    parse_history,
    parse_manifest,
    sign_manifest,
    successor_problem,
)
from node.errors import ConfigError
from node.keys import load_private_key
from scenarios.errors import NetworkError
from scenarios.localnet.client import NodeClient, problem_sentence
from scenarios.localnet.consortium import Consortium, write_text_atomic

__all__ = ["HISTORY_FILE", "load_history", "next_manifest", "publish_manifest", "push_manifest"]

HISTORY_FILE = "manifest-history.jsonl"


def load_history(cons: Consortium) -> ManifestHistory:
    """The directory's manifest history; just the current manifest when none was kept yet.

    Raises:
        NetworkError: the history file is damaged or does not end at manifest.json's version.
    """
    path = cons.dir / HISTORY_FILE
    if not path.exists():
        return ManifestHistory((cons.manifest,))
    try:
        history = parse_history(
            path.read_bytes(), root_key=cons.manifest.root_key, source=str(path)
        )
    except (OSError, ConfigError) as exc:
        raise NetworkError(f"the manifest history cannot be used: {exc}") from exc
    if history.current.digest != cons.manifest.digest:
        raise NetworkError(
            f"{path} ends at manifest version {history.current.version}, but "
            f"{cons.manifest_path} holds version {cons.manifest.version}"
        )
    return history


def next_manifest(
    cons: Consortium,
    *,
    urls: Mapping[str, str] | None = None,
    remove: Sequence[str] = (),
    effective_at: str | None = None,
) -> Manifest:
    """Sign version n+1 of the consortium's manifest with the directory's root key.

    Raises:
        NetworkError: an unknown node is named, every node would be removed, or the
            new version would not follow the current one (one sentence).
    """
    current = cons.manifest
    urls = dict(urls or {})
    for node_id in [*urls, *remove]:
        cons.node(node_id)  # names the known nodes when one is unknown
    nodes: list[NodeInfo] = [
        dataclasses.replace(n, url=urls.get(n.node_id, n.url))
        for n in current.nodes
        if n.node_id not in set(remove)
    ]
    if not nodes:
        raise NetworkError("a manifest version must keep at least one node")
    root = load_private_key(cons.root_key_path)
    data = sign_manifest(
        current.name,
        current.algorithm,
        root,
        nodes,
        current.registries,
        version=current.version + 1,
        prev=current.digest,
        effective_at=effective_at,
    )
    new = parse_manifest(data, root_key=current.root_key, source="the new manifest")
    problem = successor_problem(current, new)
    if problem is not None:
        raise NetworkError(problem)
    return new


def publish_manifest(cons: Consortium, new: Manifest) -> ManifestHistory:
    """Keep ``new`` in the directory: the history file first, then manifest.json.

    Raises:
        NetworkError: ``new`` does not follow the directory's current version.
    """
    history = load_history(cons)
    try:
        extended = history.extended(new)
    except ConfigError as exc:
        raise NetworkError(str(exc)) from exc
    write_text_atomic(cons.dir / HISTORY_FILE, extended.to_bytes().decode("utf-8"))
    write_text_atomic(cons.manifest_path, new.raw.decode("utf-8"))
    return extended


def push_manifest(cons: Consortium, new: Manifest, node_ids: Sequence[str]) -> dict[str, str]:
    """Offer ``new`` to each node as its operator; returns node → one line of outcome.

    A node that is down or refuses is reported, not raised: the others still move on.
    """
    body = _document(new)
    outcome: dict[str, str] = {}
    for node_id in node_ids:
        try:
            with NodeClient(cons, f"node:{node_id}", cons.node_key(node_id), timeout_s=30.0) as c:
                status, data = c.call(node_id, "POST", "/v1/manifest", body)
        except NetworkError as exc:
            outcome[node_id] = f"not reached: {exc}"
            continue
        if status == 200 and isinstance(data, dict):
            applied = "now follows" if data.get("applied") else "already followed"
            outcome[node_id] = f"{applied} version {data.get('version')}"
        else:
            outcome[node_id] = problem_sentence(node_id, status, data)
    return outcome


def _document(manifest: Manifest) -> object:
    return parse_json(manifest.raw, "the new manifest")
