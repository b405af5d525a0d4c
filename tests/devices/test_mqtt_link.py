"""The MQTT link's delivery guarantees against a real Mosquitto, with a simulated
fixture as a separate MQTT client: broker restarts mid-cue, the bounded outbox,
re-sending what was in flight, re-publishing retained state, and secrets/TLS."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from devices.mqtt.device import MqttDevice, MqttDeviceConfig
from devices.mqtt.link import Dropped, MqttLink, Topics
from devices.mqtt.security import SecretMissing, resolve_credentials
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.model import MqttSecurity
from engine.signals import SignalStore
from engine.supervisor import Backoff
from tests.conftest import Mosquitto, require_tool
from tests.support.mqtt_gear import Listener, MqttGear
from tests.support.net import free_port

TOPICS = Topics("exhibit", "demo")
LAMP = MqttDeviceConfig.model_validate(
    {"kind": "mqtt", "properties": {"brightness": {"type": "int", "range": [0, 255], "safe": 0}}}
)


def broker(directory: Path, *lines: str, persistent: bool = False, port: int | None = None) -> Mosquitto:
    """A Mosquitto with extra config lines; ``persistent`` keeps sessions, queued QoS 1
    messages and retained ones across its own restart, like a production broker."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    store = f"persistence true\npersistence_location {directory}/\n" if persistent else "persistence false\n"
    listener = "" if any(line.startswith("listener") for line in lines) else f"listener {port} 127.0.0.1\n"
    anonymous = "" if any(line.startswith("allow_anonymous") for line in lines) else "allow_anonymous true\n"
    user = f"user {getpass.getuser()}\n"  # as root, Mosquitto would switch to `mosquitto` and lose our files
    config.write_text(listener + anonymous + store + user + "".join(f"{line}\n" for line in lines))
    started = Mosquitto(port, None, config)  # type: ignore[arg-type]
    started.start()
    return started


def make_link(
    port: int,
    *,
    client_id: str = "exhibit-demo",
    backoff: Backoff | None = None,
    security: MqttSecurity | None = None,
    outbox_limit: int = 1000,
) -> MqttLink:
    return MqttLink(
        "127.0.0.1",
        port,
        client_id=client_id,
        topics=TOPICS,
        keepalive=5,
        backoff=backoff or Backoff(initial=0.05, cap=0.2),
        security=security,
        outbox_limit=outbox_limit,
    )


def make_device(link: MqttLink, name: str = "lamp", command_topic: str | None = None) -> MqttDevice:
    resources = Resources()
    resources.put(link)
    resources.put(TOPICS)
    config = LAMP.model_copy(update={"command_topic": command_topic})
    return MqttDevice(name, config, DriverContext("demo", SignalStore(), MonotonicClock(), resources))


@pytest.fixture
def tasks(running: list[asyncio.Task[None]]) -> list[asyncio.Task[None]]:
    return running


@pytest.fixture
def brokers() -> Iterator[list[Mosquitto]]:
    started: list[Mosquitto] = []
    yield started
    for each in started:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait(5)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.02)


# --- a broker restart in the middle of a cue ---------------------------------------------


