"""The StandardFirmata subset an exhibit needs, as a codec without I/O, plus a simulated Uno.

Written from the Firmata protocol (firmata/protocol, ``protocol.md``): MIDI-like
framing where a byte with the top bit set starts a command and data bytes
carry 7 bits each, least significant first. The parser is built for a noisy
USB cable and a board that resets mid-message: it takes bytes in any
chunking, never raises, never stalls, and counts what it had to skip. Any
command byte starts over, so the next valid message after garbage always
parses.

The simulator behaves like StandardFirmata 2.5 on an Arduino Uno, quirks
included (reports only for pins the host asked about, the port value sent as
soon as digital reporting is switched on, no reply to a system reset), so a
driver that works against it works against the board.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Command bytes (the top nibble, for the ones that carry a channel or port in the low nibble).
DIGITAL_MESSAGE = 0x90
ANALOG_MESSAGE = 0xE0
REPORT_ANALOG = 0xC0
REPORT_DIGITAL = 0xD0
START_SYSEX = 0xF0
SET_PIN_MODE = 0xF4
SET_DIGITAL_PIN_VALUE = 0xF5
END_SYSEX = 0xF7
REPORT_VERSION = 0xF9
SYSTEM_RESET = 0xFF

# Sysex commands (the first byte after START_SYSEX).
ANALOG_MAPPING_QUERY = 0x69
ANALOG_MAPPING_RESPONSE = 0x6A
CAPABILITY_QUERY = 0x6B
CAPABILITY_RESPONSE = 0x6C
PIN_STATE_QUERY = 0x6D
PIN_STATE_RESPONSE = 0x6E
EXTENDED_ANALOG = 0x6F
STRING_DATA = 0x71
REPORT_FIRMWARE = 0x79
SAMPLING_INTERVAL = 0x7A

# Pin modes.
INPUT = 0x00
OUTPUT = 0x01
ANALOG = 0x02
PWM = 0x03
SERVO = 0x04
SHIFT = 0x05
I2C = 0x06
ONEWIRE = 0x07
STEPPER = 0x08
ENCODER = 0x09
SERIAL = 0x0A
INPUT_PULLUP = 0x0B

CAPABILITY_END = 0x7F
"""Ends one pin's list in a capability response."""
NOT_ANALOG = 0x7F
"""A pin without an analog channel, in an analog mapping response."""

MAX_SYSEX = 4096
"""Longest sysex payload accepted; a longer one is taken for a lost END_SYSEX and skipped."""


# -- Messages a board sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class AnalogMessage:
    """An analog input's reading (10 bits on an Uno)."""

    channel: int
    value: int


@dataclass(frozen=True)
class DigitalMessage:
    """The 8 pins of one port as a bit mask: bit i is pin ``port * 8 + i``; only input pins are set."""

    port: int
    mask: int


@dataclass(frozen=True)
class ProtocolVersion:
    major: int
    minor: int


@dataclass(frozen=True)
class FirmwareReport:
    major: int
    minor: int
    name: str


@dataclass(frozen=True)
class CapabilityResponse:
    """For each pin, in order: the modes it supports, each with its resolution in bits."""

    pins: list[dict[int, int]]


@dataclass(frozen=True)
class AnalogMappingResponse:
    """For each pin, in order: its analog channel, or None if it has none."""

    channels: list[int | None]


@dataclass(frozen=True)
class PinStateResponse:
    pin: int
    mode: int
    state: int


@dataclass(frozen=True)
class StringData:
    """Text the firmware sends, e.g. ``Unknown pin mode``."""

    text: str


@dataclass(frozen=True)
class UnknownSysex:
    """A sysex this codec does not decode (I2C replies, ...), or a pin state reply for a pin the board lacks."""

    command: int
    data: bytes = field(default=b"")


FirmataMessage = (
    AnalogMessage
    | DigitalMessage
    | ProtocolVersion
    | FirmwareReport
    | CapabilityResponse
    | AnalogMappingResponse
    | PinStateResponse
    | StringData
    | UnknownSysex
)


# -- Framing ----------------------------------------------------------------------------------------

