"""MQTT control over a real Mosquitto, with the exhibit assembled as `run` does: commands published by
`mosquitto_pub` and by paho clients move the playhead and reach the devices on the broker; replies come
back on `control/reply`; bad payloads are answered and counted; a retained command, or one the broker
kept while the exhibit was away, never fires; the show state stays retained for late subscribers; and
a Mosquitto ACL keeps a viewer's GO off the exhibit while the operator's works."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt

from devices.mqtt.broker import EmbeddedBroker
from devices.mqtt.control import MqttControlService
from devices.mqtt.link import MqttLink
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.conftest import require_tool
from tests.devices.test_mqtt_link import broker
from tests.support.mqtt_gear import Heard, Listener

EXHIBIT = """\
format_version: 1
id: ctl
title: {en: MQTT control, zh: MQTT 控制}
console: {enabled: false}
control: {osc: {enabled: false}}
devices:
  lamp:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 1], safe: 0}
  fan:
    kind: mqtt
    properties:
      speed: {type: int, range: [0, 100], safe: 0}
cues:
  main:
    guard: 0s   # GOs in quick succession all count here
    cues:
      - id: '1'
        actions: [{set: lamp.level, value: 0.5}, {set: fan.speed, value: 40}]
      - id: '2'
        actions: [{set: lamp.level, value: 1}]
safety: {panic_time: 0.2s}
"""
BASE = "exhibit/ctl"
REPLY = f"{BASE}/control/reply"
LAMP_SET = f"{BASE}/devices/lamp/set"
FAN_SET = f"{BASE}/devices/fan/set"

# The ACL of the documentation (doc-mqtt-control.md), for this exhibit's id.
ACL = """\
pattern read exhibit/+/status
pattern read exhibit/+/health/#
pattern read exhibit/+/show/#

user operator
topic write exhibit/+/control/#
topic read exhibit/+/control/reply

user exhibit
topic read exhibit/ctl/control/#
topic write exhibit/ctl/control/reply
topic write exhibit/ctl/show/#
topic write exhibit/ctl/status
topic write exhibit/ctl/health/#
topic readwrite exhibit/ctl/devices/#
"""


@contextlib.asynccontextmanager
async def exhibit(port: int | None, tmp_path: Path, text: str = EXHIBIT) -> AsyncIterator[Runtime]:
    """The exhibit on the Mosquitto at ``port``; with None, simulated on its embedded broker."""
    registry = build_registry()
    model = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    if port is None:
        options = RuntimeOptions(base_dir=tmp_path, simulate=True, embedded_port=0, console=False)
    else:
        options = RuntimeOptions(base_dir=tmp_path, broker=f"mqtt://127.0.0.1:{port}", console=False)
    runtime = assemble(model, registry, options)
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.resources.get(MqttLink).connected.wait(), 10)
        yield runtime
    finally:
        await runtime.stop()


def control(runtime: Runtime) -> MqttControlService:
    service = runtime.service("mqtt_control")
    assert isinstance(service, MqttControlService)
    return service


async def mosquitto_pub(port: int, topic: str, *args: str) -> None:
    """The command line an operator would type (QoS 1: done once the broker has it)."""
    process = await asyncio.create_subprocess_exec(
        require_tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, *args
    )
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def reply_to(heard: Listener, request_id: Any) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        for item in heard.heard:
            body = json.loads(item.payload) if item.topic == REPLY else {}
            if body.get("id") == request_id:
                return body
        assert asyncio.get_running_loop().time() < deadline, f"no reply {request_id}: {heard.heard}"
        await asyncio.sleep(0.01)


async def heard_json(heard: Listener, topic: str, wanted: dict[str, Any]) -> Heard:
    """The first message on ``topic`` whose JSON has every key of ``wanted`` (in ``data`` for events)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        for item in heard.heard:
            if item.topic == topic:
                body = json.loads(item.payload)
                body = body.get("data", body) if "topic" in body else body
                if all(body.get(k) == v for k, v in wanted.items()):
                    return item
        assert asyncio.get_running_loop().time() < deadline, f"never heard {wanted} on {topic}: {heard.heard}"
        await asyncio.sleep(0.01)


async def until(predicate: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.01)


def playhead(runtime: Runtime) -> int:
    assert runtime.show is not None
    return runtime.show.cue_list("main").playhead


# --------------------------------------------------------------------------------- commands


