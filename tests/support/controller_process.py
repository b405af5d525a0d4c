"""The controller as a separate process, and gear that notes when each command arrived, for the
fault-injection tests (tests/integration/test_fault_injection_*.py).

:class:`ControllerProcess` runs ``launcher.py run`` (or another module of this checkout) in its own process,
its output in a file, so it can be SIGKILLed like a controller whose power is cut. :class:`TimedGear` is
:class:`tests.support.mqtt_gear.MqttGear` (a separate MQTT client that applies ``expiry`` as real firmware
does) that also keeps each command's arrival time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiomqtt

from tests.support.mqtt_gear import MqttGear

ROOT = Path(__file__).resolve().parent.parent.parent


class TimedGear(MqttGear):
    """Gear on the network that notes when each command arrived and when it fell back by itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timed: list[tuple[float, dict[str, Any]]] = []
        """(``time.monotonic()`` on arrival, command), in arrival order."""
        self.fell_back_at: list[float] = []

    async def __aenter__(self) -> TimedGear:
        await super().__aenter__()
        return self

    def _apply(self, message: aiomqtt.Message) -> None:
        self.timed.append((time.monotonic(), json.loads(bytes(message.payload))))
        super()._apply(message)

    def _fall_back(self) -> None:
        self.fell_back_at.append(time.monotonic())
        super()._fall_back()

    def since(self, moment: float) -> list[tuple[float, dict[str, Any]]]:
        return [(at, command) for at, command in self.timed if at >= moment]

    def first(self, predicate: Callable[[dict[str, Any]], bool], after: float = 0.0) -> float | None:
        """When the first command after ``after`` matching ``predicate`` arrived (None: none did)."""
        return next((at for at, command in self.since(after) if predicate(command)), None)

    async def moving(self, predicate: Callable[[Mapping[str, Any]], bool], timeout: float = 15.0) -> None:
        await self.wait_until(lambda: predicate(self.state), timeout=timeout)


class ControllerProcess:
    """``python launcher.py run EXHIBIT ...`` (or another module of this checkout) in its own process."""

    def __init__(self, args: list[str], log: Path, module: str | None = None) -> None:
        self.log = log
        self._out = log.open("w")
        command = [sys.executable, "-m", module] if module else [sys.executable, str(ROOT / "launcher.py")]
        self.process = subprocess.Popen([*command, *args], cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)

    @classmethod
    def run(cls, exhibit: Path, broker: str, *extra: str, module: str | None = None) -> ControllerProcess:
        args = ["run", str(exhibit), "--broker", broker, "--no-render", "--no-reload", *extra]
        return cls(args, exhibit.parent / "controller.log", module)

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> float:
        """SIGKILL, as when the power is cut: no clean stop, no safe state sent. Returns when it died."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)
        return time.monotonic()

    def close(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(5)
        self._out.close()


MOTOR_SAFE: dict[str, Any] = {"speed": 0.0, "enabled": False}
"""A motor profile's safe state: stopped and disabled (its position is left as it is)."""


def is_motor_safe(command: Mapping[str, Any]) -> bool:
    """A command that only brings a motor towards its safe state: every value in it is a safe value
    (``speed: 0``, ``enabled: false``, or both), and it asks for nothing else (no position)."""
    values = {k: v for k, v in command.items() if k != "expiry"}
    return bool(values) and all(key in MOTOR_SAFE and MOTOR_SAFE[key] == value for key, value in values.items())


def new_motion(gear: TimedGear, after: float) -> list[tuple[float, dict[str, Any]]]:
    """Commands arriving after ``after`` that ask a motor for something it was not already doing: a value
    that is not its safe one and differs from what the gear had (a confirmation of the last streamed value,
    sent again at QoS 1 once the stream stops, is not new motion)."""
    state: dict[str, Any] = {}
    found = []
    for at, command in gear.timed:
        values = {k: v for k, v in command.items() if k != "expiry"}
        if at >= after and any(state.get(k) != v and MOTOR_SAFE.get(k, object()) != v for k, v in values.items()):
            found.append((at, command))
        state.update(values)
    return found


async def wait_for_health(port: int, exhibit: str, component: str, timeout: float = 15.0) -> None:
    """Until the controller's retained health topic says ``component`` is ok (a board past its bootloader)."""
    topic = f"exhibit/{exhibit}/health/{component}"
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"health-{exhibit}-{component}") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                if json.loads(bytes(message.payload)).get("status") == "ok":
                    return


def became_safe(gear: TimedGear, after: float) -> float | None:
    """When, after ``after``, the gear's own state (every command applied in turn) was first a motor's
    safe state, stopped and disabled (None: never)."""
    state: dict[str, Any] = {}
    for at, command in gear.timed:
        state.update(command)
        if at >= after and all(state.get(key) == value for key, value in MOTOR_SAFE.items()):
            return at
    return None