_BOARD_COMMANDS = {DIGITAL_MESSAGE: 2, ANALOG_MESSAGE: 2, REPORT_VERSION: 2}
"""Data bytes after each command a board sends (sysex aside)."""
_HOST_COMMANDS = {
    DIGITAL_MESSAGE: 2,
    ANALOG_MESSAGE: 2,
    REPORT_ANALOG: 1,
    REPORT_DIGITAL: 1,
    SET_PIN_MODE: 2,
    SET_DIGITAL_PIN_VALUE: 2,
    REPORT_VERSION: 0,
    SYSTEM_RESET: 0,
}
"""Data bytes after each command a host sends (sysex aside); the simulator reads these."""


class _Framer:
    """Splits a byte stream into (command, data) frames; a sysex frame is (START_SYSEX, payload).

    Any byte with the top bit set ends what came before: a message it
    interrupts is dropped and counted. Stray data bytes and unknown commands
    are counted once per stretch, however long.
    """

    def __init__(self, lengths: dict[int, int], max_sysex: int = MAX_SYSEX) -> None:
        self.errors = 0
        self._lengths = lengths
        self._max_sysex = max_sysex
        self._command: int | None = None  # a channel/system command waiting for data bytes
        self._need = 0
        self._buffer = bytearray()
        self._in_sysex = False
        self._skipping = False  # inside garbage: data bytes are dropped without counting again
        self._skipping_sysex = False  # inside an overlong sysex: its END_SYSEX ends it quietly

    def frames(self, data: bytes | bytearray) -> list[tuple[int, bytes]]:
        frames: list[tuple[int, bytes]] = []
        for byte in data:
            if byte < 0x80:
                self._data_byte(byte, frames)
                continue
            if self._in_sysex:
                self._in_sysex = False
                if byte == END_SYSEX:
                    frames.append((START_SYSEX, bytes(self._buffer)))
                    self._buffer.clear()
                    continue
                self.errors += 1  # sysex cut short by another command
                self._buffer.clear()
            elif self._command is not None:
                self.errors += 1  # command cut short by another command
                self._command = None
                self._buffer.clear()
            if self._skipping_sysex and byte == END_SYSEX:
                self._skipping_sysex = False
                continue
            self._skipping = self._skipping_sysex = False
            if byte == START_SYSEX:
                self._in_sysex = True
                continue
            need = self._lengths.get(byte if byte >= 0xF0 else byte & 0xF0)
            if need is None:
                self.errors += 1
                self._skipping = True
            elif need == 0:
                frames.append((byte, b""))
            else:
                self._command, self._need = byte, need
        return frames

    def _data_byte(self, byte: int, frames: list[tuple[int, bytes]]) -> None:
        if self._in_sysex:
            if len(self._buffer) >= self._max_sysex:
                self.errors += 1
                self._in_sysex = False
                self._skipping_sysex = True
                self._buffer.clear()
            else:
                self._buffer.append(byte)
        elif self._command is not None:
            self._buffer.append(byte)
            if len(self._buffer) == self._need:
                frames.append((self._command, bytes(self._buffer)))
                self._command = None
                self._buffer.clear()
        elif not (self._skipping or self._skipping_sysex):
            self.errors += 1
            self._skipping = True


def _two_byte_values(data: bytes) -> list[int]:
    """7-bit LSB/MSB pairs as values; an odd last byte is ignored."""
    return [data[i] | (data[i + 1] << 7) for i in range(0, len(data) - 1, 2)]


def _decode_text(data: bytes) -> str:
    """Text sent as one 7-bit pair per byte (the firmware sends C strings byte by byte)."""
    return bytes(value & 0xFF for value in _two_byte_values(data)).decode("utf-8", errors="replace")


