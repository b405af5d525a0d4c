"""The room's Mosquitto configuration as shipped (``deploy/mosquitto/room.conf`` and ``acl.example``, see
docs/deployment.md), run by the real ``mosquitto``: the test only puts the files where a temporary folder is
(``/etc/mosquitto/`` becomes it), listens on a free loopback port instead of 1883, and stands in for the Debian
package's main file, which sets the persistence location and includes ``conf.d/``. Users come from
``mosquitto_passwd -b``. Whether the broker refused a publish is read from a listener on one connection: what it
heard before a later, allowed message (a canary) sent after the refused one."""

from __future__ import annotations

import asyncio
import getpass
import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt import ProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import ROOT, Launcher, require_tool, run_launcher
from tests.support.net import free_port, wait_for_port

DEPLOY = ROOT / "deploy" / "mosquitto"
USERS = ("canal-lanterns", "twin-room", "operator", "viewer", "dimmers", "wled-strips", "estop-panel")
EXHIBIT = "exhibit/canal-lanterns"


def password(user: str) -> str:
    return f"pw-{user}-7"


@dataclass
class Room:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [require_tool("mosquitto"), "-c", str(self.folder / "mosquitto.conf")], stdout=log, stderr=log
        )
        try:
            wait_for_port(self.port, timeout=5)
        except TimeoutError:
            self.stop()
            pytest.fail(f"mosquitto did not start with room.conf:\n{(self.folder / 'mosquitto.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean stop writes the persistence file
            self.process.wait(5)

    def client(self, user: str | None, name: str, v5: bool = False, **kwargs: object) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            identifier=name,
            username=user,
            password=password(user) if user else None,
            protocol=ProtocolVersion.V5 if v5 else ProtocolVersion.V311,
            timeout=5,
            **kwargs,  # type: ignore[arg-type]
        )


def shipped_config(folder: Path, port: int) -> str:
    """room.conf with its paths under ``folder`` and its listener on ``port`` (loopback)."""
    text = (DEPLOY / "room.conf").read_text(encoding="utf-8")
    lines = text.splitlines()
    for needed in (
        "allow_anonymous false",
        "password_file /etc/mosquitto/passwd",
        "acl_file /etc/mosquitto/acl",
        "listener 1883",
    ):
        assert lines.count(needed) == 1, f"room.conf no longer has `{needed}` once"
    text = text.replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
    return text.replace("/etc/mosquitto/", f"{folder}/")


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    port = free_port()
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "data").mkdir()
    # What Debian's /etc/mosquitto/mosquitto.conf says, with this folder for /var/lib/mosquitto/; started as root,
    # mosquitto would read the files as the `mosquitto` user, who may not enter this folder.
    (tmp_path / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\npersistence true\npersistence_location {tmp_path}/data/\nlog_dest stderr\n"
        f"include_dir {tmp_path}/conf.d\n"
    )
    (tmp_path / "conf.d" / "room.conf").write_text(shipped_config(tmp_path, port))
    (tmp_path / "acl").write_text((DEPLOY / "acl.example").read_text(encoding="utf-8"))
    passwd = tmp_path / "passwd"
    tool = require_tool("mosquitto_passwd")
    for n, user in enumerate(USERS):
        subprocess.run([tool, *(["-c"] if n == 0 else []), "-b", str(passwd), user, password(user)], check=True)
    broker = Room(tmp_path, port)
    broker.start()
    yield broker
    broker.stop()


async def heard_before_canary(
    room: Room, listener: str, filters: list[str], attempts: list[tuple[str, str]], canary: tuple[str, str]
) -> list[str]:
    """Topics ``listener`` (subscribed to ``filters``) receives when each ``(user, topic)`` of ``attempts`` is
    published in turn (QoS 1, each acknowledged before the next), then the canary: up to the canary's arrival."""
    heard: list[str] = []
    async with room.client(listener, f"listen-{listener}") as sub:
        for topic_filter in filters:
            await sub.subscribe(topic_filter, qos=1)
        for user, topic in [*attempts, canary]:
            async with room.client(user, f"send-{user}") as pub:
                await pub.publish(topic, b'{"brightness": 255}', qos=1)
        async with asyncio.timeout(5):
            async for message in sub.messages:
                heard.append(message.topic.value)
                if message.topic.value == canary[1]:
                    return heard
    raise AssertionError("unreachable")


