"""Holder faults: down, tampered in transit, lying under its own signature,
or holding a body that no longer matches its commitment. The report is then
explicitly partial (the holder named in ``missing``), never silently short,
and the bundle still verifies offline."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ledger import canonical_bytes, entry_bytes, entry_from_dict, entry_to_dict, parse_entry
from node.bundle import verify_bundle
from node.errors import PeerMisbehavedError
from node.http import httpsig
from node.reports import _verify_answer

shared = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def sw(shared_world):
    """The module's shared world; the test's transport changes are undone after it."""
    transport = shared_world.net.transport
    saved, down = dict(transport.transports), set(transport.down)
    yield shared_world
    transport.transports, transport.down = saved, down


def _missing(bundle: dict) -> dict[str, str]:
    return {m["node_id"]: m["reason"] for m in bundle["report"]["missing"]}


def _sections(bundle: dict) -> dict[str, int]:
    return {h["node_id"]: len(h["records"]) for h in bundle["report"]["holders"]}


async def _partial_without(world, holder: str) -> tuple[dict, str]:
    """A report that lacks ``holder``: it is partial, names it, and verifies offline."""
    r = await world.report()
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["report"]["partial"] is True
    missing = _missing(bundle)
    assert list(missing) == [holder], missing
    assert holder not in _sections(bundle)
    summary = verify_bundle(bundle, world.manifest)
    assert summary.partial is True and [m["node_id"] for m in summary.missing] == [holder]
    assert holder not in summary.holders
    assert all(d["node_id"] != holder for d in summary.history)
    home = [q for q in await world.queries("hz-1") if q["query_id"] == bundle["report"]["query_id"]]
    assert [(q["outcome"], q["reason"]) for q in home] == [("granted", f"partial: {holder}")]
    return bundle, missing[holder]


@shared
async def test_holder_down_makes_the_report_partial_then_full(sw):
    sw.net.transport.down.add("sh-1")
    _, reason = await _partial_without(sw, "sh-1")
    assert reason.startswith("unavailable:") and "no route to sh-1" in reason
    sw.net.transport.down.discard("sh-1")
    r = await sw.report()
    assert r.status_code == 200
    bundle = r.json()
    assert bundle["report"]["partial"] is False and bundle["report"]["missing"] == []
    assert _sections(bundle) == {"hz-1": 1, "hf-1": 3, "sh-1": 1}
    assert verify_bundle(bundle, sw.manifest).partial is False


class FailingTransport(httpx.AsyncBaseTransport):
    def __init__(self, exc: type[httpx.TransportError]) -> None:
        self.exc = exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.exc("simulated", request=request)


@shared
@pytest.mark.parametrize(
    "exc,needle",
    [
        (httpx.ReadTimeout, "timed out"),
        (httpx.ConnectError, "unreachable"),
        (httpx.RemoteProtocolError, "unreachable"),
    ],
)
async def test_slow_or_broken_holder_makes_the_report_partial(sw, exc, needle):
    sw.net.transport.transports["sh-1"] = FailingTransport(exc)
    _, reason = await _partial_without(sw, "sh-1")
    assert reason.startswith(f"unavailable: {needle}"), reason


@shared
async def test_holder_unreachable_by_removal(sw):
    transport = sw.net.transport.transports.pop("hf-1")
    _, reason = await _partial_without(sw, "hf-1")
    assert reason.startswith("unavailable:")
    sw.net.transport.transports["hf-1"] = transport
    r = await sw.report()
    assert r.json()["report"]["partial"] is False


# --- tampering in transit -------------------------------------------------------


class TamperingTransport(httpx.AsyncBaseTransport):
    """Forwards to a holder and edits its /v1/peer/records answers on the way back."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        edit: Callable[[bytes, httpx.Headers], tuple[bytes, dict]],
    ):
        self.inner = inner
        self.edit = edit
        self.tampered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.url.path != "/v1/peer/records" or response.status_code != 200:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        body, extra = self.edit(body, response.headers)
        self.tampered += 1
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() != "content-length" and k.lower() not in extra
        ]
        return httpx.Response(
            response.status_code, headers=headers + list(extra.items()), content=body
        )


def _change_a_body(body: bytes) -> bytes:
    data = json.loads(body)
    data["records"][0]["body"] = {"name": "someone else"}
    return json.dumps(data).encode()


