"""One health model for every sensor, device and service of a running exhibit.

Each component has a status (``ok``, ``degraded`` or ``offline``), a reason (why it is not ``ok``,
empty when it is) and since when it has been so, plus figures of its own kind (an input's message
rate, a renderer's frame rate). All of them are signals with the same names everywhere:

    <name>.health.status   ok | degraded | offline
    <name>.health.reason   text, empty while ok
    <name>.health.since    wall-clock time (UNIX seconds) of the last change of status
    <name>.health.<figure> the kind's own figures

A change of status is logged once (in Chinese and English), and told to whoever listens
(the MQTT health topics, the console). Figures are set as often as their owner likes and are
not logged.

:class:`InputHealth` adds what every input counts: messages, bad input by kind, and the
``rate``/``errors``/``age`` figures published once a second, so a 20,000-message burst costs no
more signal traffic than a quiet minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from engine.clock import Clock
from engine.model import SensorConfig, StoreType
from engine.signals import SignalStore

log = logging.getLogger("engine.health")

HealthStatus = Literal["ok", "degraded", "offline"]
ComponentKind = Literal["sensor", "device", "service"]
STATUSES: tuple[HealthStatus, ...] = ("ok", "degraded", "offline")
STATUS_WORDS: dict[HealthStatus, str] = {"ok": "正常", "degraded": "降级", "offline": "离线"}

STOPPED = "stopped"
CORE_SIGNALS: dict[str, StoreType] = {"health.status": "str", "health.reason": "str", "health.since": "float"}
"""The signals every component has, by short name below the component."""
CORE_MEANINGS: dict[str, str] = {
    "health.status": "ok, degraded or offline",
    "health.reason": "why it is not ok (empty while ok)",
    "health.since": "when the status last changed (UNIX seconds, wall clock)",
}
INPUT_FIGURES: dict[str, StoreType] = {"rate": "float", "errors": "int", "age": "float"}
"""Every input's own figures: messages per second, bad input dropped so far, seconds since the last good
message (-1 before the first)."""
INPUT_MEANINGS: dict[str, str] = {
    "rate": "good messages per second",
    "errors": "bad input dropped so far",
    "age": "seconds since the last good message (-1 before the first)",
}


class MessageInputConfig(SensorConfig):
    """Base of the configs of inputs that count messages (OSC, serial, MQTT inputs): their health figures
    are :data:`INPUT_FIGURES`, kept by :class:`InputHealth`."""

    def health_figures(self) -> dict[str, StoreType]:
        return INPUT_FIGURES

    def health_meanings(self) -> dict[str, str]:
        return INPUT_MEANINGS


def health_signals(figures: Mapping[str, StoreType]) -> dict[str, StoreType]:
    """Every health signal of a component with these figures, by short name (``health.status``...)."""
    return CORE_SIGNALS | {f"health.{name}": kind for name, kind in figures.items()}


Listener = Callable[["ComponentHealth"], None]


class ComponentHealth:
    """The health of one component, kept as signals in ``store``; ``tell`` hears of every change of
    status or reason."""

    def __init__(
        self,
        name: str,
        kind: ComponentKind,
        store: SignalStore,
        clock: Clock,
        figures: Mapping[str, StoreType] | None = None,
        tell: Listener | None = None,
    ) -> None:
        self.name, self.kind = name, kind
        self.store, self.clock = store, clock
        self.figure_types = dict(figures or {})
        self.figures: dict[str, Any] = {}
        self.tell = tell
        self.status: HealthStatus = "offline"
        self.reason = "not started"
        self.since = clock.wall().timestamp()
        self.changes = 0
        self.in_use = True
        """False for a service this run does without (``--no-render``): offline, and nothing to worry about."""
        self._prefix = f"{name}.health."
        for short, type_ in health_signals(self.figure_types).items():
            if f"{name}.{short}" not in store:  # the runtime declares them from the catalogue; tests may not
                store.declare(f"{name}.{short}", type_)
        self._publish()

    def set(self, status: HealthStatus, reason: str = "", expected: bool = False) -> None:
        """Say how the component is now; told only if something changed, and logged as news for the
        operator unless ``expected`` (a board starting up is degraded for a second every time)."""
        self._change(status, "" if status == "ok" else reason, expected=expected)

    def stopped(self) -> None:
        """Offline because the exhibit stops it: told like any change, but not logged as a problem."""
        self._change("offline", STOPPED, expected=True)

    def _change(self, status: HealthStatus, reason: str, expected: bool) -> None:
        if status == self.status and reason == self.reason:
            return
        changed = status != self.status
        first = self.changes == 0
        self.status, self.reason = status, reason
        if changed:
            self.since = self.clock.wall().timestamp()
            self.changes += 1
            self._log(quiet=expected or (first and status == "ok"))
        self._publish()
        if self.tell is not None:
            self.tell(self)

    def figure(self, name: str, value: Any) -> None:
        """Set one of the kind's own figures (``rate``, ``fps``...)."""
        self.figures[name] = value
        self.store.set(self._prefix + name, value)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """What the MQTT health topic and the console show of it."""
        return {"status": self.status, "reason": self.reason, "since": round(self.since, 3), **self.figures}

    def _publish(self) -> None:
        self.store.set(self._prefix + "status", self.status)
        self.store.set(self._prefix + "reason", self.reason)
        self.store.set(self._prefix + "since", self.since)

    def _log(self, quiet: bool) -> None:
        # Coming up at start and being stopped are expected; anything else is news for the operator.
        words = f"{STATUS_WORDS[self.status]} / {self.status}"
        because = f" ({self.reason})" if self.reason else ""
        level = logging.DEBUG if quiet else logging.INFO if self.status == "ok" else logging.WARNING
        log.log(level, "%s %s: %s%s", self.kind, self.name, words, because)


