"""The curator studio's inspector: every signal with its value and last change, and for every device
property what drives it and why it has its value now, with the other things that could drive it.

``inspect(runtime)`` returns plain, JSON-able data (``json.dumps(..., allow_nan=False)`` takes it),
small enough to send to a browser twice a second:

```
{"now": 12.5,
 "signals": [{"name", "type", "value", "stale", "changed", "owner", "group", "meaning"}, ...],
 "devices": [{"device", "property", "value", "safe", "changed",
              "driver": {"kind", "name", "detail", "since"} | null,
              "candidates": [{"kind", "name", "in_charge", "active", "why", ...}, ...]}, ...]}
```

``changed`` and ``since`` are seconds ago (engine clock). The driver is what last wrote the property
(recorded by the fade engine, see :mod:`engine.provenance`), or the fade or timeline that owns it now.
Candidates are everything else the show has that writes it: mappings (with whether their `when:`
holds now), timelines with a track for it, presets, cues, and state, rule and opening-hours actions.
What never changes while a show runs (who sets what) is indexed once per show.
"""

from __future__ import annotations

import math
import numbers
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.fades import Fade, FadeEngine, Key
from engine.mapping import BoundMapping
from engine.provenance import CLOSING, OPENING, Cause, cue_origin, rule_origin, state_origin
from engine.show_model import PresetAction, SetAction

if TYPE_CHECKING:
    from engine.runtime import Runtime
    from engine.show import Show

TEXT_LIMIT = 120
"""Longest string value shown; longer ones are cut (a signal is not a document)."""
ITEMS_LIMIT = 16
"""Most ids listed for a collection (the visitors): the count says the rest."""


def inspect(runtime: Runtime) -> dict[str, Any]:
    """The inspector's picture of ``runtime`` now (see the module docstring)."""
    now = runtime.clock.now()
    return {"now": _seconds(now), "signals": _signals(runtime, now), "devices": _devices(runtime, now)}


# Signals -------------------------------------------------------------------------------------------


def _signals(runtime: Runtime, now: float) -> list[dict[str, Any]]:
    store = runtime.store
    found: list[dict[str, Any]] = []
    for info in runtime.catalogue:
        signal = store.get(info.name) if info.name in store else None
        stamp = signal.timestamp if signal is not None else None
        found.append(
            {
                "name": info.name,
                "type": info.type,
                "value": small(signal.value) if signal is not None else None,
                "stale": signal.stale if signal is not None else True,
                "changed": _seconds(now - stamp) if stamp is not None else None,
                "owner": info.owner,
                "group": info.group,
                "meaning": info.meaning,
            }
        )
    return found


def small(value: Any, depth: int = 0) -> Any:
    """A small JSON-able picture of a value: scalars as they are (a non-finite float as None), a
    collection of items with ids (the visitors) as its count and ids, anything else as its count or
    type. Never landmark arrays or frames: what they hold is left out, only their shape is said."""
    if value is None or isinstance(value, bool | str | int):
        return value if not isinstance(value, str) or len(value) <= TEXT_LIMIT else value[: TEXT_LIMIT - 1] + "…"
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, list | tuple | dict):
        return {"type": type(value).__name__, "shape": [int(n) for n in shape]}
    if isinstance(value, list | tuple):
        ids = [getattr(item, "id", None) for item in value[:ITEMS_LIMIT]]
        if ids and all(isinstance(i, int | str) and not isinstance(i, bool) for i in ids):
            return {"count": len(value), "ids": ids}
        if depth == 0 and len(value) <= 8 and all(_scalar(item) for item in value):
            return [small(item, 1) for item in value]
        return {"count": len(value)}
    if isinstance(value, dict):
        if depth == 0 and len(value) <= 8 and all(_scalar(item) for item in value.values()):
            return {str(key): small(item, 1) for key, item in value.items()}
        return {"count": len(value)}
    found = getattr(value, "id", None)
    picture: dict[str, Any] = {"type": type(value).__name__}
    if isinstance(found, int | str) and not isinstance(found, bool):
        picture["id"] = found
    return picture


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | str | numbers.Real)


def _seconds(value: float) -> float:
    return round(value, 3)


# Who sets what: indexed once per show -----------------------------------------------------------------


@dataclass(frozen=True)
class _Writer:
    """A preset, a cue or an action (a state's, a rule's, the opening hours') that sets a property."""

    kind: str
    name: str
    what: str
    """What it does to the property, as a sentence: `sets it to 60 (fade 5 s) when the cue fires`."""
    cue: tuple[str, str] | None = None
    """The cue list and cue id, for a cue (to say whether it fired)."""


@dataclass
class _Index:
    show: weakref.ReferenceType[Show]
    writers: dict[Key, list[_Writer]] = field(default_factory=dict)
    timelines: dict[Key, list[str]] = field(default_factory=dict)


