"""Consent is the enterprise's, not the institution's: an authorization counts
only with the signature of the registry of the enterprise's city.

The attack this closes: an institution filed ``POST /v1/authorizations`` for
another city's enterprise with a made-up document digest, got 201, then a full
report and the enterprise's query history. Now the filing is refused (403, a
denied receipt); a home node that puts an unsigned authorization on its own
ledger is refused by every holder; offline verification checks the consent.
"""

from __future__ import annotations

import base64

import pytest
from support.inproc import registry_key
from support.inproc_world import assert_problem, authorization_body

from ledger import AuthorizationEntry, entry_bytes, parse_entry
from node.bundle import verify_bundle
from node.consent import sign_consent, verify_consent
from node.errors import BundleError


async def _file(w, body):
    async with w.inst() as c:
        return await c.post("http://hz-1/v1/authorizations", json=body)


def _denied_filing(w, authorization_id: str) -> list:
    home = w.state("hz-1")
    return [
        e
        for _, e in home.ledger.by_subject(w.uscc, ("receipt",))
        if e.authorization_id == authorization_id and e.outcome == "denied"
    ]


@pytest.mark.asyncio
async def test_an_institution_cannot_assert_consent_by_itself(world):
    body = authorization_body("self-asserted", world.uscc, signed=False)
    body["document_digest"] = "0" * 64
    r = await _file(world, body)
    assert_problem(r, 403, "authorization-invalid", reason="no-consent")
    assert world.state("hz-1").ledger.store.ref("authorization:self-asserted") is None
    [receipt] = _denied_filing(world, "self-asserted")
    assert receipt.reason.startswith("no-consent: filing refused")
    # ... and so it gets neither a report nor the query history.
    r = await world.report("self-asserted")
    assert_problem(r, 403, "authorization-invalid", reason="unknown")


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda b: b.update(consent=base64.b64encode(b"\0" * 64).decode()), id="zeros"),
        pytest.param(lambda b: b.update(consent="not base64!"), id="not-base64"),
        # A valid registry signature, but from the institution's own city (Hangzhou),
        # not the Hefei enterprise's.
        pytest.param(
            lambda b: b.update(
                consent=sign_consent(
                    registry_key("hz"),
                    AuthorizationEntry(
                        b["authorization_id"],
                        b["uscc"],
                        b["institution_id"],
                        tuple(b["purposes"]),
                        b["not_before"],
                        b["not_after"],
                        b["document_digest"],
                    ),
                )
            ),
            id="other-city-registry",
        ),  # fmt: skip
        # The enterprise's consent for post-loan monitoring, stretched to pre-loan too.
        pytest.param(lambda b: b.update(purposes=["post_loan", "pre_loan"]), id="widened"),
    ],
)
@pytest.mark.asyncio
async def test_a_forged_or_stretched_consent_is_refused(world, forge):
    body = authorization_body("forged", world.uscc)
    forge(body)
    r = await _file(world, body)
    assert_problem(r, 403, "authorization-invalid", reason="bad-consent")
    assert world.state("hz-1").ledger.store.ref("authorization:forged") is None
    assert len(_denied_filing(world, "forged")) == 1


@pytest.mark.asyncio
async def test_a_signed_consent_gives_a_report_that_verifies_offline(world):
    r = await world.report("a1")
    assert r.status_code == 200, r.text
    bundle = r.json()
    auth = parse_entry(base64.b64decode(bundle["report"]["authorization"]["entry"]))
    assert isinstance(auth, AuthorizationEntry)
    assert verify_consent(world.manifest, auth) == "registry:hf"
    assert verify_bundle(bundle, world.manifest).partial is False


@pytest.mark.asyncio
async def test_every_holder_refuses_an_unsigned_authorization_on_the_home_ledger(world):
    """A home node that writes an authorization past the consent check (a rogue
    operator, or a ledger from before consents) is refused by each holder."""
    home = world.state("hz-1")
    unsigned = AuthorizationEntry(
        "rogue-1",
        world.uscc,
        "hzbank",
        ("post_loan",),
        "2021-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z",
        "0" * 64,
    )
    index, _ = await home.sequencer.add([unsigned])
    head = home.ledger.head
    auth = {
        "node_id": "hz-1",
        "index": index,
        "entry": base64.b64encode(entry_bytes(unsigned)).decode(),
        "checkpoint": head.note.decode(),
        "proof": [
            base64.b64encode(p).decode() for p in home.ledger.inclusion_proof(index, head.size)
        ],
    }
    async with world.net.operator("hz-1") as c:
        r = await c.post(
            "http://hf-1/v1/peer/records",
            json={
                "query_id": "q-rogue",
                "uscc": world.uscc,
                "purpose": "post_loan",
                "institution_id": "hzbank",
                "authorization": auth,
            },
        )
    body = assert_problem(r, 403, "authorization-invalid", reason="no-consent", node_id="hf-1")
    assert "records" not in body
    mine = [q for q in await world.queries("hf-1") if q["query_id"] == "q-rogue"]
    assert [(q["outcome"], q["records"]) for q in mine] == [("denied", 0)]
    # The home node's own report path refuses it too.
    r = await world.report("rogue-1")
    assert_problem(r, 403, "authorization-invalid", reason="no-consent")


@pytest.mark.asyncio
async def test_offline_verification_refuses_a_bundle_whose_authorization_lacks_consent(world):
    """verify_bundle checks the consent with the manifest alone: the home node's
    signature over the report does not vouch for it."""
    from ledger import canonical_bytes

    r = await world.report("a1")
    assert r.status_code == 200, r.text
    bundle = r.json()
    home = world.state("hz-1")
    unsigned = AuthorizationEntry(
        "rogue-2", world.uscc, "hzbank", ("post_loan",), "2021-01-01T00:00:00Z",
        "2099-01-01T00:00:00Z", "0" * 64,
    )  # fmt: skip
    index, _ = await home.sequencer.add([unsigned])
    head = home.ledger.head
    report = bundle["report"]
    report["authorization_id"] = "rogue-2"
    report["authorization"] = {
        "node_id": "hz-1",
        "index": index,
        "entry": base64.b64encode(entry_bytes(unsigned)).decode(),
        "checkpoint": head.note.decode(),
        "proof": [
            base64.b64encode(p).decode() for p in home.ledger.inclusion_proof(index, head.size)
        ],
    }
    signature = world.net.keys["hz-1"].sign(canonical_bytes(report))
    forged = {"report": report, "signature": base64.b64encode(signature).decode()}
    with pytest.raises(BundleError) as caught:
        verify_bundle(forged, world.manifest)
    assert caught.value.reason == "bad-consent"
    assert "no consent" in str(caught.value)
