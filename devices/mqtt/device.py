"""A generic MQTT device: properties sent as one JSON object, QoS 1.

Commands go to ``<prefix>/<exhibit>/devices/<device>/set`` (or the device's own
``command_topic``, e.g. ``zigbee2mqtt/wash/set``); the last commanded state is
retained on ``.../<device>/state`` and re-published after every reconnect.
Values asked for while a command is unacknowledged or the broker is away are
coalesced (the latest per property wins) and sent next; nothing blocks the caller.
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

from devices.mqtt.link import MqttLink, NotConnected, Topics
from devices.mqtt.profiles import Profile, ProfileProperty, PropertyValue
from engine.authority import Authority
from engine.curves import Duration
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, Name, SignalType, StoreType, Strict, coerce_output

log = logging.getLogger("devices.mqtt.device")

STATE_INTERVAL = 1.0
"""Seconds between two retained state messages of one device while it is moving (the state topic
is for dashboards and late joiners; the commands themselves go out at once)."""
STREAM_WINDOW = 0.1
"""A command that follows the previous one this closely (seconds) is a step of a moving value, streamed
at QoS 0; the value a device comes to rest at is always sent at QoS 1, acknowledged."""
EXPIRY_PRESETS = ("json", "zigbee2mqtt", "shelly", "tasmota")
"""Payload presets whose gear can fall back to safe by itself after a time without commands."""
TIMER_SLACK = 0.002
"""Seconds a timer may fire early on some event loops."""


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

    expiry: Duration | None = Field(
        None,
        description="Gear falls back to its safe state on its own if it hears nothing for this long (the "
        "controller died, the network went): sent with every command (json: `expiry` seconds; zigbee2mqtt: "
        "`on_time`; shelly: `timer`; tasmota: `PulseTime`) and the state is re-sent every third of it.",
    )

    @model_validator(mode="after")
    def _expiry_supported(self) -> MqttDeviceConfig:
        if self.expiry is None or self.profile is None:
            return self
        if self.profile.payload == "shelly" and self.profile.profile == "relay":
            raise ValueError(
                "a Shelly relay's MQTT command (`on`/`off`) carries no timer, so `expiry` would promise what it "
                "cannot keep; set the relay's own auto-off in the Shelly, or watch the exhibit's status topic"
            )
        if self.profile.payload not in EXPIRY_PRESETS or self.profile.profile == "generic_template":
            what = "generic_template" if self.profile.profile == "generic_template" else f"`{self.profile.payload}`"
            raise ValueError(
                f"{what} gear cannot fall back on its own, so `expiry` would promise what it cannot keep "
                f"(it works with payload {', '.join(EXPIRY_PRESETS)}); watch the exhibit's status topic instead"
            )
        return self

    def health_figures(self) -> dict[str, StoreType]:
        figures: dict[str, StoreType] = {"commands": "int", "last_command": "float"}
        if self.status_topic is not None:
            figures["online"] = "bool"
        return figures

    def health_meanings(self) -> dict[str, str]:
        return {
            "commands": "commands the broker acknowledged",
            "last_command": "when the last command went out (seconds, monotonic clock)",
            "online": "the gear's own availability topic says it is online",
        }

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
    """Sends what it is asked at once, one acknowledged batch in flight at a time.

    - A command on its own (a cue, a button, PANIC while still) goes at QoS 1. Values asked for while
      it is unacknowledged (or while the broker is away) are coalesced, the latest per property
      winning, and go out as the next batch: never faster than the broker takes them.
    - The steps of a moving value (commands less than ``STREAM_WINDOW`` apart: a fade, a timeline)
      are streamed at QoS 0, as DMX does, and once the device has been still for ``STREAM_WINDOW``
      the values it came to rest at are sent again at QoS 1. So the value that matters is always
      acknowledged (and re-sent after a reconnect) while a 44 Hz fade costs no acknowledgements.
    - Sending is synchronous through :meth:`MqttLink.send`: no task or future per command, which is
      what lets one process drive hundreds of fixtures at 44 Hz.
    """

    config: MqttDeviceConfig

    def __init__(self, name: str, config: MqttDeviceConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.link = context.resources.get(MqttLink)
        topics = context.resources.get(Topics)
        self.specs = config.properties or {}
        self.profile = config.profile
        self._specs: dict[str, PropertySpec | ProfileProperty] = dict(
            config.profile.properties() if config.profile else self.specs
        )
        """How each property's values are coerced, looked up once (aliases such as `color` go to the profile)."""
        self.command_topic = config.command_topic or topics.device(name, "set")
        self.state_topic = topics.device(name, "state")
        self.state: dict[str, PropertyValue] = {}
        """The last state the broker acknowledged."""
        self._safe_first: dict[str, PropertyValue] | None = config.safe_state() or None
        """Start-up: the safe state goes out first, on its own and acknowledged, whatever the show asks meanwhile
        (a restart after a crash must see the gear safe before the attract state lights it again)."""
        self._pending: dict[str, PropertyValue] = {}
        self._inflight: dict[str, PropertyValue] | None = None
        self._inflight_safe = False
        try:
            self._authority: Authority | None = context.resources.get(Authority)
        except LookupError:
            self._authority = None
        """The batch sent and not yet acknowledged."""
        self._unacknowledged = 0
        """Messages of the in-flight batch the broker has not acknowledged yet."""
        self._inflight_lost = False
        self._state_timer: asyncio.TimerHandle | None = None
        self._state_sent_at = -math.inf
        self._sent_at = -math.inf
        """Loop time of the last command sent."""
        self._unconfirmed: dict[str, PropertyValue] = {}
        """Values streamed at QoS 0 since the last acknowledged command."""
        self._confirm_timer: asyncio.TimerHandle | None = None
        self._stopped = False
        self.commands_sent = 0
        """Commands the broker acknowledged (``<device>.health.commands``)."""
        self.steps_streamed = 0
        """Steps of moving values sent at QoS 0."""
        self.link.on_connect(self._on_connected)
        self.link.on_disconnect(self._on_disconnected)
        self._gear_online = True
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
        self.health.figure("online", online)
        self._gear_online = online
        self._follow_link()

    def set(self, values: Mapping[str, Any]) -> None:
        if self._stopped:
            return  # the clean stop has sent the safe state: nothing may follow it
        for prop, value in values.items():
            spec = self._specs.get(prop)
            if spec is not None:
                self._pending[prop] = spec.coerce(value)
            elif self.profile is not None:
                self._pending.update(self.profile.coerce(prop, value))  # `color` becomes red/green/blue
            else:
                raise ValueError(f"`{prop}` is not a property of device {self.name}")
        self._send_pending()

    def _encode(self, batch: dict[str, PropertyValue]) -> list[tuple[str, str | bytes]]:
        """A batch as the gear expects it: our JSON object, or the profile's preset messages."""
        expiry = self.config.expiry
        if self.profile is None:
            body: dict[str, Any] = batch if expiry is None else {**batch, "expiry": expiry}
            return [(self.command_topic, json.dumps(body, ensure_ascii=False))]
        messages = self.profile.encode(batch, {**self.state, **batch}, self.command_topic)
        encoded: list[tuple[str, str | bytes]] = [(m.topic or self.command_topic, m.payload) for m in messages]
        return encoded if expiry is None else with_expiry(encoded, self.profile.payload, expiry, self.command_topic)

    def _send_pending(self) -> None:
        if self._inflight is not None or not self.link.connected.is_set():
            return  # sent when the batch in flight is acknowledged, or on (re)connect
        if self._safe_first is not None and self._authority is not None and self._authority.followed:
            self._safe_first = None  # a backup taking over: the gear is lit by the show it followed, no dark blip
        if self._safe_first is not None:
            batch, self._safe_first = self._safe_first, None
            self._inflight_safe = True
            self._send_batch(batch)
            return
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._sent_at < STREAM_WINDOW:
            self._stream(loop, now)
            return
        self._sent_at = now
        batch, self._pending = self._pending, {}
        self._unconfirmed = {}  # this batch carries every property's latest value, acknowledged
        self._send_batch(batch)

    def _send_batch(self, batch: dict[str, PropertyValue]) -> None:
        """One batch at QoS 1, in flight until the broker acknowledges every message of it."""
        messages = self._encode(batch)
        self._inflight, self._unacknowledged, self._inflight_lost = batch, len(messages), False
        for index, (topic, payload) in enumerate(messages):
            try:
                self.link.send(topic, payload, settled=self._settled)
            except NotConnected:
                unsent = len(messages) - index
                self._unacknowledged -= unsent - 1
                self._settled(False)
                return

    def _stream(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        """A step of a moving value (the previous command went out less than ``STREAM_WINDOW`` ago):
        QoS 0, as DMX streams it; the next step supersedes it within a tick. Once the device has been
        still for ``STREAM_WINDOW``, :meth:`_confirm` sends where it ended, acknowledged."""
        # A step that changes nothing the gear was sent (an int property of a slow fade) is not sent.
        batch = {prop: value for prop, value in self._pending.items() if self.state.get(prop) != value}
        if not batch:
            self._pending = {}
            return
        try:
            for topic, payload in self._encode(batch):
                self.link.send(topic, payload, qos=0)
        except NotConnected:
            self._confirm_later(loop, now)  # kept in _pending: the confirmation (or reconnect) sends it
            return
        self._pending = {}
        self._sent_at = now
        self._unconfirmed.update(batch)
        self.steps_streamed += 1
        self.state.update(batch)
        self.health.figure("last_command", self.context.clock.now())
        self._state_changed()
        self._confirm_later(loop, now)

    def _confirm_later(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        if self._confirm_timer is None:
            self._confirm_timer = loop.call_at(now + STREAM_WINDOW, self._confirm)

    def _confirm(self) -> None:
        self._confirm_timer = None
        loop = asyncio.get_running_loop()
        if not self._unconfirmed and not self._pending:
            return
        if loop.time() - self._sent_at < STREAM_WINDOW - TIMER_SLACK:
            self._confirm_timer = loop.call_at(self._sent_at + STREAM_WINDOW, self._confirm)  # still moving
            return
        self._pending = {**self._unconfirmed, **self._pending}
        self._sent_at = -math.inf  # not a step of a stream: acknowledged
        self._send_pending()

    def _settled(self, acknowledged: bool) -> None:
        self._inflight_lost |= not acknowledged
        self._unacknowledged -= 1
        if self._unacknowledged > 0 or self._inflight is None:
            return
        batch, self._inflight = self._inflight, None
        was_safe, self._inflight_safe = self._inflight_safe, False
        if self._inflight_lost:
            if was_safe:
                self._safe_first = batch  # the start-up safe state goes first again on reconnect
            else:
                self._pending = {**batch, **self._pending}  # newer values asked meanwhile win; sent on reconnect
            return
        self.commands_sent += 1
        self.state.update(batch)
        self.health.figure("commands", self.commands_sent)
        self.health.figure("last_command", self.context.clock.now())
        self._state_changed()
        self._send_pending()

    def _state_changed(self) -> None:
        """Retain the new state, at most every ``STATE_INTERVAL``: a 44 Hz fade is not worth 44 retained
        messages a second per device, but a single command's state goes out at once."""
        if self._state_timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._state_sent_at + STATE_INTERVAL - loop.time())
        self._state_timer = loop.call_later(delay, self._send_state)

    def _send_state(self) -> None:
        self._state_timer = None
        self._state_sent_at = asyncio.get_running_loop().time()
        with contextlib.suppress(NotConnected):  # the connect hook re-publishes it
            self.link.send(self.state_topic, json.dumps(self.state, ensure_ascii=False), retain=True)

    def _follow_link(self) -> None:
        if not self.link.connected.is_set():
            self.health.set("offline", f"the MQTT broker at {self.link.address} is away")
        elif not self._gear_online:
            self.health.set("offline", f"the gear says it is offline on {self.config.status_topic}")
        else:
            self.health.set("ok")

    def _on_disconnected(self) -> None:
        self._follow_link()

    async def _on_connected(self) -> None:
        self._follow_link()
        self._send_pending()  # what was asked while the broker was away
        await self._republish_state()

    async def _republish_state(self) -> None:
        if self.state:
            await self.link.publish(self.state_topic, json.dumps(self.state, ensure_ascii=False), retain=True)

    async def run(self) -> None:
        if not self.link.connected.is_set():
            self.health.set("offline", f"waiting for the MQTT broker at {self.link.address}")
        await self.link.connected.wait()
        self._follow_link()
        self._send_pending()  # the start-up safe state, if the link connected before this device existed
        expiry = self.config.expiry
        if expiry is not None:
            await self._keep_alive(expiry / 3)
        await asyncio.Event().wait()  # everything else is sent by set() and the link's callbacks

    async def _keep_alive(self, every: float) -> None:
        """Re-send the state, acknowledged, whenever nothing went out for ``every`` seconds, so gear with
        an expiry stays where it is while this process lives and falls back once it does not."""
        loop = asyncio.get_running_loop()
        while True:
            await self.context.clock.sleep(every)
            quiet = loop.time() - self._sent_at >= every - TIMER_SLACK
            if quiet and self.state and self._inflight is None and self.link.connected.is_set():
                self._pending = {**self.state, **self._pending}
                self._sent_at = -math.inf  # a refresh is a command of its own: acknowledged
                self._send_pending()

    async def go_safe(self, timeout: float) -> bool:
        self._stopped = True
        self._pending, self._unconfirmed, self._safe_first = {}, {}, None
        for timer in (self._state_timer, self._confirm_timer):
            if timer is not None:
                timer.cancel()
        self._state_timer = self._confirm_timer = None
        try:
            async with asyncio.timeout(timeout):
                await self.link.connected.wait()
                safe = self.config.safe_state()
                for topic, payload in self._encode(safe):
                    await self.link.publish(topic, payload)
                self.state.update(safe)
                await self._republish_state()
        except (TimeoutError, NotConnected) as exc:
            if self.link.never_connected:
                reason = f"the MQTT broker at {self.link.address} was never reached"
            else:
                reason = f"the safe state was not acknowledged ({str(exc) or f'no answer within {timeout:g} s'})"
            self.health.set("offline", reason)  # the runtime says it once for all devices
            return False
        return True


def with_expiry(
    messages: list[tuple[str, str | bytes]], payload: str, seconds: float, device_topic: str
) -> list[tuple[str, str | bytes]]:
    """The preset's messages carrying the gear's own fall-back timer."""
    if payload == "tasmota":
        # PulseTime 112.. is seconds + 100: POWER ON turns itself off after it; every ON restarts it.
        pulse = (f"cmnd/{device_topic}/PulseTime", str(100 + max(12, math.ceil(seconds))))
        return [pulse, *messages] if any(topic.endswith("/POWER") for topic, _ in messages) else messages
    key = {"json": "expiry", "zigbee2mqtt": "on_time", "shelly": "timer"}[payload]
    out: list[tuple[str, str | bytes]] = []
    for topic, body in messages:
        data = json.loads(body)
        if not isinstance(data, dict):
            out.append((topic, body))
            continue
        turning_on = data.get("state") == "ON" if payload == "zigbee2mqtt" else data.get("turn") == "on"
        if payload == "json" or turning_on:
            data[key] = seconds if payload == "json" else max(1, math.ceil(seconds))
            body = json.dumps(data, ensure_ascii=False)
        out.append((topic, body))
    return out


class SimulatedGear(Device):
    """An MQTT device without a broker: keeps what it is sent, with scriptable faults.

    ``inject("disconnect")`` makes it unreachable (commands are held, like the
    real driver does while the broker is away), ``inject("stall")`` likewise but it stays
    connected (it just never answers), ``inject("slow")`` delays each delivery by
    ``slow_delay`` seconds, ``inject("clear")`` heals it. It has no ``garbage``.
    """

    config: MqttDeviceConfig

    def __init__(self, name: str, config: MqttDeviceConfig, context: DriverContext, slow_delay: float = 0.5) -> None:
        super().__init__(name, config, context)
        self.specs = config.properties or {}
        self.state: dict[str, PropertyValue] = {}
        self.history: list[dict[str, PropertyValue]] = []
        self.fault: Fault = "clear"
        self.slow_delay = slow_delay
        self._pending: dict[str, PropertyValue] = config.safe_state()
        self._wake = asyncio.Event()
        self._wake.set()
        self._reachable = asyncio.Event()
        self._reachable.set()

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "stall", "slow", "clear"))
        self.fault = fault
        if fault in ("disconnect", "stall"):
            self._reachable.clear()
            self.health.set("offline" if fault == "disconnect" else "degraded", f"simulated {fault}")
        else:
            self._reachable.set()
            self.health.set("ok")

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            if self.config.profile is not None:
                self._pending.update(self.config.profile.coerce(prop, value))
            else:
                self._pending[prop] = self.specs[prop].coerce(value)
        self._wake.set()

    async def run(self) -> None:
        self.health.set("ok")
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
        if self.fault in ("disconnect", "stall"):
            self.health.set("offline", "the safe state was not acknowledged")
            return False
        self._deliver(self.config.safe_state())
        return True
