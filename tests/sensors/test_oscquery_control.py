"""OSCQuery for control: the namespace of commands, state and inputs with live VALUEs over real HTTP, and
LISTEN over a real WebSocket (the websockets client), fed by commands run through the controller."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from engine.clock import VirtualClock
from engine.control.commands import Actor
from engine.registry import ServiceSpec
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import validate_text
from sensors.osc import oscquery_listen
from sensors.osc.control import SERVICE as OSC_CONTROL
from sensors.osc.oscquery_control import typed
from sensors.osc.oscquery_listen import QUEUE_LIMIT
from sensors.osc.service import (
    CONTROL_SERVICE,
    ControlQueryService,
    allowed_by,
    control_http_port,
    is_loopback,
)
from tests.sensors.test_oscquery import exchange, get
from tests.support.show_harness import registry

TEXT = """\
format_version: 1
id: lanterns
title: {en: Canal Lanterns, zh: 运河灯笼}
control:
  osc: {port: 53123}
sensors:
  panel:
    kind: osc
    signals:
      level: {address: /panel/level, range: [0, 1]}
      door: {address: /panel/door, type: bool}
devices:
  wash:
    kind: mqtt
    properties: {level: {type: float, range: [0, 100], safe: 0}}
variables: {brightness: 0.5, visitors: 3, armed: false, greeting: hello}
states:
  mode:
    initial: idle
    states:
      idle: {}
      busy: {}
cues:
  main:
    guard: 0s
    cues:
      - {id: "1", name: Dawn, actions: [{set: wash.level, value: 10}]}
      - {id: "2", actions: [{set: wash.level, value: 20}]}
"""

OPERATOR = Actor("tester", "operator", "test")


@dataclass
class Show:
    runtime: Runtime
    service: ControlQueryService

    @property
    def port(self) -> int:
        return self.service.port

    def run(self, command: str, **params: Any) -> None:
        reply = self.runtime.control.execute(command, params, OPERATOR)
        assert reply.ok, reply.error


async def start(text: str = TEXT) -> Show:
    reg = registry()

    def build(runtime: Runtime) -> ControlQueryService:
        return ControlQueryService(runtime, runtime.context.health_of(CONTROL_SERVICE.name, "service", {}), 0)

    spec = ServiceSpec(CONTROL_SERVICE.name, CONTROL_SERVICE.order, CONTROL_SERVICE.applies, build)
    exhibit = validate_text(text, "show.yaml", reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True), clock=VirtualClock(), service_specs=[spec])
    await runtime.start()
    service = runtime.service(CONTROL_SERVICE.name)
    assert isinstance(service, ControlQueryService)
    return Show(runtime, service)


@pytest.fixture
async def show() -> AsyncIterator[Show]:
    started = await start()
    try:
        yield started
    finally:
        await started.runtime.stop()


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    """Clients' mistakes are answered quietly: no traceback from the servers or from asyncio."""
    yield
    loggers = ("sensors.osc.oscquery", "sensors.osc.oscquery_listen", "asyncio", "websockets.server")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name in loggers]
    assert not errors, [r.getMessage() for r in errors]


async def listen(ws: ClientConnection, *paths: str, command: str = "LISTEN") -> None:
    for path in paths:
        await ws.send(json.dumps({"COMMAND": command, "DATA": path}))


async def receive(ws: ClientConnection) -> tuple[str, list[Any]]:
    """The next OSC message on the WebSocket (binary, as the OSCQuery proposal streams values)."""
    data = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(data, bytes), data
    message = OscMessage(data)
    return message.address, list(message.params)


