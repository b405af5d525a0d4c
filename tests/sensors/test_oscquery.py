"""OSCQuery: the JSON namespace, real HTTP over a real socket, and real zeroconf/mDNS on this machine."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import random
import socket
import urllib.request
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

import sensors.osc.oscquery as oscquery
from engine.errors import UserError
from sensors.osc.inputs import OscSensorConfig
from sensors.osc.oscquery import (
    OSC_SERVICE,
    OSCJSON_SERVICE,
    OscQueryServer,
    OscQuerySettings,
    build_namespace,
    instance_name,
    service_infos,
)

SIGNALS = OscSensorConfig.model_validate(
    {
        "kind": "osc",
        "signals": {
            "wash": {"address": "/canal/wash", "range": [0, 1]},
            "spot": {"address": "/canal/spot", "type": "int", "scale": {"input": [127, 0]}},
            "door": {"address": "/canal/door", "type": "bool"},
            "label": {"address": "/label", "type": "str"},
            "x": {"address": "/pad/xy", "range": [-1, 1]},
            "y": {"address": "/pad/xy", "arg": 1, "range": [0, 10]},
            "gain": {"address": "/mix/gain", "arg": 2, "type": "int", "range": [0, 100]},
            "faders": {"address": "/fader[1-4]"},
            "levels": {"address": "/canal/*/level"},
            "mode": {"address": "/lamp?/level"},
            "lantern": {"address": "/灯/level", "range": [0, 1]},
        },
    }
).signals

EXPECTED: dict[str, Any] = {
    "FULL_PATH": "/",
    "DESCRIPTION": "Canal Lanterns",
    "CONTENTS": {
        "canal": {
            "FULL_PATH": "/canal",
            "CONTENTS": {
                "wash": {
                    "FULL_PATH": "/canal/wash",
                    "TYPE": "f",
                    "ACCESS": 2,
                    "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
                    "DESCRIPTION": "wash",
                },
                "spot": {
                    "FULL_PATH": "/canal/spot",
                    "TYPE": "i",
                    "ACCESS": 2,
                    "RANGE": [{"MIN": 0, "MAX": 127}],
                    "DESCRIPTION": "spot",
                },
                "door": {"FULL_PATH": "/canal/door", "TYPE": "T", "ACCESS": 2, "DESCRIPTION": "door"},
            },
        },
        "label": {"FULL_PATH": "/label", "TYPE": "s", "ACCESS": 2, "DESCRIPTION": "label"},
        "pad": {
            "FULL_PATH": "/pad",
            "CONTENTS": {
                "xy": {
                    "FULL_PATH": "/pad/xy",
                    "TYPE": "ff",
                    "ACCESS": 2,
                    "RANGE": [{"MIN": -1.0, "MAX": 1.0}, {"MIN": 0.0, "MAX": 10.0}],
                    "DESCRIPTION": "x, y",
                }
            },
        },
        "mix": {
            "FULL_PATH": "/mix",
            "CONTENTS": {
                "gain": {
                    "FULL_PATH": "/mix/gain",
                    "TYPE": "ffi",
                    "ACCESS": 2,
                    "RANGE": [{}, {}, {"MIN": 0, "MAX": 100}],
                    "DESCRIPTION": "gain",
                }
            },
        },
        "灯": {
            "FULL_PATH": "/灯",
            "CONTENTS": {
                "level": {
                    "FULL_PATH": "/灯/level",
                    "TYPE": "f",
                    "ACCESS": 2,
                    "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
                    "DESCRIPTION": "lantern",
                }
            },
        },
    },
}

HOST_INFO: dict[str, Any] = {
    "NAME": "Canal Lanterns",
    "OSC_PORT": 9000,
    "OSC_TRANSPORT": "UDP",
    "EXTENSIONS": {
        "ACCESS": True,
        "VALUE": False,
        "RANGE": True,
        "DESCRIPTION": True,
        "TAGS": False,
        "CLIPMODE": False,
        "UNIT": False,
        "CRITICAL": False,
        "LISTEN": False,
        "PATH_CHANGED": False,
    },
}


def settings(**fields: Any) -> OscQuerySettings:
    return OscQuerySettings.model_validate(fields)


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    """A client's mistake must be answered quietly: no traceback from the server's safety net or from asyncio."""
    yield
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records  # teardown so far
    errors = [r for r in records if r.levelno >= logging.ERROR and r.name in ("sensors.osc.oscquery", "asyncio")]
    assert not errors, [r.getMessage() for r in errors]


# --- namespace -------------------------------------------------------------------------------------------------------


def test_namespace_types_ranges_containers_merged_args_and_no_patterns():
    namespace = build_namespace(SIGNALS, "Canal Lanterns")
    assert namespace == EXPECTED
    assert json.loads(json.dumps(namespace)) == EXPECTED  # plain JSON, nothing Python-only inside


def test_namespace_method_that_is_also_a_container_and_the_root_method():
    signals = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "signals": {
                "level": {"address": "/lamp", "type": "float", "range": [0, 1]},
                "hue": {"address": "/lamp/hue", "type": "int", "range": [0, 360]},
                "everything": {"address": "/", "type": "bool"},
            },
        }
    ).signals
    assert build_namespace(signals, "Lamp") == {
        "FULL_PATH": "/",
        "DESCRIPTION": "everything",
        "TYPE": "T",
        "ACCESS": 2,
        "CONTENTS": {
            "lamp": {
                "FULL_PATH": "/lamp",
                "TYPE": "f",
                "ACCESS": 2,
                "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
                "DESCRIPTION": "level",
                "CONTENTS": {
                    "hue": {
                        "FULL_PATH": "/lamp/hue",
                        "TYPE": "i",
                        "ACCESS": 2,
                        "RANGE": [{"MIN": 0, "MAX": 360}],
                        "DESCRIPTION": "hue",
                    }
                },
            }
        },
    }


def test_namespace_two_signals_on_one_argument_are_described_by_the_first():
    signals = OscSensorConfig.model_validate(
        {
            "kind": "osc",
            "signals": {
                "raw": {"address": "/knob", "type": "float", "range": [0, 1]},
                "as_text": {"address": "/knob", "type": "str"},
                "only_patterns": {"address": "/knob/*"},
            },
        }
    ).signals
    assert build_namespace(signals, "Knobs")["CONTENTS"] == {
        "knob": {
            "FULL_PATH": "/knob",
            "TYPE": "f",
            "ACCESS": 2,
            "RANGE": [{"MIN": 0.0, "MAX": 1.0}],
            "DESCRIPTION": "raw, as_text",
        }
    }


def test_namespace_of_only_patterns_is_an_empty_root():
    signals = OscSensorConfig.model_validate({"kind": "osc", "signals": {"f": {"address": "/fader?"}}}).signals
    assert build_namespace(signals, "Faders") == {"FULL_PATH": "/", "CONTENTS": {}, "DESCRIPTION": "Faders"}


# --- settings --------------------------------------------------------------------------------------------------------


def test_settings_defaults_and_every_field_is_described():
    defaults = OscQuerySettings.model_validate({})
    assert (defaults.port, defaults.advertise, defaults.name) == (9001, True, None)
    for name, field in OscQuerySettings.model_fields.items():
        assert field.description, f"{name} has no description"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": 70000}, "less than or equal to 65535"),
        ({"port": -1}, "greater than or equal to 0"),
        ({"name": "Canal v1.2"}, "must not contain `.`"),
        ({"name": "x" * 64}, "at most 63"),
        ({"name": "  "}, "must not be empty"),
        ({"name": "a\nb"}, "control characters"),
        ({"advertize": True}, "Extra inputs are not permitted"),
    ],
)
def test_settings_reject_bad_values(fields, message):
    with pytest.raises(ValidationError, match=message):
        OscQuerySettings.model_validate(fields)


def test_runtime_names_are_made_valid_service_names():
    assert instance_name("canal-lanterns") == "canal-lanterns"
    assert instance_name("Canal v1.2") == "Canal v1-2"
    assert instance_name("灯" * 30) == "灯" * 21  # 63 bytes, never half a character
    assert instance_name(" \t ") == "exhibit"


# --- HTTP ------------------------------------------------------------------------------------------------------------


async def exchange(port: int, raw: bytes, *, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a fresh connection and read the whole reply (the server closes after one)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


async def get(port: int, target: str, *, host: str = "127.0.0.1") -> tuple[int, Any]:
    """GET ``target``: the status and the decoded JSON (None when there is no body); checks the headers."""
    status, headers, body = await exchange(port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), host=host)
    assert headers["connection"] == "close"
    if status == 204:
        assert body == b""
        assert "content-length" not in headers
        return status, None
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    return status, json.loads(body)


@pytest.fixture
async def server():
    server = OscQueryServer(
        "Canal Lanterns",
        9000,
        build_namespace(SIGNALS, "Canal Lanterns"),
        http_host="127.0.0.1",
        settings=settings(port=0, advertise=False),
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_get_root_subtree_leaf_and_host_info(server):
    assert server.port > 0
    assert await get(server.port, "/") == (200, EXPECTED)
    assert await get(server.port, "/canal") == (200, EXPECTED["CONTENTS"]["canal"])
    assert await get(server.port, "/canal/") == (200, EXPECTED["CONTENTS"]["canal"])
    assert await get(server.port, "/canal/wash") == (200, EXPECTED["CONTENTS"]["canal"]["CONTENTS"]["wash"])
    assert await get(server.port, "/%E7%81%AF/level") == (200, EXPECTED["CONTENTS"]["灯"]["CONTENTS"]["level"])
    assert await get(server.port, "/?HOST_INFO") == (200, HOST_INFO)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/canal/wash?TYPE", (200, {"TYPE": "f"})),
        ("/pad/xy?RANGE", (200, {"RANGE": [{"MIN": -1.0, "MAX": 1.0}, {"MIN": 0.0, "MAX": 10.0}]})),
        ("/canal/spot?ACCESS", (200, {"ACCESS": 2})),
        ("/pad/xy?DESCRIPTION", (200, {"DESCRIPTION": "x, y"})),
        ("/canal/door?FULL_PATH", (200, {"FULL_PATH": "/canal/door"})),
        ("/pad?CONTENTS", (200, {"CONTENTS": EXPECTED["CONTENTS"]["pad"]["CONTENTS"]})),
        ("/?DESCRIPTION", (200, {"DESCRIPTION": "Canal Lanterns"})),
        ("/canal?TYPE", (204, None)),  # a container has no type
        ("/canal/door?RANGE", (204, None)),  # a bool has no range
        ("/canal/wash?VALUE", (204, None)),  # write-only: the exhibit does not report values
        ("/canal/wash?CONTENTS", (204, None)),
    ],
)
async def test_attribute_queries(server, target, expected):
    assert await get(server.port, target) == expected


async def test_unknown_paths_and_attributes(server):
    assert await get(server.port, "/canal/nowhere") == (404, {"error": "no OSC address or container /canal/nowhere"})
    assert await get(server.port, "/nowhere?TYPE") == (404, {"error": "no OSC address or container /nowhere"})
    assert await get(server.port, "/fader1") == (404, {"error": "no OSC address or container /fader1"})
    assert await get(server.port, "/canal/wash?GABBAGABBAHEY") == (
        400,
        {"error": "unknown OSCQuery attribute GABBAGABBAHEY"},
    )


async def test_other_methods_are_405(server):
    status, headers, body = await exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, headers["allow"], body) == (405, "GET", b"")
    status, headers, body = await exchange(
        server.port, b"POST /canal/wash HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert (status, headers["allow"]) == (405, "GET")
    assert json.loads(body) == {"error": "method POST is not allowed; OSCQuery answers GET"}


async def test_a_large_unread_body_does_not_cost_the_reply(server):
    """The server never reads a body; it drains it after replying, so closing does not reset the connection."""
    body = b"x" * 4_000_000
    status, _, reply = await exchange(
        server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    assert (status, json.loads(reply)) == (405, {"error": "method POST is not allowed; OSCQuery answers GET"})


@pytest.mark.parametrize(
    "raw",
    [
        b"NONSENSE\r\n\r\n",
        b"GET nopath HTTP/1.1\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n",
    ],
)
async def test_bad_requests_are_400_and_the_server_keeps_serving(server, raw):
    status, headers, body = await exchange(server.port, raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert "error" in json.loads(body)
    assert await get(server.port, "/canal/wash?TYPE") == (200, {"TYPE": "f"})


async def test_garbage_half_requests_and_idle_clients_do_not_stop_the_server(server):
    rng = random.Random(20240611)
    for size in (1, 7, 100, 4096, 65536):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(rng.randbytes(size))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    for half in (b"GET /canal HTT", b"GET /canal HTTP/1.1\r\nHost: x\r\n", b"GET"):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(half)
        await writer.drain()
        writer.close()  # the client disconnects in the middle of its request
        await writer.wait_closed()
    _, idle = await asyncio.open_connection("127.0.0.1", server.port)  # connects and says nothing
    try:
        assert await get(server.port, "/") == (200, EXPECTED)
        assert await get(server.port, "/?HOST_INFO") == (200, HOST_INFO)
    finally:
        idle.close()
        await idle.wait_closed()


async def test_close_does_not_wait_for_idle_clients():
    server = OscQueryServer("idle", 9000, build_namespace(SIGNALS, "x"), "127.0.0.1", settings(port=0, advertise=False))
    await server.start()
    _, idle = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await asyncio.wait_for(server.close(), 2)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server.port)
    finally:
        idle.close()


async def test_a_standard_http_client_reads_the_namespace(server):
    def fetch(url: str) -> tuple[int, str, Any]:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], json.load(response)

    base = f"http://127.0.0.1:{server.port}"
    assert await asyncio.to_thread(fetch, f"{base}/") == (200, "application/json", EXPECTED)
    assert await asyncio.to_thread(fetch, f"{base}/?HOST_INFO") == (200, "application/json", HOST_INFO)


async def test_port_in_use_is_a_user_error(server):
    second = OscQueryServer("second", 9000, {}, "127.0.0.1", settings(port=server.port, advertise=False))
    with pytest.raises(UserError) as caught:
        await second.start()
    assert str(caught.value) == (
        f"TCP port {server.port} is already in use, so the OSCQuery server `second` cannot listen on "
        f"127.0.0.1:{server.port}; stop the other program or set `oscquery.port` to another port."
    )
    with socket.socket() as other:  # a program that is not ours holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        third = OscQueryServer("third", 9000, {}, "127.0.0.1", settings(port=taken, advertise=False))
        with pytest.raises(UserError, match=f"TCP port {taken} is already in use"):
            await third.start()


async def test_settings_name_overrides_the_runtime_name():
    server = OscQueryServer("osc", 9123, {}, "127.0.0.1", settings(port=0, advertise=False, name="Canal Lanterns"))
    await server.start()
    try:
        status, info = await get(server.port, "/?HOST_INFO")
        assert (status, info["NAME"], info["OSC_PORT"]) == (200, "Canal Lanterns", 9123)
        assert await server.wait_advertised() is False  # advertising is off
    finally:
        await server.close()


# --- zeroconf --------------------------------------------------------------------------------------------------------


def test_service_infos_describe_both_services():
    http, osc = service_infos("Canal Lanterns", 9001, 9000, ["192.0.2.7", "127.0.0.1"], "host-canal.local.")
    assert (http.type, http.name, http.port) == (OSCJSON_SERVICE, "Canal Lanterns._oscjson._tcp.local.", 9001)
    assert (osc.type, osc.name, osc.port) == (OSC_SERVICE, "Canal Lanterns._osc._udp.local.", 9000)
    for info in (http, osc):
        assert info.server == "host-canal.local."
        assert info.parsed_addresses() == ["192.0.2.7", "127.0.0.1"]
        assert info.get_name() == "Canal Lanterns"
    assert http.properties == {b"txtvers": b"1"}
    assert osc.properties == {b"txtvers": b"1", b"version": b"1.0", b"types": b"ifhdsTF"}


async def test_zeroconf_advertises_both_services_and_withdraws_them_on_close():
    """A real browser on this machine finds both services over multicast, then sees them leave."""
    name = f"Canal Lanterns test {os.getpid()} {random.randrange(1 << 30)}"
    server = OscQueryServer("ignored", 9000, build_namespace(SIGNALS, name), settings=settings(port=0, name=name))
    browser_zc = AsyncZeroconf()
    seen: dict[str, asyncio.Queue[ServiceStateChange]] = {
        OSCJSON_SERVICE: asyncio.Queue(),
        OSC_SERVICE: asyncio.Queue(),
    }

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if name.startswith(server.name + "."):
            seen[service_type].put_nowait(state_change)

    browser = AsyncServiceBrowser(browser_zc.zeroconf, [OSCJSON_SERVICE, OSC_SERVICE], handlers=[on_change])
    try:
        await server.start()
        assert await asyncio.wait_for(server.wait_advertised(), 10) is True
        for queue in seen.values():
            assert await asyncio.wait_for(queue.get(), 10) == ServiceStateChange.Added

        http = await browser_zc.async_get_service_info(OSCJSON_SERVICE, f"{name}.{OSCJSON_SERVICE}", timeout=5000)
        osc = await browser_zc.async_get_service_info(OSC_SERVICE, f"{name}.{OSC_SERVICE}", timeout=5000)
        assert http is not None and osc is not None
        assert (http.port, osc.port) == (server.port, 9000)
        assert osc.properties[b"version"] == b"1.0"
        addresses = http.parsed_addresses()
        assert addresses and addresses == osc.parsed_addresses()
        # What was discovered is enough to connect: the advertised address is one of this machine's.
        found_port = http.port
        assert found_port is not None
        assert await get(found_port, "/?HOST_INFO", host=addresses[0]) == (200, HOST_INFO | {"NAME": name})
        assert await get(found_port, "/pad/xy?TYPE", host=addresses[0]) == (200, {"TYPE": "ff"})

        await server.close()
        for queue in seen.values():  # goodbye packets: clients drop the exhibit at once
            assert await asyncio.wait_for(queue.get(), 10) == ServiceStateChange.Removed
    finally:
        await server.close()
        await browser.async_cancel()
        await browser_zc.async_close()


class BrokenZeroconf:
    """Stands in for python-zeroconf where multicast is unavailable (ENODEV), at start or at registration."""

    instances: ClassVar[list[BrokenZeroconf]] = []

    def __init__(self, fail_at: str, **kwargs: Any) -> None:
        if fail_at == "start":
            raise OSError(errno.ENODEV, "No such device")
        self.closed = False
        BrokenZeroconf.instances.append(self)

    async def async_register_service(self, info: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    async def async_unregister_all_services(self) -> None:
        return None

    async def async_close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("fail_at", ["start", "register"])
async def test_without_mdns_one_warning_and_http_keeps_serving(monkeypatch, caplog, fail_at):
    BrokenZeroconf.instances = []
    monkeypatch.setattr(oscquery, "AsyncZeroconf", lambda **kwargs: BrokenZeroconf(fail_at, **kwargs))
    server = OscQueryServer("canal", 9000, build_namespace(SIGNALS, "Canal Lanterns"), "127.0.0.1", settings(port=0))
    with caplog.at_level(logging.WARNING, logger="sensors.osc.oscquery"):
        await server.start()
        try:
            assert await server.wait_advertised() is False
            assert await get(server.port, "/canal/wash?TYPE") == (200, {"TYPE": "f"})
        finally:
            await server.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "sensors.osc.oscquery"]
    assert len(warnings) == 1
    assert warnings[0].startswith("OSCQuery `canal` is not advertised with zeroconf (OSError: ")
    assert warnings[0].endswith(f"it still serves http://<this machine>:{server.port}/")
    assert all(zc.closed for zc in BrokenZeroconf.instances)
    assert [info.port for info in server.services] == [server.port, 9000]
