"""An Arduino-class board as it behaves at the end of a real USB cable, without the cable.

Most boards (Uno, Mega, Nano on FTDI or CH340) restart when their port is opened: the
host's DTR line resets the microcontroller, its bootloader listens for about a second and
swallows whatever the host sends meanwhile, then the sketch starts and says hello
(StandardFirmata sends its protocol and firmware versions). A board restarts the same way
after a brown-out. :class:`AutoResetBoard` plays that, on time given by its caller, around a
sketch: :class:`FirmataSketch` (StandardFirmata 2.5, reporting every sampling interval)
or :class:`LineSketch` (a sketch that prints a line at a steady rate and reads command lines).

The simulated serial sensor runs it on the exhibit's clock; the tests run it on a pty,
in real time, so that every serial test talks to a board that reboots when opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from sensors.firmata import StandardFirmataSimulator

BOOTLOADER_SECONDS = 1.0
"""How long an Uno's bootloader (optiboot) listens after a reset before it starts the sketch."""

Levels = Callable[[float], Mapping[str, float | int | bool]]
"""What the board's inputs read at a sketch time: ``{"A0": 512, "D2": True}``."""


class Sketch(Protocol):
    """What runs on the board once the bootloader is done."""

    def boot(self) -> bytes:
        """Start from scratch; what the sketch sends as it starts."""
        ...

    def receive(self, data: bytes) -> bytes:
        """Bytes from the host (any chunking); the sketch's replies."""
        ...

    def poll(self, t: float) -> bytes:
        """What the sketch sends by ``t`` seconds after it started (called often, in order)."""
        ...


class FirmataSketch:
    """StandardFirmata: analog reports every sampling interval for the channels the host
    asked about, a digital port's report as soon as one of its input pins changes."""

    def __init__(self, levels: Levels | None = None) -> None:
        self.levels = levels
        self.firmware = StandardFirmataSimulator()
        self._next_sample = 0.0

    def boot(self) -> bytes:
        self._next_sample = 0.0
        return self.firmware.startup()

    def receive(self, data: bytes) -> bytes:
        return self.firmware.handle(data)

    def poll(self, t: float) -> bytes:
        out = bytearray()
        firmware = self.firmware
        if self.levels is not None:
            for pin, value in self.levels(t).items():
                number = int(pin[1:])
                if pin[0] == "A":
                    firmware.analog_levels[number] = int(value)
                else:
                    out += firmware.set_digital(number, bool(value))
        interval = firmware.sampling_interval_ms / 1000.0
        if t - self._next_sample > 1.0:  # a caller that was away for long: no burst of old samples
            self._next_sample = t
        while self._next_sample <= t:
            out += firmware.sample()
            self._next_sample += interval
        return bytes(out)


class LineSketch:
    """A sketch that prints ``frame(t)`` ``rate`` times a second (after ``banner`` at start)
    and keeps the command lines it is sent (``LED 1``) in ``commands``."""

    def __init__(self, frame: Callable[[float], bytes], rate: float, banner: bytes = b"") -> None:
        self.frame = frame
        self.rate = rate
        self.banner = banner
        self.commands: list[bytes] = []
        self._partial = bytearray()
        self._next_line = 0.0

    def boot(self) -> bytes:
        self._partial.clear()
        self._next_line = 0.0
        return self.banner

    def receive(self, data: bytes) -> bytes:
        self._partial += data
        while (end := self._partial.find(b"\n")) >= 0:
            self.commands.append(bytes(self._partial[:end]).rstrip(b"\r"))
            del self._partial[: end + 1]
        return b""

    def poll(self, t: float) -> bytes:
        out = bytearray()
        if t - self._next_line > 1.0:
            self._next_line = t
        while self._next_line <= t:
            out += self.frame(self._next_line)
            self._next_line += 1.0 / self.rate
        return bytes(out)


class AutoResetBoard:
    """A sketch behind a bootloader: :meth:`open` (the host opening the port) resets the board
    when ``auto_reset`` is on (as DTR does on an Uno); for ``bootloader_s`` after any reset the
    host's bytes are swallowed (counted in ``swallowed``) and nothing is sent; then the sketch
    boots. Time is the caller's, in seconds, never going back."""

    def __init__(
        self, sketch: Sketch, now: float, bootloader_s: float = BOOTLOADER_SECONDS, auto_reset: bool = True
    ) -> None:
        self.sketch = sketch
        self.bootloader_s = bootloader_s
        self.auto_reset = auto_reset
        self.resets = 0
        self.swallowed = 0
        self._boot_at = now
        self._started_at: float | None = None
        self.reset(now)  # powered on: it has been running since, when the host comes

    def open(self, now: float) -> None:
        """The host opened the port."""
        if self.auto_reset:
            self.reset(now)

    def reset(self, now: float) -> None:
        """The microcontroller restarts (DTR, the reset button, a brown-out)."""
        self.resets += 1
        self._boot_at = now + self.bootloader_s
        self._started_at = None

    @property
    def in_bootloader(self) -> bool:
        return self._started_at is None

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host; the board's replies (none while the bootloader runs)."""
        booted = self._boot_if_due(now)
        if self._started_at is None:
            self.swallowed += len(data)
            return b""
        return booted + self.sketch.receive(data)

    def poll(self, now: float) -> bytes:
        """What the board sends by ``now``: its boot messages once, then the sketch's output."""
        booted = self._boot_if_due(now)
        if self._started_at is None:
            return b""
        return booted + self.sketch.poll(now - self._started_at)

    def _boot_if_due(self, now: float) -> bytes:
        if self._started_at is not None or now < self._boot_at:
            return b""
        self._started_at = self._boot_at
        return self.sketch.boot()
