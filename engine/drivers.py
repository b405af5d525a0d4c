"""What the engine expects of a sensor, a device and a shared service.

Concrete drivers live in ``sensors/`` and ``devices/`` and implement these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from engine.clock import Clock
from engine.signals import SignalStore

Health = Literal["ok", "degraded", "offline"]
T = TypeVar("T")


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


class Sensor(ABC):
    """Feeds signals named ``<sensor>.<signal>`` into the store."""

    def __init__(self, name: str, config: Any, context: DriverContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.health: Health = "offline"

    async def open(self) -> None:  # noqa: B027 - most sensors acquire nothing up front
        """Acquire what must be there at start (a port); raise ``UserError`` if the user must act."""

    @abstractmethod
    async def run(self) -> None:
        """Produce signals until cancelled; raising makes the supervisor restart it."""

    async def close(self) -> None:  # noqa: B027
        """Release what :meth:`open` acquired."""


class WritableSensor(Sensor):
    """A sensor that also takes commands on the same connection (a board with an LED)."""

    @abstractmethod
    def set(self, values: Mapping[str, Any]) -> None:
        """Ask for new output values. Never blocks; they are sent when the board is there."""

    @abstractmethod
    async def go_safe(self, timeout: float) -> bool:
        """Send the outputs' safe values now; False if the board could not take them."""


class Device(ABC):
    """Receives property values and sends them to real gear."""

    def __init__(self, name: str, config: Any, context: DriverContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    @abstractmethod
    def set(self, values: Mapping[str, Any]) -> None:
        """Ask for new property values. Never blocks; the device sends them when it can."""

    @abstractmethod
    async def run(self) -> None:
        """Send what was asked until cancelled."""

    @abstractmethod
    async def go_safe(self, timeout: float) -> bool:
        """Send the safe state now and wait until it is delivered; False if it could not be."""


class Service(Protocol):
    """A shared connection that the drivers use (the MQTT link)."""

    name: str

    async def run(self) -> None: ...

    async def close(self, timeout: float) -> None: ...