async def test_an_exhibit_gets_its_commands_and_input_and_drives_its_devices(room: Room):
    heard = await heard_before_canary(
        room,
        "canal-lanterns",
        [f"{EXHIBIT}/control/#", "venue/safety/#"],
        [("estop-panel", "venue/safety/estop")],
        ("operator", f"{EXHIBIT}/control/go"),
    )
    assert heard == ["venue/safety/estop", f"{EXHIBIT}/control/go"]
    # a node of the show network: its barrier after a (re)connection, and the exhibit's lease
    site = ["exhibit/site/nodes/room-1/#", "exhibit/site/exhibits/canal-lanterns/#"]
    heard = await heard_before_canary(
        room,
        "canal-lanterns",
        site,
        [("canal-lanterns", "exhibit/site/nodes/room-1/barrier")],
        ("canal-lanterns", "exhibit/site/exhibits/canal-lanterns/lease"),
    )
    assert heard == ["exhibit/site/nodes/room-1/barrier", "exhibit/site/exhibits/canal-lanterns/lease"]
    heard = await heard_before_canary(
        room, "dimmers", [f"{EXHIBIT}/devices/+/set"], [], ("canal-lanterns", f"{EXHIBIT}/devices/wash/set")
    )
    assert heard == [f"{EXHIBIT}/devices/wash/set"]
    heard = await heard_before_canary(room, "wled-strips", ["wled/#"], [], ("canal-lanterns", "wled/strip1/api"))
    assert heard == ["wled/strip1/api"]
    heard = await heard_before_canary(
        room,
        "operator",
        [f"{EXHIBIT}/control/reply", f"{EXHIBIT}/status"],
        [("canal-lanterns", f"{EXHIBIT}/status")],
        ("canal-lanterns", f"{EXHIBIT}/control/reply"),
    )
    assert heard == [f"{EXHIBIT}/status", f"{EXHIBIT}/control/reply"]


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt3.1.1", "mqtt5"])
async def test_an_anonymous_client_or_a_wrong_password_is_refused(room: Room, v5: bool):
    with pytest.raises(aiomqtt.MqttError):
        async with room.client(None, "anonymous", v5=v5):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", room.port, username="operator", password="guess", timeout=5):
            pass


async def test_operators_and_viewers_never_reach_device_or_lease_topics(room: Room):
    filters = [f"{EXHIBIT}/#", "exhibit/site/exhibits/canal-lanterns/#"]
    attempts = [
        ("operator", f"{EXHIBIT}/devices/wash/set"),
        ("operator", "exhibit/site/exhibits/canal-lanterns/lease"),
        ("viewer", f"{EXHIBIT}/control/go"),
        ("viewer", f"{EXHIBIT}/devices/wash/set"),
        ("twin-room", f"{EXHIBIT}/devices/wash/set"),  # another exhibit
        ("twin-room", f"{EXHIBIT}/control/go"),
        ("dimmers", f"{EXHIBIT}/status"),  # gear
    ]
    heard = await heard_before_canary(room, "canal-lanterns", filters, attempts, ("operator", f"{EXHIBIT}/control/go"))
    assert heard == [f"{EXHIBIT}/control/go"]


async def test_an_mqtt5_node_keeps_its_session_and_its_user_properties(room: Room):
    connect = Properties(PacketTypes.CONNECT)
    connect.SessionExpiryInterval = 24 * 3600
    node: dict[str, object] = {"clean_start": False, "properties": connect}
    async with room.client("canal-lanterns", "exhibit-canal-lanterns-a", True, **node) as exhibit:
        await exhibit.subscribe(f"{EXHIBIT}/control/#", qos=1)
    async with room.client("operator", "desk", v5=True) as desk:  # pressed while the node is away
        await desk.publish(f"{EXHIBIT}/control/go", b"{}", qos=1)
    async with room.client("canal-lanterns", "exhibit-canal-lanterns-a", True, **node) as exhibit:
        async with asyncio.timeout(5):
            message = await anext(aiter(exhibit.messages))
        assert message.topic.value == f"{EXHIBIT}/control/go"  # the broker kept the session and queued it
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("node", "hall-a-1"), ("epoch", "3")]
        async with room.client("dimmers", "dimmer-pack", v5=True) as gear:
            await gear.subscribe(f"{EXHIBIT}/devices/+/set", qos=1)
            await exhibit.publish(f"{EXHIBIT}/devices/wash/set", b"{}", qos=1, properties=properties)
            async with asyncio.timeout(5):
                command = await anext(aiter(gear.messages))
    assert command.properties is not None
    assert getattr(command.properties, "UserProperty", None) == [("node", "hall-a-1"), ("epoch", "3")]


