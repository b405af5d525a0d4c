"""What the engine expects of a sensor, a device and a shared service.

Concrete drivers live in ``sensors/`` and ``devices/`` and implement these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from engine.clock import Clock
from engine.health import ComponentHealth, HealthBoard
from engine.signals import SignalStore

T = TypeVar("T")

Fault = Literal["disconnect", "stall", "garbage", "slow", "clear"]
"""What a simulator can be told to do, the same words for every sensor and device simulator:
``disconnect`` (unplugged, unreachable), ``stall`` (connected but silent, or not answering),
``garbage`` (malformed input or replies), ``slow`` (late), and ``clear`` (behave again)."""


@dataclass
class Resources:
    """Shared services (an MQTT link, a topic scheme...) looked up by type."""

    _items: dict[type, Any] = field(default_factory=dict)

    def put(self, item: object) -> None:
        self._items[type(item)] = item

    def get(self, kind: type[T]) -> T:
        try:
            return self._items[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} was provided to the drivers") from None


@dataclass
class DriverContext:
    exhibit_id: str
    store: SignalStore
    clock: Clock
    resources: Resources
    base_dir: Path = field(default_factory=Path.cwd)
    """The exhibit's folder: files an exhibit names are relative to it."""
    health: HealthBoard | None = None
    """Every component's health; made from ``store`` and ``clock`` when not given (tests)."""

    def __post_init__(self) -> None:
        if self.health is None:
            self.health = HealthBoard(self.store, self.clock)

    def health_of(self, name: str, kind: Literal["sensor", "device", "service"], figures: Any) -> ComponentHealth:
        """The health entry of a new component."""
        assert self.health is not None
        return self.health.add(name, kind, figures)


class Driver(ABC):
    """What every sensor and device has: its name, its config, the context, and its health entry."""

    kind: Literal["sensor", "device"]

    def __init__(self, name: str, config: Any, context: DriverContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.health = context.health_of(name, self.kind, config.health_figures())


class Sensor(Driver):
    """Feeds signals named ``<sensor>.<signal>`` into the store."""

    kind = "sensor"

    async def open(self) -> None:
        """Acquire what must be there at start (a port); raise ``UserError`` if the user must act."""

    @abstractmethod
    async def run(self) -> None:
        """Produce signals until cancelled; raising makes the supervisor restart it."""

    async def close(self) -> None:
        """Release what :meth:`open` acquired."""


class WritableSensor(Sensor):
    """A sensor that also takes commands on the same connection (a board with an LED)."""

    @abstractmethod
    def set(self, values: Mapping[str, Any]) -> None:
        """Ask for new output values. Never blocks; they are sent when the board is there."""

    @abstractmethod
    async def go_safe(self, timeout: float) -> bool:
        """Send the outputs' safe values now; False if the board could not take them."""


class Device(Driver):
    """Receives property values and sends them to real gear."""

    kind = "device"

    @abstractmethod
    def set(self, values: Mapping[str, Any]) -> None:
        """Ask for new property values. Never blocks; the device sends them when it can."""

    @abstractmethod
    async def run(self) -> None:
        """Send what was asked until cancelled."""

    @abstractmethod
    async def go_safe(self, timeout: float) -> bool:
        """Send the safe state now and wait until it is delivered; False if it could not be."""

    def before_show(self) -> None:
        """Every output is built and the show is about to start: a device whose gear must see its safe state before
        the show's first values (a restart after a crash) sends it now. Most send it first anyway: nothing to do."""


def check_fault(driver: Driver, fault: Fault, supported: tuple[Fault, ...]) -> None:
    """Refuse a fault this simulator cannot play, in a sentence that says which it can."""
    if fault not in supported:
        raise ValueError(f"the simulated {driver.name} plays {', '.join(supported)}; not `{fault}`")


FrameTap = Callable[[Any], None]
"""Takes one RGB frame (a numpy array, (height, width, 3) uint8); must copy what it keeps and never block for long."""


@dataclass(frozen=True)
class FrameTaps:
    """Opt-in taps on pose sensors' camera frames, by sensor name, put in the drivers' resources.

    The one way a frame leaves a pose sensor: the render service registers a tap only for the sensor
    an exhibit's AR mirror shows (``scene.mirror.sensor``), and the tap writes into shared memory read
    by the exhibit's own render process (content/mirror.py). Sensors without a tap keep every frame
    inside the inference worker."""

    sinks: dict[str, FrameTap] = field(default_factory=dict)

    def get(self, sensor: str) -> FrameTap | None:
        return self.sinks.get(sensor)


@runtime_checkable
class MessageDevice(Protocol):
    """A device that also sends whole messages (an OSC peer): what an `{osc: ...}` action uses."""

    def send_message(self, address: str, args: list[Any]) -> None:
        """Send one message now; never blocks, never raises (a failure counts in its health)."""


class Service(Protocol):
    """A connection or process the drivers and operators share (the MQTT link, the embedded broker,
    the render process...), built by its :class:`engine.registry.ServiceSpec` and started in order."""

    name: str

    async def start(self) -> None:
        """Acquire what must be there before the drivers are built (a listening port); raise
        ``UserError`` if the user must act."""

    async def run(self) -> None:
        """Serve until cancelled (or until :meth:`close`)."""

    async def close(self, timeout: float) -> None:
        """Stop, within ``timeout`` seconds where it can."""
