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
import json
import logging
import math
import os
import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import serial_asyncio_fast
from pydantic import Field, model_validator
from serial.tools import list_ports

from engine.drivers import DriverContext, Fault, WritableSensor
from engine.health import InputHealth, MessageInputConfig
from engine.model import ComponentProblem, Name, Scale, SignalType, StoreType, Strict, coerce_output
from engine.reconnect import Backoff, Reconnect
from sensors import firmata
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


class SerialOutputSpec(Strict):
    template: str | None = Field(
        None, description="Line sent for a new value, e.g. `LED {value}` (a newline is added)."
    )
    pin: int | None = Field(None, ge=0, le=127, description="Firmata pin to drive.")
    mode: Literal["digital", "pwm"] = Field("digital", description="Firmata output mode.")
    type: SignalType = Field("bool", description="Value type.")
    range: tuple[float, float] | None = Field(None, description="[min, max] for numbers; values are clamped.")
    safe: OutputValue = Field(description="Value sent at start-up, on PANIC and before a clean stop.")

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
        for name, output in self.outputs.items():
            if firmata_mode and output.pin is None:
                raise ValueError(f"output `{name}` needs a `pin` with `format: firmata`")
            if not firmata_mode and (output.template is None or "{value" not in output.template):
                raise ValueError(f"output `{name}` needs a `template` containing `{{value}}`, e.g. `LED {{value}}`")
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


