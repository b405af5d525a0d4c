"""The audience's web server (issue 19), in its own process, with real WebSocket clients on loopback: counting,
one vote per phone, limits, malformed and oversized messages, a full room, other sites, and no way to the
console's control."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from engine.worker_process import WorkerProcess
from sensors.audience.model import AudienceSensorConfig, Label
from sensors.audience.server import FLOOD, STRIKES, ServerSettings, SetProps, StopServing, server_main
from tests.support.net import free_port

OFFERS = {
    "lantern": {"type": "tap"},
    "season": {
        "type": "vote",
        "choices": {"spring": {"zh": "春", "en": "Spring"}, "autumn": {"zh": "秋", "en": "Autumn"}},
    },
    "wind": {"type": "slider"},
}


class Server:
    """An audience server process and the frames it sent."""

    def __init__(self, **options: Any) -> None:
        self.port = free_port()
        config = AudienceSensorConfig.model_validate(
            {"kind": "audience", "host": "127.0.0.1", "port": self.port, "offers": OFFERS, **options}
        )
        self.frames: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.times: list[float] = []
        """When each frame was made (the server's monotonic clock)."""
        settings = ServerSettings(config, Label(zh="测试", en="Test"))
        self.process = WorkerProcess(server_main, settings, StopServing(), "audience server", self._reply)
        self.url = f"http://127.0.0.1:{self.port}/"

    def _reply(self, reply: tuple[Any, ...]) -> None:
        if reply[0] == "frame":
            self.frames.append((reply[2], reply[3]))
            self.times.append(reply[1])

    async def frame_after(self, seconds: float = 0.35) -> tuple[dict[str, Any], dict[str, Any]]:
        """The latest frame, a few ticks from now."""
        await asyncio.sleep(seconds)
        return self.frames[-1]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    running = Server()
    await running.process.start(30.0)
    yield running
    await running.process.close()


class Phone:
    """A phone: the page (for its session cookie), then the WebSocket."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, hello: dict) -> None:
        self.session, self.ws, self.hello = session, ws, hello

    @classmethod
    async def open(cls, server: Server, cookies: Any = None) -> Phone:
        session = aiohttp.ClientSession(cookie_jar=cookies or aiohttp.CookieJar(unsafe=True))
        async with session.get(server.url) as page:
            assert page.status == 200
        ws = await session.ws_connect(server.url + "ws")
        hello = json.loads((await ws.receive()).data)
        assert hello["t"] == "hello"
        await ws.receive()  # the state
        return cls(session, ws, hello)

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def answer(self, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads((await asyncio.wait_for(self.ws.receive(), 5.0)).data)
            if message["t"] == kind:
                return message

    async def state_where(self, check: Any) -> dict[str, Any]:
        """The first state message (from now) that ``check`` accepts."""
        while not check(state := await self.answer("state")):
            pass
        return state

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read on (state messages sent before) until the server closes the socket, for 5 s at most; its close code."""
    async with asyncio.timeout(5.0):
        while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            pass
    return ws.close_code


async def test_the_page_sets_a_session_and_serves_only_its_own_files(server: Server):
    async with aiohttp.ClientSession() as client:
        async with client.get(server.url) as page:
            assert page.status == 200 and "aud" in page.cookies
            assert page.cookies["aud"]["httponly"] and page.cookies["aud"]["samesite"] == "Strict"
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for asset in ("audience.js", "audience.css"):
            async with client.get(server.url + asset) as response:
                assert response.status == 200
        # The console's routes, control included, are not there at all.
        for path in ("/login", "/studio", "/static/js/main.js", "/api/v1/state", "/api/v1/ws", "/api/openapi.json"):
            async with client.get(f"http://127.0.0.1:{server.port}{path}") as response:
                assert response.status == 404, path
        for command in ("go", "panic", "login", "reset", "show/go"):
            async with client.post(f"http://127.0.0.1:{server.port}/api/v1/{command}", json={}) as response:
                assert response.status in (404, 405), command


async def test_the_server_and_every_thread_it_started_yield_the_cpu_to_the_show(server: Server):
    """The idle scheduling class: any of the show's processes that wakes takes the core from the server at once."""
    async with aiohttp.ClientSession() as client, client.get(server.url) as page:  # its threads are all started
        assert page.status == 200
    assert server.process.pid is not None
    threads = [int(task) for task in os.listdir(f"/proc/{server.process.pid}/task")]
    assert len(threads) > 1 and {os.sched_getscheduler(tid) for tid in threads} == {os.SCHED_IDLE}, threads
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the show's own process is not touched


async def test_taps_votes_and_sliders_from_several_phones_become_signals(server: Server):
    phones = [await Phone.open(server) for _ in range(3)]
    assert [offer["id"] for offer in phones[0].hello["offers"]] == ["lantern", "season", "wind"]
    for phone, taps in zip(phones, (5, 3, 1), strict=True):
        for _ in range(taps):
            await phone.send(t="tap", id="lantern")
    await phones[0].send(t="slide", id="wind", value=0.2)
    await phones[1].send(t="slide", id="wind", value=0.6)
    await phones[2].send(t="lang", value="en")
    await phones[0].send(t="vote", id="season", choice="spring")
    closed = await phones[0].answer("voted")
    assert closed == {"t": "voted", "id": "season", "choice": "spring", "ok": False, "why": "closed"}
    server.process.send(SetProps({"season.open": True}))
    state = await phones[1].answer("state")
    assert state["open"] == {"season": True}
    await phones[0].send(t="vote", id="season", choice="spring")
    assert (await phones[0].answer("voted"))["ok"]
    await phones[1].send(t="vote", id="season", choice="autumn")
    await phones[2].send(t="vote", id="season", choice="autumn")
    signals, health = await server.frame_after()
    assert signals["count"] == 3 and signals["lantern.taps"] == 9
    assert signals["season.votes"] == 3 and signals["season.leader"] == "autumn"
    assert signals["wind.mean"] == pytest.approx(0.4) and signals["wind.count"] == 2
    assert signals["language.en"] == 1.0
    assert health["connections"] == 3 and health["dropped"] == 1  # the vote while closed
    for phone in phones:
        await phone.close()


async def test_a_phone_votes_once_however_it_reconnects(server: Server):
    server.process.send(SetProps({"season.open": True}))
    jar = aiohttp.CookieJar(unsafe=True)
    first = await Phone.open(server, jar)
    await first.send(t="vote", id="season", choice="spring")
    assert (await first.answer("voted"))["ok"]
    await first.ws.close()
    again = await first.session.ws_connect(server.url + "ws")  # the same browser: the same cookie
    hello = json.loads((await again.receive()).data)
    assert next(o for o in hello["offers"] if o["id"] == "season")["voted"] == "spring"
    await again.send_str(json.dumps({"t": "vote", "id": "season", "choice": "autumn"}))
    while (answer := json.loads((await again.receive()).data))["t"] != "voted":
        pass
    assert answer == {"t": "voted", "id": "season", "choice": "autumn", "ok": False, "why": "again"}
    signals, _ = await server.frame_after()
    assert signals["season.votes"] == 1 and signals["season.spring"] == 1.0
    await again.close()
    await first.session.close()


async def test_a_flooding_phone_is_limited_counted_and_cut_off_and_others_are_not_touched(server: Server):
    calm, flood = await Phone.open(server), await Phone.open(server)
    for _ in range(5):
        await calm.send(t="tap", id="lantern")
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):  # the server may cut it off mid-way
        for _ in range(200):  # as fast as it can: far over 10 a second
            await flood.send(t="tap", id="lantern")
    assert await close_code(flood.ws) == 1008
    signals, health = await server.frame_after()
    accepted = signals["lantern.taps"] - 5
    assert 0 < accepted <= 2 * 10 + 10, accepted  # a burst of 2 s worth, and what came in meanwhile
    assert health["dropped"] >= FLOOD
    for _ in range(3):
        await calm.send(t="tap", id="lantern")
    signals, _ = await server.frame_after()
    assert signals["lantern.taps"] == 5 + accepted + 3  # the calm phone still counts
    await calm.close()
    await flood.session.close()


