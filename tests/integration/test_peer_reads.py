"""A holder that never stops answering, or trickles, cannot hold a report.

Reproduced on the old code: a fake holder answering 200, chunked, 1 MiB every
0.25 s kept the report from returning for 45 s while the home node's RSS grew
by 423 MiB (the whole answer was read with no cap; httpx's timeout is per
read, so a trickle never times out). Now every peer read is streamed under a
byte cap per path and one deadline per exchange.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from node.peers.client import PeerClient


class _FakeHolder:
    """A socket server on 127.0.0.1 that answers 200 chunked and then streams or trickles."""

    def __init__(self, chunk: bytes, pause_s: float) -> None:
        self.chunk, self.pause_s = chunk, pause_s
        self.sent = 0
        self.closed_by_peer = asyncio.Event()
        self.server: asyncio.base_events.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        try:
            while True:
                writer.write(b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk))
                await writer.drain()
                self.sent += len(self.chunk)
                await asyncio.sleep(self.pause_s)
        except (ConnectionError, OSError):
            self.closed_by_peer.set()
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


class _Split(httpx.AsyncBaseTransport):
    """127.0.0.1 over real sockets (the fake holder), every other host in process."""

    def __init__(self, inproc: httpx.AsyncBaseTransport) -> None:
        self.inproc = inproc
        self.real = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            return await self.real.handle_async_request(request)
        return await self.inproc.handle_async_request(request)


async def _home_asks_fake_hf(world, url: str, *, deadline_s: float, cap: int) -> httpx.Response:
    home = world.state("hz-1")
    urls = {n.node_id: n.url for n in world.manifest.nodes}
    urls["hf-1"] = url
    old = home.peers
    home.peers = PeerClient(
        world.manifest,
        "hz-1",
        world.net.keys["hz-1"],
        transport=_Split(world.net.transport),
        urls=urls,
        deadline_s=deadline_s,
        max_bytes=cap,
        max_bytes_by_path={"/v1/peer/records": cap},
    )
    try:
        return await world.report()
    finally:
        await home.peers.aclose()
        home.peers = old


@pytest.mark.asyncio
async def test_a_holder_that_streams_for_ever_is_cut_at_the_cap(world):
    fake = _FakeHolder(b" " * (256 << 10), 0.01)
    async with fake as url:
        r = await _home_asks_fake_hf(world, url, deadline_s=30, cap=1 << 20)
        assert r.status_code == 200, r.text
        report = r.json()["report"]
        missing = {m["node_id"]: m["reason"] for m in report["missing"]}
        assert report["partial"] is True
        assert "over the 1048576-byte cap" in missing["hf-1"], missing
        assert "sh-1" in {h["node_id"] for h in report["holders"]}
        await asyncio.wait_for(fake.closed_by_peer.wait(), 10)  # the connection was closed
        # what the home read stayed near the cap; the server's count includes socket buffers
        assert fake.sent < 16 << 20


@pytest.mark.asyncio
async def test_a_holder_that_trickles_a_byte_a_second_hits_the_deadline(world):
    fake = _FakeHolder(b" ", 1.0)
    async with fake as url:
        r = await _home_asks_fake_hf(world, url, deadline_s=2, cap=1 << 20)
        assert r.status_code == 200, r.text
        report = r.json()["report"]
        missing = {m["node_id"]: m["reason"] for m in report["missing"]}
        assert "no complete answer within 2 s" in missing["hf-1"], missing
        await asyncio.wait_for(fake.closed_by_peer.wait(), 10)