def node(namespace: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.strip("/").split("/"):
        namespace = namespace["CONTENTS"][part]
    return namespace


# --- HTTP ------------------------------------------------------------------------------------------------------------


async def test_host_info_announces_values_and_listen_and_the_control_port(show):
    status, info = await get(show.port, "/?HOST_INFO")
    assert status == 200
    assert (info["NAME"], info["OSC_PORT"], info["OSC_TRANSPORT"]) == ("lanterns control", 53123, "UDP")
    extensions = info["EXTENSIONS"]
    assert extensions["LISTEN"] is extensions["VALUE"] is extensions["PATH_CHANGED"] is True
    assert extensions["ACCESS"] is extensions["RANGE"] is extensions["DESCRIPTION"] is True


async def test_namespace_lists_the_commands_write_only(show):
    status, namespace = await get(show.port, "/")
    assert status == 200
    assert namespace["DESCRIPTION"] == "Canal Lanterns / 运河灯笼: control and state / 控制与状态"
    for path in (
        "/go",
        "/stop",
        "/pause",
        "/resume",
        "/panic",
        "/reset",
        "/playhead/next",
        "/playhead/previous",
        "/playhead/1",
        "/playhead/2",
        "/cue/1/start",
        "/select/2",
        "/exhibit/estop",
        "/exhibit/estop/reset",
    ):
        found = node(namespace, path)
        assert (found["FULL_PATH"], found["TYPE"], found["ACCESS"]) == (path, "I", 2), path
        assert "VALUE" not in found
        assert " / " in found["DESCRIPTION"], f"{path}: the description is not bilingual"
    assert "Dawn" in node(namespace, "/cue/1/start")["DESCRIPTION"]


async def test_namespace_gives_the_state_with_types_access_and_current_values(show):
    _, namespace = await get(show.port, "/")
    expected = {
        "/exhibit/state/mode": ("s", 3, ["idle"]),
        "/exhibit/var/brightness": ("f", 3, [0.5]),
        "/exhibit/var/visitors": ("i", 3, [3]),
        "/exhibit/var/armed": ("T", 3, [False]),
        "/exhibit/var/greeting": ("s", 3, ["hello"]),
        "/exhibit/cuelist/main/standby": ("s", 1, ["1"]),
        "/exhibit/cuelist/main/playhead": ("i", 1, [0]),
        "/exhibit/cuelist/main/last": ("s", 1, [""]),
        "/exhibit/estop/latched": ("T", 1, [False]),
        "/exhibit/estop/by": ("s", 1, [""]),
        "/exhibit/panic": ("T", 1, [False]),
        "/exhibit/paused": ("T", 1, [False]),
        "/exhibit/locked": ("T", 1, [False]),
        "/exhibit/health/oscquery_control/status": ("s", 1, ["ok"]),
        "/exhibit/input/panel/level": ("f", 1, None),
        "/exhibit/input/panel/door": ("T", 1, None),
    }
    for path, (tag, access, value) in expected.items():
        found = node(namespace, path)
        assert (found["TYPE"], found["ACCESS"], found.get("VALUE")) == (tag, access, value), path
    assert node(namespace, "/exhibit/state/mode")["RANGE"] == [{"VALS": ["idle", "busy"]}]
    assert node(namespace, "/exhibit/health/wash/status")["RANGE"] == [{"VALS": ["ok", "degraded", "offline"]}]
    assert "CONTENTS" not in node(namespace, "/exhibit/state/mode")  # values are leaves (Chataigne shows them)


async def test_value_is_read_at_request_time(show):
    show.run("state", machine="mode", state="busy")
    show.run("go")
    show.run("var", name="armed", value=True)
    show.runtime.store.set("panel.level", 0.25)
    assert await get(show.port, "/exhibit/state/mode?VALUE") == (200, {"VALUE": ["busy"]})
    assert await get(show.port, "/exhibit/cuelist/main/standby?VALUE") == (200, {"VALUE": ["2"]})
    assert await get(show.port, "/exhibit/cuelist/main/last?VALUE") == (200, {"VALUE": ["1"]})
    assert await get(show.port, "/exhibit/var/armed?VALUE") == (200, {"VALUE": [True]})
    assert await get(show.port, "/exhibit/input/panel/level?VALUE") == (200, {"VALUE": [0.25]})
    assert await get(show.port, "/go?VALUE") == (204, None)  # a command has no value
    show.run("panic")
    assert await get(show.port, "/exhibit/panic?VALUE") == (200, {"VALUE": [True]})


async def test_a_plain_get_with_an_upgrade_header_but_no_handshake_is_refused(show):
    status, _, body = await exchange(show.port, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
    assert status == 426  # websockets' answer: Upgrade Required (a complete handshake)
    assert body.startswith(b"Failed to open a WebSocket connection: missing Connection header.")
    assert await get(show.port, "/exhibit/state/mode?VALUE") == (200, {"VALUE": ["idle"]})


# --- LISTEN ----------------------------------------------------------------------------------------------------------


async def test_listen_gets_the_current_value_then_every_change_as_osc(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/state/mode", "/exhibit/cuelist/main/standby")
        assert await receive(ws) == ("/exhibit/state/mode", ["idle"])
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["1"])

        show.run("state", machine="mode", state="busy")
        assert await receive(ws) == ("/exhibit/state/mode", ["busy"])
        show.run("go")
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["2"])
        show.run("go")
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", [""])  # the end of the list
        show.run("playhead", cue="1")
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["1"])