_index: _Index | None = None
"""The one show indexed last (a runtime has one show at a time; a reload makes a new one)."""


def _index_of(show: Show) -> _Index:
    global _index
    if _index is None or _index.show() is not show:
        _index = _build_index(show)
    return _index


def _build_index(show: Show) -> _Index:
    exhibit = show.exhibit
    index = _Index(weakref.ref(show))
    recalled: dict[str, list[str]] = {}
    for origin, actions, fade in _action_lists(show):
        for action in actions:
            if isinstance(action, SetAction):
                what = f"`{action.expr}`" if action.expr is not None else _said(action.value)
                seconds = action.fade if action.fade is not None else fade
                cue = tuple(origin.name.split("/", 1)) if origin.kind == "cue" else None
                writer = _Writer(origin.kind, origin.name, f"{origin.text}: sets it to {what}{_fading(seconds)}")
                if cue is not None:
                    writer = _Writer(writer.kind, writer.name, writer.what, (cue[0], cue[1]))
                index.writers.setdefault(_key(action.set), []).append(writer)
            elif isinstance(action, PresetAction):
                seconds = action.fade if action.fade is not None else fade
                recalled.setdefault(action.preset, []).append(origin.text + _fading(seconds))
    for name, values in exhibit.presets.items():
        by = recalled.get(name)
        when = f"recalled by {' and '.join(by)}" if by else "recalled by nothing in the show (an operator may)"
        for reference, value in values.items():
            writer = _Writer("preset", name, f"preset {name} sets it to {_said(value)}; {when}")
            index.writers.setdefault(_key(reference), []).append(writer)
    for name, timeline in show.timelines.items():
        for key in timeline.properties():
            index.timelines.setdefault(key, []).append(name)
    return index


def _action_lists(show: Show) -> list[tuple[Cause, list[Any], float | None]]:
    """Every list of actions in the show, with the origin the show gave it (see engine.show) and its default fade."""
    exhibit = show.exhibit
    lists: list[tuple[Cause, list[Any], float | None]] = []
    for machine, spec in exhibit.states.items():
        for state, state_spec in spec.states.items():
            lists.append((state_origin(machine, f"{state} (enter)"), state_spec.enter, None))
            lists.append((state_origin(machine, f"{state} (exit)"), state_spec.exit, None))
            for transition in state_spec.transitions:
                lists.append((state_origin(machine, f"{state} → {transition.to}"), transition.do, None))
    for number, rule in enumerate(exhibit.rules):
        lists.append((rule_origin(number, rule.when), rule.do, None))
        lists.append((rule_origin(number, rule.when, otherwise=True), rule.otherwise, None))
    for name, cue_list in exhibit.cues.items():
        for cue in cue_list.cues:
            lists.append((cue_origin(name, cue.id, cue.name), cue.actions, cue.fade))
    if exhibit.schedule is not None:
        lists.append((OPENING, exhibit.schedule.on_open, None))
        lists.append((CLOSING, exhibit.schedule.on_close, None))
    return lists


def _key(reference: str) -> Key:
    target, prop = reference.split(".", 1)
    return target, prop


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else f"{value}"


def _fading(seconds: float | None) -> str:
    return f" (fade {seconds:g} s)" if seconds else ""


# Devices -------------------------------------------------------------------------------------------


@dataclass
class _MappingNow:
    """A bound mapping's state this call: is it on, and if not, why not."""

    on: bool
    condition: bool | None
    why_off: str


def _devices(runtime: Runtime, now: float) -> list[dict[str, Any]]:
    show = runtime.show
    fades = runtime.fades
    if show is None:  # not started yet: the fade engine's targets, with what it knows
        return [_property(None, None, fades, target, prop, None, now, {}) for target, prop in fades.known_properties()]
    index = _index_of(show)
    mappings: dict[Key, list[tuple[BoundMapping, Cause, _MappingNow]]] = {}
    for bound in show.bound:
        state = _mapping_now(show, bound)
        for key, cause in zip(bound.targets, bound.causes, strict=True):
            mappings.setdefault(key, []).append((bound, cause, state))
    entries: list[dict[str, Any]] = []
    for device, outputs in show.outputs.items():
        safe = outputs.safe_state()
        for prop in outputs.settable_properties():
            entries.append(_property(show, index, fades, device, prop, safe, now, mappings))
    return entries


