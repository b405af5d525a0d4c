"""QLab-style OSC control against a running exhibit on a real Mosquitto, from real peers: UDP and TCP
sockets as Companion and TouchOSC use them, liblo's `oscsend` and `oscdump`, and garbage."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import struct
from typing import Any

import pytest
from pythonosc import slip
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from engine.errors import UserError
from engine.runtime import Runtime
from sensors.osc.control import DEFAULT_PORT, THUMP_TIMEOUT, OscControlService
from sensors.osc.control_routes import OscRoute, RouteError, route
from sensors.osc.framing import FrameSplitter, frame
from tests.conftest import require_tool
from tests.support.osc_control_peers import (
    OscDump,
    TcpSurface,
    UdpSurface,
    desk,
    eventually,
    oscsend,
    running_desk,
)


def service_of(runtime: Runtime) -> OscControlService:
    service = runtime.service("osc_control")
    assert isinstance(service, OscControlService)
    return service


def standby(runtime: Runtime, cue_list: str = "main") -> str | None:
    assert runtime.show is not None
    cue = runtime.show.cue_lists[cue_list].standby
    return cue.id if cue else None


def bundle(*messages: tuple[str, tuple[Any, ...]]) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for address, args in messages:
        message = OscMessageBuilder(address)
        for arg in args:
            message.add_arg(arg)
        builder.add_content(message.build())
    return builder.build().dgram


# --- the wire ---------------------------------------------------------------------------------


def test_slip_frames_split_whatever_the_chunks_and_bad_frames_are_counted():
    packets = [b"/go\x00,\x00\x00\x00", bytes([0xC0, 0xDB, 0x01]) + b"\x00" * 5]
    stream = b"".join(frame(p, "slip") for p in packets) + b"\xc0\xdb\x07\xc0" + frame(packets[0], "slip")
    for size in (1, 3, len(stream)):
        splitter = FrameSplitter()
        got, bad = [], 0
        for i in range(0, len(stream), size):
            more, wrong = splitter.feed(stream[i : i + size])
            got += more
            bad += wrong
        assert splitter.framing == "slip"
        assert got == [packets[0], packets[1], packets[0]]  # END and ESC inside a packet survive
        assert bad == 1  # ESC followed by neither ESC_END nor ESC_ESC


def test_an_oversized_slip_frame_is_dropped_and_the_next_one_still_comes():
    splitter = FrameSplitter(limit=16)
    got, bad = splitter.feed(frame(b"x" * 40, "slip") + frame(b"/go\x00,\x00\x00\x00", "slip"))
    assert (got, bad) == ([b"/go\x00,\x00\x00\x00"], 1)


def test_length_prefixed_stream_as_liblo_sends_it():
    splitter = FrameSplitter(limit=64)
    stream = frame(b"/a\x00\x00,\x00\x00\x00", "length") + frame(b"/b\x00\x00,\x00\x00\x00", "length")
    assert splitter.feed(stream[:5]) == ([], 0)
    assert splitter.feed(stream[5:]) == ([b"/a\x00\x00,\x00\x00\x00", b"/b\x00\x00,\x00\x00\x00"], 0)
    assert splitter.framing == "length"
    assert splitter.feed(struct.pack(">I", 1000)) == ([], 1)
    assert splitter.broken  # a length past the limit: the stream cannot be followed


def test_routes_of_qlab_and_exhibit_addresses():
    one = {"main": ["1", "2"]}
    two = {"main": ["1", "2"], "house": ["h1", "1"]}
    assert route("/go", [], "x", one) == OscRoute("go")
    assert route("/workspace/x/playhead/next", [], "x", one) == OscRoute("playhead/next")
    assert route("/cue/2/start", [], "x", one) == OscRoute("go", {"cue": "2"})
    assert route("/cue/h1/start", [], "x", two) == OscRoute("go", {"cue": "h1", "cue_list": "house"})
    assert route("/cue_id/house/go", [], "x", two) == OscRoute("go", {"cue_list": "house"})
    assert route("/cue_id/house/panic", [], "x", two) == OscRoute("panic")  # PANIC is never scoped down
    assert route("/select/2", [], "x", one) == OscRoute("playhead", {"cue": "2"})
    assert route("/exhibit/cuelist/house/back", [], "x", two) == OscRoute("back", {"cue_list": "house"})
    assert route("/exhibit/state/mode", ["on"], "x", one) == OscRoute("state", {"machine": "mode", "state": "on"})
    assert route("/exhibit/var/n", [3], "x", one) == OscRoute("var", {"name": "n", "value": 3})
    assert route("/workspace/x/thump", [], "x", one) == OscRoute(session="thump")
    for address, lists in [("/workspace/y/go", one), ("/cue/9/start", two), ("/cue/1/start", two), ("/fly", one)]:
        with pytest.raises(RouteError):
            route(address, [], "x", lists)


# --- commands and replies ---------------------------------------------------------------------


async def test_go_over_udp_advances_the_playhead_fires_the_cue_and_replies(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        reply = await surface.ask("/go")
        assert reply == {
            "workspace_id": "osc-desk",
            "address": "/go",
            "status": "ok",
            "data": {"cue_list": "main", "standby": "2", "last": "1"},
        }
        assert standby(runtime) == "2"
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 0.5)
        assert runtime.control.audit.recent[-1]["who"].startswith("osc 127.0.0.1:")
        surface.close()


async def test_oscsend_over_udp_and_tcp_moves_the_playhead(mosquitto, tmp_path):
    require_tool("oscsend")
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, gears):
        port = service_of(runtime).port
        await oscsend(f"127.0.0.1 {port}", "/go")
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 0.5)
        await oscsend(f"osc.tcp://127.0.0.1:{port}", "/workspace/osc-desk/go")  # liblo frames with a length
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 0.2)
        assert standby(runtime) == "3"
        await oscsend(f"osc.tcp://127.0.0.1:{port}", "/playhead/1")
        await gears["lamp"].wait_until(lambda: standby(runtime) == "1")


async def test_replies_and_updates_reach_oscdump_on_the_udp_reply_port(mosquitto, tmp_path):
    require_tool("oscdump")
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        dump_port = sock.getsockname()[1]
        sock.close()
        dump = OscDump(dump_port)
        try:
            await dump.listening()
            surface = await UdpSurface.open(service_of(runtime).port)
            # One bundle, as QLab clients send it: reply there, then updates, then GO.
            surface.send_raw(bundle(("/udpReplyPort", (dump_port,)), ("/updates", (1,))))
            await dump.wait("/reply/updates", lambda body: body["status"] == "ok")
            await dump.wait("/update/cuelist/main", lambda data: data["standby"] == "1")
            await oscsend(f"127.0.0.1 {service_of(runtime).port}", "/go")  # another surface presses GO
            pushed = await dump.wait("/update/cuelist/main", lambda data: data["standby"] == "2")
            assert pushed["last"] == "1" and [c["id"] for c in pushed["cues"]] == ["1", "2", "3"]
            surface.send("/go")
            reply = await dump.wait("/reply/go")
            assert reply["status"] == "ok" and reply["data"]["standby"] == "3"
            surface.close()
        finally:
            dump.close()


async def test_a_bad_cue_or_address_gets_an_error_reply_and_changes_nothing(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        for address in ("/cue/99/start", "/playhead/99", "/select/99"):
            reply = await surface.ask(address)
            assert reply["status"] == "error" and reply["code"] == "not_found", reply
            assert "99" in reply["error"]
        for address in ("/fly/away", "/workspace/another-show/go"):
            reply = await surface.ask(address)
            assert reply["status"] == "error" and reply["code"] == "not_found", reply
        assert standby(runtime) == "1"
        assert runtime.show is not None and not runtime.show.cue_lists["main"].fired
        surface.close()


async def test_qlab_cue_words_and_the_workspace_prefix(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        assert (await surface.ask("/playhead/3"))["data"]["standby"] == "3"
        assert (await surface.ask("/select/2"))["data"]["standby"] == "2"
        assert (await surface.ask("/playhead/previous"))["data"]["standby"] == "1"
        assert (await surface.ask("/workspace/osc-desk/playhead/next"))["data"]["standby"] == "2"
        reply = await surface.ask("/cue/3/start")
        assert reply["status"] == "ok" and reply["data"]["last"] == "3"
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 1)
        reply = await surface.ask("/workspace/osc-desk/cue_id/1/start")
        assert reply["address"] == "/workspace/osc-desk/cue_id/1/start" and reply["data"]["last"] == "1"
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 0.5)
        surface.close()


async def test_exhibit_addresses_for_states_variables_and_the_estop(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        assert runtime.show is not None
        reply = await surface.ask("/exhibit/state/mode", "engaged")
        assert reply["data"] == {"machine": "mode", "state": "engaged"}
        assert runtime.show.machines["mode"].state == "engaged"
        assert (await surface.ask("/exhibit/state/mode/attract"))["status"] == "ok"
        assert runtime.show.machines["mode"].state == "attract"
        assert (await surface.ask("/exhibit/state/mode", "asleep"))["code"] == "not_found"
        assert (await surface.ask("/exhibit/var/visits", 5))["data"] == {"name": "visits", "value": 5}
        assert runtime.store.get("var.visits").value == 5
        assert (await surface.ask("/exhibit/var/visits", "many"))["code"] == "bad_request"
        assert (await surface.ask("/exhibit/var/visits"))["code"] == "bad_request"  # no value
        assert runtime.store.get("var.visits").value == 5
        assert (await surface.ask("/exhibit/estop"))["status"] == "ok"
        assert runtime.safety.latched
        assert (await surface.ask("/exhibit/estop/reset"))["status"] == "ok"
        assert not runtime.safety.latched
        surface.close()


async def test_several_cue_lists_are_reached_by_name(mosquitto, tmp_path):
    house = "  house:\n    guard: 0s\n    cues:\n      - {id: h1, actions: [{set: fan.on, value: true}]}\n"
    text = desk().replace("cues:\n  main:", "cues:\n" + house + "  main:", 1)
    async with running_desk(text, mosquitto.port, tmp_path) as (runtime, gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        reply = await surface.ask("/go")
        assert reply["status"] == "error" and "house" in reply["error"]  # which list? the operator must say
        assert (await surface.ask("/exhibit/cuelist/main/go"))["data"]["cue_list"] == "main"
        assert standby(runtime, "main") == "2"
        reply = await surface.ask("/cue/h1/start")
        assert reply["data"] == {"cue_list": "house", "standby": None, "last": "h1"}
        await gears["fan"].wait_until(lambda: gears["fan"].state.get("on") is True)
        assert (await surface.ask("/exhibit/cuelist/house/back"))["data"]["standby"] == "h1"
        assert (await surface.ask("/cue_id/house/go"))["data"]["last"] == "h1"
        surface.close()


async def test_qlab_session_words(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        assert (await surface.ask("/thump"))["data"] == "thump"
        assert (await surface.ask("/connect"))["data"] == "ok"  # no passcode set
        assert (await surface.ask("/version"))["data"].startswith("exhibit-controller")
        workspaces = (await surface.ask("/workspaces"))["data"]
        assert workspaces[0]["uniqueID"] == "osc-desk" and workspaces[0]["hasPasscode"] is False
        lists = (await surface.ask("/workspace/osc-desk/cueLists"))["data"]
        assert lists[0]["uniqueID"] == "main"
        assert [(c["number"], c["name"]) for c in lists[0]["cues"]] == [
            ("1", "Dusk"),
            ("2", "Night"),
            ("3", "House lights"),
        ]
        surface.close()


# --- updates ----------------------------------------------------------------------------------


async def test_updates_follow_go_and_stop_without_a_thump(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        service = service_of(runtime)
        clock = [1000.0]
        service.now = lambda: clock[0]
        subscribers = len(runtime.events.subscribers)
        surface = await UdpSurface.open(service.port)
        assert (await surface.ask("/updates", 1))["status"] == "ok"
        assert len(runtime.events.subscribers) == subscribers + 1
        await surface.heard.wait("/update/cuelist/main", lambda data: data["standby"] == "1")
        await surface.heard.wait("/update/safety", lambda data: data["estop"] is False)
        await surface.heard.wait("/update/health/osc_control", lambda data: data["status"] == "ok")
        surface.send("/go")
        await surface.heard.wait("/update/cuelist/main", lambda data: data["standby"] == "2")
        clock[0] += THUMP_TIMEOUT - 1
        assert (await surface.ask("/thump"))["data"] == "thump"
        clock[0] += THUMP_TIMEOUT - 1  # a minute after the thump, two after /updates
        service.sweep()
        assert runtime.store.get("osc_control.health.clients").value == 1
        other = await UdpSurface.open(service.port)
        await other.ask("/go")  # a second client presses GO; the first still hears of it
        await surface.heard.wait("/update/cuelist/main", lambda data: data["standby"] == "3")
        clock[0] += THUMP_TIMEOUT + 1
        service.sweep()
        assert runtime.store.get("osc_control.health.clients").value == 0
        assert len(runtime.events.subscribers) == subscribers
        surface.close()
        other.close()


async def test_update_clients_are_bounded(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        surfaces = [await UdpSurface.open(service_of(runtime).port) for _ in range(33)]
        replies = [await surface.ask("/updates", 1) for surface in surfaces]
        assert [r["status"] for r in replies] == ["ok"] * 32 + ["error"]
        assert replies[-1]["code"] == "unavailable"
        assert (await surfaces[0].ask("/updates", 0))["status"] == "ok"  # one leaves: room for another
        assert (await surfaces[-1].ask("/updates", 1))["status"] == "ok"
        for surface in surfaces:
            surface.close()


# --- TCP --------------------------------------------------------------------------------------


async def test_tcp_slip_round_trip_with_updates_until_the_connection_closes(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, gears):
        service = service_of(runtime)
        subscribers = len(runtime.events.subscribers)
        surface = await TcpSurface.open(service.port)
        assert (await surface.ask("/updates", 1))["status"] == "ok"
        await surface.heard.wait("/update/cuelist/main", lambda data: data["standby"] == "1")
        # Two packets in one write, the second a bundle split across two writes.
        packet = slip.encode(bundle(("/playhead/3", ()), ("/go", ())))
        surface.send_raw(slip.encode(OscMessageBuilder("/thump").build().dgram) + packet[:7])
        await surface.heard.wait("/reply/thump")
        surface.send_raw(packet[7:])
        assert (await surface.heard.wait("/reply/go"))["data"] == {"cue_list": "main", "standby": None, "last": "3"}
        await surface.heard.wait("/update/cuelist/main", lambda data: data["last"] == "3")
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 1)
        assert len(service.connections) == 1
        await surface.close()
        await eventually(lambda: not service.connections)  # the server sees the close on its own time
        service.sweep()
        assert runtime.store.get("osc_control.health.clients").value == 0
        assert len(runtime.events.subscribers) == subscribers


async def test_tcp_clients_framing_with_a_length_get_replies_framed_alike(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        reader, writer = await asyncio.open_connection("127.0.0.1", service_of(runtime).port)
        writer.write(frame(OscMessageBuilder("/go").build().dgram, "length"))  # as liblo frames OSC 1.0
        (size,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 10))
        reply = OscPacket(await asyncio.wait_for(reader.readexactly(size), 10)).messages[0].message
        assert reply.address == "/reply/go" and json.loads(reply.params[0])["status"] == "ok"
        assert standby(runtime) == "2"
        writer.close()


async def test_tcp_can_be_turned_off(mosquitto, tmp_path):
    async with running_desk(desk("{port: 0, tcp: false}"), mosquitto.port, tmp_path) as (runtime, _gears):
        with pytest.raises(OSError):
            await TcpSurface.open(service_of(runtime).port)
        surface = await UdpSurface.open(service_of(runtime).port)
        assert (await surface.ask("/go"))["status"] == "ok"
        surface.close()


# --- security ---------------------------------------------------------------------------------


async def test_passcode_is_required_per_client_before_any_command(mosquitto, tmp_path):
    async with running_desk(desk('{port: 0, passcode: "4321"}'), mosquitto.port, tmp_path) as (runtime, _gears):
        service = service_of(runtime)
        surface = await UdpSurface.open(service.port)
        reply = await surface.ask("/go")
        assert (reply["status"], reply["code"], reply["data"]) == ("error", "forbidden", "badpass")
        assert "passcode" in reply["error"]
        assert (await surface.ask("/updates", 1))["data"] == "badpass"
        assert (await surface.ask("/connect", "1234"))["data"] == "badpass"
        assert (await surface.ask("/workspaces"))["data"][0]["hasPasscode"] is True
        assert standby(runtime) == "1"
        assert (await surface.ask("/connect", "4321"))["data"] == "ok"
        assert (await surface.ask("/go"))["status"] == "ok"
        assert standby(runtime) == "2"
        tcp = await TcpSurface.open(service.port)  # another client: its own connection, its own passcode
        assert (await tcp.ask("/go"))["data"] == "badpass"
        assert (await tcp.ask("/connect", "4321"))["data"] == "ok"
        assert (await tcp.ask("/go"))["status"] == "ok"
        assert (await tcp.ask("/disconnect"))["status"] == "ok"
        assert (await tcp.ask("/go"))["data"] == "badpass"
        await tcp.close()
        assert (await surface.ask("/disconnect"))["status"] == "ok"
        assert (await surface.ask("/go"))["data"] == "badpass"
        assert standby(runtime) == "3"
        audit = [e for e in runtime.control.audit.recent if e["action"] == "connect"]
        assert [e["ok"] for e in audit] == [False, True, True]
        service.sweep()
        assert runtime.store.get("osc_control.health.denied").value == 5
        surface.close()


async def test_wrong_passcodes_are_limited(mosquitto, tmp_path):
    async with running_desk(desk('{port: 0, passcode: "4321"}'), mosquitto.port, tmp_path) as (runtime, _gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        for guess in range(10):
            assert (await surface.ask("/connect", str(guess)))["error"].startswith("wrong passcode")
        reply = await surface.ask("/connect", "4321")  # right, but too late: a minute's wait
        assert reply["data"] == "badpass" and "too many" in reply["error"]
        surface.close()


async def test_packets_from_outside_the_allow_list_are_counted_and_ignored(mosquitto, tmp_path):
    text = desk('{port: 0, allow: ["10.20.30.0/24"]}')
    async with running_desk(text, mosquitto.port, tmp_path) as (runtime, _gears):
        service = service_of(runtime)
        surface = await UdpSurface.open(service.port)
        surface.send("/go")
        surface.send("/panic")
        await eventually(lambda: service.counts["refused"] == 2)
        tcp = await TcpSurface.open(service.port)
        tcp.send("/go")
        await asyncio.wait_for(tcp.task, 10)  # the server closed the connection without a word
        assert service.counts["refused"] == 3
        assert service.counts["received"] == 0
        assert surface.heard.messages == [] and tcp.heard.messages == []
        assert standby(runtime) == "1" and runtime.show is not None and not runtime.show.panicked
        service.sweep()
        assert runtime.store.get("osc_control.health.refused").value == 3
        surface.close()


async def test_malformed_packets_are_counted_and_never_stop_the_service(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, _gears):
        service = service_of(runtime)
        surface = await UdpSurface.open(service.port)
        for garbage in (b"\x00\x01garbage", b"/go\x00,i\x00\x00\x00\x01", b"#bundle\x00\x00\x00", b"\xff" * 40):
            surface.send_raw(garbage)
        assert (await surface.ask("/go"))["status"] == "ok"  # answered after the garbage: it was all read
        tcp = await TcpSurface.open(service.port)
        tcp.send_raw(b"\xc0\xdb\x07\xc0" + slip.encode(b"not osc at all!!"))
        assert (await tcp.ask("/go"))["status"] == "ok"
        service.sweep()
        assert runtime.store.get("osc_control.health.malformed").value == 6
        assert standby(runtime) == "3"
        surface.close()
        await tcp.close()


# --- the show's safety ------------------------------------------------------------------------


async def test_panic_over_osc_brings_every_device_to_its_safe_state_on_the_broker(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path) as (runtime, gears):
        lamp, fan = gears["lamp"], gears["fan"]
        surface = await TcpSurface.open(service_of(runtime).port)
        assert (await surface.ask("/go"))["status"] == "ok"
        await lamp.wait_until(lambda: lamp.state.get("level") == 0.5 and fan.state.get("on") is True)
        assert (await surface.ask("/panic"))["status"] == "ok"
        await lamp.wait_until(lambda: lamp.state.get("level") == 0)
        await fan.wait_until(lambda: fan.state.get("on") is False)
        reply = await surface.ask("/go")
        assert (reply["status"], reply["code"]) == ("error", "conflict")  # GO waits for a reset
        assert (await surface.ask("/reset"))["status"] == "ok"
        assert (await surface.ask("/go"))["status"] == "ok"
        await lamp.wait_until(lambda: lamp.state.get("level") == 0.2)
        await surface.close()


async def test_a_simulated_run_still_serves_osc_control(mosquitto, tmp_path):
    async with running_desk(desk(), mosquitto.port, tmp_path, simulate=True) as (runtime, gears):
        surface = await UdpSurface.open(service_of(runtime).port)
        assert (await surface.ask("/go"))["status"] == "ok"
        await gears["lamp"].wait_until(lambda: gears["lamp"].state.get("level") == 0.5)
        surface.close()


async def test_disabled_osc_control_opens_no_port(mosquitto, tmp_path):
    async with running_desk(desk("{enabled: false}"), mosquitto.port, tmp_path) as (runtime, _gears):
        assert runtime.service("osc_control") is None
        assert "osc_control.health.status" not in runtime.store


# --- ports ------------------------------------------------------------------------------------


def _hold(port: int) -> socket.socket | None:
    """Hold a UDP port as QLab would; None if something else holds it already (just as good)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        holder.bind(("127.0.0.1", port))
    except OSError as exc:
        holder.close()
        assert exc.errno == errno.EADDRINUSE
        return None
    return holder


async def test_default_port_taken_by_qlab_moves_to_a_free_port(mosquitto, tmp_path, caplog):
    holder = _hold(DEFAULT_PORT)
    try:
        async with running_desk(desk("{host: 127.0.0.1}"), mosquitto.port, tmp_path) as (runtime, _gears):
            service = service_of(runtime)
            assert service.port not in (0, DEFAULT_PORT)
            assert "53000 is in use" in caplog.text
            surface = await UdpSurface.open(service.port)
            assert (await surface.ask("/go"))["status"] == "ok"
            surface.close()
    finally:
        if holder is not None:
            holder.close()


@pytest.mark.parametrize("qlab", [False, True], ids=["any port", "53000 written out"])
async def test_an_explicit_port_in_use_is_one_sentence(mosquitto, tmp_path, qlab):
    if qlab:
        port, holder = DEFAULT_PORT, _hold(DEFAULT_PORT)
    else:
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    try:
        with pytest.raises(UserError, match=f"Port {port} is already in use") as caught:
            async with running_desk(desk(f"{{port: {port}}}"), mosquitto.port, tmp_path):
                pass
        assert "\n" not in str(caught.value) and "端口" in str(caught.value)
    finally:
        if holder is not None:
            holder.close()