async def test_retained_show_state_survives_a_broker_restart(room: Room):
    async with room.client("canal-lanterns", "exhibit-canal-lanterns") as exhibit:
        await exhibit.publish(f"{EXHIBIT}/show/show", b'{"running": true}', qos=1, retain=True)
    room.stop()
    room.start()
    async with room.client("viewer", "wall") as wall:
        await wall.subscribe(f"{EXHIBIT}/show/show", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(wall.messages))
    assert message.payload == b'{"running": true}' and message.retain


RUN_EXHIBIT = """\
format_version: 1
id: canal-lanterns
title: {en: Room broker check}
mqtt:
  broker: embedded
  prefix: exhibit
  security: {username: canal-lanterns, password_file: mqtt.secret}
devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}
cues:
  show:
    cues:
      - {id: "1", name: Lights up, actions: [{set: wash.brightness, value: 200}]}
"""


async def test_a_primary_node_runs_on_the_room_broker_with_its_password_file(room: Room, tmp_path: Path):
    folder = tmp_path / "canal-lanterns"
    folder.mkdir()
    (folder / "exhibit.yaml").write_text(RUN_EXHIBIT)
    (folder / "mqtt.secret").write_text(password("canal-lanterns") + "\n")
    args = ["run", str(folder / "exhibit.yaml"), "--broker", f"mqtt://127.0.0.1:{room.port}", "--headless"]
    args += ["--no-render", "--no-console", "--no-reload", "--state-dir", str(tmp_path / "state")]
    args += ["--node", "room-1", "--role", "primary"]
    controller = Launcher(*args)
    try:
        async with room.client("viewer", "wall") as wall, room.client("dimmers", "dimmer-pack") as gear:
            await wall.subscribe("exhibit/site/nodes/room-1/info", qos=1)
            await gear.subscribe(f"{EXHIBIT}/devices/wash/set", qos=1)
            async with asyncio.timeout(30):
                async for message in wall.messages:
                    if json.loads(bytes(message.payload)).get("driving"):
                        break
            async with room.client("operator", "desk") as desk:
                await desk.subscribe(f"{EXHIBIT}/control/reply", qos=1)
                await desk.publish(f"{EXHIBIT}/control/go", b'{"id": 7}', qos=1)
                async with asyncio.timeout(10):
                    reply = json.loads(bytes((await anext(aiter(desk.messages))).payload))
            assert reply["id"] == 7 and reply["status"] == "ok", reply
            # `exhibit site` logs in as a viewer; without a login the room broker refuses it.
            (tmp_path / "viewer.secret").write_text(password("viewer") + "\n")
            broker = f"mqtt://127.0.0.1:{room.port}"
            login = ["--username", "viewer", "--password-file", str(tmp_path / "viewer.secret")]
            listed = await asyncio.to_thread(run_launcher, "site", "--broker", broker, *login)
            assert listed.returncode == 0, listed.stderr
            assert any(line.startswith("room-1 ") and "canal-lanterns" in line for line in listed.stdout.splitlines())
            refused = await asyncio.to_thread(run_launcher, "site", "--broker", broker)
            assert refused.returncode == 1 and "cannot be reached" in refused.stderr, refused.stderr
            async with asyncio.timeout(10):
                async for message in gear.messages:
                    if json.loads(bytes(message.payload)).get("brightness") == 200:
                        break
        controller.signal(signal.SIGINT)
        code, output = await asyncio.to_thread(controller.wait, 30)
    finally:
        controller.kill()
    assert code == 0, output
    assert "refused" not in output, output
    async with room.client("canal-lanterns", "lease-reader") as reader:  # the node's claim, kept by the broker
        await reader.subscribe("exhibit/site/exhibits/canal-lanterns/lease", qos=1)
        async with asyncio.timeout(5):
            lease = json.loads(bytes((await anext(aiter(reader.messages))).payload))
    assert lease["node"] == "room-1", lease