async def test_every_discrete_command_arrives_in_order_across_a_broker_restart(tmp_path, tasks, brokers):
    mosquitto = broker(tmp_path / "broker", persistent=True)
    brokers.append(mosquitto)
    link = make_link(mosquitto.port)
    device = make_device(link, command_topic="gear/lamp/set")
    async with MqttGear(mosquitto.port, "gear/lamp") as gear:
        tasks += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        await asyncio.wait_for(link.connected.wait(), 10)

        steps = 60
        for step in range(1, steps + 1):
            link.enqueue(gear.command_topic, json.dumps({"step": step}))  # discrete: every one counts
            device.set({"brightness": step})  # continuous: only the latest matters
            await asyncio.sleep(0.01)
            if step == 20:
                await asyncio.to_thread(mosquitto.stop)  # SIGTERM: Mosquitto saves sessions and queues
                assert (tmp_path / "broker" / "mosquitto.db").exists()
            if step == 40:
                await asyncio.to_thread(mosquitto.start)

        await gear.wait_until(lambda: steps in gear.values("step"), timeout=15)
        received = gear.values("step")
        assert list(dict.fromkeys(received)) == list(range(1, steps + 1))  # all of them, in order
        assert len(received) - steps <= 2  # at-least-once: at most what was in flight comes twice
        await gear.wait_until(lambda: gear.state == {"step": steps, "brightness": steps})
        assert gear.connections >= 2 and link.connections >= 2
        assert link.dropped == 0 and link.outbox == []

        # The retained states converge: once the last status is out, a late subscriber sees the final ones.
        final = {"brightness": steps, "step": steps}
        async with Listener(mosquitto.port, "gear/lamp/status", device.state_topic) as listener:
            await listener.wait_for("gear/lamp/status", json.dumps(final))
            await listener.wait_for(device.state_topic, json.dumps({"brightness": steps}))
        async with Listener(mosquitto.port, "gear/lamp/status", device.state_topic) as late:
            state = await late.wait_for(device.state_topic)
            status = await late.wait_for("gear/lamp/status")
        assert (json.loads(state.payload), state.retained) == ({"brightness": steps}, True)
        assert (json.loads(status.payload), status.retained) == (final, True)


async def test_a_message_in_flight_when_the_broker_dies_is_sent_again(tmp_path, tasks, brokers):
    mosquitto = broker(tmp_path / "broker")
    brokers.append(mosquitto)
    link = make_link(mosquitto.port)
    device = make_device(link)
    tasks += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    await asyncio.wait_for(link.connected.wait(), 10)
    await wait_until(lambda: device.commands_sent == 1, what="safe state sent")

    mosquitto.process.send_signal(signal.SIGSTOP)  # the broker still accepts bytes but never acknowledges
    delivered = link.enqueue("cue/fired", b"intro", retain=True)
    device.set({"brightness": 77})
    await asyncio.sleep(0.3)
    assert [m.payload for m in link.outbox] == [b"intro"] and not delivered.done()  # in flight, unacknowledged

    mosquitto.process.kill()  # it never processed the PUBLISH: only a re-send can deliver it
    mosquitto.process.wait(5)
    lost_at = time.monotonic()
    await asyncio.to_thread(mosquitto.start)
    assert await asyncio.wait_for(delivered, 10) is True
    async with Listener(mosquitto.port, "cue/fired", device.state_topic) as late:
        await late.wait_for("cue/fired", "intro")
        # The continuous value in flight failed fast and was re-sent, well before aiomqtt's 5 s timeout.
        heard = await late.wait_for(device.state_topic, '{"brightness": 77}')
        assert heard.at - lost_at < 4.0


async def test_the_persistent_session_keeps_what_arrives_for_us_while_we_are_away(tmp_path, tasks, brokers):
    mosquitto = broker(tmp_path / "broker")
    brokers.append(mosquitto)
    heard: list[str] = []
    first = make_link(mosquitto.port)
    first.subscribe("gear/lamp/status", lambda message: heard.append(bytes(message.payload).decode()))
    running = asyncio.create_task(first.run())
    await asyncio.wait_for(first.connected.wait(), 10)
    running.cancel()  # the process goes away; its session stays with the broker
    await asyncio.gather(running, return_exceptions=True)

    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="gear-lamp") as gear:
        await gear.publish("gear/lamp/status", b'{"brightness": 9}', qos=1)  # not retained: only the session keeps it
    second = make_link(mosquitto.port)  # the same stable client id
    second.subscribe("gear/lamp/status", lambda message: heard.append(bytes(message.payload).decode()))
    tasks.append(asyncio.create_task(second.run()))
    await wait_until(lambda: '{"brightness": 9}' in heard, what="the queued message")


