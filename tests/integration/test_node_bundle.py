"""Offline verification of a real report bundle, and of every way to break it.

Two kinds of forgery: changing anything under the home node's signature
(caught as ``bad-signature``), and a home node that re-signs a doctored
report — then the holders' own signatures, commitments and proofs must
catch it, each with its own reason.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable

import pytest
import pytest_asyncio

from ledger import canonical_bytes, entry_bytes, entry_from_dict, entry_to_dict, parse_entry
from node.bundle import verify_bundle
from node.errors import BundleError

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bundle(shared_world) -> dict:
    r = await shared_world.report()
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["report"]["partial"] is False
    return b


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip(text: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 1
    return _b64(bytes(raw))


def _holder(report: dict, node_id: str) -> dict:
    return next(h for h in report["holders"] if h["node_id"] == node_id)


def _edit_entry(text: str, **changes) -> str:
    d = entry_to_dict(parse_entry(base64.b64decode(text)))
    d.update(changes)
    return _b64(entry_bytes(entry_from_dict(d)))


def _resign(world, bundle: dict) -> dict:
    """What a dishonest home node can do: sign whatever it likes."""
    return {
        **bundle,
        "signature": _b64(world.net.keys["hz-1"].sign(canonical_bytes(bundle["report"]))),
    }


async def test_the_genuine_bundle_verifies(shared_world, bundle):
    s = verify_bundle(copy.deepcopy(bundle), shared_world.manifest)
    assert (s.uscc, s.purpose, s.institution_id, s.home_node) == (
        shared_world.uscc,
        "post_loan",
        "hzbank",
        "hz-1",
    )
    assert s.holders == {"hz-1": 1, "hf-1": 3, "sh-1": 1} and s.partial is False
    # Re-signing an unchanged report is harmless (the check is not about byte identity).
    assert (
        verify_bundle(_resign(shared_world, copy.deepcopy(bundle)), shared_world.manifest).holders
        == s.holders
    )


def _set(path: list, value) -> Callable[[dict], None]:
    def edit(b: dict) -> None:
        node = b
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return edit


# Changes under the home signature, not re-signed.
UNSIGNED: dict[str, tuple[Callable[[dict], None], str]] = {
    "purpose": (_set(["report", "purpose"], "pre_loan"), "bad-signature"),
    "institution": (_set(["report", "institution_id"], "njbank"), "bad-signature"),
    "partial-flag": (_set(["report", "partial"], True), "bad-signature"),
    "drop-holder": (lambda b: b["report"]["holders"].pop(), "bad-signature"),
    "record-body": (
        lambda b: _holder(b["report"], "sh-1")["records"][0]["body"].update(case="x"),
        "bad-signature",
    ),
    "signature-bit": (lambda b: b.update(signature=_flip(b["signature"], 5)), "bad-signature"),
    "signature-short": (
        lambda b: b.update(signature=_b64(base64.b64decode(b["signature"])[:32])),
        "bad-signature",
    ),
    "signature-not-base64": (lambda b: b.update(signature="not base64!"), "malformed"),
    "no-report": (lambda b: b.pop("report"), "malformed"),
    "home-unknown": (_set(["report", "home_node"], "evil-1"), "unknown-node"),
    "home-other": (_set(["report", "home_node"], "hf-1"), "bad-signature"),
}


@pytest.mark.parametrize("case", list(UNSIGNED))
async def test_tampering_under_the_home_signature(shared_world, bundle, case):
    edit, reason = UNSIGNED[case]
    b = copy.deepcopy(bundle)
    edit(b)
    with pytest.raises(BundleError) as info:
        verify_bundle(b, shared_world.manifest)
    assert info.value.reason == reason, info.value


def _hf_record(b: dict, i: int = 1) -> dict:
    return _holder(b["report"], "hf-1")["records"][i]


def _auth(b: dict) -> dict:
    return b["report"]["authorization"]


def _swap_checkpoint(node_id: str, other: str) -> Callable[[dict], None]:
    def edit(b: dict) -> None:
        _holder(b["report"], node_id)["checkpoint"] = _holder(b["report"], other)["checkpoint"]

    return edit


def _edit_note_root(b: dict) -> None:
    h = _holder(b["report"], "sh-1")
    lines = h["checkpoint"].split("\n")
    lines[2] = _flip(lines[2])  # origin, size, root, ...
    h["checkpoint"] = "\n".join(lines)


def _edit_note_size(b: dict) -> None:
    h = _holder(b["report"], "sh-1")
    lines = h["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    h["checkpoint"] = "\n".join(lines)


def _strip_note_signature(b: dict) -> None:
    h = _holder(b["report"], "sh-1")
    h["checkpoint"] = h["checkpoint"].split("\n\n")[0] + "\n\n"


def _foreign_record(b: dict) -> None:
    # hf-1's registration entry presented as if sh-1 held it.
    _holder(b["report"], "sh-1")["records"][0] = copy.deepcopy(_hf_record(b, 0))


def _authorization_as_record(b: dict) -> None:
    r = _hf_record(b, 0)
    r["entry"], r["index"], r["proof"] = _auth(b)["entry"], _auth(b)["index"], _auth(b)["proof"]


def _other_enterprise(b: dict) -> None:
    r = _hf_record(b, 0)
    r["entry"] = _edit_entry(r["entry"], uscc="91330100000000R295")


def _drop_partial_flag(b: dict) -> None:
    b["report"]["missing"] = [{"node_id": "sh-1", "reason": "unavailable: timed out"}]


def _receipt_of_another_query(b: dict) -> None:
    b["report"]["query_id"] = "0" * 32


# A dishonest home node edits and re-signs: the holders' evidence must catch it.
RESIGNED: dict[str, tuple[Callable[[dict], None], str]] = {
    "record-body": (lambda b: _hf_record(b)["body"].update(amount_minor=1), "bad-body"),
    "record-body-extra-field": (lambda b: _hf_record(b)["body"].update(waived=True), "bad-body"),
    "record-salt": (lambda b: _hf_record(b).update(salt=_flip(_hf_record(b)["salt"])), "bad-body"),
    "record-salt-not-base64": (lambda b: _hf_record(b).update(salt="???"), "malformed"),
    "record-proof-hash": (
        lambda b: _hf_record(b)["proof"].__setitem__(0, _flip(_hf_record(b)["proof"][0])),
        "bad-proof",
    ),
    "record-proof-short": (lambda b: _hf_record(b)["proof"].pop(), "bad-proof"),
    "record-proof-long": (
        lambda b: _hf_record(b)["proof"].append(_hf_record(b)["proof"][0]),
        "bad-proof",
    ),
    "record-index": (lambda b: _hf_record(b).update(index=0), "bad-proof"),
    "record-entry-edited": (
        lambda b: _hf_record(b).update(entry=_edit_entry(_hf_record(b)["entry"], source="other")),
        "bad-proof",
    ),
    "record-other-enterprise": (_other_enterprise, "wrong-entry"),
    "record-not-a-record": (_authorization_as_record, "wrong-entry"),
    "record-from-another-holder": (_foreign_record, "bad-proof"),
    "record-missing-field": (lambda b: _hf_record(b).pop("salt"), "malformed"),
    "checkpoint-of-another-node": (_swap_checkpoint("sh-1", "hf-1"), "bad-checkpoint"),
    "checkpoint-root-edited": (_edit_note_root, "bad-checkpoint"),
    "checkpoint-size-edited": (_edit_note_size, "bad-checkpoint"),
    "checkpoint-unsigned": (_strip_note_signature, "bad-checkpoint"),
    "holder-not-in-manifest": (
        lambda b: _holder(b["report"], "sh-1").update(node_id="evil-1"),
        "unknown-node",
    ),
    "authorization-entry-edited": (
        lambda b: _auth(b).update(
            entry=_edit_entry(_auth(b)["entry"], not_after="2199-01-01T00:00:00Z")
        ),
        "bad-proof",
    ),
    "authorization-other-institution": (
        lambda b: _auth(b).update(entry=_edit_entry(_auth(b)["entry"], institution_id="njbank")),
        "wrong-entry",
    ),
    "authorization-other-purpose": (
        lambda b: b["report"].update(purpose="pre_loan"),
        "wrong-entry",
    ),
    "authorization-other-enterprise": (
        lambda b: _auth(b).update(entry=_edit_entry(_auth(b)["entry"], uscc="91330100000000R295")),
        "wrong-entry",
    ),
    "authorization-proof-hash": (
        lambda b: _auth(b)["proof"].__setitem__(0, _flip(_auth(b)["proof"][0])),
        "bad-proof",
    ),
    "authorization-index": (lambda b: _auth(b).update(index=_auth(b)["index"] + 1), "bad-proof"),
    "authorization-checkpoint-of-another-node": (
        lambda b: _auth(b).update(checkpoint=_holder(b["report"], "hf-1")["checkpoint"]),
        "bad-checkpoint",
    ),
    "authorization-not-an-authorization": (
        lambda b: _auth(b).update(entry=_hf_record(b, 0)["entry"]),
        "wrong-entry",
    ),
    "home-receipt-of-another-query": (_receipt_of_another_query, "wrong-entry"),
    "home-receipt-proof": (
        lambda b: b["report"]["home_receipt"]["proof"].__setitem__(
            0, _flip(b["report"]["home_receipt"]["proof"][0])
        ),
        "bad-proof",
    ),
    "missing-without-partial": (_drop_partial_flag, "inconsistent"),
    "partial-without-missing": (lambda b: b["report"].update(partial=True), "inconsistent"),
}


@pytest.mark.parametrize("case", list(RESIGNED))
async def test_resigned_forgeries_are_caught_by_the_evidence(shared_world, bundle, case):
    edit, reason = RESIGNED[case]
    b = copy.deepcopy(bundle)
    edit(b)
    with pytest.raises(BundleError) as info:
        verify_bundle(_resign(shared_world, b), shared_world.manifest)
    assert info.value.reason == reason, info.value
    # Without the home node's re-signature, the first thing to fail is that signature.
    with pytest.raises(BundleError) as info:
        verify_bundle(b, shared_world.manifest)
    assert info.value.reason == "bad-signature", info.value


async def test_a_partial_bundle_says_so(shared_world):
    w = shared_world
    w.net.transport.down.add("sh-1")
    try:
        r = await w.report()
    finally:
        w.net.transport.down.discard("sh-1")
    b = r.json()
    s = verify_bundle(copy.deepcopy(b), w.manifest)
    assert s.partial is True and [m["node_id"] for m in s.missing] == ["sh-1"]
    assert "sh-1" not in s.holders
    # Hiding the gap (dropping "missing" and clearing "partial") needs the home key...
    hidden = copy.deepcopy(b)
    hidden["report"].update(missing=[], partial=False)
    with pytest.raises(BundleError, match="bad-signature"):
        verify_bundle(hidden, w.manifest)