class _Protocol(asyncio.Protocol):
    def __init__(self, sensor: SerialSensor) -> None:
        self.sensor = sensor
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.sensor.handle_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


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
        self.outputs: dict[str, OutputValue] = config.safe_state()
        self.backoff = Backoff(initial=0.25, cap=5.0, stable_after=2.0)
        self._rng = random.Random()
        self._transport: asyncio.Transport | None = None
        self.device: str | None = None
        self.connections = 0

    # --- input --------------------------------------------------------------------

    def handle_bytes(self, data: bytes) -> None:
        """Everything the board sent; never raises, whatever the bytes are."""
        if self.firmata:
            errors = self.parser.errors
            for message in self.parser.feed(data):
                for pin, value in self.board.apply(message):
                    self._emit_pin(pin, value)
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
        except UnicodeDecodeError:
            self.health_signals.error("decode")
            return
        except FormatError:
            self.health_signals.error("parse")
            return
        matched = False
        for field, value in fields.items():
            route = self.by_field.get(field)
            if route is not None:
                matched |= self._emit(route[0], route[1], value)
        if matched:
            self.health_signals.message()
        else:
            self.health_signals.error("fields")

    def _emit_pin(self, pin: str, value: int | bool) -> None:
        route = self.by_pin.get(pin)
        if route is not None and self._emit(route[0], route[1], value):
            self.health_signals.message()

    def _emit(self, signal: str, spec: SerialSignalSpec, value: Any) -> bool:
        converted = _convert(value, spec)
        if converted is None:
            self.health_signals.error("type")
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
                self._went_away(await protocol.lost)
                lost_logged = True
            await reconnect.wait()

    async def _open(self) -> _Protocol:
        device = resolve_port(self.config)
        loop = asyncio.get_running_loop()
        transport, protocol = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: _Protocol(self),
            url=device,
            baudrate=self.config.baud,
            bytesize=self.config.bytesize,
            parity=self.config.parity,
            stopbits=self.config.stopbits,
        )
        assert isinstance(protocol, _Protocol)
        self._transport, self.device = transport, device
        self.connections += 1
        self.framer.reset()
        self.parser = firmata.FirmataParser()
        self.health_signals.set_status("ok")
        if self.firmata:
            transport.write(self._firmata_setup())
        self._write_outputs(self.outputs)  # the board restarts with its outputs as we last left them
        return protocol

    def _went_away(self, exc: Exception | None) -> None:
        if self.framer.pending():
            self.health_signals.error("partial")
        self._transport = None
        self.context.store.mark_stale(f"{self.name}.")
        # The health model logs the change, once: its signals are stale until it returns.
        self.health_signals.set_status("offline", f"went away from {self.device} ({exc or 'closed'})")

    def _firmata_setup(self) -> bytes:
        # A reset first: boards that do not reboot when the port opens (Leonardo) may have been left
        # with pins in other modes; StandardFirmata's reset puts analog pins back in ANALOG mode.
        out = bytearray(firmata.system_reset() + firmata.query_firmware())
        out += firmata.sampling_interval(self.config.sampling_ms)
        ports: set[int] = set()
        for spec in self.config.signals.values():
            kind, number = PIN.match(spec.pin or "").groups()  # type: ignore[union-attr]
            if kind == "A":
                out += firmata.report_analog(int(number), True)
            else:
                out += firmata.set_pin_mode(int(number), firmata.INPUT_PULLUP)
                ports.add(int(number) // 8)
        for port in sorted(ports):
            out += firmata.report_digital(port, True)
        for output in self.config.outputs.values():
            mode = firmata.PWM if output.mode == "pwm" else firmata.OUTPUT
            out += firmata.set_pin_mode(output.pin or 0, mode)
        return bytes(out)

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
        if self._transport is None or self._transport.is_closing():
            return  # kept in self.outputs and written when the board is back
        for name, value in values.items():
            self._transport.write(self._encode(self.config.outputs[name], value))

    def _encode(self, output: SerialOutputSpec, value: OutputValue) -> bytes:
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
        return self._transport is not None or not self.config.outputs

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _convert(value: Any, spec: SerialSignalSpec) -> float | int | bool | str | None:
    """A raw field or pin value as the signal's type, scaled; None if it cannot be one."""
    if isinstance(value, str) and spec.type != "str":
        return None
    if spec.type == "str":
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    if spec.scale is not None:
        number = spec.scale.apply(number)
    if spec.type == "bool":
        return number >= 0.5 if spec.scale is not None else bool(number)
    return round(number) if spec.type == "int" else number


class SimulatedSerialSensor(SerialSensor):
    """Plays the board, without a port: lines in the configured format (or StandardFirmata
    reports) go through the same parsing as real bytes. The first button presses for 0.3 s
    every 10 s (others every 60 s);
    numbers follow a slow wave over their scale's input range (0..1023 without one).

    ``inject("disconnect" | "stall" | "garbage" | "slow" | "clear")`` scripts faults.
    Commands sent to the board are kept, encoded, in ``written``.
    """

    def __init__(self, name: str, config: SerialSensorConfig, context: DriverContext, rate: float = 10.0) -> None:
        super().__init__(name, config, context)
        self.rate = rate
        self.fault: Fault = "clear"
        self.written: list[bytes] = []
        self.board_simulator = firmata.StandardFirmataSimulator() if self.firmata else None

    def inject(self, fault: Fault) -> None:
        self.fault = fault
        if fault == "disconnect":
            self.context.store.mark_stale(f"{self.name}.")
            self.health_signals.set_status("offline", "simulated disconnect")
        elif fault == "clear":
            self.health_signals.set_status("ok")
        log.info("simulated board %s: fault %s", self.name, fault)

    async def _connect_forever(self) -> None:
        clock = self.context.clock
        self.health_signals.set_status("ok")
        log.info("board %s is simulated (no serial port is opened)", self.name)
        if self.board_simulator is not None:
            self.handle_bytes(self.board_simulator.startup())
            self.handle_bytes(self.board_simulator.handle(self._firmata_setup()))
        self._write_outputs(self.outputs)
        start = clock.now()
        while True:
            await clock.sleep(1.0 / (self.rate / 4 if self.fault == "slow" else self.rate))
            if self.fault in ("disconnect", "stall"):
                continue
            self.handle_bytes(os.urandom(31) + b"\n" if self.fault == "garbage" else self.frame(clock.now() - start))

    def _write_outputs(self, values: Mapping[str, OutputValue]) -> None:
        for name, value in values.items():
            encoded = self._encode(self.config.outputs[name], value)
            self.written.append(encoded)
            if self.board_simulator is not None:
                self.board_simulator.handle(encoded)

    async def go_safe(self, timeout: float) -> bool:
        self.set(self.config.safe_state())
        return self.fault != "disconnect"

    def raw_values(self, t: float) -> dict[str, float | int | bool]:
        """What each signal's field or pin reads at time ``t``."""
        values: dict[str, float | int | bool] = {}
        buttons = 0
        for index, spec in enumerate(self.config.signals.values()):
            key = spec.field or spec.pin or ""
            if spec.type == "bool" or (spec.pin or "").startswith("D"):
                # The first button is pressed every 10 s, any others (an e-stop...) only every 60 s.
                period = 10.0 if buttons == 0 else 60.0
                values[key] = ((t + 5.0 * buttons) % period) < 0.3
                buttons += 1
                continue
            low, high = spec.scale.input if spec.scale else (0.0, 1023.0)
            wave = 0.5 - 0.5 * math.cos(2 * math.pi * t / (7.0 + index))
            value = low + wave * (high - low)
            values[key] = round(value) if spec.type == "int" or spec.scale is None else value
        return values

    def frame(self, t: float) -> bytes:
        values = self.raw_values(t)
        if self.board_simulator is not None:
            out = bytearray()
            for pin, value in values.items():
                kind, number = PIN.match(pin).groups()  # type: ignore[union-attr]
                if kind == "A":
                    out += self.board_simulator.set_analog(int(number), int(value))
                else:
                    out += self.board_simulator.set_digital(int(number), bool(value))
            return bytes(out)
        shown = {key: int(v) if isinstance(v, bool) else v for key, v in values.items()}
        if self.config.format == "json":
            return (json.dumps(values) + "\n").encode()
        if self.config.format == "keyvalue":
            return (" ".join(f"{k}{self.config.separator}{v}" for k, v in shown.items()) + "\n").encode()
        if self.config.format == "csv":
            columns = self.config.columns or []
            return (self.config.delimiter.join(str(shown.get(c, 0)) for c in columns) + "\n").encode()
        return b""  # a regular expression cannot be played backwards: the simulated board stays quiet
