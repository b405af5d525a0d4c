"""The console's WebSocket on a real running exhibit: hello, the whole state, then changes; commands
with their replies; watched signals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from content.console.websocket import WATCH_LIMIT, EventEncoder
from tests.content.console.conftest import Console

Event = dict[str, Any]


async def until(ws: aiohttp.ClientWebSocketResponse, wanted: Callable[[Event], bool], seen: list[Event]) -> Event:
    """The first event ``wanted`` accepts (every event read is added to ``seen``)."""
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            item = json.loads(message.data)
            seen.append(item)
            if wanted(item):
                return item


async def released(console: Console, name: str) -> None:
    """Wait until no subscriber of the hub watches ``name`` (the server saw its socket close)."""
    for _ in range(500):
        if not any(name in sub.signals for sub in console.runtime.events.subscribers):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"`{name}` is still watched after its socket closed")


async def test_hello_then_the_whole_state_then_go_gets_its_reply_and_the_cue_list_event(console: Console):
    client, csrf = await console.login("ana")
    seen: list[Event] = []
    async with client.ws_connect("/api/v1/ws", origin=console.url) as ws:
        first = await until(ws, lambda e: True, seen)
        assert first == {
            "v": 1,
            "topic": "hello",
            "data": {
                "user": "ana",
                "role": "operator",
                "protocol": 1,
                "exhibit": {"id": "consoletest", "title": {"en": "Console test", "zh": "控制台测试"}},
            },
        }
        state = {"show", "safety", "cuelist/main", "var/visits", "health/console", "health/wash"}
        await until(ws, lambda e: state <= {item["topic"] for item in seen}, seen)
        assert all(item["v"] == 1 for item in seen)

        await ws.send_json({"op": "command", "id": 7, "name": "go", "params": {}, "csrf": csrf})
        reply = await until(ws, lambda e: e["topic"] == "reply", seen)
        assert reply["data"] == {"id": 7, "status": "ok", "data": {"cue_list": "main", "standby": "2", "last": "1"}}
        moved = await until(ws, lambda e: e["topic"] == "cuelist/main" and e["data"]["playhead"] == 1, seen)
        assert moved["data"]["last"] == "1"

        await ws.send_json({"op": "command", "id": 8, "name": "go", "params": {}, "csrf": "forged"})
        refused = await until(ws, lambda e: e["topic"] == "reply", seen)
        assert refused["data"]["id"] == 8 and refused["data"]["code"] == "forbidden"
        await ws.send_json({"op": "command", "id": 9, "name": "go", "params": {}})
        refused = await until(ws, lambda e: e["topic"] == "reply", seen)
        assert refused["data"]["code"] == "forbidden"
    assert console.playhead == 1


async def test_a_viewer_watches_but_is_refused_go(console: Console):
    client, csrf = await console.login("vic")
    seen: list[Event] = []
    async with client.ws_connect("/api/v1/ws") as ws:
        await ws.send_json({"op": "command", "id": "a", "name": "go", "csrf": csrf})
        reply = await until(ws, lambda e: e["topic"] == "reply", seen)
        assert reply["data"]["id"] == "a" and reply["data"]["code"] == "forbidden"
    assert console.playhead == 0


async def test_a_watched_signal_sends_its_changes_and_an_unknown_one_an_error(console: Console):
    client, _ = await console.login("vic")
    seen: list[Event] = []
    store = console.runtime.store
    store.declare("stage.level", "float")  # nothing else moves it (the simulated panel's fader would: latest wins)
    async with client.ws_connect("/api/v1/ws") as ws:
        await ws.send_json({"op": "watch", "signals": ["stage.level", "no.such.signal"]})
        error = await until(ws, lambda e: e["topic"] == "error", seen)
        assert error["data"]["code"] == "not_found" and error["data"]["signal"] == "no.such.signal"
        assert " / " in error["data"]["error"]
        await until(ws, lambda e: e["topic"] == "signal/stage.level", seen)
        store.set("stage.level", 0.25)
        changed = await until(ws, lambda e: e["topic"] == "signal/stage.level" and e["data"]["value"] == 0.25, seen)
        assert changed["data"]["stale"] is False
        await ws.send_json({"op": "unwatch", "signals": ["stage.level"]})
        await ws.send_json({"op": "nonsense"})
        await until(ws, lambda e: e["topic"] == "error" and e["data"]["op"] == "nonsense", seen)
        store.set("stage.level", 0.75)  # no longer watched: the next thing to come is the answer below
        await ws.send_str("{not json")
        after = await until(ws, lambda e: e["topic"] in ("error", "signal/stage.level"), seen)
        assert after["topic"] == "error" and after["data"]["code"] == "bad_request"
    await released(console, "stage.level")


async def test_a_client_watches_at_most_the_limit(console: Console):
    client, _ = await console.login("vic")
    names = [f"extra.s{i:03}" for i in range(WATCH_LIMIT + 1)]
    for name in names:
        console.runtime.store.declare(name, "float")
    seen: list[Event] = []
    async with client.ws_connect("/api/v1/ws") as ws:
        await ws.send_json({"op": "watch", "signals": names})
        error = await until(ws, lambda e: e["topic"] == "error", seen)
        assert error["data"]["code"] == "conflict" and error["data"]["signal"] == names[-1]
        assert not any(e["topic"] == f"signal/{names[-1]}" for e in seen)
    await released(console, names[0])


async def test_a_token_socket_commands_without_csrf_and_a_stranger_gets_no_socket(console: Console):
    client = console.client()
    try:
        await client.ws_connect("/api/v1/ws")
        raise AssertionError("a WebSocket opened without a session or token")
    except aiohttp.WSServerHandshakeError as refused:
        assert refused.status == 401
    seen: list[Event] = []
    headers = {"Authorization": f"Bearer {console.tokens['operator']}"}
    async with client.ws_connect("/api/v1/ws", headers=headers) as ws:
        await ws.send_json({"op": "command", "id": 1, "name": "go"})
        reply = await until(ws, lambda e: e["topic"] == "reply", seen)
        assert reply["data"]["status"] == "ok"
    assert console.playhead == 1


async def test_logging_out_closes_the_sessions_socket_and_the_service_closes_the_rest(console: Console):
    client, csrf = await console.login("ana")
    ws = await client.ws_connect("/api/v1/ws")
    other = await console.client().ws_connect(
        "/api/v1/ws", headers={"Authorization": f"Bearer {console.tokens['viewer']}"}
    )
    async with client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 200
    async with asyncio.timeout(10):
        while (await ws.receive()).type != aiohttp.WSMsgType.CLOSE:
            pass
    assert ws.close_code == 4401

    async def read_to_the_end() -> None:  # as a browser does: it answers the close at once
        async with asyncio.timeout(10):
            while (await other.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                pass

    reading = asyncio.create_task(read_to_the_end())
    await console.service.close(5.0)
    await reading
    assert other.close_code == aiohttp.WSCloseCode.GOING_AWAY


def test_an_event_sent_to_many_clients_is_encoded_once():
    encoder = EventEncoder(size=2)
    data = {"playhead": 1}
    first = encoder.encode({"v": 1, "topic": "cuelist/main", "data": data})
    assert encoder.encode({"v": 1, "topic": "cuelist/main", "data": data}) is first
    changed = encoder.encode({"v": 1, "topic": "cuelist/main", "data": {"playhead": 2}})
    assert json.loads(changed)["data"] == {"playhead": 2} and changed is not first
    assert json.loads(encoder.encode({"v": 1, "topic": "x", "data": float("nan")}))["data"] is None


async def test_a_client_that_stops_reading_is_dropped_instead_of_buffered(console: Console, monkeypatch, caplog):
    from content.console import websocket as websocket_module

    monkeypatch.setattr(websocket_module, "SEND_TIMEOUT", 0.5)
    store = console.runtime.store
    store.declare("extra.blob", "str")
    client, _ = await console.login("vic")
    ws = await client.ws_connect("/api/v1/ws")  # aiohttp stops reading the socket once 64 KiB wait unread
    await ws.send_json({"op": "watch", "signals": ["extra.blob"]})
    assert console.service.context is not None
    sockets = console.service.context.sockets
    for i in range(3000):  # at most 180 MB offered; a few MB fill the socket buffers
        if not sockets:
            break
        store.set("extra.blob", f"{i:05}" + "x" * 60_000)
        await asyncio.sleep(0.002)
    assert not sockets, "a client that reads nothing was still served"
    await released(console, "extra.blob")
    assert any("stopped reading and was dropped" in r.getMessage() for r in caplog.records)


async def test_removing_a_token_closes_its_live_socket(console: Console, tmp_path, monkeypatch):
    from content.console import service as service_module
    from engine.control.accounts import Accounts

    monkeypatch.setattr(service_module, "RECHECK", 0.0)  # look every second instead of every five
    ws = await console.client().ws_connect(
        "/api/v1/ws", headers={"Authorization": f"Bearer {console.tokens['viewer']}"}
    )
    Accounts(tmp_path / "accounts.json").remove_token("viewer-machine")  # `exhibit token remove` while it runs
    async with asyncio.timeout(15):
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass
    assert ws.close_code == 4401


async def test_frames_of_every_length_class_arrive_whole(console: Console):
    """The shared sender writes its own frames: short, 16-bit and 64-bit lengths (RFC 6455) must all parse."""
    client, _ = await console.login("vic")
    store = console.runtime.store
    store.declare("stage.caption", "str")
    seen: list[Event] = []
    async with client.ws_connect("/api/v1/ws", max_msg_size=1 << 20) as ws:
        await ws.send_json({"op": "watch", "signals": ["stage.caption"]})
        await until(ws, lambda e: e["topic"] == "signal/stage.caption", seen)
        for text in ("短", "灯" * 200, "x" * 70_000):
            store.set("stage.caption", text)

            def arrived(e: Event, wanted: str = text) -> bool:
                return e["topic"] == "signal/stage.caption" and e["data"]["value"] == wanted

            assert (await until(ws, arrived, seen))["data"]["value"] == text
