"""Check-time validation of the show logic: every expression compiled against the
exhibit's signal catalogue (the list the runtime and the render process use too), and every
reference (a property, a cue list, a timeline, a preset, a variable, a device that sends
messages) checked, each problem at its place in the file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.catalogue import Catalogue, action_lists
from engine.exhibit import ExhibitBase
from engine.expressions import ExpressionError, StoreResolver, compile_expression, parse_condition
from engine.model import Outputs
from engine.problems import Problem, did_you_mean
from engine.show_model import (
    ArmAction,
    CueAction,
    DisarmAction,
    OscAction,
    PresetAction,
    SetAction,
    TimelineAction,
    VariableAction,
)
from engine.signals import SignalStore
from engine.sound_model import SoundAction
from engine.yamlpos import PositionedData, YamlPath


def show_problems(doc: PositionedData, exhibit: ExhibitBase, catalogue: Catalogue) -> list[Problem]:
    store = SignalStore()
    catalogue.declare(store)
    resolver = StoreResolver(store, aliases=catalogue.aliases, item_fields=catalogue.item_fields)
    checker = _Checker(doc, exhibit, resolver)
    checker.run()
    scene = getattr(exhibit, "scene", None)
    if scene is not None:
        # The scene's bindings are compiled by the render process's own resolver, on the same catalogue.
        for path, error in scene.binding_problems(catalogue):
            at = ("scene", *path)
            checker.problems.append(doc.problem_in_string(at, error.offset, error.message, error.hint))
    return checker.problems


class _Checker:
    def __init__(self, doc: PositionedData, exhibit: ExhibitBase, resolver: StoreResolver) -> None:
        self.doc, self.exhibit, self.resolver = doc, exhibit, resolver
        self.problems: list[Problem] = []
        self.outputs: dict[str, Outputs] = {
            name: config for name, config in exhibit.sensors.items() if config.settable_properties()
        }
        self.outputs.update(exhibit.devices)

    def run(self) -> None:
        for path, actions in action_lists(self.exhibit):
            for index, action in enumerate(actions):
                self.action((*path, index), action)
        for path, source, condition in _expressions(self.exhibit):
            self.expression(path, source, condition)
        for machine, spec in self.exhibit.states.items():
            for state, state_spec in spec.states.items():
                for index, transition in enumerate(state_spec.transitions):
                    if transition.on is not None:
                        self.trigger(("states", machine, "states", state, "transitions", index, "on"), transition.on)
        for name, preset in self.exhibit.presets.items():
            for reference in preset:
                self.property_ref(("presets", name, reference), reference, key=True)
        for index, trigger in enumerate(self.exhibit.safety.estop):
            self.trigger(("safety", "estop", index), trigger)
        for index, name in enumerate(self.exhibit.safety.armed_at_start):
            self.motion_ref(("safety", "armed_at_start", index), name)
        for name, timeline in self.exhibit.timelines.items():
            for track in timeline.tracks:
                self.property_ref(("timelines", name, "tracks", track), track, key=True)
        chooser = self.exhibit.narration.language_from
        if chooser is not None and self.resolver.resolve(chooser) is None:
            self.problems.append(
                self.doc.problem(
                    ("narration", "language_from"),
                    f"no signal named `{chooser}` to choose the language",
                    did_you_mean(chooser, self.resolver.names()),
                )
            )

    def expression(self, path: YamlPath, source: str, condition: bool) -> None:
        try:
            expression_source, _hold = parse_condition(source) if condition else (source, None)
            compile_expression(expression_source, self.resolver)
        except ExpressionError as error:
            self.problems.append(self.doc.problem_in_string(path, error.offset, error.message, error.hint))

    def trigger(self, path: YamlPath, name: str) -> None:
        info = self.resolver.resolve(name)
        if info is None:
            self.problems.append(
                self.doc.problem(path, f"no signal or event named `{name}`", did_you_mean(name, self.resolver.names()))
            )
        elif info.type not in ("event", "bool"):
            self.problems.append(
                self.doc.problem(
                    path,
                    f"`{name}` is {info.type}; `on:` needs an event or a true/false signal",
                    "use `when:` for a condition",
                )
            )

    def property_ref(self, path: YamlPath, reference: str, key: bool = False) -> None:
        target, _, prop = reference.partition(".")
        if target not in self.outputs:
            self.problems.append(
                self.doc.problem(path, f"no device named `{target}`", did_you_mean(target, self.outputs), key=key)
            )
        elif prop not in (known := self.outputs[target].settable_properties()):
            self.problems.append(
                self.doc.problem(
                    path, f"device `{target}` has no property `{prop}`", did_you_mean(prop, known), key=key
                )
            )

    def action(self, path: YamlPath, action: Any) -> None:
        exhibit = self.exhibit
        if isinstance(action, SetAction):
            self.property_ref((*path, "set"), action.set)
        elif isinstance(action, CueAction):
            self.named((*path, "cue"), action.cue, exhibit.cues, "cue list")
            if action.go is not None and action.cue in exhibit.cues:
                ids = [cue.id for cue in exhibit.cues[action.cue].cues]
                if action.go not in ids:
                    self.problems.append(
                        self.doc.problem(
                            (*path, "go"),
                            f"cue list `{action.cue}` has no cue `{action.go}`",
                            did_you_mean(action.go, ids),
                        )
                    )
        elif isinstance(action, TimelineAction):
            self.named((*path, "timeline"), action.timeline, exhibit.timelines, "timeline")
        elif isinstance(action, SoundAction):
            self.named((*path, "sound"), action.sound, exhibit.sounds, "sound")
        elif isinstance(action, PresetAction):
            self.named((*path, "preset"), action.preset, exhibit.presets, "preset")
        elif isinstance(action, VariableAction):
            self.named((*path, "var"), action.var, exhibit.variables, "variable")
        elif isinstance(action, ArmAction):
            self.motion_ref((*path, "arm"), action.arm)
        elif isinstance(action, DisarmAction):
            self.motion_ref((*path, "disarm"), action.disarm)
        elif isinstance(action, OscAction) and action.device is not None:
            senders = [name for name, config in exhibit.devices.items() if config.kind == "osc"]
            if action.device not in senders:
                self.problems.append(
                    self.doc.problem(
                        (*path, "device"),
                        f"`{action.device}` is not an OSC out device",
                        did_you_mean(action.device, senders) or "declare it under `devices:` with `kind: osc`",
                    )
                )

    def motion_ref(self, path: YamlPath, name: str) -> None:
        motion = [n for n, c in self.outputs.items() if c.is_motion()]
        if name not in motion:
            self.problems.append(self.doc.problem(path, f"`{name}` is not a motion device", did_you_mean(name, motion)))

    def named(self, path: YamlPath, name: str, table: dict[str, Any], what: str) -> None:
        if name not in table:
            self.problems.append(self.doc.problem(path, f"no {what} named `{name}`", did_you_mean(name, table)))


def _expressions(exhibit: ExhibitBase) -> Iterator[tuple[YamlPath, str, bool]]:
    """(where, source, is it a condition that may end in `for DURATION`)."""
    for machine, spec in exhibit.states.items():
        for state, state_spec in spec.states.items():
            for index, transition in enumerate(state_spec.transitions):
                if transition.when is not None:
                    yield ("states", machine, "states", state, "transitions", index, "when"), transition.when, True
    for index, mapping in enumerate(exhibit.mappings):
        if mapping.when is not None:
            yield ("mappings", index, "when"), mapping.when, False
    for index, rule in enumerate(exhibit.rules):
        yield ("rules", index, "when"), rule.when, True
        if rule.release is not None:
            yield ("rules", index, "release"), rule.release, True
    for path, actions in action_lists(exhibit):
        for index, action in enumerate(actions):
            expr = getattr(action, "expr", None)
            if isinstance(expr, str):
                yield (*path, index, "expr"), expr, False