async def test_malformed_and_oversized_messages_are_dropped_and_their_sender_cut_off(server: Server):
    calm, bad, big = await Phone.open(server), await Phone.open(server), await Phone.open(server)
    for junk in ("not json", "[]", '{"t": 5}', '{"t": "vote", "id": "season"}', '{"t": "tap"}', '{"t": "slide"}'):
        await bad.ws.send_str(junk)
    await bad.ws.send_bytes(b"\x00\x01")
    signals, health = await server.frame_after()
    assert health["dropped"] == 7 and not bad.ws.closed
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
        for _ in range(STRIKES):
            await bad.ws.send_str("{")
    assert await close_code(bad.ws) == 1008
    await big.ws.send_str(json.dumps({"t": "tap", "id": "lantern", "pad": "x" * 400}))
    assert await close_code(big.ws) == 1009  # too big: closed by the server's frame limit
    await calm.send(t="tap", id="lantern")
    signals, health = await server.frame_after()
    assert signals["lantern.taps"] == 1 and signals["count"] == 1
    for phone in (calm, bad, big):
        await phone.close()


async def test_a_full_room_says_so_and_another_site_cannot_open_the_socket():
    running = Server(max_phones=2)
    await running.process.start(30.0)
    try:
        phones = [await Phone.open(running) for _ in range(2)]
        async with aiohttp.ClientSession() as client:
            async with client.get(running.url) as page:
                assert page.status == 503 and "人数已满" in await page.text()
                assert "style-src 'self' 'sha256-" in page.headers["Content-Security-Policy"]  # its own styles only
            ws = await client.ws_connect(running.url + "ws")
            assert json.loads((await ws.receive()).data) == {"t": "full"}
            assert await close_code(ws) == 1013
            await phones[0].close()
            await asyncio.sleep(0.1)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(running.url + "ws", headers={"Origin": "http://evil.example"})
            assert refused.value.status == 403
        _, health = await running.frame_after()
        assert health["refused"] == 3
        await phones[1].close()
    finally:
        await running.process.close()
