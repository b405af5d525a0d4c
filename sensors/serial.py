"""Arduino-class boards over USB serial (pyserial-asyncio-fast).

A board is found by stable identity: a ``/dev/serial/by-id/...`` path or a USB
``vid:pid[:serial]``, resolved again at every reconnect, so a board that comes
back as ``ttyACM1`` is still found. Lines are JSON, ``key=value``, CSV or a
regular expression; or the board runs StandardFirmata. Bad input (partial,
overlong or undecodable lines, wrong field counts, noise) is counted and
dropped; the reader never dies. An unplugged board turns ``offline`` at once,
its signals go stale, and it is reopened with capped, jittered back-off.
The same connection carries commands to the board (an LED, a relay).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import serial_asyncio_fast
from pydantic import Field, model_validator
from serial.tools import list_ports

from engine.drivers import DriverContext, WritableSensor
from engine.health import InputHealth, MessageInputConfig
from engine.model import ComponentProblem, Name, Scale, SignalType, StoreType, Strict, coerce_output
from engine.reconnect import Backoff, Reconnect
from sensors import firmata, firmata_pins
from sensors.firmata_pins import PinPlan, PinProblem
from sensors.serial_formats import FormatError, LineFormat, LineFormatSettings

log = logging.getLogger("sensors.serial")

OutputValue = float | int | bool | str
LINE_KEYS = ("columns", "delimiter", "separator", "pattern")
PIN = re.compile(r"^([AD])(\d{1,2})$")


class SerialSignalSpec(Strict):
    field: str | None = Field(None, description="Field of the line (JSON key, CSV column, regex group).")
    pin: str | None = Field(None, pattern=PIN.pattern, description="Firmata pin: `A0` (analog) or `D2` (digital).")
    type: SignalType = Field("float", description="Signal type.")
    scale: Scale | None = Field(None, description="Convert the raw value, e.g. input [0, 1023] to output [0, 1].")
    invert: bool = Field(
        False, description="Read a true/false input the other way round: a button on a pull-up reads true when pressed."
    )
    pullup: bool | None = Field(
        None,
        description="Firmata digital inputs: the pin's pull-up resistor on (the default: a button to ground reads "
        "false when pressed, see `invert`) or off (a sensor that drives the line itself).",
    )


class SerialOutputSpec(Strict):
    template: str | None = Field(
        None, description="Line sent for a new value, e.g. `LED {value}` (a newline is added)."
    )
    pin: int | None = Field(None, ge=0, le=127, description="Firmata pin to drive.")
    mode: Literal["digital", "pwm"] = Field("digital", description="Firmata output mode.")
    type: SignalType = Field("bool", description="Value type.")
    range: tuple[float, float] | None = Field(None, description="[min, max] for numbers; values are clamped.")
    safe: OutputValue = Field(description="Value sent at start-up, on PANIC and before a clean stop.")
    invert: bool = Field(False, description="Send a true/false output the other way round (active-low relays).")

    def coerce(self, value: Any) -> OutputValue:
        return coerce_output(value, self.type, self.range)


class SerialSensorConfig(MessageInputConfig):
    """An Arduino-class board on USB serial: lines or Firmata in, commands out."""

    kind: Literal["serial"]
    port: str | None = Field(
        None, description="Device path; prefer `/dev/serial/by-id/...`, which survives replugging."
    )
    usb: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:\S+)?$", description="USB identity `vid:pid[:serial]` (hex)."
    )
    baud: int = Field(115200, ge=50, le=4_000_000, description="Baud rate.")
    bytesize: Literal[5, 6, 7, 8] = Field(8, description="Data bits.")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")
    format: Literal["json", "keyvalue", "csv", "regex", "firmata"] = Field("json", description="What the board sends.")
    columns: list[str] | None = Field(None, description="CSV column names, in order.")
    delimiter: str = Field(",", description="CSV delimiter.")
    separator: str = Field("=", description="key=value separator.")
    pattern: str | None = Field(None, description="Regular expression with named groups, for `format: regex`.")
    encoding: str = Field("utf-8", description="Text encoding of lines.")
    max_line: int = Field(512, ge=16, le=65536, description="Longest line in bytes; longer ones are dropped.")
    sampling_ms: int = Field(19, ge=1, le=16383, description="Firmata sampling interval.")
    output_rate: float = Field(50.0, gt=0, le=1000, description="Most output updates per second sent to the board.")
    settle: float = Field(
        2.0,
        ge=0,
        le=60,
        description="Seconds to wait, after the port opens, for the board to say it has started (most Arduinos "
        "restart when their port opens): then a Firmata board is asked for its firmware, and a line board is "
        "sent its outputs.",
    )
    signals: dict[Name, SerialSignalSpec] = Field(min_length=1, description="Signals fed by the board.")
    outputs: dict[Name, SerialOutputSpec] = Field(default_factory=dict, description="What the exhibit can send.")

    @model_validator(mode="after")
    def _consistent(self) -> SerialSensorConfig:
        if (self.port is None) == (self.usb is None):
            raise ValueError("give exactly one of `port` (a path) or `usb` (vid:pid[:serial])")
        firmata_mode = self.format == "firmata"
        for name, spec in self.signals.items():
            if firmata_mode and spec.pin is None:
                raise ValueError(f"signal `{name}` needs a `pin` (A0, D2...) with `format: firmata`")
            if not firmata_mode and spec.field is None:
                raise ValueError(f"signal `{name}` needs a `field` (the line's key, column or group)")
            if spec.invert and spec.type != "bool":
                raise ValueError(f"signal `{name}`: `invert` is for true/false signals (`type: bool`)")
            if spec.pullup is not None and not (spec.pin or "").startswith("D"):
                raise ValueError(f"signal `{name}`: `pullup` is for Firmata digital pins (D2, D3...)")
        for name, output in self.outputs.items():
            if firmata_mode and output.pin is None:
                raise ValueError(f"output `{name}` needs a `pin` with `format: firmata`")
            if not firmata_mode and (output.template is None or "{value" not in output.template):
                raise ValueError(f"output `{name}` needs a `template` containing `{{value}}`, e.g. `LED {{value}}`")
            if output.invert and output.type != "bool":
                raise ValueError(f"output `{name}`: `invert` is for true/false outputs (`type: bool`)")
        if firmata_mode and (used := [key for key in LINE_KEYS if key in self.model_fields_set]):
            raise ValueError(f"`{used[0]}` is for line formats, not for `format: firmata`")
        if not firmata_mode:
            known = self.line_format().fields()
            for name, spec in self.signals.items():
                if known is not None and spec.field not in known:
                    raise ValueError(
                        f"signal `{name}` reads field `{spec.field}`, which the format does not have "
                        f"(it has: {', '.join(known)})"
                    )
        return self

    def line_format(self) -> LineFormatSettings:
        """The line format's own settings, from the keys the curator wrote (each belongs to one format)."""
        given = {key: getattr(self, key) for key in LINE_KEYS if key in self.model_fields_set}
        return LineFormatSettings(format="json" if self.format == "firmata" else self.format, **given)

    def identity(self) -> str:
        return self.port or f"USB {self.usb}"

    def pin_plan(self) -> PinPlan:
        """The Firmata pins the exhibit reads and drives."""
        analog: list[int] = []
        digital: list[tuple[int, bool]] = []
        for spec in self.signals.values():
            kind, number = PIN.match(spec.pin or "").groups()  # type: ignore[union-attr]
            if kind == "A":
                analog.append(int(number))
            else:
                digital.append((int(number), spec.pullup is not False))
        outputs = [(output.pin or 0, output.mode) for output in self.outputs.values()]
        return PinPlan(tuple(analog), tuple(digital), tuple(outputs))

    def signal_types(self) -> dict[str, StoreType]:
        return {name: spec.type for name, spec in self.signals.items()}

    def signal_meanings(self) -> dict[str, str]:
        return {name: f"pin {spec.pin}" if spec.pin else f"field `{spec.field}`" for name, spec in self.signals.items()}

    def settable_properties(self) -> list[str]:
        return list(self.outputs)

    def property_range(self, name: str) -> tuple[float, float] | None:
        return self.outputs[name].range

    def safe_state(self) -> dict[str, Any]:
        return {name: output.safe for name, output in self.outputs.items()}

    def max_rate(self) -> float:
        return self.output_rate

    def resources(self) -> list[str]:
        return [f"serial {self.identity()}"]

    def check_hardware(self) -> list[ComponentProblem]:
        try:
            resolve_port(self)
        except PortMissing as exc:
            return [(("port",) if self.port else ("usb",), str(exc))]
        return []


