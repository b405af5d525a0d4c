"""The show-logic part of the exhibit format: variables, presets, actions, states,
rules, cue lists, timelines and opening hours, as pydantic models.

Expressions are strings here; they are compiled (and their mistakes located)
when the show is built, with the names the exhibit actually has.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from engine.curves import Curve, Duration
from engine.model import PROPERTY_REFERENCE, Name, Strict
from engine.schedule import OpeningHours
from engine.sound_model import SoundAction

Literal_ = float | int | bool | str


# --- actions --------------------------------------------------------------------------


class SetAction(Strict):
    """Set (or fade) a device property: `{set: lanterns.brightness, value: 255, fade: 2s}`."""

    set: str = Field(pattern=PROPERTY_REFERENCE.pattern, description="The property, as `device.property`.")
    value: Literal_ | None = Field(None, description="The value to set.")
    expr: str | None = Field(None, description="Or an expression computing it, e.g. `body.count * 20`.")
    fade: Duration | None = Field(None, description="Fade to it over this time (default: the cue's fade, or at once).")
    curve: Curve = Field("linear", description="Fade curve: linear, ease-in, ease-out, ease-in-out, exponential...")

    @model_validator(mode="after")
    def _one_value(self) -> SetAction:
        if (self.value is None) == (self.expr is None):
            raise ValueError("give exactly one of `value` or `expr`")
        return self


class DelayAction(Strict):
    """Wait before the next action of the same list: `{delay: 2s}`."""

    delay: Duration = Field(description="How long to wait.")


class CueAction(Strict):
    """Operate a cue list: `{cue: evening}` (GO), `{cue: evening, go: "3"}`, `{cue: evening, do: stop}`."""

    cue: Name = Field(description="The cue list.")
    go: str | None = Field(None, description="Fire this cue (by id) instead of the standby one.")
    do: Literal["go", "stop", "pause", "resume"] = Field("go", description="What to do with the list.")


class TimelineAction(Strict):
    """Control a timeline: `{timeline: lantern_rise}` (play), `{timeline: idle, loop: true}`, `do: stop`."""

    timeline: Name = Field(description="The timeline.")
    do: Literal["play", "pause", "resume", "stop"] = Field("play", description="What to do.")
    loop: bool | None = Field(None, description="Override the timeline's own `loop` for this play.")


class EventAction(Strict):
    """Fire a named event for scenes and rules: `{event: scene.burst, payload: 3}`."""

    event: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", description="Event name, e.g. `scene.burst`.")
    payload: Literal_ | None = Field(None, description="Optional value that travels with it.")


class OscAction(Strict):
    """Send one OSC message (to QLab, Resolume, TouchDesigner): to an OSC out device of the exhibit
    (`device: qlab`), or to a `host` and `port`, for which the exhibit gets an OSC out device of its own
    (named `osc_<host>_<port>`, with health like any other output)."""

    osc: str = Field(pattern=r"^/\S*$", description="OSC address, e.g. `/cue/12/start`.")
    device: Name | None = Field(None, description="An OSC out device (`kind: osc` under `devices:`) to send it with.")
    host: str = Field("127.0.0.1", description="Receiver address (when no `device` is named).")
    port: int | None = Field(None, ge=1, le=65535, description="Receiver UDP port (QLab listens on 53000).")
    args: list[Literal_] = Field(default_factory=list, description="Arguments, in order.")

    @model_validator(mode="after")
    def _one_receiver(self) -> OscAction:
        if (self.device is None) == (self.port is None):
            raise ValueError("name the receiver with `device` or with `host` and `port`, not both")
        return self

    @property
    def target(self) -> str:
        """The device that sends it."""
        if self.device is not None:
            return self.device
        host = re.sub(r"[^a-z0-9]+", "_", self.host.lower()).strip("_")
        return f"osc_{host}_{self.port}"


class VariableAction(Strict):
    """Set a variable: `{var: visits, expr: "var.visits + 1"}`."""

    var: Name = Field(description="The variable (declared under `variables`).")
    value: Literal_ | None = Field(None, description="The new value.")
    expr: str | None = Field(None, description="Or an expression computing it.")

    @model_validator(mode="after")
    def _one_value(self) -> VariableAction:
        if (self.value is None) == (self.expr is None):
            raise ValueError("give exactly one of `value` or `expr`")
        return self


class PresetAction(Strict):
    """Recall a preset: `{preset: warm, fade: 3s}`."""

    preset: Name = Field(description="The preset.")
    fade: Duration | None = Field(None, description="Fade to it over this time.")


class ArmAction(Strict):
    """Allow a motion device to move: `{arm: turntable}` (refused while the e-stop is latched)."""

    arm: Name = Field(description="The motion device.")


class DisarmAction(Strict):
    """Stop a motion device from taking motion commands: `{disarm: turntable}`."""

    disarm: Name = Field(description="The motion device.")


ACTION_KEYS = ("set", "delay", "cue", "timeline", "event", "osc", "var", "preset", "arm", "disarm", "sound")


def _action_kind(value: Any) -> str | None:
    keys = value if isinstance(value, dict) else vars(value)
    return next((key for key in ACTION_KEYS if key in keys), None)


Action = Annotated[
    Annotated[SetAction, Tag("set")]
    | Annotated[DelayAction, Tag("delay")]
    | Annotated[CueAction, Tag("cue")]
    | Annotated[TimelineAction, Tag("timeline")]
    | Annotated[EventAction, Tag("event")]
    | Annotated[OscAction, Tag("osc")]
    | Annotated[VariableAction, Tag("var")]
    | Annotated[PresetAction, Tag("preset")]
    | Annotated[ArmAction, Tag("arm")]
    | Annotated[DisarmAction, Tag("disarm")]
    | Annotated[SoundAction, Tag("sound")],
    Discriminator(
        _action_kind,
        custom_error_type="action_kind",
        custom_error_message="an action starts with one of: " + ", ".join(f"`{k}`" for k in ACTION_KEYS),
    ),
]


# --- states -----------------------------------------------------------------------------


class Transition(Strict):
    """Leave the state: when a condition holds (`when: "body.count > 0 for 0.5s"`), on an event
    (`on: body.wave`), or after a time in the state (`after: 2min`)."""

    to: Name = Field(description="The state to go to.")
    when: str | None = Field(None, description="A condition, optionally held: `body.count > 0 for 0.5s`.")
    on: str | None = Field(None, description="An event (`body.wave`) or a true/false signal's rising edge.")
    after: Duration | None = Field(None, description="A timeout since the state was entered.")
    do: list[Action] = Field(default_factory=list, description="Actions run on this transition.")

    @model_validator(mode="after")
    def _one_trigger(self) -> Transition:
        if sum(x is not None for x in (self.when, self.on, self.after)) != 1:
            raise ValueError("a transition needs exactly one of `when`, `on` or `after`")
        return self


class StateSpec(Strict):
    enter: list[Action] = Field(default_factory=list, description="Actions when the state is entered.")
    exit: list[Action] = Field(default_factory=list, description="Actions when it is left.")
    transitions: list[Transition] = Field(default_factory=list, description="Ways out, tried in order.")


class MachineSpec(Strict):
    """A state machine; several run in parallel (`mode`, `season`...). Its state reads as
    the signal `states.<machine>` (`states.mode == "engaged"`)."""

    initial: Name = Field(description="The state it starts in.")
    states: dict[Name, StateSpec] = Field(min_length=1, description="Its states.")

    @model_validator(mode="after")
    def _known_states(self) -> MachineSpec:
        from engine.problems import did_you_mean

        if self.initial not in self.states:
            hint = did_you_mean(self.initial, self.states) or ""
            raise ValueError(f"initial state `{self.initial}` is not one of its states {hint}".strip())
        for name, state in self.states.items():
            for transition in state.transitions:
                if transition.to not in self.states:
                    hint = did_you_mean(transition.to, self.states) or ""
                    raise ValueError(f"state `{name}` goes to `{transition.to}`, which does not exist {hint}".strip())
        return self


# --- rules ------------------------------------------------------------------------------


class RuleSpec(Strict):
    """When a condition becomes true, run actions (once per becoming true)."""

    when: str = Field(description="The condition, optionally held: `body.nearest.both_hands_up for 0.3s`.")
    release: str | None = Field(
        None, description="Hysteresis: after firing, the rule re-arms only once this is true (default: `not when`)."
    )
    do: list[Action] = Field(min_length=1, description="Actions when it fires.")
    otherwise: list[Action] = Field(default_factory=list, description="Actions when it re-arms.")


# --- cue lists -----------------------------------------------------------------------------


class CueSpec(Strict):
    id: str = Field(description="Cue number or name, as the operator calls it (`1`, `2.5`, `finale`).")
    name: str | None = Field(None, description="What it does, for the operator.")
    actions: list[Action] = Field(default_factory=list, description="What the cue does.")
    fade: Duration | None = Field(None, description="Fade time for its `set` actions that give none.")
    pre_wait: Duration = Field(0.0, description="Wait between GO and the actions.")
    post_wait: Duration = Field(0.0, description="With auto-continue: wait after the cue starts before the next.")
    follow: Literal["none", "auto-continue", "auto-follow"] = Field(
        "none", description="auto-continue: the next cue starts after post_wait; auto-follow: when this one ends."
    )


class CueListSpec(Strict):
    guard: Duration = Field(0.3, description="Minimum time between two GOs (a double press is ignored).")
    cues: list[CueSpec] = Field(min_length=1, description="The cues, in order.")

    @model_validator(mode="after")
    def _unique_ids(self) -> CueListSpec:
        seen: set[str] = set()
        for cue in self.cues:
            if cue.id in seen:
                raise ValueError(f"cue id `{cue.id}` appears twice")
            seen.add(cue.id)
        return self


# --- opening hours ----------------------------------------------------------------------


class ScheduleSpec(OpeningHours):
    """Opening hours, with what happens at opening and closing. At closing, cues and
    timelines stop and every output fades to its safe state (after `on_close`)."""

    on_open: list[Action] = Field(default_factory=list, description="Actions when the exhibit opens.")
    on_close: list[Action] = Field(default_factory=list, description="Actions when it closes, before parking.")
    close_fade: Duration = Field(5.0, description="How long the fade to the safe state takes at closing.")


class SafetySpec(Strict):
    """Motion safety: what latches the e-stop, and which motion devices are armed at start."""

    estop: list[str] = Field(
        default_factory=list,
        description="Signals or events that latch the e-stop (`plinth.estop`, a true/false input's rising edge).",
    )
    armed_at_start: list[Name] = Field(
        default_factory=list, description="Motion devices armed when the show starts (default: none)."
    )
    panic_time: Duration = Field(1.0, description="PANIC brings every output to its safe state within this time.")