async def test_listen_to_booleans_numbers_and_inputs(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/var/armed", "/exhibit/var/visitors", "/exhibit/input/panel/door")
        assert await receive(ws) == ("/exhibit/var/armed", [False])
        assert await receive(ws) == ("/exhibit/var/visitors", [3])
        show.run("var", name="armed", value=True)
        assert await receive(ws) == ("/exhibit/var/armed", [True])
        show.run("var", name="visitors", value=7)
        assert await receive(ws) == ("/exhibit/var/visitors", [7])
        show.runtime.store.set("panel.door", True)  # an input: watched while someone listens
        assert await receive(ws) == ("/exhibit/input/panel/door", [True])
        show.run("estop")
        await listen(ws, "/exhibit/estop/latched")
        assert await receive(ws) == ("/exhibit/estop/latched", [True])


async def test_ignore_stops_the_updates_of_that_address_only(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/cuelist/main/standby", "/exhibit/state/mode", "/exhibit/input/panel/level")
        assert [(await receive(ws))[0] for _ in range(2)] == ["/exhibit/cuelist/main/standby", "/exhibit/state/mode"]
        await listen(ws, "/exhibit/cuelist/main/standby", "/exhibit/input/panel/level", command="IGNORE")
        await listen(ws, "/exhibit/var/greeting")  # answered after the IGNOREs: they have been read
        assert await receive(ws) == ("/exhibit/var/greeting", ["hello"])
        assert show.service.hub.listeners.keys() == {"/exhibit/state/mode", "/exhibit/var/greeting"}

        show.run("go")  # the standby changes: nobody listens to it now
        show.runtime.store.set("panel.level", 0.9)
        show.run("state", machine="mode", state="busy")
        # Had the standby or the input been sent, it would have come first: it changed first.
        assert await receive(ws) == ("/exhibit/state/mode", ["busy"])


async def test_only_changes_are_sent(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/cuelist/main/standby", "/exhibit/state/mode")
        assert [(await receive(ws))[0] for _ in range(2)] == ["/exhibit/cuelist/main/standby", "/exhibit/state/mode"]
        show.run("pause")  # the cue list's topic changes (paused), its standby cue does not
        show.run("var", name="brightness", value=0.9)
        show.run("state", machine="mode", state="idle")  # the state it is in already
        show.run("state", machine="mode", state="busy")
        assert await receive(ws) == ("/exhibit/state/mode", ["busy"])


async def test_every_listener_gets_the_change_and_a_leaving_one_is_forgotten(show):
    url = f"ws://127.0.0.1:{show.port}/"
    async with connect(url) as first, connect(url) as second:
        for ws in (first, second):
            await listen(ws, "/exhibit/state/mode")
            assert await receive(ws) == ("/exhibit/state/mode", ["idle"])
        await second.close()
        show.run("state", machine="mode", state="busy")
        assert await receive(first) == ("/exhibit/state/mode", ["busy"])
    for _ in range(100):
        if not show.service.hub.clients:
            break
        await asyncio.sleep(0.02)
    assert show.service.hub.clients == set()
    assert show.service.hub.listeners == {}


async def test_garbage_is_refused_and_the_connection_goes_on(show):
    go = OscMessageBuilder("/go").build().dgram
    garbage: list[str | bytes] = [
        "not json",
        "[1, 2]",
        '{"COMMAND": "LISTEN"}',
        '{"COMMAND": "LISTEN", "DATA": 5}',
        '{"COMMAND": "DANCE", "DATA": "/exhibit/state/mode"}',
        '{"COMMAND": "LISTEN", "DATA": "/go"}',  # a command: nothing to listen to
        '{"COMMAND": "LISTEN", "DATA": "/nowhere"}',
        b"\x00\x01garbage",
        go,  # OSC over the WebSocket is not control: GO goes to the OSC control port
    ]
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        for message in garbage:
            await ws.send(message)
        await listen(ws, "/exhibit/cuelist/main/standby")
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["1"])  # nothing fired
        assert show.service.hub.refused == len(garbage)
        show.run("go")
        assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["2"])


async def test_an_oversized_message_closes_that_client_only(show):
    url = f"ws://127.0.0.1:{show.port}/"
    async with connect(url) as good, connect(url, max_size=None) as greedy:
        await greedy.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(greedy.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
        await listen(good, "/exhibit/state/mode")
        assert await receive(good) == ("/exhibit/state/mode", ["idle"])
    assert show.runtime.service(CONTROL_SERVICE.name) is show.service


async def test_a_client_that_lets_its_queue_fill_is_dropped(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/state/mode")
        assert await receive(ws) == ("/exhibit/state/mode", ["idle"])
        [client] = show.service.hub.clients
        packet = OscMessageBuilder("/exhibit/state/mode").build().dgram
        for _ in range(QUEUE_LIMIT + 1):  # faster than any sender: nothing is awaited in between
            client.send(packet)
        assert client.dropped
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    show.run("state", machine="mode", state="busy")  # the show goes on, and serves others
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/state/mode")
        assert await receive(ws) == ("/exhibit/state/mode", ["busy"])


async def test_listeners_beyond_the_limit_are_turned_away(show, monkeypatch):
    monkeypatch.setattr(oscquery_listen, "MAX_CLIENTS", 1)
    url = f"ws://127.0.0.1:{show.port}/"
    async with connect(url) as first:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 503
        assert refused.value.response.body == "too many OSCQuery listeners / 监听客户端过多\n".encode()
        await listen(first, "/exhibit/state/mode")
        assert await receive(first) == ("/exhibit/state/mode", ["idle"])


async def test_a_reload_that_changes_the_namespace_says_path_changed(show):
    async with connect(f"ws://127.0.0.1:{show.port}/") as ws:
        await listen(ws, "/exhibit/state/mode")
        assert await receive(ws) == ("/exhibit/state/mode", ["idle"])
        more = TEXT + '      - {id: "3", actions: [{set: wash.level, value: 30}]}\n'
        assert show.runtime.reload(validate_text(more, "show.yaml", show.runtime.registry))
        text = await asyncio.wait_for(ws.recv(), 5)
        assert json.loads(text) == {"COMMAND": "PATH_CHANGED", "DATA": "/"}
        show.run("state", machine="mode", state="busy")  # listening goes on after the reload
        assert await receive(ws) == ("/exhibit/state/mode", ["busy"])
    _, namespace = await get(show.port, "/")
    assert node(namespace, "/playhead/3")["TYPE"] == "I"


async def test_with_osc_control_host_info_names_its_port_and_oscsend_go_is_followed():
    """The whole loop with the real OSC control service: liblo's oscsend sends GO, the listener sees it."""
    reg = registry()
    text = TEXT.replace("osc: {port: 53123}", "osc: {port: 0}")

    def build(runtime: Runtime) -> ControlQueryService:
        return ControlQueryService(runtime, runtime.context.health_of(CONTROL_SERVICE.name, "service", {}), 0)

    mine = ServiceSpec(CONTROL_SERVICE.name, CONTROL_SERVICE.order, CONTROL_SERVICE.applies, build)
    exhibit = validate_text(text, "show.yaml", reg)
    runtime = Runtime(
        exhibit, reg, options=RuntimeOptions(simulate=True), clock=VirtualClock(), service_specs=[OSC_CONTROL, mine]
    )
    await runtime.start()
    try:
        control, service = runtime.service(OSC_CONTROL.name), runtime.service(CONTROL_SERVICE.name)
        assert isinstance(service, ControlQueryService)
        osc_port = getattr(control, "port", 0)
        assert osc_port > 0
        assert (await get(service.port, "/?HOST_INFO"))[1]["OSC_PORT"] == osc_port
        async with connect(f"ws://127.0.0.1:{service.port}/") as ws:
            await listen(ws, "/exhibit/cuelist/main/standby")
            assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["1"])
            sent = await asyncio.create_subprocess_exec("oscsend", "127.0.0.1", str(osc_port), "/go")
            assert await sent.wait() == 0
            assert await receive(ws) == ("/exhibit/cuelist/main/standby", ["2"])
    finally:
        await runtime.stop()


# --- who may connect, and where --------------------------------------------------------------------------------------


async def test_addresses_outside_the_allow_list_are_refused():
    show = await start(TEXT.replace("osc: {port: 53123}", "osc: {port: 53123, allow: [10.0.0.0/8]}"))
    try:
        assert await get(show.port, "/?HOST_INFO") == (
            403,
            {"error": "this address may not use the exhibit's control / 此地址无权使用展项控制"},
        )
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{show.port}/"):
                pass
        assert refused.value.response.status_code == 403
    finally:
        await show.runtime.stop()


def test_allow_list_matching():
    allowed = allowed_by(["127.0.0.1/32", "192.168.1.0/24", "::1/128"])
    assert [allowed(a) for a in ("127.0.0.1", "192.168.1.77", "::1", "::ffff:192.168.1.5")] == [True] * 4
    assert [allowed(a) for a in ("10.0.0.1", "192.168.2.1", "fe80::1%eth0", "nonsense")] == [False] * 4


def test_only_a_server_reachable_from_the_network_is_announced():
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "192.168.1.20", "gallery.local")] == [False] * 3