class PortMissing(Exception):
    """The board is not plugged in (or not where its identity says)."""


PortLister = Callable[[], list[Any]]
port_lister: PortLister = list_ports.comports
"""USB enumeration; tests replace it, since no USB board exists on a test machine."""


def resolve_port(config: SerialSensorConfig) -> str:
    """The device path of the board now; raises :class:`PortMissing` if it is not there."""
    if config.port is not None:
        if not os.path.exists(config.port):
            raise PortMissing(f"no serial port at {config.port}")
        return os.path.realpath(config.port)
    assert config.usb is not None
    vid_text, pid_text, *rest = config.usb.split(":", 2)
    vid, pid, number = int(vid_text, 16), int(pid_text, 16), (rest[0] if rest else None)
    for port in port_lister():
        if port.vid == vid and port.pid == pid and (number is None or port.serial_number == number):
            return str(port.device)
    raise PortMissing(f"no USB serial device {config.usb} is plugged in")


class LineFramer:
    """Bytes to lines: partial lines wait for their end; overlong ones are dropped whole."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False
        self.overlong = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.max_line:
                    if not self._discarding:
                        self.overlong += 1
                    self._discarding = True
                    self._buffer.clear()
                return lines
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._discarding or len(line) > self.max_line:
                if not self._discarding:
                    self.overlong += 1
                self._discarding = False
                continue
            lines.append(line)

    def pending(self) -> int:
        """Bytes of an unfinished line (dropped if the board goes away now)."""
        return len(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()
        self._discarding = False


class PortWriter(Protocol):
    """The side of a port the sensor writes to: a serial transport, or a simulated board's port."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...