def _mapping_now(show: Show, bound: BoundMapping) -> _MappingNow:
    spec = bound.spec
    condition: bool | None = None
    if bound.when is not None:
        try:
            condition = bool(bound.when())
        except Exception:  # a condition that cannot be read now (no value yet) does not hold
            condition = False
    if show.panicked:
        return _MappingNow(False, condition, "off: the show is in PANIC until reset")
    if condition is False:
        return _MappingNow(False, condition, f"when {spec.when} is false")
    source = show.store.get(spec.source) if spec.source in show.store else None
    if source is None or source.stale:
        return _MappingNow(True, condition, f"{spec.source} has no fresh value")
    return _MappingNow(True, condition, "")


def _property(
    show: Show | None,
    index: _Index | None,
    fades: FadeEngine,
    device: str,
    prop: str,
    safe: dict[str, Any] | None,
    now: float,
    mappings: dict[Key, list[tuple[BoundMapping, Cause, _MappingNow]]],
) -> dict[str, Any]:
    """One property: its value, its driver and why, and the other things that could drive it."""
    key = (device, prop)
    record = fades.provenance(device, prop)
    owner = fades.driver(device, prop)
    cause: Cause | None = getattr(owner, "cause", None) if owner is not None else None
    if cause is None and isinstance(owner, Fade):
        cause = Cause("fade", f"{device}.{prop}", f"a fade to {_said(owner.to)}")
    if cause is None and record is not None:
        cause = record.cause
    driver: dict[str, Any] | None = None
    if cause is not None:
        detail = cause.detail
        if isinstance(owner, Fade):
            detail += f"; fading to {_said(owner.to)} over {owner.duration:g} s, {owner.progress(now):.0%} done"
        for _bound, mapping_cause, state in mappings.get(key, ()):
            if mapping_cause is cause and not state.on:
                detail += f" (now {state.why_off}: the last value holds)"
        since = now - record.since if record is not None and record.cause is cause else 0.0
        driver = {"kind": cause.kind, "name": cause.name, "detail": detail, "since": _seconds(since)}
    in_charge = _in_charge_phrase(cause)
    candidates: list[dict[str, Any]] = []
    for bound, mapping_cause, state in mappings.get(key, ()):
        charge = mapping_cause is cause
        if charge:
            why = "in charge"
        elif not state.on:
            why = f"{state.why_off}; {in_charge}"
        elif state.why_off:
            why = f"on, but {state.why_off}; {in_charge}"
        else:
            why = f"on: it takes over on the next change of {bound.spec.source}; {in_charge}"
        candidates.append(
            {
                "kind": "mapping",
                "name": mapping_cause.name,
                "in_charge": charge,
                "active": state.on,
                "when": bound.spec.when,
                "condition": state.condition,
                "why": why,
            }
        )
    if show is not None and index is not None:
        for name in index.timelines.get(key, ()):
            timeline = show.timelines[name]
            charge = cause is timeline.cause
            status = "playing" if timeline.playing else "paused" if timeline.paused else "stopped"
            if charge:
                why = "in charge"
            elif timeline.playing:
                why = f"playing, but {_later(cause)} took this property later (the most recent wins)"
            else:
                why = f"{status}; {in_charge}"
            candidates.append(
                {
                    "kind": "timeline",
                    "name": name,
                    "in_charge": charge,
                    "active": timeline.playing,
                    "state": status,
                    "position": _seconds(timeline.position),
                    "why": why,
                }
            )
    for writer in index.writers.get(key, ()) if index is not None else ():
        charge = cause is not None and cause.kind == writer.kind and cause.name == writer.name
        fired = _fired(show, writer)
        candidates.append(
            {
                "kind": writer.kind,
                "name": writer.name,
                "in_charge": charge,
                "active": False,
                "why": f"in charge: {writer.what}" if charge else f"{writer.what}{fired}",
            }
        )
    changed = now - record.changed if record is not None else None
    return {
        "device": device,
        "property": prop,
        "value": small(fades.value(device, prop)),
        "safe": small(safe.get(prop)) if safe is not None else None,
        "changed": _seconds(changed) if changed is not None else None,
        "driver": driver,
        "candidates": candidates,
    }


def _in_charge_phrase(cause: Cause | None) -> str:
    if cause is None:
        return "nothing has set it yet"
    if cause.kind == "initial":
        return "nothing has set it since the start"
    return f"{cause.kind} {cause.name} is in charge"


def _later(cause: Cause | None) -> str:
    return f"{cause.kind} {cause.name}" if cause is not None else "something"


def _fired(show: Show | None, writer: _Writer) -> str:
    """For a cue: whether it fired, or is on standby."""
    if show is None or writer.cue is None:
        return ""
    cue_list = show.cue_lists.get(writer.cue[0])
    if cue_list is None:
        return ""
    if cue_list.fired and cue_list.fired[-1][1] == writer.cue[1]:
        return "; it fired last"
    standby = cue_list.standby
    if standby is not None and standby.id == writer.cue[1]:
        return "; on standby"
    return ""


__all__ = ["inspect", "small"]
