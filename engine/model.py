"""The exhibit format (v1) as pydantic models: the only schema there is.

Driver configurations (sensors, devices) are defined next to their drivers and
joined here into one model through the registry, discriminated by ``kind``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from engine.curves import Curve

FORMAT_VERSION = 1

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""Sensor, device, signal and property names: lower-case, so ``sensor.signal`` is unambiguous."""

SignalType = Literal["float", "int", "bool", "str"]
StoreType = Literal["float", "int", "bool", "str", "event", "object"]
"""Signal types in the store: values, plus events (a payload at a moment) and objects (snapshots)."""
ComponentProblem = tuple[tuple[str | int, ...], str]
"""A problem inside one component: the path below the component's key, and the message."""


class Strict(BaseModel):
    """Every model forbids unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def coerce_output(value: Any, type_: SignalType, range_: tuple[float, float] | None) -> float | int | bool | str:
    """A value for an output property of ``type_``: numbers clamped into ``range_`` (and rounded for ints)."""
    if type_ == "bool":
        return bool(value)
    if type_ == "str":
        return str(value)
    number = float(value)
    if range_ is not None:
        number = min(max(number, range_[0]), range_[1])
    return round(number) if type_ == "int" else number


class Outputs:
    """What mappings may drive: devices, and sensors that also take commands (a board's LED)."""

    def settable_properties(self) -> list[str]:
        """The properties mappings and cues may set."""
        return []

    def property_range(self, name: str) -> tuple[float, float] | None:
        """The natural range of a numeric property, used when a mapping gives no output range."""
        return None

    def safe_state(self) -> dict[str, Any]:
        """What it is sent on PANIC, at startup and before a clean stop."""
        return {}

    def initial_state(self) -> dict[str, Any]:
        """What its properties are when the show starts (fades start from these): the safe state, unless the
        output starts elsewhere (a sound's declared volume)."""
        return self.safe_state()

    def reset_state(self) -> dict[str, Any]:
        """What a PANIC reset puts back at once (the master volume of sound); most outputs wait for the show."""
        return {}

    def health_figures(self) -> dict[str, StoreType]:
        """Its kind's own health figures (``commands`` is read as ``<name>.health.commands``), beside the
        ``status``, ``reason`` and ``since`` every component has."""
        return {}

    def health_meanings(self) -> dict[str, str]:
        """What each of :meth:`health_figures` means, for the catalogue and the console."""
        return {}

    def is_motion(self) -> bool:
        """A motor, winch or turntable: it moves only while armed, and never after an e-stop."""
        return False

    def max_rate(self) -> float:
        """Most updates per second it can take; infinite if it coalesces by itself (MQTT waits for acks)."""
        return math.inf


class Scale(Strict):
    """A linear conversion applied where a value enters (a 10-bit reading to 0..1)."""

    input: tuple[float, float] = Field(description="Raw range [from, to].")
    output: tuple[float, float] = Field((0.0, 1.0), description="Signal range [from, to].")
    clamp: bool = Field(True, description="Keep results inside the output range.")

    @model_validator(mode="after")
    def _not_empty(self) -> Scale:
        if not all(math.isfinite(end) for end in (*self.input, *self.output)):
            raise ValueError("a scale's ends must be finite numbers (not `.inf` or `.nan`)")
        if not all(math.isfinite(high - low) for low, high in (self.input, self.output)):
            raise ValueError("a scale's range is too wide to compute with (its width is not a finite number)")
        if self.input[0] == self.input[1]:
            raise ValueError("`input` range is empty: its two ends are equal")
        return self

    def apply(self, x: float) -> float:
        t = (x - self.input[0]) / (self.input[1] - self.input[0])
        if self.clamp:
            t = min(1.0, max(0.0, t))
        return self.output[0] + t * (self.output[1] - self.output[0])


class SensorConfig(Outputs, Strict):
    """Base of every sensor's configuration. Subclasses set ``kind`` to a Literal.

    A sensor that also takes commands (a board with an LED) overrides the
    :class:`Outputs` methods; mappings may then target ``sensor.output``.
    """

    kind: str

    def signal_types(self) -> dict[str, StoreType]:
        """The signals this sensor feeds, by short name (``wash`` for ``controls.wash``)."""
        return {}

    def signal_meanings(self) -> dict[str, str]:
        """What each signal means, by short name, for the catalogue and the console."""
        return {}

    def collection_fields(self) -> dict[str, dict[str, str]]:
        """For object signals holding items (the visitors): each item's fields and their types."""
        return {}

    def check_files(self, base: Path) -> list[ComponentProblem]:
        """Files it names (videos, recordings) that are missing, relative to the exhibit folder."""
        return []

    def check_hardware(self) -> list[ComponentProblem]:
        """Hardware it names (a camera, a port) that this machine does not have (``check --hardware``)."""
        return []

    def resources(self) -> list[str]:
        """Exclusive resources it holds (``udp 0.0.0.0:9000``), so two sensors cannot clash."""
        return []


class DeviceConfig(Outputs, Strict):
    """Base of every device's configuration. Subclasses set ``kind`` to a Literal."""

    kind: str


class Title(Strict):
    en: str = Field(description="English title, shown to operators and visitors.")
    zh: str | None = Field(None, description="Simplified Chinese title (中文标题).")


class MqttSecurity(Strict):
    """Who the link is to the broker, and how it checks the broker: the exhibit file
    names where secrets live (an environment variable or a file), never the secrets.

    The secrets are read, and the TLS context built, by the MQTT package (``devices/mqtt/security.py``).
    """

    username: str | None = Field(None, description="MQTT user name.")
    password_env: str | None = Field(None, description="Name of the environment variable holding the password.")
    password_file: str | None = Field(None, description="File holding the password (relative to the exhibit file).")
    tls: bool = Field(False, description="Connect over TLS.")
    ca_file: str | None = Field(None, description="CA certificate(s) to trust (default: the system's).")
    cert_file: str | None = Field(None, description="Client certificate, for brokers that require one.")
    key_file: str | None = Field(None, description="Private key of the client certificate (if not in `cert_file`).")
    insecure: bool = Field(False, description="Skip the broker host name check. For tests only, never on site.")

    @model_validator(mode="after")
    def _consistent(self) -> MqttSecurity:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give the password through `password_env` or `password_file`, not both")
        if (self.password_env or self.password_file) and self.username is None:
            raise ValueError("a password needs a `username`")
        tls_only = [n for n in ("ca_file", "cert_file", "key_file", "insecure") if getattr(self, n)]
        if tls_only and not self.tls:
            raise ValueError(f"{', '.join(f'`{n}`' for n in tls_only)} only apply with `tls: true`")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("`key_file` needs a `cert_file`")
        return self


class MqttSettings(Strict):
    broker: str = Field(
        "embedded",
        description="`embedded` starts a broker on loopback (zero setup); or `mqtt://host:port` for a real one "
        "such as Mosquitto. `--broker` on the command line overrides it.",
    )
    prefix: str = Field("exhibit", pattern=r"^[^#+/][^#+]*$", description="First level of every topic.")
    client_id: str | None = Field(None, description="Stable MQTT client id; default `exhibit-<id>`.")
    keepalive: int = Field(10, ge=2, le=600, description="Seconds; the Last Will fires after about 1.5x this.")
    security: MqttSecurity | None = Field(
        None, description="User name, password (from the environment or a file, never here) and TLS."
    )

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if value != "embedded":
            parse_broker_url(value)
        return value


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` to ``(host, port)``; raises ValueError with a readable reason."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"broker must be `embedded` or `mqtt://host:port`, not `{url}`")
    try:
        port = parts.port or 1883
    except ValueError:
        raise ValueError(f"broker port in `{url}` is not a number between 1 and 65535") from None
    return parts.hostname, port


class OneEuroSmoothing(Strict):
    one_euro: bool = Field(True, description="One Euro filter: little lag when moving fast, little jitter when still.")
    min_cutoff: float = Field(1.0, gt=0, description="Hz: lower smooths more when the value is still.")
    beta: float = Field(0.05, ge=0, description="Higher follows fast movement with less lag.")


class SlewSmoothing(Strict):
    slew: float = Field(gt=0, description="At most this many output units per second.")


class Mapping(Strict):
    """A continuous link from a signal to a device property: input range to output range.

    With `field`, `from` names a collection (`body.visitors`) and `to` a pattern with
    `{slot}` (`spot{slot}.level`): each visitor drives its own device, slots given in
    order of arrival (fan-out per visitor)."""

    source: str = Field(alias="from", description="Signal, as `sensor.signal` (e.g. `controls.wash`).")
    target: str = Field(alias="to", description="Device property, as `device.property` (e.g. `wash.brightness`).")
    field: str | None = Field(None, description="Fan-out: the visitor field to map (`hand_height`).")
    input: tuple[float, float] = Field((0.0, 1.0), description="Signal range [from, to].")
    output: tuple[float, float] | None = Field(
        None, description="Property range [from, to]; default: the property's own range."
    )
    clamp: bool = Field(True, description="Keep the result inside the output range.")
    curve: Curve = Field("linear", description="Shape from input to output: linear, ease-in, exponential, steps(4)...")
    deadband: float = Field(0.0, ge=0, description="Ignore input changes smaller than this (in input units).")
    smoothing: OneEuroSmoothing | SlewSmoothing | None = Field(None, description="Smooth the input first.")
    when: str | None = Field(
        None, description='Only while this condition holds, e.g. `states.mode == "engaged"` (default: always).'
    )

    @model_validator(mode="after")
    def _ranges(self) -> Mapping:
        if self.input[0] == self.input[1]:
            raise ValueError("input range is empty: its two ends are equal")
        if (self.field is None) != ("{slot}" not in self.target):
            raise ValueError("fan-out needs both a `field` and a `to` with `{slot}` (e.g. `spot{slot}.level`)")
        return self

    def slot_target(self, slot: int) -> str:
        return self.target.replace("{slot}", str(slot))


SIGNAL_REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z0-9_]+(?:\.[a-z0-9_]+)*)$")
"""``sensor.signal``; pose signals have more levels (``body.nearest.hand_height``)."""
PROPERTY_REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)$")
"""`device.property`; a property may have two parts (`sound.water.volume`: the `sound` device's `water.volume`)."""
SLOT_REFERENCE = re.compile(r"^([a-z][a-z0-9_]*)\{slot\}([a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
"""A fan-out target: `spot{slot}.level` names spot1.level, spot2.level..."""