# --- the bounded outbox ---------------------------------------------------------------


async def test_the_outbox_keeps_the_newest_in_order_and_counts_what_it_drops(tmp_path, tasks, brokers, caplog):
    caplog.set_level(logging.INFO, logger="devices.mqtt")
    port = free_port()
    link = make_link(port, outbox_limit=5)  # not running yet: as good as disconnected
    device = make_device(link, command_topic="gear/lamp/set")
    futures = [link.enqueue("gear/lamp/set", json.dumps({"step": step})) for step in range(1, 9)]
    await asyncio.sleep(0)

    assert link.dropped == 3
    assert [json.loads(m.payload)["step"] for m in link.outbox] == [4, 5, 6, 7, 8]  # oldest dropped, order kept
    assert [f.result() for f in futures[:3]] == [False, False, False]
    assert not any(f.done() for f in futures[3:])
    full = [r for r in caplog.records if "outbox full" in r.getMessage()]
    assert len(full) == 1  # once per burst, not once per message

    waiting = asyncio.create_task(link.publish("gear/lamp/set", json.dumps({"step": 9}), discrete=True))
    await asyncio.sleep(0)
    assert link.dropped == 4
    for step in (10, 11, 12, 13, 14):
        link.enqueue("gear/lamp/set", json.dumps({"step": step}))
    with pytest.raises(Dropped):
        await waiting  # pushed out by the five after it: the caller learns it
    assert link.dropped == 9
    assert [json.loads(m.payload)["step"] for m in link.outbox] == [10, 11, 12, 13, 14]

    brokers.append(broker(tmp_path / "broker", port=port))
    async with MqttGear(port, "gear/lamp") as gear:
        tasks += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        await gear.wait_until(lambda: "brightness" in gear.state)
        # What waited goes first, in order, then the device's start-up safe state.
        assert gear.commands == [*({"step": step} for step in range(10, 15)), {"brightness": 0}]
        assert link.outbox == []
    summary = [r.getMessage() for r in caplog.records if "while the broker was away" in r.getMessage()]
    assert summary == ["the MQTT outbox dropped 9 discrete messages while the broker was away"]


async def test_discrete_messages_wait_for_the_broker_and_go_before_anything_new(tmp_path, tasks, brokers):
    mosquitto = broker(tmp_path / "broker", persistent=True)
    brokers.append(mosquitto)
    async with MqttGear(mosquitto.port, "gear/lamp") as gear:  # its persistent session now exists
        await asyncio.to_thread(mosquitto.stop)
        link = make_link(mosquitto.port)
        device = make_device(link, command_topic="gear/lamp/set")
        tasks += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        sending = asyncio.create_task(link.publish("gear/lamp/set", json.dumps({"step": 1}), discrete=True))
        await asyncio.sleep(0)
        link.enqueue("gear/lamp/set", json.dumps({"step": 2}))
        await asyncio.sleep(0.3)
        assert not sending.done()  # waits for the broker instead of failing

        await asyncio.to_thread(mosquitto.start)
        await asyncio.wait_for(sending, 10)
        await gear.wait_until(lambda: "brightness" in gear.state)
        assert gear.commands == [{"step": 1}, {"step": 2}, {"brightness": 0}]


# --- retained state after a reconnect -----------------------------------------------------


