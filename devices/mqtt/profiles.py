"""Device profiles: what a kind of gear can be told, and how to say it in the payloads real gear speaks.

A profile is pure configuration plus a codec; it does no I/O. The MQTT device
driver asks a profile for its properties and safe state, passes every value it
is given through :meth:`ProfileBase.coerce` (which clamps and parses), and hands
:meth:`ProfileBase.encode` the properties that changed together with the full
desired state; ``encode`` returns the :class:`Message` objects to publish.

Profiles (``profile:``): ``dimmer``, ``rgb``, ``rgbw``, ``moving_head``, ``relay``,
``motor``, ``projector`` and ``generic_template``. A curator may override any
default safe value with ``safe:`` (checked against the property's type and range).

Topics
------
``Message.topic`` is absolute, except ``""``, which means the device's own command
topic (the driver's ``command_topic``). ``device_topic`` is the gear's base topic,
as the curator names it; each payload preset builds its topics from it:

``json`` (every profile; our own convention): one JSON object of the changed
properties on the command topic; colour channels are gamma-corrected. ::

    wash: {kind: mqtt, profile: {profile: rgb, gamma: 2.2}}
    # -> "" (command topic)  {"level": 0.5, "red": 255}

``zigbee2mqtt`` (dimmer, rgb, relay): one JSON object on ``<device_topic>/set``;
the device topic is ``zigbee2mqtt/<friendly name>``. Brightness is 0..254; a level
that rounds to 0 is sent as ``{"state": "OFF"}``. ``rgbw`` is refused: Z2M's colour
has no white channel, so the white level would be silently lost. ::

    wash: {kind: mqtt, topic: zigbee2mqtt/wash, profile: {profile: rgb, payload: zigbee2mqtt}}
    # -> zigbee2mqtt/wash/set  {"state": "ON", "brightness": 127, "color": {"r": 255, "g": 136, "b": 0}}

``tasmota`` (dimmer, rgb, rgbw, relay): one plain-text command per thing on
``cmnd/<device_topic>/<Command>``: ``Color RRGGBB[WW]``, ``Dimmer 0..100`` then
``POWER ON``, or ``POWER OFF`` when the level rounds to 0%. Tasmota rescales its
dimmer when it is given a colour (and powers the light on), so a colour change
also re-sends the level messages. ``POWER ON`` is explicit for gear with
``SetOption20 1`` (where ``Dimmer`` does not switch the light on). ::

    spot: {kind: mqtt, topic: tasmota_spot, profile: {profile: dimmer, payload: tasmota}}
    # -> cmnd/tasmota_spot/Dimmer  50 ; cmnd/tasmota_spot/POWER  ON

``shelly`` (Gen1; dimmer, rgb, rgbw, relay): lights take JSON on
``shellies/<device_topic>/light/0/set`` (``{"turn": "on", "brightness": 50}`` for a
dimmer; colour gear uses ``gain`` 0..100 and ``"mode": "color"``, as Shelly's colour
mode does); relays take ``on``/``off`` on ``shellies/<device_topic>/relay/0/command``.
The device topic is the Shelly id (``shellydimmer2-AABBCC``). ::

    strip: {kind: mqtt, topic: shellybulb-AABBCC, profile: {profile: rgbw, payload: shelly}}
    # -> shellies/shellybulb-AABBCC/light/0/set  {"turn": "on", "gain": 50, "mode": "color", "red": 255, ...}

``wled`` (dimmer, rgb, rgbw, relay): WLED's JSON API over MQTT, on
``<device_topic>/api`` (WLED's default device topic is ``wled/<id>``), chosen over
the plain brightness topic because it carries power, brightness and colour in one
message: ``{"on": true, "bri": 0..255, "seg": [{"col": [[r, g, b(, w)]]}]}``. ::

    ring: {kind: mqtt, topic: wled/ring, profile: {profile: rgb, payload: wled}}
    # -> wled/ring/api  {"on": true, "bri": 128, "seg": [{"col": [[255, 136, 0]]}]}

``generic_template`` writes its own ``topic`` and ``template`` with ``{property}``
placeholders (and ``{device}`` for the device topic); ``payload`` presets do not
apply to it, nor to ``moving_head``, ``motor`` and ``projector``, which speak
``json`` only. ::

    fog: {kind: mqtt, topic: fogger1, profile: {profile: generic_template, topic: "{device}/cmd",
          template: '{"bri": {level}}', properties: {level: {type: float, range: [0, 1], safe: 0}}}}
    # -> fogger1/cmd  {"bri": 0.5}
"""

