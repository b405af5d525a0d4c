"""MQTT input payloads, case by case: how each type reads words, JSON values, nested fields and broken
bytes, what is refused as bad input, and what an input does with a message (no broker: the link's
dispatch is called as its reader would)."""

from __future__ import annotations

import logging
from typing import Any

import aiomqtt
import pytest

from devices.mqtt.inputs import MqttInput, MqttSensor, MqttSensorConfig, NonFinite, Unreadable, read_payload
from devices.mqtt.link import MqttLink, Topics
from engine.clock import VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore


def spec(type_: str, field: str | None = None) -> MqttInput:
    return MqttInput(topic="venue/x", type=type_, field=field)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- read_payload


@pytest.mark.parametrize(
    ("payload", "type_", "field", "expected"),
    [
        # An event without a field is the payload's text as it came, never re-encoded JSON.
        (b"1.50", "event", None, "1.50"),
        (b'"quoted"', "event", None, '"quoted"'),
        (b" pressed \n", "event", None, "pressed"),
        # An event with a field is that field: text as it is, anything else as JSON.
        (b'{"action": "single"}', "event", "action", "single"),
        (b'{"action": {"id": 3}}', "event", "action", '{"id": 3}'),
        # A str keeps text as text and writes numbers and objects as JSON text.
        (b"hello", "str", None, "hello"),
        (b"42", "str", None, "42"),
        (b'{"state": "open"}', "str", "state", "open"),
        (b'{"state": 1.5}', "str", "state", "1.5"),
        (b'{"state": null}', "str", "state", "null"),
        # Nested fields, dotted.
        (b'{"a": {"b": {"c": 7}}}', "int", "a.b.c", 7),
        (b'{"a": {"b": "on"}}', "bool", "a.b", True),
        # Words for bool, either way.
        (b"off", "bool", None, False),
        (b"Released", "bool", None, False),
        (b"clear", "bool", None, False),
        (b"pressed", "bool", None, True),
        (b"false", "bool", None, False),
        (b"0", "bool", None, False),
    ],
)
def test_payloads_that_read(payload: bytes, type_: str, field: str | None, expected: Any) -> None:
    value = read_payload(payload, spec(type_, field))
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("payload", "type_", "field"),
    [
        (b"maybe", "bool", None),  # neither true nor false
        (b"true", "float", None),  # a JSON bool is not a number
        (b"false", "int", None),
        (b"[1, 2]", "float", None),  # nor is a list
        (b'{"v": 1}', "float", None),  # nor an object
        (b"null", "int", None),
        (b'{"other": 1}', "float", "v"),  # the field is missing
        (b'{"v": 3}', "float", "v.w"),  # a number has no fields
        (b'{"v": "abc"}', "float", "v.b"),  # nor has text
        (b'{"v": [1]}', "float", "v.w"),  # nor a list
        (b"3", "float", "v"),  # not an object at all
        (b"not json", "float", "v"),
        (b'{"a.b": 1}', "float", "a.b"),  # a dotted field is a path, not a key with a dot
    ],
)
def test_payloads_that_are_bad_input(payload: bytes, type_: str, field: str | None) -> None:
    with pytest.raises(Unreadable) as caught:
        read_payload(payload, spec(type_, field))
    assert caught.value.kind == "parse"


def test_bytes_that_are_not_utf_8_are_read_with_replacement_characters() -> None:
    assert read_payload(b"caf\xe9", spec("event")) == "caf\ufffd"
    assert read_payload(b"caf\xe9", spec("str")) == "caf\ufffd"
    with pytest.raises(Unreadable) as caught:
        read_payload(b"1\xff", spec("float"))  # bad input, counted like any other: not a crash
    assert caught.value.kind == "parse"


def test_non_finite_numbers_are_their_own_kind_of_bad_input() -> None:
    with pytest.raises(NonFinite):
        read_payload(b'{"v": Infinity}', spec("float", "v"))
    with pytest.raises(NonFinite):
        read_payload(b"1e999", spec("int"))


# ---------------------------------------------------------------------------- the input, without a broker

INPUTS = {
    "button": {"topic": "venue/button", "type": "event"},
    "level": {"topic": "venue/level", "type": "float"},
    "name": {"topic": "venue/name", "type": "str"},
}


def mqtt_input() -> tuple[MqttSensor, MqttLink, SignalStore]:
    clock = VirtualClock()
    store = SignalStore(clock)
    config = MqttSensorConfig.model_validate({"kind": "mqtt", "inputs": INPUTS})
    for name, type_ in config.signal_types().items():
        store.declare(f"venue.{name}", type_)
    topics = Topics("exhibit", "inputs")
    link = MqttLink("127.0.0.1", 1, client_id="exhibit-inputs", topics=topics, clock=clock)  # never connected
    resources = Resources()
    resources.put(link)
    resources.put(topics)
    sensor = MqttSensor("venue", config, DriverContext("inputs", store, clock, resources))
    return sensor, link, store


def deliver(link: MqttLink, topic: str, payload: bytes | None) -> None:
    link.dispatch(aiomqtt.Message(topic, payload, 0, False, 1, None))  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b"", None])
def test_an_empty_message_is_an_empty_event(payload: bytes | None) -> None:
    sensor, link, store = mqtt_input()
    deliver(link, "venue/button", payload)
    assert store.get("venue.button").value == ""
    assert sensor.health_signals.received == 1
    deliver(link, "venue/name", payload)
    assert store.get("venue.name").value == ""


def test_a_message_that_is_not_utf_8_is_counted_not_lost() -> None:
    sensor, link, store = mqtt_input()
    deliver(link, "venue/level", b"\xff\xfe")
    deliver(link, "venue/button", b"go\xff")
    assert sensor.health_signals.errors == {"parse": 1}
    assert store.get("venue.button").value == "go\ufffd"
    assert sensor.health_signals.received == 1


def test_only_the_first_dropped_message_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    sensor, link, store = mqtt_input()
    with caplog.at_level(logging.WARNING, logger="devices.mqtt.inputs"):
        deliver(link, "venue/level", b"0.25")
        for payload in (b"loud", b"louder", b"loudest"):
            deliver(link, "venue/level", payload)
    warnings = [r for r in caplog.records if r.name == "devices.mqtt.inputs"]
    assert len(warnings) == 1
    assert "dropped a message on venue/level" in warnings[0].getMessage()
    assert "loud" in warnings[0].getMessage() and "louder" not in warnings[0].getMessage()
    assert sensor.health_signals.errors == {"parse": 3}
    assert store.get("venue.level").value == 0.25  # bad input never reaches logic