async def test_go_from_mosquitto_pub_moves_the_playhead_reaches_the_lamp_and_is_answered(mosquitto, tmp_path):
    async with exhibit(mosquitto.port, tmp_path) as runtime, Listener(mosquitto.port, f"{BASE}/#") as heard:
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-m", '{"id": "g1", "cue_list": "main"}')
        reply = await reply_to(heard, "g1")
        assert reply == {
            "command": "go",
            "id": "g1",
            "status": "ok",
            "data": {"cue_list": "main", "standby": "2", "last": "1"},
        }
        assert playhead(runtime) == 1
        await heard_json(heard, LAMP_SET, {"level": 0.5})
        await heard_json(heard, f"{BASE}/show/cuelist/main", {"playhead": 1, "last": "1"})
        audit = await heard_json(heard, f"{BASE}/show/audit", {"action": "go", "via": "mqtt", "ok": True})
        assert not audit.retained
        # An empty payload is a command without parameters; without an id, the reply has none.
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/playhead/next", "-n")
        await heard_json(heard, REPLY, {"command": "playhead/next", "status": "ok"})
        assert playhead(runtime) == 2
        assert control(runtime).counts["commands"] == 2


async def test_bad_json_a_list_and_an_unknown_command_are_answered_with_errors_and_counted(mosquitto, tmp_path):
    async with (
        exhibit(mosquitto.port, tmp_path) as runtime,
        Listener(mosquitto.port, REPLY) as heard,
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="desk") as desk,
    ):
        await desk.publish(f"{BASE}/control/go", b"{not json", qos=1)
        await desk.publish(f"{BASE}/control/go", b"\xff\xfe", qos=1)
        await desk.publish(f"{BASE}/control/go", b"[1, 2]", qos=1)
        await desk.publish(f"{BASE}/control/fly", b'{"id": 4}', qos=1)
        await desk.publish(f"{BASE}/control/go", b'{"id": 5, "speed": 3}', qos=1)  # a wrong parameter
        await desk.publish(f"{BASE}/control/go", b'{"id": 6}', qos=1)
        assert (await reply_to(heard, 6))["status"] == "ok"  # still serving, in order: everything before is here
        errors = [json.loads(h.payload) for h in heard.heard[:5]]
        assert [(e["command"], e["status"], e["code"]) for e in errors] == [
            ("go", "error", "bad_request"),
            ("go", "error", "bad_request"),
            ("go", "error", "bad_request"),
            ("fly", "error", "not_found"),
            ("go", "error", "bad_request"),
        ]
        assert "JSON" in errors[0]["error"] and "消息" in errors[0]["error"]  # bilingual
        assert errors[3]["id"] == 4 and "id" not in errors[0]
        counts = control(runtime).counts
        assert counts["malformed"] == 4  # the wrong parameter is the controller's business, not malformed
        assert runtime.store.get("mqtt_control.health.malformed").value == 4
        assert playhead(runtime) == 1


async def test_a_simulated_run_takes_commands_and_keeps_the_state_on_its_embedded_broker(tmp_path):
    async with exhibit(None, tmp_path) as runtime:
        port = runtime.resources.get(EmbeddedBroker).port
        async with Listener(port, REPLY) as heard, aiomqtt.Client("127.0.0.1", port, identifier="desk") as desk:
            await desk.publish(f"{BASE}/control/go", b'{"id": "sim"}', qos=1)
            assert (await reply_to(heard, "sim"))["status"] == "ok"
        assert playhead(runtime) == 1
        async with Listener(port, f"{BASE}/show/cuelist/main") as late:
            assert (await heard_json(late, f"{BASE}/show/cuelist/main", {"playhead": 1})).retained


# ------------------------------------------------------------------------ commands that must not fire


async def test_a_retained_go_left_on_the_broker_never_fires_and_clearing_it_is_no_go(mosquitto, tmp_path):
    await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-r", "-m", "{}")
    async with (
        exhibit(mosquitto.port, tmp_path) as runtime,
        Listener(mosquitto.port, REPLY) as heard,
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="desk") as desk,
    ):
        service = control(runtime)
        await until(lambda: service.counts["retained"] == 1)
        await desk.publish(f"{BASE}/control/go", b'{"id": "o1"}', qos=1)
        assert (await reply_to(heard, "o1"))["data"]["last"] == "1"  # the retained GO did not fire cue 1 first
        # Clearing the retained message reaches us as an empty message: it must not fire cue 2.
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-r", "-n")
        await desk.publish(f"{BASE}/control/go", b'{"id": "o2"}', qos=1)
        reply = await reply_to(heard, "o2")
        assert reply["status"] == "ok" and reply["data"]["last"] == "2"
        assert service.counts["retained"] == 1
        assert service.counts["commands"] == 2


async def test_a_go_the_broker_kept_while_the_exhibit_was_away_does_not_fire_on_its_return(mosquitto, tmp_path):
    async with exhibit(mosquitto.port, tmp_path):
        pass  # the persistent session now exists: the broker keeps QoS 1 commands for it
    await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-m", '{"id": "late"}')
    async with (
        exhibit(mosquitto.port, tmp_path) as runtime,
        Listener(mosquitto.port, REPLY) as heard,
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="desk") as desk,
    ):
        await desk.publish(f"{BASE}/control/go", b'{"id": "now"}', qos=1)
        assert (await reply_to(heard, "now"))["data"]["last"] == "1"
        assert control(runtime).counts["stale"] == 1
        assert all(json.loads(h.payload).get("id") != "late" for h in heard.heard)


