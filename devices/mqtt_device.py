"""A generic MQTT device: properties sent as one JSON object, QoS 1.

Commands go to ``<prefix>/<exhibit>/devices/<device>/set`` (or the device's own
``command_topic``, e.g. ``zigbee2mqtt/wash/set``); the last commanded state is
retained on ``.../<device>/state`` and re-published after every reconnect.
Values asked for while the broker is away are coalesced (the latest per
property wins) and sent on reconnect; nothing blocks the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from devices.mqtt_link import MqttLink, NotConnected, Topics
from devices.profiles import Profile
from engine.drivers import Device, DriverContext
from engine.model import DeviceConfig, Name, SignalType, StoreType, Strict, coerce_output

log = logging.getLogger("devices.mqtt_device")

PropertyValue = float | int | bool | str
RETRY_DELAY = 0.05
"""Seconds between attempts to send a command the broker refused."""


class PropertySpec(Strict):
    type: SignalType = Field("float", description="Value type sent in the JSON payload.")
    range: tuple[float, float] | None = Field(None, description="[min, max] for numbers; values are clamped into it.")
    safe: PropertyValue = Field(description="Value in the device's safe state (PANIC, start-up, clean stop).")

    @model_validator(mode="after")
    def _safe_fits(self) -> PropertySpec:
        numeric = self.type in ("float", "int")
        article = "an" if self.type == "int" else "a"
        if self.range is not None and not numeric:
            raise ValueError(f"a `range` only applies to numbers, not to {self.type}")
        if numeric and (isinstance(self.safe, bool | str)):
            raise ValueError(f"`safe` must be a number for {article} {self.type} property, not {self.safe!r}")
        if self.type == "bool" and not isinstance(self.safe, bool):
            raise ValueError(f"`safe` must be true or false for a bool property, not {self.safe!r}")
        if self.type == "str" and not isinstance(self.safe, str):
            raise ValueError(f"`safe` must be text for a str property, not {self.safe!r}")
        if self.range is not None:
            low, high = self.range
            if low >= high:
                raise ValueError("`range` must be [min, max] with min < max")
            if not low <= float(self.safe) <= high:
                raise ValueError(f"`safe` value {self.safe} is outside the range [{low:g}, {high:g}]")
        return self

    def coerce(self, value: Any) -> PropertyValue:
        return coerce_output(value, self.type, self.range)


class MqttDeviceConfig(DeviceConfig):
    """An MQTT-controlled device: generic `properties` sent as a JSON object, or a `profile`
    (dimmer, rgb, rgbw, moving_head, relay, motor, projector, generic_template) speaking a
    `payload` format real gear uses (json, zigbee2mqtt, tasmota, shelly, wled)."""

    kind: Literal["mqtt"]
    properties: dict[Name, PropertySpec] | None = Field(None, description="What can be set, with safe values.")
    profile: Profile | None = Field(None, description="A standard device and the payload format its gear speaks.")
    motion: bool = Field(
        False, description="It moves (motor, winch, turntable): it obeys only while armed, and never after an e-stop."
    )
    command_topic: str | None = Field(
        None,
        description="Where commands go, for gear with its own topic (default: `.../devices/<name>/set`); "
        "with a payload preset, the gear's base topic (`zigbee2mqtt/wash`, the Tasmota topic, `wled/strip1`).",
    )

    status_topic: str | None = Field(
        None,
        description="The gear's own availability topic (`zigbee2mqtt/wash/availability`): `online`/`offline` "
        "or JSON with a `state`; read as `<device>.health.online`.",
    )

    def health_signals(self) -> dict[str, StoreType]:
        signals: dict[str, StoreType] = {"health.commands": "int", "health.last_command": "float"}
        if self.status_topic is not None:
            signals["health.online"] = "bool"
        return signals

    @model_validator(mode="after")
    def _properties_or_profile(self) -> MqttDeviceConfig:
        if (self.properties is None) == (self.profile is None):
            raise ValueError("give exactly one of `properties` (generic JSON) or `profile` (dimmer, rgb, motor...)")
        if self.properties is not None and not self.properties:
            raise ValueError("`properties` needs at least one property")
        return self

    def settable_properties(self) -> list[str]:
        return self.profile.settable_properties() if self.profile else list(self.properties or {})

    def is_motion(self) -> bool:
        return self.motion or bool(self.profile and self.profile.motion)

    def property_range(self, name: str) -> tuple[float, float] | None:
        if self.profile is not None:
            return self.profile.property_range(name)
        return (self.properties or {})[name].range

    def safe_state(self) -> dict[str, Any]:
        if self.profile is not None:
            return self.profile.safe_state()
        return {name: spec.safe for name, spec in (self.properties or {}).items()}

    def max_rate(self) -> float:
        # A profile knows what its gear takes; generic devices coalesce on broker acknowledgements.
        return self.profile.max_rate if self.profile is not None else math.inf


class MqttDevice(Device):
    config: MqttDeviceConfig

    def __init__(self, name: str, config: MqttDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.link = context.resources.get(MqttLink)
        topics = context.resources.get(Topics)
        self.specs = config.properties or {}
        self.profile = config.profile
        self.command_topic = config.command_topic or topics.device(name, "set")
        self.state_topic = topics.device(name, "state")
        self.state: dict[str, PropertyValue] = {}
        """The last state the broker acknowledged."""
        self._pending: dict[str, PropertyValue] = config.safe_state()  # start-up: safe state goes first
        self._wake = asyncio.Event()
        self._wake.set()
        self._state_changed = asyncio.Event()
        self.commands_sent = 0
        for short, type_ in config.health_signals().items():  # the runtime declares them; tests may not
            with contextlib.suppress(ValueError):
                context.store.declare(f"{name}.{short}", type_)
        self.link.on_connect(self._republish_state)
        if config.status_topic is not None:
            self.link.subscribe(config.status_topic, self._on_status)

    def _on_status(self, message: Any) -> None:
        """The gear's availability, as Zigbee2MQTT, Tasmota (LWT) and WLED publish it."""
        text = bytes(message.payload or b"").decode("utf-8", "replace").strip()
        try:
            parsed = json.loads(text)
            text = str(parsed.get("state", "")) if isinstance(parsed, dict) else str(parsed)
        except json.JSONDecodeError:
            pass  # a plain word, as most gear sends
        online = text.lower() in ("online", "on", "1", "true")
        self.context.store.set(f"{self.name}.health.online", online)

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            if self.profile is not None:
                self._pending.update(self.profile.coerce(prop, value))  # `color` becomes red/green/blue
            else:
                self._pending[prop] = self.specs[prop].coerce(value)
        self._wake.set()

    async def _publish(self, batch: dict[str, PropertyValue]) -> None:
        """Send a batch as the gear expects it: our JSON object, or the profile's preset messages."""
        if self.profile is None:
            await self.link.publish(self.command_topic, json.dumps(batch, ensure_ascii=False))
            return
        for message in self.profile.encode(batch, {**self.state, **batch}, self.command_topic):
            await self.link.publish(message.topic or self.command_topic, message.payload)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._send_commands())
            tasks.create_task(self._send_state())

    async def _send_commands(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            await self.link.connected.wait()
            batch, self._pending = self._pending, {}
            try:
                await self._publish(batch)
            except NotConnected:
                self._pending = {**batch, **self._pending}  # newer values asked meanwhile win
                self._wake.set()
                # The link may not have noticed the loss yet; yield so it can, instead of spinning.
                await self.context.clock.sleep(RETRY_DELAY)
                continue
            self.commands_sent += 1
            self.state.update(batch)
            self._state_changed.set()
            self.context.store.set(f"{self.name}.health.commands", self.commands_sent)
            self.context.store.set(f"{self.name}.health.last_command", self.context.clock.now())

    async def _send_state(self) -> None:
        # Off the command path: a command waits for one acknowledgement, not two, and
        # a burst of commands collapses into one retained state message.
        while True:
            await self._state_changed.wait()
            self._state_changed.clear()
            with contextlib.suppress(NotConnected):  # the link's connect hook re-publishes it
                await self._republish_state()

    async def _republish_state(self) -> None:
        if self.state:
            await self.link.publish(self.state_topic, json.dumps(self.state, ensure_ascii=False), retain=True)

    async def go_safe(self, timeout: float) -> bool:
        self._pending = {}
        try:
            async with asyncio.timeout(timeout):
                await self.link.connected.wait()
                safe = self.config.safe_state()
                await self._publish(safe)
                self.state.update(safe)
                await self._republish_state()
        except (TimeoutError, NotConnected) as exc:
            log.error("device %s: safe state not confirmed (%s)", self.name, exc or "timed out")
            return False
        return True


GearFault = Literal["offline", "slow", "clear"]


class SimulatedGear(Device):
    """An MQTT device without a broker: keeps what it is sent, with scriptable faults.

    ``inject("offline")`` makes it unreachable (commands are held, like the
    real driver does while the broker is away), ``inject("slow")`` delays each
    delivery by ``slow_delay`` seconds, ``inject("clear")`` heals it.
    """

    config: MqttDeviceConfig

    def __init__(self, name: str, config: MqttDeviceConfig, context: DriverContext, slow_delay: float = 0.5) -> None:
        super().__init__(name, config, context)
        self.specs = config.properties or {}
        self.state: dict[str, PropertyValue] = {}
        self.history: list[dict[str, PropertyValue]] = []
        self.fault: GearFault = "clear"
        self.slow_delay = slow_delay
        self._pending: dict[str, PropertyValue] = config.safe_state()
        self._wake = asyncio.Event()
        self._wake.set()
        self._reachable = asyncio.Event()
        self._reachable.set()

    def inject(self, fault: GearFault) -> None:
        self.fault = fault
        if fault == "offline":
            self._reachable.clear()
        else:
            self._reachable.set()

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            if self.config.profile is not None:
                self._pending.update(self.config.profile.coerce(prop, value))
            else:
                self._pending[prop] = self.specs[prop].coerce(value)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._reachable.wait()
            if self.fault == "slow":
                await self.context.clock.sleep(self.slow_delay)
            if self._pending:
                batch, self._pending = self._pending, {}
                self._deliver(batch)

    def _deliver(self, batch: dict[str, PropertyValue]) -> None:
        self.state.update(batch)
        self.history.append(batch)

    async def go_safe(self, timeout: float) -> bool:
        self._pending = {}
        if self.fault == "offline":
            return False
        self._deliver(self.config.safe_state())
        return True
