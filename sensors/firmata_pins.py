"""What an exhibit asks of a Firmata board's pins: whether the board can do it, and the setup to send.

The board describes itself (the capability and analog-mapping answers); a pin it cannot use as
asked is a sentence for the operator, and is left out of the setup rather than sent a mode the
firmware would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sensors import firmata

OutputMode = Literal["digital", "pwm"]


@dataclass(frozen=True)
class PinPlan:
    """The pins an exhibit uses: analog channels read, digital pins read (with their pull-up), pins driven."""

    analog_inputs: tuple[int, ...] = ()
    digital_inputs: tuple[tuple[int, bool], ...] = ()
    outputs: tuple[tuple[int, OutputMode], ...] = ()

    def ports(self) -> set[int]:
        """The digital ports (8 pins each) that have an input to report."""
        return {pin // 8 for pin, _ in self.digital_inputs}


@dataclass(frozen=True)
class PinProblem:
    pin: str
    """``A6`` for an analog channel, ``D9`` for a digital pin."""
    sentence: str


def check(plan: PinPlan, capabilities: list[dict[int, int]], analog_mapping: list[int | None]) -> list[PinProblem]:
    """What the board, as it described itself, cannot do of ``plan``."""
    problems: list[PinProblem] = []
    channels = {channel for channel in analog_mapping if channel is not None}
    for channel in plan.analog_inputs:
        if channel not in channels:
            problems.append(PinProblem(f"A{channel}", f"pin A{channel} is not an analog input on this board"))
    for pin, pullup in plan.digital_inputs:
        mode, words = (firmata.INPUT_PULLUP, "an input with pull-up") if pullup else (firmata.INPUT, "an input")
        if pin >= len(capabilities):
            problems.append(PinProblem(f"D{pin}", f"this board has no pin D{pin}"))
        elif mode not in capabilities[pin]:
            problems.append(PinProblem(f"D{pin}", f"pin D{pin} cannot be {words} on this board"))
    for pin, output_mode in plan.outputs:
        mode, words = (firmata.PWM, "do PWM") if output_mode == "pwm" else (firmata.OUTPUT, "be a digital output")
        if pin >= len(capabilities):
            problems.append(PinProblem(f"D{pin}", f"this board has no pin D{pin}"))
        elif mode not in capabilities[pin]:
            problems.append(PinProblem(f"D{pin}", f"pin D{pin} cannot {words} on this board"))
    return problems


def setup(plan: PinPlan, sampling_ms: int, leave_out: frozenset[str] = frozenset()) -> bytes:
    """The bytes that put the board in the state ``plan`` needs, leaving out the pins named in ``leave_out``.

    A reset first: boards that do not restart when the port opens (a Leonardo, an Uno without
    auto-reset) may have been left with pins in other modes; StandardFirmata's reset puts the
    analog pins back in ANALOG mode and switches every report off.
    """
    out = bytearray(firmata.system_reset())
    out += firmata.sampling_interval(sampling_ms)
    for channel in plan.analog_inputs:
        if f"A{channel}" not in leave_out:
            out += firmata.report_analog(channel, True)
    ports: set[int] = set()
    for pin, pullup in plan.digital_inputs:
        if f"D{pin}" not in leave_out:
            out += firmata.set_pin_mode(pin, firmata.INPUT_PULLUP if pullup else firmata.INPUT)
            ports.add(pin // 8)
    for port in sorted(ports):
        out += firmata.report_digital(port, True)
    for pin, output_mode in plan.outputs:
        if f"D{pin}" not in leave_out:
            out += firmata.set_pin_mode(pin, firmata.PWM if output_mode == "pwm" else firmata.OUTPUT)
    return bytes(out)