from __future__ import annotations

import colorsys
import json
import math
import re
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import Field, PrivateAttr, model_validator

from engine.curves import Duration
from engine.model import Name, SignalType, Strict
from engine.signals import Value as PropertyValue

PayloadPreset = Literal["json", "zigbee2mqtt", "tasmota", "shelly", "wled"]
LIGHT_PRESETS: tuple[PayloadPreset, ...] = ("json", "zigbee2mqtt", "tasmota", "shelly", "wled")
JSON_PRESETS: tuple[PayloadPreset, ...] = ("json", "zigbee2mqtt", "shelly", "wled")
"""Presets whose light messages are JSON (Shelly relays take plain ``on``/``off``)."""


class Message(NamedTuple):
    """One MQTT publication; ``topic == ""`` means the device's command topic."""

    topic: str
    payload: bytes


def _half_up(x: float) -> int:
    """Round halves up, as 8-bit levels conventionally are (``round`` would round 127.5 to 128 but 126.5 to 126)."""
    return math.floor(x + 0.5)


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


# ---------------------------------------------------------------------------- colours

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_HEX = re.compile(r"^#([0-9a-f]{6}|[0-9a-f]{3})$")
_RGB = re.compile(r"^rgb\(\s*([0-9]+)\s*,\s*([0-9]+)\s*,\s*([0-9]+)\s*\)$")
_HSV = re.compile(rf"^hsv\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\)$")
COLOR_FORMS = "`#ff8800`, `rgb(255,136,0)` or `hsv(30,1,1)` (hue in degrees, saturation and value 0..1)"


def parse_color(text: str) -> tuple[int, int, int]:
    """``#ff8800`` / ``#f80`` / ``rgb(255,136,0)`` / ``hsv(30,1,1)`` to 8-bit (red, green, blue).

    Curators think in whichever form their design tool shows, so all three are
    accepted; anything else is a ValueError naming the accepted forms.
    """
    if not isinstance(text, str):
        raise ValueError(f"a colour is text such as {COLOR_FORMS}, not {type(text).__name__} `{text}`")
    spec = text.strip().lower()
    if match := _HEX.match(spec):
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    if match := _RGB.match(spec):
        channels = tuple(int(g) for g in match.groups())
        if any(c > 255 for c in channels):
            raise ValueError(f"rgb() channels are 0..255, not `{text}`")
        return channels[0], channels[1], channels[2]
    if match := _HSV.match(spec):
        return _hsv_to_rgb(text, *(float(g) for g in match.groups()))
    raise ValueError(f"`{text}` is not a colour: write {COLOR_FORMS}")


def _hsv_to_rgb(text: str, hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    if hue > 360 or saturation > 1 or value > 1:
        raise ValueError(f"hsv() takes hue 0..360 and saturation and value 0..1, not `{text}`")
    red, green, blue = colorsys.hsv_to_rgb((hue % 360) / 360, saturation, value)
    return _half_up(red * 255), _half_up(green * 255), _half_up(blue * 255)


def gamma_correct(channel: float, gamma: float) -> int:
    """An 8-bit channel through ``255 * (v / 255) ** gamma``: LEDs are linear, eyes are not."""
    v = min(max(float(channel), 0.0), 255.0)
    return _half_up(255.0 * (v / 255.0) ** gamma)


# ---------------------------------------------------------------------------- properties

_BOOL_WORDS = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}


