"""Health of an input as signals: ``<sensor>.health.status``, ``.rate``, ``.errors``, ``.age``.

Counting is cheap (an increment per message); the signals are published once
a second by :meth:`InputHealth.run`, so a 20,000-message burst costs no more
signal traffic than a quiet minute.
"""

from __future__ import annotations

from engine.clock import Clock
from engine.drivers import Health
from engine.model import StoreType
from engine.signals import SignalStore

HEALTH_SIGNALS: dict[str, StoreType] = {
    "health.status": "str",
    "health.rate": "float",
    "health.errors": "int",
    "health.age": "float",
}
"""status: ok/degraded/offline; rate: messages per second; errors: bad input dropped so far;
age: seconds since the last good message (-1 before the first)."""


class InputHealth:
    def __init__(self, sensor: str, store: SignalStore, clock: Clock, interval: float = 1.0) -> None:
        self.prefix = f"{sensor}.health."
        self.store = store
        self.clock = clock
        self.interval = interval
        self.received = 0
        self.errors: dict[str, int] = {}
        self.last_seen: float | None = None
        self.status: Health = "offline"
        self._counted = 0
        self._since = clock.now()

    def message(self) -> None:
        self.received += 1
        self.last_seen = self.clock.now()

    def error(self, kind: str) -> None:
        """Count one piece of bad input of ``kind`` (parse, decode, overlong...)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def set_status(self, status: Health) -> None:
        self.status = status
        self.store.set(self.prefix + "status", status)

    def publish(self) -> None:
        now = self.clock.now()
        elapsed = max(now - self._since, 1e-9)
        self.store.set(self.prefix + "rate", (self.received - self._counted) / elapsed)
        self.store.set(self.prefix + "errors", self.error_count)
        self.store.set(self.prefix + "age", now - self.last_seen if self.last_seen is not None else -1.0)
        self._counted, self._since = self.received, now

    async def run(self) -> None:
        """Publish the health signals every ``interval`` seconds, forever."""
        while True:
            await self.clock.sleep(self.interval)
            self.publish()