async def test_the_retained_state_of_every_device_is_back_within_a_second_of_a_reconnect(tmp_path, tasks, brokers):
    mosquitto = broker(tmp_path / "broker")  # no persistence: a restart forgets every retained message
    brokers.append(mosquitto)
    link = make_link(mosquitto.port, backoff=Backoff(initial=0.3, cap=0.3, jitter=0.0))
    devices = [make_device(link, f"lamp{i}") for i in range(20)]
    tasks.append(asyncio.create_task(link.run()))
    tasks += [asyncio.create_task(d.run()) for d in devices]
    await asyncio.wait_for(link.connected.wait(), 10)
    for i, device in enumerate(devices):
        device.set({"brightness": i + 1})
    await wait_until(lambda: all(d.state.get("brightness") == i + 1 for i, d in enumerate(devices)))

    await asyncio.to_thread(mosquitto.stop)
    await asyncio.to_thread(mosquitto.start)
    async with Listener(mosquitto.port, "exhibit/demo/devices/+/state") as listener:
        await wait_until(lambda: link.connections == 2, what="reconnect")
        reconnected_at = link.connected_at
        assert reconnected_at is not None
        heard = [
            await listener.wait_for(d.state_topic, json.dumps({"brightness": i + 1})) for i, d in enumerate(devices)
        ]
    latest = max(h.at for h in heard)
    assert latest - reconnected_at < 1.0, f"retained states took {latest - reconnected_at:.3f} s after the reconnect"


# --- secrets and TLS --------------------------------------------------------------------------


def test_the_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXHIBIT_MQTT_PASSWORD", "lantern-42")
    security = MqttSecurity.model_validate({"username": "exhibit", "password_env": "EXHIBIT_MQTT_PASSWORD"})
    assert resolve_credentials(security) == ("exhibit", "lantern-42", None)
    assert "lantern-42" not in repr(security)


def test_the_password_comes_from_a_file_relative_to_the_exhibit(tmp_path):
    (tmp_path / "mqtt.secret").write_text("lantern-42\n")
    security = MqttSecurity.model_validate({"username": "exhibit", "password_file": "mqtt.secret"})
    assert resolve_credentials(security, tmp_path) == ("exhibit", "lantern-42", None)


def test_a_missing_secret_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("EXHIBIT_MQTT_PASSWORD", raising=False)
    with pytest.raises(
        SecretMissing, match=r"^the MQTT password environment variable `EXHIBIT_MQTT_PASSWORD` is not set$"
    ):
        resolve_credentials(
            MqttSecurity.model_validate({"username": "exhibit", "password_env": "EXHIBIT_MQTT_PASSWORD"})
        )
    with pytest.raises(SecretMissing, match=r"^the MQTT password file .*absent\.secret cannot be read \(No such file"):
        resolve_credentials(
            MqttSecurity.model_validate({"username": "exhibit", "password_file": "absent.secret"}), tmp_path
        )
    (tmp_path / "empty.secret").write_text("\n")
    with pytest.raises(SecretMissing, match=r"is empty$"):
        resolve_credentials(
            MqttSecurity.model_validate({"username": "exhibit", "password_file": "empty.secret"}), tmp_path
        )
    with pytest.raises(SecretMissing, match=r"^the MQTT TLS files cannot be loaded"):
        resolve_credentials(MqttSecurity.model_validate({"tls": True, "ca_file": str(tmp_path / "absent.pem")}))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"username": "u", "password_env": "A", "password_file": "b"}, "not both"),
        ({"password_env": "A"}, "a password needs a `username`"),
        ({"ca_file": "ca.pem"}, "`ca_file` only apply with `tls: true`"),
        ({"tls": True, "key_file": "k.pem"}, "`key_file` needs a `cert_file`"),
        ({"password": "in-the-yaml"}, "Extra inputs are not permitted"),
    ],
)
def test_security_settings_that_cannot_work_are_refused(fields, error):
    with pytest.raises(ValueError, match=error):
        MqttSecurity.model_validate(fields)