class BoardProtocol(asyncio.Protocol):
    def __init__(self, sensor: SerialSensor) -> None:
        self.sensor = sensor
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.sensor.handle_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


@dataclass
class _BoardAnswers:
    """What a Firmata board said about itself since the port opened."""

    firmware: firmata.FirmwareReport | None = None
    capabilities: list[dict[int, int]] | None = None
    analog_mapping: list[int | None] | None = None


WAITING_FOR_FIRMWARE = "waiting for firmware"
WAITING_FOR_LINES = "waiting for the board to start"
POLL_SECONDS = 0.01
"""How often the bring-up looks for the board's answers."""


class SerialSensor(WritableSensor):
    config: SerialSensorConfig

    def __init__(self, name: str, config: SerialSensorConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.health_signals = InputHealth(self.health)
        self.framer = LineFramer(config.max_line)
        self.firmata = config.format == "firmata"
        self.parser = firmata.FirmataParser()
        self.board = firmata.FirmataBoardState()
        self.lines: LineFormat | None = None if self.firmata else config.line_format().build()
        self.by_field = {spec.field: (f"{name}.{short}", spec) for short, spec in config.signals.items() if spec.field}
        self.by_pin = {spec.pin: (f"{name}.{short}", spec) for short, spec in config.signals.items() if spec.pin}
        self.plan = config.pin_plan() if self.firmata else PinPlan()
        self._reported_ports = self.plan.ports()
        self.outputs: dict[str, OutputValue] = config.safe_state()
        self.backoff = Backoff(initial=0.25, cap=5.0, stable_after=2.0)
        self._rng = random.Random()
        self._transport: PortWriter | None = None
        self.device: str | None = None
        self.connections = 0
        self.ready = False
        """The board has started and been set up; outputs are written only then."""
        self.answers = _BoardAnswers()
        self.pin_problems: list[PinProblem] = []
        self.restarts = 0
        """Times the board restarted while connected (a brown-out, the reset button)."""
        self.boot_noise = 0
        """Lines dropped before the board's first good line (bootloader and boot messages)."""
        self._heard_line = False
        self.bytes_received = 0
        self._said: set[str] = set()

    # --- input --------------------------------------------------------------------

    def handle_bytes(self, data: bytes) -> None:
        """Everything the board sent; never raises, whatever the bytes are."""
        self.bytes_received += len(data)
        if self.firmata:
            errors = self.parser.errors
            for message in self.parser.feed(data):
                if isinstance(message, firmata.AnalogMessage | firmata.DigitalMessage):
                    self._firmata_report(message)
                else:
                    self._firmata_answer(message)
            for _ in range(self.parser.errors - errors):
                self.health_signals.error("firmata")
            return
        overlong = self.framer.overlong
        for line in self.framer.feed(data):
            self.handle_line(line)
        for _ in range(self.framer.overlong - overlong):
            self.health_signals.error("overlong")

    def handle_line(self, raw: bytes) -> None:
        assert self.lines is not None
        try:
            text = raw.decode(self.config.encoding)
            fields = self.lines.parse(text)
        except (UnicodeDecodeError, FormatError) as exc:
            if not self._heard_line:
                self.boot_noise += 1  # a restart's cut line, a bootloader's or an ESP's boot text
            else:
                self.health_signals.error("decode" if isinstance(exc, UnicodeDecodeError) else "parse")
            return
        routed = matched = False
        for field, value in fields.items():
            route = self.by_field.get(field)
            if route is not None:
                routed = True
                matched |= self._emit(route[0], route[1], value)
        if matched:
            self._heard_line = True
            self.health_signals.message()
        elif routed:
            return  # each bad value is counted already, by kind
        elif self._heard_line:
            self.health_signals.error("fields")
        else:
            self.boot_noise += 1

    def _firmata_report(self, message: firmata.AnalogMessage | firmata.DigitalMessage) -> None:
        # Every report of a pin the exhibit reads is a message, changed or not: `rate` counts what arrives.
        if isinstance(message, firmata.AnalogMessage):
            wanted = f"A{message.channel}" in self.by_pin
        else:
            wanted = message.port in self._reported_ports
        good = wanted
        for pin, value in self.board.apply(message):
            route = self.by_pin.get(pin)
            if route is not None:
                good &= self._emit(route[0], route[1], value)
        if good:
            self.health_signals.message()

    def _firmata_answer(self, message: firmata.FirmataMessage) -> None:
        if isinstance(message, firmata.FirmwareReport):
            self.answers.firmware = message
            if self.ready:
                self._restarted()
        elif isinstance(message, firmata.CapabilityResponse):
            self.answers.capabilities = message.pins
        elif isinstance(message, firmata.AnalogMappingResponse):
            self.answers.analog_mapping = message.channels
        elif isinstance(message, firmata.StringData):
            log.info("board %s says: %s", self.name, message.text)

    def _emit(self, signal: str, spec: SerialSignalSpec, value: Any) -> bool:
        converted = _convert(value, spec)
        if isinstance(converted, BadValue):
            self.health_signals.error(converted.kind)
            return False
        self.context.store.set(signal, converted)
        return True

    # --- connection -----------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.health_signals.run())
            tasks.create_task(self._connect_forever())

    async def _connect_forever(self) -> None:
        reconnect = Reconnect(self.backoff, self.context.clock, self._rng)
        lost_logged = False
        self.health_signals.set_status("offline", "not connected yet")
        while True:
            try:
                protocol = await self._open()
            except (PortMissing, OSError) as exc:
                self.health_signals.set_status("offline", str(exc))
                if not lost_logged:
                    log.warning("board %s: %s; the exhibit goes on without it and keeps looking", self.name, exc)
                    lost_logged = True
            else:
                reconnect.up()
                if lost_logged or self.connections > 1:
                    log.info("board %s is back on %s", self.name, self.device)
                else:
                    log.info("board %s connected on %s", self.name, self.device)
                lost_logged = False
                bring_up = asyncio.create_task(self._bring_up())
                try:
                    why = await protocol.lost
                finally:
                    bring_up.cancel()
                self._went_away(why)
                lost_logged = True
            await reconnect.wait()

    async def _open(self) -> BoardProtocol:
        device = resolve_port(self.config)
        loop = asyncio.get_running_loop()
        transport, protocol = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: BoardProtocol(self),
            url=device,
            baudrate=self.config.baud,
            bytesize=self.config.bytesize,
            parity=self.config.parity,
            stopbits=self.config.stopbits,
        )
        assert isinstance(protocol, BoardProtocol)
        self._opened(transport, device)
        return protocol

    def _opened(self, transport: PortWriter, device: str) -> None:
        """A new connection: nothing is sent until the board has started (it restarts as its port opens)."""
        self._transport, self.device = transport, device
        self.connections += 1
        self.ready = False
        self.answers = _BoardAnswers()
        self._heard_line = False
        self.framer.reset()
        self.parser = firmata.FirmataParser()
        self.board.reset()

    async def _bring_up(self) -> None:
        """Wait for the board to start, set it up, and send it its outputs."""
        try:
            await self._wait_and_set_up()
        except Exception as exc:  # a bug here must say so, not leave the board silently unset
            log.exception("board %s could not be set up", self.name)
            self.health_signals.set_status("degraded", f"could not be set up: {exc}")

    async def _wait_and_set_up(self) -> None:
        if self.firmata:
            await self._firmata_handshake()
        else:
            self.health_signals.set_status("degraded", WAITING_FOR_LINES, expected=True)
            if not await self._until(lambda: self._heard_line, self.config.settle):
                self.framer.reset()  # a board that only speaks when spoken to: drop what a restart cut short
        self._set_up()

    async def _firmata_handshake(self) -> None:
        """The firmware's version report (sent as it boots), or an explicit query after ``settle``;
        then its pins, checked against what the exhibit asks of them."""
        answers = self.answers
        self.health_signals.set_status("degraded", WAITING_FOR_FIRMWARE, expected=True)
        if not await self._until(lambda: answers.firmware is not None, self.config.settle):
            complained = False
            while True:
                heard = self.bytes_received
                self._send(firmata.query_firmware())
                if await self._until(lambda: answers.firmware is not None, max(self.config.settle, 1.0)):
                    break
                reason = self._no_answer(garbled=self.bytes_received > heard)
                self.health_signals.set_status("degraded", reason)
                if not complained:
                    log.warning("board %s: %s; asking again", self.name, reason)
                    complained = True
        firmware = answers.firmware
        assert firmware is not None
        log.info("board %s runs %s %d.%d", self.name, firmware.name, firmware.major, firmware.minor)
        self._send(firmata.capability_query() + firmata.analog_mapping_query())
        described = await self._until(
            lambda: answers.capabilities is not None and answers.analog_mapping is not None,
            max(self.config.settle, 1.0),
        )
        if described and answers.capabilities is not None and answers.analog_mapping is not None:
            self.pin_problems = firmata_pins.check(self.plan, answers.capabilities, answers.analog_mapping)
        else:
            self.pin_problems = []
            log.info("board %s did not list its pins; they are used unchecked", self.name)

    def _no_answer(self, garbled: bool) -> str:
        question = f"is StandardFirmata loaded, at {self.config.baud} baud?"
        if garbled:
            return f"no answer: the board sends bytes that are not Firmata ({question})"
        return f"no answer from the firmware ({question})"

    async def _until(self, done: Callable[[], bool], seconds: float) -> bool:
        """Wait until ``done()``, at most ``seconds`` of the exhibit's clock; whether it came true."""
        clock = self.context.clock
        deadline = clock.now() + seconds
        while not done():
            if clock.now() >= deadline:
                return False
            await clock.sleep(POLL_SECONDS)
        return True

    def _set_up(self) -> None:
        """The board is ready: its setup (Firmata), then every output as the exhibit has it now."""
        if self.firmata:
            leave_out = frozenset(problem.pin for problem in self.pin_problems)
            self._send(firmata_pins.setup(self.plan, self.config.sampling_ms, leave_out))
        self.ready = True
        self._write_outputs(self.outputs)
        if self.pin_problems:
            sentence = "; ".join(problem.sentence for problem in self.pin_problems)
            if sentence not in self._said:  # once, not at every reconnect
                self._said.add(sentence)
                log.warning("board %s: %s; its other pins are used", self.name, sentence)
            self.health_signals.set_status("degraded", sentence)
        else:
            self.health_signals.set_status("ok")

    def _restarted(self) -> None:
        """The firmware said hello while in use: the board restarted and lost its setup and outputs."""
        self.restarts += 1
        log.warning("board %s restarted (a reset or a brown-out); its setup and outputs are sent again", self.name)
        self.board.reset()
        self._set_up()

    def _send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _went_away(self, exc: Exception | None) -> None:
        if self.framer.pending():
            self.health_signals.error("partial")
        self._transport = None
        self.ready = False
        self.context.store.mark_stale(f"{self.name}.")
        # The health model logs the change, once: its signals are stale until it returns.
        self.health_signals.set_status("offline", f"went away from {self.device} ({exc or 'closed'})")

    # --- output ---------------------------------------------------------------------

    def set(self, values: Mapping[str, Any]) -> None:
        changed = {}
        for name, value in values.items():
            coerced = self.config.outputs[name].coerce(value)
            if self.outputs.get(name) != coerced:
                changed[name] = coerced
        self.outputs.update(changed)
        self._write_outputs(changed)

    def _write_outputs(self, values: Mapping[str, OutputValue]) -> None:
        if not self.ready:
            return  # kept in self.outputs and written when the board is ready
        for name, value in values.items():
            self._send(self._encode(self.config.outputs[name], value))

    def _encode(self, output: SerialOutputSpec, value: OutputValue) -> bytes:
        if output.invert:
            value = not value
        if self.firmata:
            assert output.pin is not None
            if output.mode == "pwm":
                return firmata.analog_write(output.pin, int(value))
            return firmata.digital_write(output.pin, int(bool(value)))
        assert output.template is not None
        shown = int(value) if isinstance(value, bool) else value
        return (output.template.format(value=shown) + "\n").encode(self.config.encoding)

    async def go_safe(self, timeout: float) -> bool:
        self.set(self.config.safe_state())
        self._write_outputs(self.config.safe_state())
        return self.ready or not self.config.outputs

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


@dataclass(frozen=True)
class BadValue:
    """Why a field or pin value cannot be its signal's value: ``type`` or ``nonfinite``."""

    kind: str


NOT_A_NUMBER = BadValue("type")
NOT_FINITE = BadValue("nonfinite")


def _convert(value: Any, spec: SerialSignalSpec) -> float | int | bool | str | BadValue:
    """A raw field or pin value as the signal's type, scaled and inverted; or why it cannot be one.

    ``inf``, ``-inf`` and ``nan`` (what ``Serial.print`` writes for a broken float, or JSON's
    ``Infinity``) are bad input: dropped, never clamped to the end of a range."""
    if spec.type == "str":
        return str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return NOT_A_NUMBER
        return NOT_A_NUMBER if math.isfinite(number) else NOT_FINITE
    number = float(value)
    if not math.isfinite(number):
        return NOT_FINITE
    if spec.scale is not None:
        number = spec.scale.apply(number)
    if spec.type == "bool":
        level = number >= 0.5 if spec.scale is not None else bool(number)
        return level != spec.invert
    return round(number) if spec.type == "int" else number