@shared
@pytest.mark.parametrize(
    "recompute_digest,expect", [(False, "bad-digest"), (True, "bad-signature")]
)
async def test_answer_tampered_in_transit_is_caught(sw, recompute_digest, expect):
    def edit(body: bytes, headers: httpx.Headers) -> tuple[bytes, dict]:
        new = _change_a_body(body)
        return new, ({"content-digest": httpsig.content_digest(new)} if recompute_digest else {})

    net = sw.net
    failures = sw.state("hz-1").metrics.get("holder_verification_failures", 0)
    net.transport.transports["hf-1"] = tamper = TamperingTransport(
        net.transport.transports["hf-1"], edit
    )
    _, reason = await _partial_without(sw, "hf-1")
    assert tamper.tampered == 1
    assert (
        reason.startswith("failed verification:")
        and "response signature" in reason
        and expect in reason
    )
    assert sw.state("hz-1").metrics["holder_verification_failures"] == failures + 1


# --- a holder that signs a lie ----------------------------------------------------


class LyingHolder:
    """ASGI wrapper around a holder's app: edits its report answers and signs them
    again with the holder's own key, so only the content can give it away."""

    def __init__(self, app: Any, node_id: str, key: Any, lie: Callable[[dict], None]) -> None:
        self.app, self.node_id, self.key, self.lie = app, node_id, key, lie

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/peer/records":
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if start["status"] == 200:
            data = json.loads(body)
            self.lie(data)
            body = json.dumps(data).encode()
        req = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        extra = httpsig.sign_response(
            start["status"],
            {},
            body,
            req["signature-input"],
            req["signature"],
            f"node:{self.node_id}",
            self.key,
            request_method=scope["method"],
            request_url=f"http://{self.node_id}{scope['path']}"
            + (f"?{scope['query_string'].decode()}" if scope["query_string"] else ""),
        )
        drop = {b"content-length", b"content-digest", b"signature-input", b"signature"}
        headers = [(k, v) for k, v in start["headers"] if k.lower() not in drop]
        headers += [(b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return _b64(bytes(raw))


def _lie_body(data: dict) -> None:
    data["records"][1]["body"]["amount_minor"] = 1  # a penalty of 1 fen instead of 1,000 yuan


def _lie_salt(data: dict) -> None:
    data["records"][1]["salt"] = _flip(data["records"][1]["salt"])


def _lie_proof(data: dict) -> None:
    data["records"][0]["proof"][0] = _flip(data["records"][0]["proof"][0])


def _lie_index(data: dict) -> None:
    data["records"][0]["index"] = 2


def _lie_uscc(data: dict) -> None:
    d = entry_to_dict(parse_entry(base64.b64decode(data["records"][0]["entry"])))
    d["uscc"] = "91330100000000R295"
    data["records"][0]["entry"] = _b64(entry_bytes(entry_from_dict(d)))


def _lie_drop_record(data: dict) -> None:
    del data["records"][1]["proof"][-1]


def _lie_other_proof(data: dict) -> None:
    data["records"][0]["proof"] = data["records"][1]["proof"]


LIES = {
    "body": (_lie_body, "bad-body"),
    "salt": (_lie_salt, "bad-body"),
    "proof": (_lie_proof, "bad-proof"),
    "index": (_lie_index, "bad-proof"),
    "uscc": (_lie_uscc, "wrong-entry"),
    "short-proof": (_lie_drop_record, "bad-proof"),
    "proof-of-another-record": (_lie_other_proof, "bad-proof"),
}


@shared
@pytest.mark.parametrize("lie", list(LIES))
async def test_holder_signing_a_lie_is_caught(sw, lie):
    edit, expect = LIES[lie]
    net = sw.net
    net.transport.transports["hf-1"] = httpx.ASGITransport(
        app=LyingHolder(net.nodes["hf-1"], "hf-1", net.keys["hf-1"], edit)
    )
    _, reason = await _partial_without(sw, "hf-1")
    assert reason.startswith("failed verification:") and f"({expect})" in reason, reason
    # A lie about content is not a fork: no alarm, the holder is not refused.
    assert sw.state("hz-1").views.alarms() == []


@shared
async def test_holder_answering_with_another_nodes_checkpoint_is_caught(sw):
    sh_note = sw.state("sh-1").ledger.head.note.decode()

    def lie(data: dict) -> None:
        data["checkpoint"] = sh_note

    net = sw.net
    net.transport.transports["hf-1"] = httpx.ASGITransport(
        app=LyingHolder(net.nodes["hf-1"], "hf-1", net.keys["hf-1"], lie)
    )
    _, reason = await _partial_without(sw, "hf-1")
    assert reason.startswith("failed verification:") and "bad checkpoint" in reason


async def test_holder_with_a_tampered_stored_body_fails_verification(world, problem):
    """Someone edits a body row in the holder's database (after dropping the
    append-only trigger): the holder's commitment check refuses to serve it."""
    st = world.state("hf-1")
    index = next(
        i for i, e in st.ledger.by_subject(world.uscc, ("record",)) if e.record_id == "hf-1:p1"
    )
    with contextlib.closing(sqlite3.connect(st.settings.ledger_path)) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(
                "UPDATE bodies SET body = ? WHERE idx = ?",
                (canonical_bytes({"amount_minor": 1}), index),
            )
        db.execute("DROP TRIGGER bodies_no_update")
        db.execute(
            "UPDATE bodies SET body = ? WHERE idx = ?",
            (canonical_bytes({"amount_minor": 1}), index),
        )
        db.commit()
    bundle, reason = await _partial_without(world, "hf-1")
    assert (
        reason.startswith("unavailable: answered 500") and "does not match its commitment" in reason
    ), reason
    assert "amount_minor" not in reason
    # The holder's receipt says it did not answer; it never claims a grant it did not deliver.
    mine = [q for q in await world.queries("hf-1") if q["query_id"] == bundle["report"]["query_id"]]
    assert [(q["outcome"], q["records"]) for q in mine] == [("denied", 0)], mine
    assert mine[0]["reason"].startswith("commitment-mismatch")
    # The operator's own view refuses the edited body too.
    async with world.net.operator("hf-1") as c:
        r = await c.get(
            f"http://hf-1/v1/enterprises/{world.uscc}/records", params={"view": "history"}
        )
    problem(r, 500, "commitment-mismatch", node_id="hf-1")


# --- _verify_answer directly --------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def answer(sw):
    """A genuine, signed answer from hf-1 to hz-1, as hz-1 would receive it."""
    world = sw
    r = await world.report()
    auth = r.json()["report"]["authorization"]
    hz = world.state("hz-1")
    got = await hz.peers.call(
        "hf-1",
        "POST",
        "/v1/peer/records",
        json_body={
            "query_id": uuid.uuid4().hex,
            "uscc": world.uscc,
            "purpose": "post_loan",
            "institution_id": "hzbank",
            "authorization": auth,
            "known_size": 0,
        },
    )
    await _verify_answer(hz, "hf-1", world.uscc, copy.deepcopy(got))  # genuine: passes
    return world, got


@shared
@pytest.mark.parametrize("lie", ["body", "salt", "proof", "index", "uscc"])
async def test_verify_answer_rejects_a_lie(answer, lie):
    sw, got = answer
    edit, expect = LIES[lie]
    bad = copy.deepcopy(got)
    edit(bad)
    with pytest.raises(Exception) as info:
        await _verify_answer(sw.state("hz-1"), "hf-1", sw.uscc, bad)
    assert getattr(info.value, "reason", None) == expect, info.value


@shared
async def test_verify_answer_rejects_a_foreign_checkpoint(answer):
    sw, got = answer
    bad = {**copy.deepcopy(got), "checkpoint": sw.state("sh-1").ledger.head.note.decode()}
    with pytest.raises(PeerMisbehavedError, match="bad checkpoint"):
        await _verify_answer(sw.state("hz-1"), "hf-1", sw.uscc, bad)
    assert sw.state("hz-1").views.alarms() == []


@shared
async def test_verify_answer_rejects_records_of_the_wrong_enterprise(answer):
    sw, got = answer
    with pytest.raises(Exception) as info:
        await _verify_answer(sw.state("hz-1"), "hf-1", sw.other_uscc, copy.deepcopy(got))
    assert getattr(info.value, "reason", None) == "wrong-entry"
