"""The explorer's JSON API, in process and with no node running: what it says of the
network, and an RFC 9457 problem for every request it cannot answer."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from scenarios import localnet as net
from scenarios.explorer import Watcher, create_app
from scenarios.explorer.app import STATIC
from scenarios.explorer.feeds import flow_outcome, witnesses
from scenarios.localnet.queries import trusted_manifest

URN = "urn:yrd-credit-chain:problem:"


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> net.Consortium:
    directory = tmp_path_factory.mktemp("explorer") / "cc"
    # Ports nobody listens on: every node is down.
    return net.init_consortium(directory, "launch-2020", base_port=net.find_free_base_port(11))


@pytest.fixture
async def client(consortium: net.Consortium) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(consortium, trusted_manifest(consortium))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://explorer") as c:
        yield c
    app.state.watcher.close()


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == URN + slug and body["status"] == status
    assert body["title"] and body["detail"] and body["instance"] == r.request.url.path
    assert "Traceback" not in r.text
    return dict(body)


async def test_the_network_names_every_city_with_coordinates_and_both_names(client, consortium):
    r = await client.get("/api/network")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "launch-2020" and body["target"] == "local"
    cities = {c["code"]: c for c in body["cities"]}
    assert set(cities) == {c.code for c in consortium.topology.cities}
    assert cities["hz"]["name"] == "Hangzhou" and cities["hz"]["name_zh"] == "杭州"
    assert 30 < cities["hz"]["lat"] < 31 and 120 < cities["hz"]["lon"] < 121
    assert [n["node_id"] for n in body["nodes"]] == list(consortium.node_ids)
    assert sum(len(c["nodes"]) for c in body["cities"]) == 11


async def test_status_without_a_page_shows_nodes_unknown_and_feeds_off(client, consortium):
    body = (await client.get("/api/status")).json()
    assert body["watching"] is False
    assert [n["node_id"] for n in body["nodes"]] == list(consortium.node_ids)
    assert not any(n["up"] for n in body["nodes"])
    assert set(body["feeds"].values()) == {"off"}
    assert body["reports"] == [] and body["pairs"] == {}


async def test_the_page_and_its_files_come_from_the_package_alone(client):
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        r = await client.get(f"/static/{name}")
        assert r.status_code == 200, name
    # No CDN, no web font, no remote script: the only URL is the SVG namespace.
    for path in Path(str(STATIC)).iterdir():
        text = path.read_text("utf-8")
        urls = set(re.findall(r"https?://[^\s\"')]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)


async def test_saved_bundles_and_bad_names(client, consortium):
    body = (await client.get("/api/reports")).json()
    assert body["reports"] == [] and body["dir"] == str(consortium.dir / "reports")
    assert_problem(await client.get("/api/reports/manifest"), 422, "invalid-request")
    assert_problem(await client.get("/api/reports/.hidden.json"), 422, "invalid-request")
    # A path out of the reports directory matches no route at all.
    assert_problem(await client.get("/api/reports/..%2Fmanifest.json"), 404, "not-found")
    assert_problem(await client.get("/api/reports/nothing.json"), 404, "not-found")


async def test_an_uploaded_bundle_is_checked_step_by_step(client, consortium):
    headers = {"x-explorer": "1", "x-bundle-name": "b.json"}
    r = await client.post("/api/verify", content=b'{"report": {}}', headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False and body["name"] == "b.json"
    assert body["failed"] == "bundle structure" and body["steps"][-1]["ok"] is False
    # A saved file is read from the reports directory and checked the same way.
    (consortium.dir / "reports").mkdir(exist_ok=True)
    (consortium.dir / "reports" / "saved.json").write_text(json.dumps({"signature": "x"}))
    saved = (await client.get("/api/reports/saved.json")).json()
    assert saved["valid"] is False and saved["steps"][0]["reason"] == "malformed"
    listed = (await client.get("/api/reports")).json()["reports"]
    assert [x["name"] for x in listed] == ["saved.json"]


async def test_a_bad_upload_is_a_problem(client):
    headers = {"x-explorer": "1"}
    assert_problem(
        await client.post("/api/verify", content=b"not json", headers=headers),
        422,
        "malformed-bundle",
    )
    assert_problem(
        await client.post("/api/verify", content=b"[1, 2]", headers=headers),
        422,
        "malformed-bundle",
    )
    # Without the page's header (another origin's form or script): refused.
    assert_problem(await client.post("/api/verify", content=b"{}"), 403, "forbidden")


async def test_alarm_actions_answer_problems(client):
    assert_problem(await client.get("/api/alarms/hz-1/1"), 404, "not-found")
    assert_problem(await client.get("/api/alarms/hz-1/x"), 422, "invalid-request")
    post = {"x-explorer": "1"}
    assert_problem(
        await client.post("/api/alarms/resolve", content=b"{}", headers=post),
        422,
        "invalid-request",
    )
    assert_problem(
        await client.post(
            "/api/alarms/resolve", json={"node_id": "hz-1", "peer_id": "zz-9"}, headers=post
        ),
        404,
        "not-found",
    )
    down = assert_problem(
        await client.post(
            "/api/alarms/resolve", json={"node_id": "hz-1", "peer_id": "hf-1"}, headers=post
        ),
        502,
        "node-unreachable",
    )
    assert "hz-1" in down["detail"]
    assert (await client.get("/api/alarms")).json()["alarms"] == []


async def test_unknown_routes_and_methods_are_problems(client):
    assert_problem(await client.get("/api/nothing"), 404, "not-found")
    assert_problem(await client.delete("/api/network"), 405, "method-not-allowed")


async def test_a_page_starts_the_watching_and_sees_the_nodes_down(consortium):
    watcher = Watcher(consortium, poll_s=0.2)
    queue = watcher.attach()
    try:
        first = await queue.get()
        assert first["event"] == "hello" and first["data"]["watching"] is False
        assert watcher.watching
        # Every node's feed is tried and found down.
        while True:
            message = await asyncio.wait_for(queue.get(), timeout=60)
            if message["event"] == "feeds" and set(message["data"].values()) == {"down"}:
                break
    finally:
        watcher.detach(queue)
        watcher.close()
    assert not watcher.watching


def test_how_flows_and_witnesses_are_read() -> None:
    assert flow_outcome("refused: an alarm against this node is open") == "refused"
    assert flow_outcome("unavailable: timed out") == "missing"
    note = "origin\n3\nroot\n\n\u2014 origin sig\n\u2014 w1 sig\n\u2014 w2 sig\n"
    assert witnesses(note) == 2 and witnesses("origin\n3\nroot\n\n\u2014 origin sig\n") == 0