class FirmataParser(_Framer):
    """Board-to-host bytes in (any chunking), typed messages out; skipped input is counted in ``errors``."""

    def __init__(self, max_sysex: int = MAX_SYSEX) -> None:
        super().__init__(_BOARD_COMMANDS, max_sysex)

    def feed(self, data: bytes | bytearray) -> list[FirmataMessage]:
        """The messages completed by ``data``; never raises."""
        messages: list[FirmataMessage] = []
        for command, payload in self.frames(data):
            message = self._decode(command, payload)
            if message is None:
                self.errors += 1
            else:
                messages.append(message)
        return messages

    def _decode(self, command: int, data: bytes) -> FirmataMessage | None:
        if command == START_SYSEX:
            return self._decode_sysex(data)
        if command == REPORT_VERSION:
            return ProtocolVersion(data[0], data[1])
        value = data[0] | (data[1] << 7)
        if command & 0xF0 == ANALOG_MESSAGE:
            return AnalogMessage(command & 0x0F, value)
        return DigitalMessage(command & 0x0F, value & 0xFF)

    def _decode_sysex(self, payload: bytes) -> FirmataMessage | None:
        if not payload:
            return None
        command, data = payload[0], payload[1:]
        if command == REPORT_FIRMWARE:
            if len(data) < 2:
                return None
            return FirmwareReport(data[0], data[1], _decode_text(data[2:]))
        if command == CAPABILITY_RESPONSE:
            return _decode_capabilities(data)
        if command == ANALOG_MAPPING_RESPONSE:
            return AnalogMappingResponse([None if channel == NOT_ANALOG else channel for channel in data])
        if command == PIN_STATE_RESPONSE:
            if len(data) < 3:  # the board's answer for a pin it does not have is the pin alone
                return UnknownSysex(command, data) if len(data) == 1 else None
            state = sum(byte << (7 * index) for index, byte in enumerate(data[2:]))
            return PinStateResponse(data[0], data[1], state)
        if command == STRING_DATA:
            return StringData(_decode_text(data))
        return UnknownSysex(command, data)


def _decode_capabilities(data: bytes) -> CapabilityResponse | None:
    pins: list[dict[int, int]] = []
    current: dict[int, int] = {}
    index = 0
    while index < len(data):
        if data[index] == CAPABILITY_END:
            pins.append(current)
            current = {}
            index += 1
        elif index + 1 < len(data):
            current[data[index]] = data[index + 1]
            index += 2
        else:
            return None  # a mode without its resolution
    if current:
        return None  # the last pin's list never ended
    return CapabilityResponse(pins)


# -- Encoders: host to board ------------------------------------------------------------------------