class ProfileProperty(Strict):
    """One settable property: the shape of ``mqtt_device.PropertySpec``, plus ``choices`` and "unchanged" safe values.

    ``safe: null`` leaves the property out of the safe state: a motor's position
    or a projector's power must not be *changed* to make things safe.
    """

    type: SignalType = Field(default="float", description="Value type.")
    range: tuple[float, float] | None = Field(
        default=None, description="[min, max] for numbers; values are clamped into it."
    )
    choices: tuple[str, ...] | None = Field(default=None, description="The values a text property may take.")
    safe: PropertyValue | None = Field(description="Value in the safe state; null leaves it as it is.")

    @model_validator(mode="after")
    def _consistent(self) -> ProfileProperty:
        numeric = self.type in ("float", "int")
        if self.range is not None and not numeric:
            raise ValueError(f"a `range` only applies to numbers, not to {self.type}")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("`range` must be [min, max] with min < max")
        if self.choices is not None and self.type != "str":
            raise ValueError(f"`choices` only apply to str properties, not to {self.type}")
        if self.safe is not None and (problem := self.problem(self.safe)):
            raise ValueError(f"`safe` {problem}")
        return self

    def problem(self, value: object) -> str | None:
        """Why ``value`` cannot be this property's safe value (None if it can): safe values are never clamped."""
        if self.type in ("float", "int"):
            return self._number_problem(value)
        if self.type == "bool":
            return None if isinstance(value, bool) else f"must be true or false for a bool property, not {value!r}"
        if not isinstance(value, str):
            return f"must be text for a str property, not {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"`{value}` is not one of: {', '.join(self.choices)}"
        return None

    def _number_problem(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number for a {self.type} property, not {value!r}"
        if self.type == "int" and value != int(value):
            return f"must be a whole number for an int property, not {value!r}"
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            return f"{value:g} is outside the range [{self.range[0]:g}, {self.range[1]:g}]"
        return None

    def coerce(self, value: Any) -> PropertyValue:
        """A value as the gear takes it: typed, clamped into the range; ValueError if it cannot be."""
        if self.type == "bool":
            return _to_bool(value)
        if self.type == "str":
            text = str(value)
            if self.choices is not None and text not in self.choices:
                raise ValueError(f"`{text}` is not one of: {', '.join(self.choices)}")
            return text
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        if self.range is not None:
            number = min(max(number, self.range[0]), self.range[1])
        return _half_up(number) if self.type == "int" else number


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.strip().lower() not in _BOOL_WORDS:
            raise ValueError(f"`{value}` is not true or false (nor on/off)")
        return _BOOL_WORDS[value.strip().lower()]
    return bool(value)


def _prop(type_: SignalType, safe: PropertyValue | None, range_: tuple[float, float] | None = None) -> ProfileProperty:
    return ProfileProperty(type=type_, range=range_, safe=safe)


LEVEL = _prop("float", 0.0, (0.0, 1.0))
CHANNEL = _prop("int", 0, (0.0, 255.0))


# ---------------------------------------------------------------------------- base


class ProfileBase(Strict):
    """What every profile shares: safe-value overrides, the payload preset, and the plain JSON codec."""

    profile: str
    safe: dict[Name, PropertyValue] = Field(
        default_factory=dict, description="Overrides of the profile's default safe values, by property."
    )
    payload: PayloadPreset = Field(default="json", description="What the gear speaks: json, zigbee2mqtt, tasmota, ...")

    _properties: dict[str, ProfileProperty] | None = PrivateAttr(None)

    motion: ClassVar[bool] = False
    """Motion devices must be armed before they may move."""
    max_rate: ClassVar[float] = 44.0
    """Updates per second the gear takes."""
    presets: ClassVar[tuple[PayloadPreset, ...]] = ("json",)
    """The payload presets this profile can encode."""
    preset_hint: ClassVar[str] = " (payload presets are for dimmer, rgb, rgbw and relay)"
    """Said after a refused payload preset."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Settable names that are not properties but expand into some (``color``)."""

    @abstractmethod
    def default_properties(self) -> dict[str, ProfileProperty]:
        """The properties with the profile's own safe values."""

    def _check_config(self) -> None:
        """Profile-specific checks that must pass before properties can be built from the fields (limits)."""

    @model_validator(mode="after")
    def _check_preset_and_safe(self) -> ProfileBase:
        self._check_config()
        if self.payload not in self.presets:
            raise ValueError(
                f"the {self.profile} profile speaks {_choice(self.presets)}, not `{self.payload}`{self.preset_hint}"
            )
        defaults = self.default_properties()
        for name, value in self.safe.items():
            if name not in defaults:
                raise ValueError(
                    f"safe: `{name}` is not a property of a {self.profile} (it has: {', '.join(defaults)})"
                )
            if problem := defaults[name].problem(value):
                raise ValueError(f"safe.{name}: {problem}")
        return self

    def properties(self) -> dict[str, ProfileProperty]:
        """The properties, with the curator's safe overrides applied (built once: every value set asks)."""
        if self._properties is None:
            self._properties = {
                name: spec.model_copy(update={"safe": self.safe[name]}) if name in self.safe else spec
                for name, spec in self.default_properties().items()
            }
        return self._properties

    def settable_properties(self) -> list[str]:
        """What cues and mappings may set: the properties and the aliases."""
        return [*self.properties(), *self.aliases]

    def property_range(self, name: str) -> tuple[float, float] | None:
        spec = self.properties().get(name)
        return spec.range if spec is not None else None

    def safe_state(self) -> dict[str, PropertyValue]:
        """PANIC / start-up / clean-stop values; properties whose safe value is null are left out (unchanged)."""
        return {name: spec.safe for name, spec in self.properties().items() if spec.safe is not None}

    def coerce(self, name: str, value: Any) -> dict[str, PropertyValue]:
        """One value set by a cue or mapping, as the properties it sets (an alias may set several)."""
        props = self.properties()
        if name not in props:
            raise ValueError(f"`{name}` is not a property of a {self.profile} (it has: {', '.join(props)})")
        return {name: props[name].coerce(value)}

    def encode(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        """Messages that bring the gear to ``state``, given which properties ``changed`` (both coerced)."""
        if not changed:
            return []
        return [Message("", _json({name: self._wire(name, value) for name, value in changed.items()}))]

    def _wire(self, name: str, value: Any) -> Any:
        """A property's value as it goes on the wire in the json preset (hook for gamma)."""
        return value


def _choice(presets: tuple[str, ...]) -> str:
    return "only `json`" if presets == ("json",) else ", ".join(f"`{p}`" for p in presets)


# ---------------------------------------------------------------------------- light-like profiles


class _LightProfile(ProfileBase):
    """Dimmers, colour lights and relays: switch + optional level + optional colour, in all five presets."""

    presets: ClassVar[tuple[PayloadPreset, ...]] = LIGHT_PRESETS
    switch: ClassVar[str] = "level"
    """The property that turns the light on and off."""
    channels: ClassVar[tuple[str, ...]] = ()
    """Colour channel properties, in wire order."""

    def _level(self, state: Mapping[str, Any]) -> float:
        return float(state.get("level", 0.0))

    def _colour(self, state: Mapping[str, Any]) -> list[int]:
        return [int(state.get(name, 0)) for name in self.channels]

    def _scaled(self, state: Mapping[str, Any], top: int) -> int:
        """The level on the gear's own scale (0..top); 0 means off."""
        return min(max(_half_up(self._level(state) * top), 0), top)

    def _changes(self, changed: Mapping[str, Any]) -> tuple[bool, bool]:
        return self.switch in changed, any(name in changed for name in self.channels)

    def encode(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        if self.payload == "json":
            return super().encode(changed, state, device_topic)
        encoder = {"zigbee2mqtt": self._z2m, "tasmota": self._tasmota, "shelly": self._shelly, "wled": self._wled}
        return encoder[self.payload](changed, state, device_topic)

    def _z2m(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        switched, recoloured = self._changes(changed)
        body: dict[str, Any] = {}
        if switched:
            brightness = self._scaled(state, 254)
            body["state"] = "ON" if brightness else "OFF"
            if brightness and self.switch == "level":
                body["brightness"] = brightness
        if recoloured:
            body["color"] = dict(zip("rgb", self._colour(state), strict=True))
        return [Message(f"{device_topic}/set", _json(body))] if body else []

    def _tasmota(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        switched, recoloured = self._changes(changed)
        messages: list[Message] = []
        if recoloured:
            hex_colour = "".join(f"{c:02X}" for c in self._colour(state))
            messages.append(Message(f"cmnd/{device_topic}/Color", hex_colour.encode()))
        if switched or recoloured:
            percent = self._scaled(state, 100)
            if percent and self.switch == "level":
                messages.append(Message(f"cmnd/{device_topic}/Dimmer", str(percent).encode()))
            messages.append(Message(f"cmnd/{device_topic}/POWER", b"ON" if percent else b"OFF"))
        return messages

    def _shelly(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        switched, recoloured = self._changes(changed)
        body: dict[str, Any] = {}
        if switched:
            percent = self._scaled(state, 100)
            body["turn"] = "on" if percent else "off"
            if percent:
                body["gain" if self.channels else "brightness"] = percent
        if recoloured:
            body["mode"] = "color"
            body.update(zip(self.channels, self._colour(state), strict=True))
        return [Message(f"shellies/{device_topic}/light/0/set", _json(body))] if body else []

    def _wled(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        switched, recoloured = self._changes(changed)
        body: dict[str, Any] = {}
        if switched:
            bri = self._scaled(state, 255)
            body["on"] = bool(bri)
            if bri and self.switch == "level":
                body["bri"] = bri
        if recoloured:
            body["seg"] = [{"col": [self._colour(state)]}]
        return [Message(f"{device_topic}/api", _json(body))] if body else []


class DimmerProfile(_LightProfile):
    """A single dimmable channel: ``level`` 0..1, safe 0 (dark)."""

    profile: Literal["dimmer"]

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {"level": LEVEL}


class _ColourProfile(_LightProfile):
    """Colour lights: ``level`` plus 8-bit channels, settable one by one or through ``color``."""

    gamma: float = Field(
        default=1.0, gt=0, le=5, description="Applied to 8-bit colour channels on the wire: 255*(v/255)^γ."
    )
    aliases: ClassVar[tuple[str, ...]] = ("color",)

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {"level": LEVEL, **{name: CHANNEL for name in self.channels}}

    def coerce(self, name: str, value: Any) -> dict[str, PropertyValue]:
        """``color`` (``#ff8800``, ``rgb(...)``, ``hsv(...)``) sets red, green and blue; white is left alone."""
        if name == "color":
            return dict(zip(("red", "green", "blue"), parse_color(value), strict=True))
        return super().coerce(name, value)

    def _colour(self, state: Mapping[str, Any]) -> list[int]:
        return [gamma_correct(c, self.gamma) for c in super()._colour(state)]

    def _wire(self, name: str, value: Any) -> Any:
        return gamma_correct(value, self.gamma) if name in self.channels else value


class RgbProfile(_ColourProfile):
    """An RGB light; safe: dark and black."""

    profile: Literal["rgb"]
    channels: ClassVar[tuple[str, ...]] = ("red", "green", "blue")


class RgbwProfile(_ColourProfile):
    """An RGBW light; not for zigbee2mqtt, whose colour has no white channel."""

    profile: Literal["rgbw"]
    channels: ClassVar[tuple[str, ...]] = ("red", "green", "blue", "white")
    presets: ClassVar[tuple[PayloadPreset, ...]] = ("json", "tasmota", "shelly", "wled")
    preset_hint: ClassVar[str] = ": zigbee2mqtt colour has no white channel (use the rgb profile for such gear)"


class RelayProfile(_LightProfile):
    """A switched load: ``on``, safe off. ``min_off_time`` protects compressors, lamps and contactors.

    A codec has no clock, so it cannot hold a relay off by itself: the driver
    keeps a :class:`RelayGuard` (from :meth:`guard`) and asks it before sending.
    """

    profile: Literal["relay"]
    min_off_time: Duration = Field(default=0.0, description="Least time off before it may switch on again (`30s`).")
    switch: ClassVar[str] = "on"
    max_rate: ClassVar[float] = 2.0
    """Relays wear with every switch: never chatter."""

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {"on": _prop("bool", False)}

    def _level(self, state: Mapping[str, Any]) -> float:
        return 1.0 if state.get("on") else 0.0

    def _shelly(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        if "on" not in changed:
            return []
        return [Message(f"shellies/{device_topic}/relay/0/command", b"on" if state.get("on") else b"off")]

    def earliest_on(self, last_off_at: float | None) -> float:
        """When a relay switched off at ``last_off_at`` may switch on again (``-inf`` if never switched off)."""
        return -math.inf if last_off_at is None else last_off_at + self.min_off_time

    def guard(self) -> RelayGuard:
        return RelayGuard(self.min_off_time)


@dataclass
class RelayGuard:
    """Holds a relay off for ``min_off_time`` seconds after it switched off; the driver owns one per relay.

    ``permit(requested, now)`` says what to send now. Switching off always goes
    through; switching on too early is answered ``False`` (stay off), and the
    driver should ask again at :meth:`earliest_on`. The start-up safe state (off)
    counts as switching off, so a relay also rests ``min_off_time`` after start,
    since nobody knows when it last ran.
    """

    min_off_time: float
    last_off_at: float | None = None
    is_on: bool | None = None
    """What was last let through; None before the first command."""

    def earliest_on(self) -> float:
        return -math.inf if self.last_off_at is None else self.last_off_at + self.min_off_time

    def permit(self, requested: bool, now: float) -> bool:
        if not requested:
            if self.is_on is not False:
                self.last_off_at = now
            self.is_on = False
            return False
        if now < self.earliest_on() and self.is_on is not True:
            return False
        self.is_on = True
        return True


# ---------------------------------------------------------------------------- moving head


def _check_limits(name: str, limits: tuple[float, float]) -> None:
    if limits[0] >= limits[1]:
        raise ValueError(f"`{name}` must be [min, max] with min < max, not [{limits[0]:g}, {limits[1]:g}]")


class MovingHeadProfile(ProfileBase):
    """A moving light: ``pan``/``tilt`` in degrees (clamped into their limits), ``level``; safe: dark, at ``home``."""

    profile: Literal["moving_head"]
    pan_limits: tuple[float, float] = Field(default=(-270.0, 270.0), description="Degrees [min, max] pan may reach.")
    tilt_limits: tuple[float, float] = Field(default=(-135.0, 135.0), description="Degrees [min, max] tilt may reach.")
    home: tuple[float, float] = Field(default=(0.0, 0.0), description="[pan, tilt] in the safe state.")

    def _check_config(self) -> None:
        _check_limits("pan_limits", self.pan_limits)
        _check_limits("tilt_limits", self.tilt_limits)
        for axis, value, (low, high) in (
            ("pan", self.home[0], self.pan_limits),
            ("tilt", self.home[1], self.tilt_limits),
        ):
            if not low <= value <= high:
                raise ValueError(f"`home` {axis} {value:g} is outside the {axis} limits [{low:g}, {high:g}]")

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {
            "pan": _prop("float", self.home[0], self.pan_limits),
            "tilt": _prop("float", self.home[1], self.tilt_limits),
            "level": LEVEL,
        }


# ---------------------------------------------------------------------------- motor


class MotorProfile(ProfileBase):
    """A winch or turntable: ``position`` (within ``soft_limits``), signed ``speed``, ``enabled``.

    Its safe state is *stopped and disabled* (``speed: 0``, ``enabled: false``):
    the position is left out, because moving a load to make it safe is not safe.
    Positions are clamped to ``soft_limits`` and speeds to ``max_speed``. ``max_accel`` is not
    applied yet: :meth:`limiter` computes the ramp, but the driver does not stream it (a jump in a
    cue goes to the gear as a jump; ramp it with a fade).
    """

    profile: Literal["motor"]
    soft_limits: tuple[float, float] = Field(description="[min, max] position, in the gear's units.")
    max_speed: float = Field(gt=0, description="Units per second.")
    max_accel: float = Field(gt=0, description="Units per second squared.")
    motion: ClassVar[bool] = True
    max_rate: ClassVar[float] = 20.0

    def _check_config(self) -> None:
        _check_limits("soft_limits", self.soft_limits)

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {
            "position": _prop("float", None, self.soft_limits),
            "speed": _prop("float", 0.0, (-self.max_speed, self.max_speed)),
            "enabled": _prop("bool", False),
        }

    def limiter(self) -> MotionLimiter:
        return MotionLimiter(self.max_speed, self.max_accel, self.soft_limits)


class MotionSample(NamedTuple):
    """Where the commanded setpoint was, how fast it moved, and when (seconds on the driver's clock)."""

    position: float
    speed: float
    time: float


@dataclass(frozen=True)
class MotionLimiter:
    """Limits motor requests to ``max_speed`` and ``max_accel``, so a jump in a cue becomes a ramp.

    Pure: the driver keeps the last :class:`MotionSample` and passes it in at each
    tick. Positions advance by the mean of the old and new speed over the tick.
    Near a soft limit (and near a position target) the speed is capped to what can
    still brake in time (``sqrt(2·a·distance)``); arriving at a target, or at a soft
    limit, the setpoint stops there. Speeds are sampled at ticks, so that last stop
    may brake harder than ``max_accel`` by up to one tick's worth.
    """

    max_speed: float
    max_accel: float
    soft_limits: tuple[float, float] | None = None

    def _braking_cap(self, position: float, speed: float) -> float:
        if self.soft_limits is None:
            return speed
        low, high = self.soft_limits
        if speed > 0:
            return min(speed, math.sqrt(2 * self.max_accel * max(high - position, 0.0)))
        return max(speed, -math.sqrt(2 * self.max_accel * max(position - low, 0.0)))

    def _advance(self, last: MotionSample, wanted: float, now: float) -> MotionSample:
        dt = max(now - last.time, 0.0)
        speed = min(max(wanted, -self.max_speed), self.max_speed)
        speed = min(max(speed, last.speed - self.max_accel * dt), last.speed + self.max_accel * dt)
        return MotionSample(last.position + (last.speed + speed) / 2 * dt, speed, now)

    def _within_limits(self, sample: MotionSample) -> MotionSample:
        if self.soft_limits is None:
            return sample
        low, high = self.soft_limits
        # The position never leaves the limits, whatever the speed; at a limit, only moving back in goes on.
        if sample.position >= high:
            return MotionSample(high, min(sample.speed, 0.0), sample.time)
        if sample.position <= low:
            return MotionSample(low, max(sample.speed, 0.0), sample.time)
        return sample

    def limit_speed(self, last: MotionSample, requested: float, now: float) -> MotionSample:
        """A speed request (turntable, jogging winch), limited; the new sample's speed is what to send."""
        return self._within_limits(self._advance(last, self._braking_cap(last.position, requested), now))

    def limit_position(self, last: MotionSample, target: float, now: float) -> MotionSample:
        """A position request, as the setpoint to send now on the way there."""
        if self.soft_limits is not None:
            target = min(max(target, self.soft_limits[0]), self.soft_limits[1])
        distance = target - last.position
        dt = now - last.time
        if distance == 0 or dt <= 0:
            return MotionSample(last.position, 0.0 if distance == 0 else last.speed, max(now, last.time))
        reachable = min(abs(distance) / dt, math.sqrt(2 * self.max_accel * abs(distance)))
        sample = self._advance(last, math.copysign(reachable, distance), now)
        if (target - sample.position) * distance <= 0:  # arrived, or would pass it
            return MotionSample(target, 0.0, now)
        return self._within_limits(sample)


# ---------------------------------------------------------------------------- projector


class ProjectorProfile(ProfileBase):
    """A projector: ``power``, ``shutter`` (true = closed), ``input`` among ``inputs``.

    Safe state: shutter closed, power and input unchanged. Closing the shutter makes
    the room dark at once; switching the lamp off would force a cool-down before it
    can come back (and wear it), and switching it on at PANIC would be wrong too.
    A curator may still add ``safe: {power: false}``.
    """

    profile: Literal["projector"]
    inputs: tuple[str, ...] = Field(
        default=("hdmi1",), min_length=1, description="The input names the projector takes."
    )
    max_rate: ClassVar[float] = 2.0
    """Projector control is slow; commands faster than this are dropped by many."""

    def default_properties(self) -> dict[str, ProfileProperty]:
        return {
            "power": _prop("bool", None),
            "shutter": _prop("bool", True),
            "input": ProfileProperty(type="str", choices=self.inputs, safe=None),
        }


# ---------------------------------------------------------------------------- generic template

_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


class GenericTemplateProfile(ProfileBase):
    """Any gear with a fixed text protocol: ``topic`` and ``template`` with ``{property}`` placeholders.

    Placeholders are replaced by the desired values (booleans as ``true``/``false``,
    numbers as JSON numbers, text as is: quote it in the template if the gear wants
    JSON strings); ``{device}`` is the device topic. Braces that do not name a
    property are kept, so JSON templates need no escaping. One message per change.
    """

    profile: Literal["generic_template"]
    preset_hint: ClassVar[str] = ": it writes its own `topic` and `template`"
    properties_: dict[Name, ProfileProperty] = Field(alias="properties", min_length=1, description="What can be set.")
    topic: str = Field(default="", description="Topic template; empty: the command topic.")
    template: str = Field(description='Payload template, e.g. `{"bri": {level}}`.')

    @model_validator(mode="after")
    def _placeholders_known(self) -> GenericTemplateProfile:
        known = [*self.properties_, "device"]
        for field in ("topic", "template"):
            unknown = [n for n in _PLACEHOLDER.findall(getattr(self, field)) if n not in known]
            if unknown:
                raise ValueError(
                    f"`{field}` names `{{{unknown[0]}}}`, which is not a property (it has: {', '.join(known)})"
                )
        return self

    def default_properties(self) -> dict[str, ProfileProperty]:
        return dict(self.properties_)

    def _render(self, template: str, state: Mapping[str, Any], device_topic: str) -> str:
        values = {**self.safe_state(), **state, "device": device_topic}
        return _PLACEHOLDER.sub(lambda m: _render_value(values.get(m.group(1), "")), template)

    def encode(self, changed: Mapping[str, Any], state: Mapping[str, Any], device_topic: str) -> list[Message]:
        if not changed:
            return []
        topic = self._render(self.topic, state, device_topic)
        return [Message(topic, self._render(self.template, state, device_topic).encode())]


Profile = Annotated[
    DimmerProfile
    | RgbProfile
    | RgbwProfile
    | MovingHeadProfile
    | RelayProfile
    | MotorProfile
    | ProjectorProfile
    | GenericTemplateProfile,
    Field(discriminator="profile"),
]
"""Any profile, chosen by its ``profile:`` name."""