# ---------------------------------------------------------------------------------- safety and state


async def test_panic_over_mqtt_brings_every_device_to_its_safe_state_on_the_broker(mosquitto, tmp_path):
    async with exhibit(mosquitto.port, tmp_path) as runtime, Listener(mosquitto.port, f"{BASE}/#") as heard:
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-m", "{}")
        await heard_json(heard, LAMP_SET, {"level": 0.5})
        await heard_json(heard, FAN_SET, {"speed": 40})
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/panic", "-m", '{"id": 9}')
        assert (await reply_to(heard, 9))["status"] == "ok"
        await heard_json(heard, f"{BASE}/show/show", {"panic": True})
        await until(lambda: json.loads(heard.payloads(LAMP_SET)[-1])["level"] == 0)
        await until(lambda: json.loads(heard.payloads(FAN_SET)[-1])["speed"] == 0)
        assert runtime.show is not None and runtime.show.panicked


async def test_show_state_is_retained_for_a_late_subscriber_and_says_stopped_after_stop(mosquitto, tmp_path):
    async with exhibit(mosquitto.port, tmp_path) as runtime, Listener(mosquitto.port, REPLY) as heard:
        await mosquitto_pub(mosquitto.port, f"{BASE}/control/go", "-m", '{"id": 1}')
        await reply_to(heard, 1)
        async with Listener(mosquitto.port, f"{BASE}/show/#") as late:
            cuelist = await heard_json(late, f"{BASE}/show/cuelist/main", {"playhead": 1, "standby": "2"})
            assert cuelist.retained
            body = json.loads(cuelist.payload)
            assert body["v"] == 1 and body["topic"] == "cuelist/main"
            assert body["data"] == runtime.events.state["cuelist/main"]  # what the WebSocket says
            assert (await heard_json(late, f"{BASE}/show/show", {"running": True})).retained
            assert (await heard_json(late, f"{BASE}/show/safety", {"estop": False})).retained
            assert (await heard_json(late, f"{BASE}/show/health/lamp", {"status": "ok"})).retained
    async with Listener(mosquitto.port, f"{BASE}/show/show") as after:
        shown = await heard_json(after, f"{BASE}/show/show", {"running": False})
        assert shown.retained


# ------------------------------------------------------------------------------------- broker ACL


async def test_a_mosquitto_acl_drops_a_viewers_go_while_the_operators_works(tmp_path):
    passwords, acl = tmp_path / "passwd", tmp_path / "acl"
    mosquitto_passwd = require_tool("mosquitto_passwd")
    for i, (user, secret) in enumerate((("exhibit", "lantern"), ("operator", "desk-1"), ("viewer", "look"))):
        flags = ["-c", "-b"] if i == 0 else ["-b"]
        process = await asyncio.create_subprocess_exec(mosquitto_passwd, *flags, str(passwords), user, secret)
        assert await process.wait() == 0
    acl.write_text(ACL)
    (tmp_path / "mqtt.secret").write_text("lantern\n")
    secured = broker(tmp_path / "broker", "allow_anonymous false", f"password_file {passwords}", f"acl_file {acl}")
    text = EXHIBIT.replace("cues:\n", "mqtt: {security: {username: exhibit, password_file: mqtt.secret}}\ncues:\n", 1)
    try:
        async with (
            exhibit(secured.port, tmp_path, text) as runtime,
            aiomqtt.Client("127.0.0.1", secured.port, identifier="op", username="operator", password="desk-1") as op,
            aiomqtt.Client("127.0.0.1", secured.port, identifier="vw", username="viewer", password="look") as viewer,
        ):
            await op.subscribe(REPLY, qos=1)
            await viewer.subscribe(f"{BASE}/show/cuelist/main", qos=1)
            # The broker acknowledges the viewer's GO (MQTT 3.1.1 has no refusal) and drops it.
            await viewer.publish(f"{BASE}/control/go", b'{"id": "viewer"}', qos=1)
            await op.publish(f"{BASE}/control/go", b'{"id": "operator"}', qos=1)
            replies = []
            async with asyncio.timeout(10):
                async for message in op.messages:
                    replies.append(json.loads(bytes(message.payload)))
                    if replies[-1].get("id") == "operator":
                        break
            assert replies == [
                {
                    "command": "go",
                    "id": "operator",
                    "status": "ok",
                    "data": {"cue_list": "main", "standby": "2", "last": "1"},
                }
            ]
            assert playhead(runtime) == 1
            # The viewer may read the show state.
            async with asyncio.timeout(10):
                async for message in viewer.messages:
                    if json.loads(bytes(message.payload))["data"]["playhead"] == 1:
                        break
    finally:
        secured.stop()
