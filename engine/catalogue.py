"""The signal catalogue: every signal an exhibit has, with its type and meaning, built once from
the exhibit file and the registered drivers and services.

``check`` compiles every expression against it, the runtime declares its store from it, scene
bindings in the render process resolve names from it, and the console and control APIs list it.
So ``check`` and ``run`` cannot disagree about a name: there is one list.

What it holds:

- each sensor's signals (``controls.wash``, ``body.nearest.hands_raised``...);
- every sensor's, device's and service's health (``<name>.health.status``, ``.reason``, ``.since``
  and the kind's own figures, see :mod:`engine.health`);
- the show's signals: ``var.*``, ``states.*``, ``schedule.open``, ``show.panic``, ``safety.estop``
  and the events actions fire (``scene.burst.rising``);
- the fields of collections (each visitor of ``body.visitors``: ``id``, ``since``, ``hands_raised``...);
- aliases: ``visitors.*`` reads the pose sensor's signals when the exhibit has exactly one.

It is plain data (it pickles), so the render process gets the same catalogue the engine has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.health import CORE_MEANINGS, health_signals
from engine.model import StoreType
from engine.show_model import EventAction
from engine.signals import SignalStore
from engine.yamlpos import YamlPath

if TYPE_CHECKING:
    from engine.exhibit import ExhibitBase
    from engine.registry import Registry

Group = Literal["sensor", "device", "service", "show"]
Initial = float | int | bool | str

PANIC_SIGNAL = "show.panic"
ESTOP_SIGNAL = "safety.estop"
SHOW_NAMESPACES = frozenset({"show", "safety", "states", "var", "schedule", "scene", "visitors"})
"""First parts of names the show itself uses; no sensor, device or service may take one."""


@dataclass(frozen=True, slots=True)
class SignalInfo:
    name: str
    type: StoreType
    meaning: str
    owner: str
    """The sensor, device or service it belongs to, or ``show``."""
    group: Group


@dataclass(frozen=True)
class Catalogue:
    signals: dict[str, SignalInfo] = field(default_factory=dict)
    item_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    """The fields of each collection signal's items (``body.visitors`` -> ``{"hands_raised": "float"...}``)."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Name prefixes that stand for others (``visitors`` -> ``body``)."""
    initial: dict[str, Initial] = field(default_factory=dict)
    """Start values (variables, ``show.panic``...)."""

    def __contains__(self, name: object) -> bool:
        return name in self.signals

    def __getitem__(self, name: str) -> SignalInfo:
        return self.signals[name]

    def __iter__(self) -> Iterator[SignalInfo]:
        return iter(self.signals.values())

    def types(self) -> dict[str, StoreType]:
        return {name: info.type for name, info in self.signals.items()}

    def owned_by(self, owner: str) -> list[SignalInfo]:
        return [info for info in self if info.owner == owner]

    def canonical(self, name: str) -> str:
        """The signal ``name`` stands for (after aliases); itself when it is not an alias."""
        if name in self.signals:
            return name
        for alias, target in sorted(self.aliases.items(), key=lambda item: -len(item[0])):
            if name == alias or name.startswith(alias + "."):
                return target + name[len(alias) :]
        return name

    def declare(self, store: SignalStore) -> None:
        """Declare every signal the store does not have yet and give the new ones their start value.
        Signals already there keep their value (a reload keeps variables)."""
        for info in self:
            if info.name not in store:
                store.declare(info.name, info.type)
                if info.name in self.initial:
                    store.set(info.name, self.initial[info.name])

    def visitor_fields(self) -> dict[str, list[str]]:
        """The fields of each pose sensor's visitors, by sensor (``body`` -> ``["id", "since", ...]``)."""
        return {
            name.removesuffix(".visitors"): list(fields)
            for name, fields in self.item_fields.items()
            if name.endswith(".visitors")
        }

    def merged(self, other: Catalogue) -> Catalogue:
        return Catalogue(
            self.signals | other.signals,
            self.item_fields | other.item_fields,
            self.aliases | other.aliases,
            self.initial | other.initial,
        )


class _Builder:
    def __init__(self) -> None:
        self.signals: dict[str, SignalInfo] = {}
        self.initial: dict[str, Initial] = {}

    def add(self, name: str, type_: StoreType, meaning: str, owner: str, group: Group) -> None:
        self.signals.setdefault(name, SignalInfo(name, type_, meaning, owner, group))

    def health(self, owner: str, group: Group, figures: Mapping[str, StoreType], meanings: Mapping[str, str]) -> None:
        for short, type_ in health_signals(figures).items():
            figure = short.removeprefix("health.")
            meaning = CORE_MEANINGS.get(short) or meanings.get(figure) or f"health figure `{figure}`"
            self.add(f"{owner}.{short}", type_, meaning, owner, group)