class HealthBoard:
    """Every component's health in one place, with one list of listeners."""

    def __init__(self, store: SignalStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._components: dict[str, ComponentHealth] = {}
        self._listeners: list[Listener] = []

    def add(self, name: str, kind: ComponentKind, figures: Mapping[str, StoreType] | None = None) -> ComponentHealth:
        """The health of a new component (a driver or service calls this once, when it is built)."""
        if name in self._components:
            raise ValueError(f"`{name}` already has a health entry")
        component = ComponentHealth(name, kind, self.store, self.clock, figures, tell=self._tell)
        self._components[name] = component
        return component

    def __getitem__(self, name: str) -> ComponentHealth:
        return self._components[name]

    def __contains__(self, name: object) -> bool:
        return name in self._components

    def __iter__(self) -> Iterator[ComponentHealth]:
        return iter(list(self._components.values()))

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(component)`` on every change of status or reason; returns how to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def status(self) -> HealthStatus:
        """The worst status of any component this run uses (``ok`` with none): the embedded broker of a run on an
        outside broker is offline, and says so, but that is no fault."""
        worst = max((STATUSES.index(c.status) for c in self if c.in_use), default=0)
        return STATUSES[worst]

    def summary(self) -> dict[str, Any]:
        """The exhibit at a glance: the worst status, and each component's status and reason."""
        components = {c.name: {"kind": c.kind, "status": c.status, "reason": c.reason} for c in self}
        return {"status": self.status, "components": components}

    def _tell(self, component: ComponentHealth) -> None:
        for listener in list(self._listeners):
            try:
                listener(component)
            except Exception:  # a console that fails must not stop a sensor from saying it is offline
                log.exception("a health listener failed")


class InputHealth:
    """What an input counts, on top of its :class:`ComponentHealth`: good messages, bad input by
    kind, and the ``rate``, ``errors`` and ``age`` figures, published every ``interval`` by :meth:`run`."""

    def __init__(self, health: ComponentHealth, interval: float = 1.0) -> None:
        self.health = health
        self.clock = health.clock
        self.interval = interval
        self.received = 0
        self.errors: dict[str, int] = {}
        self.last_seen: float | None = None
        self._counted = 0
        self._since = self.clock.now()
        self.publish()

    def message(self) -> None:
        self.received += 1
        self.last_seen = self.clock.now()

    def error(self, kind: str) -> None:
        """Count one piece of bad input of ``kind`` (parse, decode, overlong, nonfinite...)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def set_status(self, status: HealthStatus, reason: str = "", expected: bool = False) -> None:
        self.health.set(status, reason, expected)

    def publish(self) -> None:
        now = self.clock.now()
        elapsed = max(now - self._since, 1e-9)
        self.health.figure("rate", (self.received - self._counted) / elapsed)
        self.health.figure("errors", self.error_count)
        self.health.figure("age", now - self.last_seen if self.last_seen is not None else -1.0)
        self._counted, self._since = self.received, now

    async def run(self) -> None:
        """Publish the figures every ``interval`` seconds, forever."""
        while True:
            await self.clock.sleep(self.interval)
            self.publish()