async def test_the_broker_accepts_the_right_password_and_refuses_a_wrong_one(
    tmp_path, tasks, brokers, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="devices.mqtt")
    passwords = tmp_path / "passwords"
    command = [require_tool("mosquitto_passwd"), "-c", "-b", str(passwords), "exhibit", "lantern-42"]
    await asyncio.to_thread(subprocess.run, command, check=True)
    passwords.chmod(0o600)
    mosquitto = broker(tmp_path / "broker", "allow_anonymous false", f"password_file {passwords}")
    brokers.append(mosquitto)
    monkeypatch.setenv("RIGHT", "lantern-42")
    monkeypatch.setenv("WRONG", "lantern-41")

    wrong = MqttLink(
        "127.0.0.1",
        mosquitto.port,
        client_id="exhibit-wrong",
        topics=TOPICS,
        backoff=Backoff(initial=0.05, cap=0.1),
        security=MqttSecurity.model_validate({"username": "exhibit", "password_env": "WRONG"}),
    )
    tasks.append(asyncio.create_task(wrong.run()))
    right = make_link(
        mosquitto.port, security=MqttSecurity.model_validate({"username": "exhibit", "password_env": "RIGHT"})
    )
    tasks.append(asyncio.create_task(right.run()))
    await asyncio.wait_for(right.connected.wait(), 10)
    assert right.username == "exhibit"
    await right.publish("cue/fired", b"authenticated")

    await asyncio.sleep(0.5)  # several refused attempts
    assert not wrong.connected.is_set() and wrong.connections == 0
    assert not tasks[0].done()  # still trying, nothing crashed
    refused = [r.getMessage() for r in caplog.records if "refused exhibit-wrong" in r.getMessage()]
    assert len(refused) == 1 and "lantern" not in refused[0]
    assert all("lantern-4" not in r.getMessage() for r in caplog.records)


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all EC (fast)."""
    openssl = require_tool("openssl")
    paths = {n: directory / f"{n}.pem" for n in ("ca", "ca-key", "server", "server-key", "client", "client-key")}

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", str(paths["ca-key"]), "-out", str(paths["ca"]))  # fmt: skip
    san = directory / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=exhibit")):
        request = directory / f"{name}.csr"
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
            "-keyout", str(paths[f"{name}-key"]), "-out", str(request))  # fmt: skip
        run("x509", "-req", "-in", str(request), "-CA", str(paths["ca"]), "-CAkey", str(paths["ca-key"]),
            "-CAcreateserial", "-days", "2", "-extfile", str(san), "-out", str(paths[name]))  # fmt: skip
    return paths


async def test_tls_with_a_client_certificate(tmp_path, tasks, brokers):
    pem = make_certificates(tmp_path)
    port = free_port()
    mosquitto = broker(
        tmp_path / "broker",
        f"listener {port} 127.0.0.1",
        f"cafile {pem['ca']}",
        f"certfile {pem['server']}",
        f"keyfile {pem['server-key']}",
        "require_certificate true",
        port=port,
    )
    brokers.append(mosquitto)
    security = MqttSecurity.model_validate(
        {"tls": True, "ca_file": str(pem["ca"]), "cert_file": str(pem["client"]), "key_file": str(pem["client-key"])}
    )
    link = make_link(port, security=security)
    assert link.address.startswith("mqtts://")
    tasks.append(asyncio.create_task(link.run()))
    await asyncio.wait_for(link.connected.wait(), 10)
    await link.publish("cue/fired", b"tls")

    without_certificate = make_link(
        port, security=MqttSecurity.model_validate({"tls": True, "ca_file": str(pem["ca"])})
    )
    tasks.append(asyncio.create_task(without_certificate.run()))
    await asyncio.sleep(0.5)
    assert not without_certificate.connected.is_set()  # the broker requires a client certificate


def test_insecure_only_skips_the_host_name_check(tmp_path):
    pem = make_certificates(tmp_path)
    _, _, context = resolve_credentials(
        MqttSecurity.model_validate({"tls": True, "ca_file": str(pem["ca"]), "insecure": True})
    )
    assert context is not None and context.check_hostname is False
    _, _, strict = resolve_credentials(MqttSecurity.model_validate({"tls": True, "ca_file": str(pem["ca"])}))
    assert strict is not None and strict.check_hostname is True