def build_catalogue(exhibit: ExhibitBase, registry: Registry) -> Catalogue:
    """Every signal of ``exhibit`` with the drivers and services of ``registry``."""
    builder = _Builder()
    for name, sensor in exhibit.sensors.items():
        meanings = sensor.signal_meanings()
        for short, type_ in sensor.signal_types().items():
            builder.add(f"{name}.{short}", type_, meanings.get(short, f"{sensor.kind} input"), name, "sensor")
        builder.health(name, "sensor", sensor.health_figures(), sensor.health_meanings())
    for name, device in exhibit.devices.items():
        builder.health(name, "device", device.health_figures(), device.health_meanings())
    for spec in registry.services_for(exhibit):
        builder.health(spec.name, "service", spec.figures, spec.meanings)
    show = show_catalogue(exhibit)
    return Catalogue(builder.signals, collection_fields(exhibit), visitor_alias(exhibit)).merged(show)


def show_catalogue(exhibit: ExhibitBase) -> Catalogue:
    """The signals the show itself adds: PANIC and the e-stop, variables, machine states, events,
    opening hours."""
    builder = _Builder()
    builder.add(PANIC_SIGNAL, "bool", "the show is in PANIC (every output safe until reset)", "show", "show")
    builder.add(ESTOP_SIGNAL, "bool", "the e-stop is latched (motion stopped until reset)", "show", "show")
    builder.initial |= {PANIC_SIGNAL: False, ESTOP_SIGNAL: False}
    for name, value in exhibit.variables.items():
        builder.add(f"var.{name}", _type_of(value), f"variable `{name}`", "show", "show")
        builder.initial[f"var.{name}"] = value
    for machine in exhibit.states:
        builder.add(f"states.{machine}", "str", f"the current state of machine `{machine}`", "show", "show")
    for event in sorted(fired_events(exhibit)):
        builder.add(event, "event", "an event fired by the show's actions", "show", "show")
    if exhibit.schedule is not None:
        builder.add("schedule.open", "bool", "the exhibit is within its opening hours", "show", "show")
    return Catalogue(builder.signals, initial=builder.initial)


def reserved_names(registry: Registry) -> set[str]:
    """Names no sensor or device may have: the show's namespaces and the services'."""
    return set(SHOW_NAMESPACES) | set(registry.services)


def collection_fields(exhibit: ExhibitBase) -> dict[str, dict[str, str]]:
    return {
        f"{sensor}.{name}": dict(fields)
        for sensor, config in exhibit.sensors.items()
        for name, fields in config.collection_fields().items()
    }


def visitor_alias(exhibit: ExhibitBase) -> dict[str, str]:
    """`visitors.count` reads the pose sensor's `count` when the exhibit has exactly one."""
    pose = [name for name, sensor in exhibit.sensors.items() if sensor.kind == "pose"]
    return {"visitors": pose[0]} if len(pose) == 1 else {}


def fired_events(exhibit: ExhibitBase) -> set[str]:
    """Events fired by actions anywhere in the show (declared so rules can wait on them)."""
    return {a.event for _, actions in action_lists(exhibit) for a in actions if isinstance(a, EventAction)}


def action_lists(exhibit: ExhibitBase) -> Iterator[tuple[YamlPath, list[Any]]]:
    """Every list of actions in the show, with where it is in the exhibit file."""
    for machine, spec in exhibit.states.items():
        for state, state_spec in spec.states.items():
            base: YamlPath = ("states", machine, "states", state)
            yield (*base, "enter"), state_spec.enter
            yield (*base, "exit"), state_spec.exit
            for index, transition in enumerate(state_spec.transitions):
                yield (*base, "transitions", index, "do"), transition.do
    for index, rule in enumerate(exhibit.rules):
        yield ("rules", index, "do"), rule.do
        yield ("rules", index, "otherwise"), rule.otherwise
    for name, cue_list in exhibit.cues.items():
        for index, cue in enumerate(cue_list.cues):
            yield ("cues", name, "cues", index, "actions"), cue.actions
    for name, timeline in exhibit.timelines.items():
        for index, timed in enumerate(timeline.actions):
            yield ("timelines", name, "actions", index, "do"), timed.do
    if exhibit.schedule is not None:
        yield ("schedule", "on_open"), exhibit.schedule.on_open
        yield ("schedule", "on_close"), exhibit.schedule.on_close


def _type_of(value: Initial) -> StoreType:
    kinds: dict[type, StoreType] = {bool: "bool", int: "int", float: "float", str: "str"}
    return kinds[type(value)]