def _check(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, not {value}")
    return value


def _seven_bit(value: int) -> list[int]:
    return [value & 0x7F, (value >> 7) & 0x7F]


def sysex(command: int, data: bytes | Iterable[int] = b"") -> bytes:
    """A sysex message: START_SYSEX, command, data (7-bit bytes), END_SYSEX."""
    payload = bytes(data)
    _check("sysex command", command, 0, 0x7F)
    if any(byte > 0x7F for byte in payload):
        raise ValueError("sysex data bytes must be 7-bit (0..127)")
    return bytes([START_SYSEX, command]) + payload + bytes([END_SYSEX])


def set_pin_mode(pin: int, mode: int) -> bytes:
    return bytes([SET_PIN_MODE, _check("pin", pin, 0, 127), _check("mode", mode, 0, 127)])


def digital_write(pin: int, value: int | bool) -> bytes:
    """SET_DIGITAL_PIN_VALUE: one pin high or low (the board acts only on OUTPUT pins)."""
    return bytes([SET_DIGITAL_PIN_VALUE, _check("pin", pin, 0, 127), 1 if value else 0])


def digital_port_write(port: int, mask: int) -> bytes:
    """DIGITAL_MESSAGE to the board: all 8 pins of a port at once (older hosts' way)."""
    return bytes([DIGITAL_MESSAGE | _check("port", port, 0, 15), *_seven_bit(_check("mask", mask, 0, 0xFF))])


def analog_write(pin: int, value: int) -> bytes:
    """PWM duty or servo angle: ANALOG_MESSAGE where it fits (pin < 16, 14 bits), else EXTENDED_ANALOG."""
    _check("pin", pin, 0, 127)
    _check("value", value, 0, (1 << 21) - 1)  # StandardFirmata reads at most three 7-bit bytes
    if pin < 16 and value < (1 << 14):
        return bytes([ANALOG_MESSAGE | pin, *_seven_bit(value)])
    data = [pin, *_seven_bit(value)]
    if value >> 14:
        data.append(value >> 14)
    return sysex(EXTENDED_ANALOG, data)


def report_analog(channel: int, enable: bool) -> bytes:
    return bytes([REPORT_ANALOG | _check("analog channel", channel, 0, 15), 1 if enable else 0])


def report_digital(port: int, enable: bool) -> bytes:
    return bytes([REPORT_DIGITAL | _check("port", port, 0, 15), 1 if enable else 0])


def sampling_interval(ms: int) -> bytes:
    """How often the board sends analog readings (StandardFirmata's default is 19 ms)."""
    return sysex(SAMPLING_INTERVAL, _seven_bit(_check("sampling interval (ms)", ms, 1, 16383)))


def query_firmware() -> bytes:
    return sysex(REPORT_FIRMWARE)


def capability_query() -> bytes:
    return sysex(CAPABILITY_QUERY)


def analog_mapping_query() -> bytes:
    return sysex(ANALOG_MAPPING_QUERY)


def pin_state_query(pin: int) -> bytes:
    return sysex(PIN_STATE_QUERY, [_check("pin", pin, 0, 127)])


def query_version() -> bytes:
    return bytes([REPORT_VERSION])


def system_reset() -> bytes:
    """Back to the firmware's defaults: reporting off, pins in their default modes. The board does not reply."""
    return bytes([SYSTEM_RESET])


# -- Encoders: board to host (the simulator's side, and test fixtures) ---------------------------------


def analog_report(channel: int, value: int) -> bytes:
    return bytes(
        [ANALOG_MESSAGE | _check("analog channel", channel, 0, 15), *_seven_bit(_check("value", value, 0, 16383))]
    )


def digital_report(port: int, mask: int) -> bytes:
    return bytes([DIGITAL_MESSAGE | _check("port", port, 0, 15), *_seven_bit(_check("mask", mask, 0, 0xFF))])


def version_report(major: int, minor: int) -> bytes:
    return bytes([REPORT_VERSION, _check("major", major, 0, 127), _check("minor", minor, 0, 127)])


def _encode_text(text: str) -> list[int]:
    return [part for byte in text.encode("utf-8") for part in _seven_bit(byte)]


def firmware_report(major: int, minor: int, name: str) -> bytes:
    return sysex(REPORT_FIRMWARE, [_check("major", major, 0, 127), _check("minor", minor, 0, 127), *_encode_text(name)])


def string_data(text: str) -> bytes:
    return sysex(STRING_DATA, _encode_text(text))


def capability_response(pins: list[dict[int, int]]) -> bytes:
    data: list[int] = []
    for modes in pins:
        for mode, resolution in modes.items():
            data += [_check("mode", mode, 0, 126), _check("resolution", resolution, 0, 127)]
        data.append(CAPABILITY_END)
    return sysex(CAPABILITY_RESPONSE, data)


def analog_mapping_response(channels: list[int | None]) -> bytes:
    return sysex(
        ANALOG_MAPPING_RESPONSE,
        [NOT_ANALOG if channel is None else _check("analog channel", channel, 0, 126) for channel in channels],
    )


def pin_state_response(pin: int, mode: int, state: int) -> bytes:
    """State in as many 7-bit bytes as it needs, at least one (as StandardFirmata sends it)."""
    _check("state", state, 0, (1 << 21) - 1)
    data = [_check("pin", pin, 0, 127), _check("mode", mode, 0, 127), state & 0x7F]
    if state >> 7:
        data.append((state >> 7) & 0x7F)
    if state >> 14:
        data.append(state >> 14)
    return sysex(PIN_STATE_RESPONSE, data)


# -- Board state ------------------------------------------------------------------------------------


class FirmataBoardState:
    """Turns reports into per-pin values, ``A0`` (analog channel, int) and ``D2`` (digital pin, bool).

    A digital report carries a whole port, and the board clears the bits of
    pins that are not inputs; pass ``digital_pins`` (the inputs the driver set
    up) so those bits do not show up as pins stuck at False. Likewise
    ``analog_channels``. None means every pin or channel reported.
    """

    def __init__(self, digital_pins: Iterable[int] | None = None, analog_channels: Iterable[int] | None = None) -> None:
        self.digital_pins = None if digital_pins is None else frozenset(digital_pins)
        self.analog_channels = None if analog_channels is None else frozenset(analog_channels)
        self.digital: dict[int, bool] = {}
        self.analog: dict[int, int] = {}

    def reset(self) -> None:
        """Forget every value (after a reconnect), so the next report of each pin counts as a change."""
        self.digital.clear()
        self.analog.clear()

    def apply(self, message: FirmataMessage) -> list[tuple[str, int | bool]]:
        """The pins whose value this message changed (a pin's first report always counts)."""
        changed: list[tuple[str, int | bool]] = []
        if isinstance(message, AnalogMessage):
            channel = message.channel
            if self.analog_channels is not None and channel not in self.analog_channels:
                return changed
            if self.analog.get(channel) != message.value:
                self.analog[channel] = message.value
                changed.append((f"A{channel}", message.value))
        elif isinstance(message, DigitalMessage):
            for bit in range(8):
                pin = message.port * 8 + bit
                if self.digital_pins is not None and pin not in self.digital_pins:
                    continue
                level = bool(message.mask >> bit & 1)
                if self.digital.get(pin) != level:
                    self.digital[pin] = level
                    changed.append((f"D{pin}", level))
        return changed


# -- Simulator --------------------------------------------------------------------------------------


class StandardFirmataSimulator:
    """An Arduino Uno running StandardFirmata 2.5: host bytes in, the board's bytes out.

    Pins 0 and 1 carry the USB serial link and support no mode; 2..19 are
    digital, 14..19 also analog channels 0..5, 3/5/6/9/10/11 PWM and 18/19
    I2C. As on the board, a pin acts on writes only in the matching mode
    (``digital_write`` on OUTPUT, ``analog_write`` on PWM or SERVO), analog
    pins start in ANALOG mode and the others in OUTPUT, and a report goes out
    only for what the host switched reporting on for.
    """

    TOTAL_PINS = 20
    ANALOG_CHANNELS = 6
    FIRST_ANALOG_PIN = 14
    PWM_PINS = frozenset({3, 5, 6, 9, 10, 11})
    I2C_PINS = frozenset({18, 19})
    PROTOCOL_VERSION = (2, 5)
    FIRMWARE_VERSION = (2, 5)
    FIRMWARE_NAME = "StandardFirmata.ino"
    DEFAULT_SAMPLING_INTERVAL = 19
    _KNOWN_MODES = frozenset({INPUT, OUTPUT, ANALOG, PWM, SERVO, I2C, SERIAL, INPUT_PULLUP})

    def __init__(self) -> None:
        self._framer = _Framer(_HOST_COMMANDS)
        self.commands: list[tuple[int, bytes]] = []
        """Every frame the host sent, in order: (command byte, data or sysex payload)."""
        self.digital_writes: list[tuple[int, int]] = []
        """Accepted digital writes, in order: (pin, 0 or 1)."""
        self.analog_writes: list[tuple[int, int]] = []
        """Accepted PWM/servo writes, in order: (pin, value)."""
        self.resets = 0
        self.analog_levels = [0] * self.ANALOG_CHANNELS
        """What each analog input reads, 0..1023 (set_analog)."""
        self.digital_levels: dict[int, bool] = {}
        """What digital inputs read, where set_digital was called; an INPUT_PULLUP pin reads high otherwise."""
        self.pin_modes: dict[int, int] = {}
        self.pin_states: dict[int, int] = {}
        self.analog_reporting: set[int] = set()
        self.digital_reporting: set[int] = set()
        self.sampling_interval_ms = self.DEFAULT_SAMPLING_INTERVAL
        self._previous_ports: dict[int, int] = {}
        self._reset_state()

    @property
    def errors(self) -> int:
        """Host bytes the board could not make sense of."""
        return self._framer.errors

    @property
    def total_ports(self) -> int:
        return (self.TOTAL_PINS + 7) // 8

    def is_digital(self, pin: int) -> bool:
        return 2 <= pin < self.TOTAL_PINS

    def is_analog(self, pin: int) -> bool:
        return self.FIRST_ANALOG_PIN <= pin < self.FIRST_ANALOG_PIN + self.ANALOG_CHANNELS

    def capabilities(self) -> list[dict[int, int]]:
        """Each pin's modes and resolutions, in the order StandardFirmata lists them."""
        pins: list[dict[int, int]] = []
        for pin in range(self.TOTAL_PINS):
            modes: dict[int, int] = {}
            if self.is_digital(pin):
                modes.update({INPUT: 1, INPUT_PULLUP: 1, OUTPUT: 1})
            if self.is_analog(pin):
                modes[ANALOG] = 10
            if pin in self.PWM_PINS:
                modes[PWM] = 8
            if self.is_digital(pin):
                modes[SERVO] = 14
            if pin in self.I2C_PINS:
                modes[I2C] = 1
            pins.append(modes)
        return pins

    def analog_mapping(self) -> list[int | None]:
        return [pin - self.FIRST_ANALOG_PIN if self.is_analog(pin) else None for pin in range(self.TOTAL_PINS)]

    def startup(self) -> bytes:
        """Power-on: state back to defaults (inputs keep their levels), and what the board sends on boot."""
        self.sampling_interval_ms = self.DEFAULT_SAMPLING_INTERVAL
        self._reset_state()
        return version_report(*self.PROTOCOL_VERSION) + firmware_report(*self.FIRMWARE_VERSION, self.FIRMWARE_NAME)

    def handle(self, data: bytes | bytearray) -> bytes:
        """Consume host bytes (any chunking); the board's replies."""
        reply = bytearray()
        for command, payload in self._framer.frames(data):
            self.commands.append((command, payload))
            reply += self._execute(command, payload)
        return bytes(reply)

    def set_analog(self, channel: int, value: int) -> bytes:
        """An analog input now reads ``value``; the report the board sends, if reporting is on for it."""
        _check("analog channel", channel, 0, self.ANALOG_CHANNELS - 1)
        self.analog_levels[channel] = _check("value", value, 0, 1023)
        return self._analog_sample(channel)

    def set_digital(self, pin: int, value: bool | int) -> bytes:
        """A digital input now reads ``value``; the port report the board sends, if reporting is on and it changed."""
        if not self.is_digital(pin):
            raise ValueError(f"pin {pin} is not a digital pin of an Uno (2..{self.TOTAL_PINS - 1})")
        self.digital_levels[pin] = bool(value)
        port = pin // 8
        if port not in self.digital_reporting:
            return b""
        return self._output_port(port, force=False)

    def sample(self) -> bytes:
        """One sampling interval's analog reports: every reporting channel whose pin is in ANALOG mode."""
        return b"".join(self._analog_sample(channel) for channel in range(self.ANALOG_CHANNELS))

    # -- firmware behaviour --

    def _reset_state(self) -> None:
        self.digital_reporting.clear()
        self._previous_ports.clear()
        for pin in range(self.TOTAL_PINS):
            if self.is_analog(pin):
                self.pin_modes[pin] = ANALOG
            elif self.is_digital(pin):
                self.pin_modes[pin] = OUTPUT
            self.pin_states[pin] = 0
        self.analog_reporting.clear()

    def _analog_sample(self, channel: int) -> bytes:
        if channel in self.analog_reporting and self.pin_modes.get(self.FIRST_ANALOG_PIN + channel) == ANALOG:
            return analog_report(channel, self.analog_levels[channel])
        return b""

    def _read_port(self, port: int) -> int:
        mask = 0
        for bit in range(8):
            pin = port * 8 + bit
            mode = self.pin_modes.get(pin)
            if mode in (INPUT, INPUT_PULLUP) and self.digital_levels.get(pin, mode == INPUT_PULLUP):
                mask |= 1 << bit
        return mask

    def _output_port(self, port: int, force: bool) -> bytes:
        value = self._read_port(port)
        if not force and self._previous_ports.get(port, 0) == value:
            return b""
        self._previous_ports[port] = value
        return digital_report(port, value)

    def _execute(self, command: int, data: bytes) -> bytes:
        if command == START_SYSEX:
            return self._sysex(data)
        if command == REPORT_VERSION:
            return version_report(*self.PROTOCOL_VERSION)
        if command == SYSTEM_RESET:
            self.resets += 1
            self._reset_state()
            return b""
        if command == SET_PIN_MODE:
            return self._set_pin_mode(data[0], data[1])
        if command == SET_DIGITAL_PIN_VALUE:
            self._set_pin_value(data[0], data[1])
            return b""
        low, high = command & 0x0F, command & 0xF0
        if high == REPORT_ANALOG:
            return self._report_analog(low, data[0] != 0)
        if high == REPORT_DIGITAL:
            if low < self.total_ports:
                if data[0]:
                    self.digital_reporting.add(low)
                    return self._output_port(low, force=True)
                self.digital_reporting.discard(low)
            return b""
        if high == ANALOG_MESSAGE:
            self._analog_write(low, data[0] | (data[1] << 7))
            return b""
        self._digital_port_write(low, (data[0] | (data[1] << 7)) & 0xFF)  # DIGITAL_MESSAGE
        return b""

    def _report_analog(self, channel: int, enable: bool) -> bytes:
        if channel >= self.ANALOG_CHANNELS:
            return b""
        if not enable:
            self.analog_reporting.discard(channel)
            return b""
        self.analog_reporting.add(channel)
        return analog_report(channel, self.analog_levels[channel])  # sent at once, whatever the pin's mode

    def _set_pin_mode(self, pin: int, mode: int) -> bytes:
        if pin >= self.TOTAL_PINS:
            return b""
        reply = b""
        if self.is_analog(pin):
            reply = self._report_analog(pin - self.FIRST_ANALOG_PIN, mode == ANALOG)
        self.pin_states[pin] = 0
        if mode not in self._KNOWN_MODES:
            return reply + string_data("Unknown pin mode")
        if mode in self.capabilities()[pin]:
            self.pin_modes[pin] = mode
            if mode == INPUT_PULLUP:
                self.pin_states[pin] = 1
        return reply

    def _set_pin_value(self, pin: int, value: int) -> None:
        if self.is_digital(pin) and self.pin_modes.get(pin) == OUTPUT:
            self.pin_states[pin] = value
            self.digital_writes.append((pin, value))

    def _digital_port_write(self, port: int, mask: int) -> None:
        for bit in range(8):
            pin = port * 8 + bit
            if not self.is_digital(pin):
                continue
            value = mask >> bit & 1
            if self.pin_modes.get(pin) == OUTPUT:
                self.pin_states[pin] = value
                self.digital_writes.append((pin, value))
            elif self.pin_modes.get(pin) == INPUT:
                self.pin_states[pin] = value  # 1 switches the pull-up on, for old hosts

    def _analog_write(self, pin: int, value: int) -> None:
        if pin < self.TOTAL_PINS and self.pin_modes.get(pin) in (PWM, SERVO):
            self.pin_states[pin] = value
            self.analog_writes.append((pin, value))

    def _sysex(self, payload: bytes) -> bytes:
        if not payload:
            return b""
        command, data = payload[0], payload[1:]
        if command == REPORT_FIRMWARE:
            return firmware_report(*self.FIRMWARE_VERSION, self.FIRMWARE_NAME)
        if command == CAPABILITY_QUERY:
            return capability_response(self.capabilities())
        if command == ANALOG_MAPPING_QUERY:
            return analog_mapping_response(self.analog_mapping())
        if command == PIN_STATE_QUERY and data:
            pin = data[0]
            if pin >= self.TOTAL_PINS:
                return sysex(PIN_STATE_RESPONSE, [pin])
            return pin_state_response(pin, self.pin_modes.get(pin, INPUT), self.pin_states.get(pin, 0) & 0xFFFF)
        if command == SAMPLING_INTERVAL and len(data) > 1:
            self.sampling_interval_ms = max(1, data[0] | (data[1] << 7))
        elif command == EXTENDED_ANALOG and len(data) > 1:
            value = data[1] | (data[2] << 7 if len(data) > 2 else 0) | (data[3] << 14 if len(data) > 3 else 0)
            self._analog_write(data[0], value)
        return b""