def test_the_http_port_follows_the_control_port():
    assert [control_http_port(p) for p in (53000, 9000, 0, 65535)] == [53001, 9001, 0, 0]


async def test_a_taken_port_falls_back_to_a_free_one_with_a_warning(caplog):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        reg = registry()
        text = TEXT.replace("osc: {port: 53123}", f"osc: {{port: {taken - 1}}}")
        runtime = Runtime(
            validate_text(text, "show.yaml", reg),
            reg,
            options=RuntimeOptions(simulate=True),
            clock=VirtualClock(),
            service_specs=[CONTROL_SERVICE],
        )
        with caplog.at_level(logging.WARNING, logger="sensors.osc.service"):
            await runtime.start()
        try:
            service = runtime.service(CONTROL_SERVICE.name)
            assert isinstance(service, ControlQueryService)
            assert service.port not in (0, taken)
            assert await get(service.port, "/exhibit/state/mode?VALUE") == (200, {"VALUE": ["idle"]})
            warnings = [r.getMessage() for r in caplog.records if r.name == "sensors.osc.service"]
            assert any(f"TCP port {taken} for OSCQuery control is taken" in w for w in warnings), warnings
        finally:
            await runtime.stop()


def test_typing_of_values():
    assert [typed("s", None), typed("s", 3), typed("T", 0), typed("i", 2.0), typed("f", 1)] == ["", "3", False, 2, 1.0]
    assert [typed("f", float("nan")), typed("i", None), typed("T", "yes"), typed("f", "x")] == [None] * 4
