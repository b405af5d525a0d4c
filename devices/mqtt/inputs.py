"""MQTT inputs (``kind: mqtt`` under ``sensors:``): topics on the exhibit's one MQTT connection
read as signals. They live with the rest of the MQTT code because they are the link's subscribers.

For gear that reports over MQTT rather than serial or OSC: a networked e-stop or
mushroom button, a door contact on a Shelly, a Zigbee sensor behind Zigbee2MQTT.
A topic's payload is read as a word (``true``/``off``/``pressed``), a JSON value,
or a `field` of a JSON object (``{"contact": false}``). A payload that cannot be
read is counted (``<sensor>.health.errors``) and dropped; it never reaches logic.

Retained messages count: an e-stop still pressed when the controller restarts is
pressed for the new process too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from typing import Any, Literal

from pydantic import Field

from devices.mqtt.link import MqttLink
from engine.drivers import DriverContext, Sensor
from engine.health import InputHealth, MessageInputConfig
from engine.model import Name, StoreType, Strict

log = logging.getLogger("devices.mqtt.inputs")

TRUE_WORDS = frozenset({"true", "on", "1", "yes", "pressed", "open", "active", "triggered"})
FALSE_WORDS = frozenset({"false", "off", "0", "no", "released", "closed", "inactive", "clear"})


class MqttInput(Strict):
    topic: str = Field(description="The topic to read (`+` and `#` wildcards allowed).")
    type: Literal["bool", "float", "int", "str", "event"] = Field(
        "bool", description="What the signal holds; an `event` fires on every message, with its payload as text."
    )
    field: str | None = Field(
        None, description="Read this field of a JSON object payload (`contact`, `state`; dotted for nested)."
    )


class MqttSensorConfig(MessageInputConfig):
    """Signals read from MQTT topics, on the exhibit's MQTT connection (no second client)."""

    kind: Literal["mqtt"]
    inputs: dict[Name, MqttInput] = Field(min_length=1, description="Signals by name, each from one topic.")

    def signal_types(self) -> dict[str, StoreType]:
        return {name: spec.type for name, spec in self.inputs.items()}

    def signal_meanings(self) -> dict[str, str]:
        return {name: f"MQTT topic {spec.topic}" for name, spec in self.inputs.items()}


class Unreadable(ValueError):
    """A payload that does not fit the input's type."""

    kind = "parse"
    """The kind of bad input it is counted as (``<sensor>.health.errors``)."""


class NonFinite(Unreadable):
    """A number that is not finite (``inf``, ``-Infinity``, ``NaN``): bad input, never clamped."""

    kind = "nonfinite"


def read_payload(payload: bytes, spec: MqttInput) -> Any:
    """The signal value in ``payload``; :class:`Unreadable` if it has none."""
    text = payload.decode("utf-8", "replace").strip()
    if spec.type == "event" and spec.field is None:
        return text
    value: Any = text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if spec.field is not None:
            raise Unreadable(f"`{text[:40]}` is not a JSON object with `{spec.field}`") from None
    if spec.field is not None:
        for part in spec.field.split("."):
            if not isinstance(value, dict) or part not in value:
                raise Unreadable(f"no `{spec.field}` in `{text[:60]}`")
            value = value[part]
    return _typed(value, spec.type)


def _typed(value: Any, type_: str) -> Any:
    if type_ in ("event", "str"):
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):  # JSON `Infinity` or `NaN`
        raise NonFinite(f"`{value}` is not a finite number")
    if type_ == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise Unreadable(f"`{value}` is neither true nor false")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unreadable(f"`{value}` is not a number")
    try:
        number = float(value)
    except ValueError:
        raise Unreadable(f"`{value}` is not a number") from None
    except OverflowError:  # an integer beyond any float
        raise NonFinite(f"`{str(value)[:40]}` is not a finite number") from None
    if not math.isfinite(number):  # `inf`, `nan` as text
        raise NonFinite(f"`{value}` is not a finite number")
    return round(number) if type_ == "int" else number


class MqttSensor(Sensor):
    config: MqttSensorConfig

    def __init__(self, name: str, config: MqttSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.link = context.resources.get(MqttLink)
        self.health_signals = InputHealth(self.health)
        for signal, spec in config.inputs.items():
            self.link.subscribe(spec.topic, functools.partial(self._on_message, signal, spec))

    def _on_message(self, signal: str, spec: MqttInput, message: Any) -> None:
        try:
            value = read_payload(bytes(message.payload or b""), spec)
        except Unreadable as exc:
            if self.health_signals.error_count == 0:
                log.warning("MQTT input %s.%s: dropped a message on %s: %s", self.name, signal, spec.topic, exc)
            self.health_signals.error(exc.kind)
            return
        self.health_signals.message()
        self.context.store.set(f"{self.name}.{signal}", value)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.health_signals.run())
            tasks.create_task(self._follow_connection())

    async def _follow_connection(self) -> None:
        """Healthy while the broker connection is up: the inputs cannot arrive otherwise."""
        while True:
            await self.link.connected.wait()
            self.health_signals.set_status("ok")
            while self.link.connected.is_set():
                await self.context.clock.sleep(0.25)
            self.health_signals.set_status("offline", f"the MQTT broker at {self.link.address} is away")
