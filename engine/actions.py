"""Running actions (from states, rules, cues, opening hours): set or fade a property,
wait, operate a cue list or a timeline, fire an event, send OSC, set a variable,
recall a preset.

Actions are compiled once, when the show is built. A list runs synchronously up to
its first `delay`, so a GO reaches the devices without waiting for the event loop;
the rest runs as a tracked task that PANIC can cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.clock import Clock
from engine.expressions import Expression
from engine.fades import FadeEngine
from engine.provenance import Cause
from engine.show_model import (
    Action,
    ArmAction,
    CueAction,
    DelayAction,
    DisarmAction,
    EventAction,
    OscAction,
    PresetAction,
    SetAction,
    TimelineAction,
    VariableAction,
)
from engine.signals import SignalStore
from engine.sound_model import SOUND_DEVICE, SoundAction

log = logging.getLogger("engine.actions")

CompileExpression = Callable[[str], Expression]


@dataclass
class ActionContext:
    """What actions act on. The show fills in the cue and timeline controls."""

    store: SignalStore
    clock: Clock
    fades: FadeEngine
    presets: Mapping[str, Mapping[str, Any]]
    cue: Callable[[CueAction], None] = lambda action: None
    arm: Callable[[str, bool], None] = lambda name, armed: None
    timeline: Callable[[TimelineAction], None] = lambda action: None
    message: Callable[[str, str, list[Any]], None] = lambda device, address, args: None
    """Send a whole message with a device (`{osc: ...}`): the show passes it to the device's code."""
    played: Callable[[str, str], None] = lambda timeline, by: None
    """A timeline action played (or resumed) ``timeline``; ``by`` says which list did (the inspector shows it)."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    errors: int = 0

    def cancel_all(self) -> None:
        """Stop every action list that is waiting in a `delay` (PANIC)."""
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()


Step = Callable[[ActionContext, float | None], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass
class ActionList:
    """Compiled actions. ``run`` starts them; returns the task running what follows a delay, if any."""

    steps: list[Step | Wait]
    default_fade: float | None = None

    def run(
        self, ctx: ActionContext, default_fade: float | None = None, sleep: Sleep | None = None
    ) -> asyncio.Task[None] | None:
        fade = self.default_fade if default_fade is None else default_fade
        for index, step in enumerate(self.steps):
            if isinstance(step, Wait):
                task = asyncio.get_running_loop().create_task(self._rest(ctx, index, fade, sleep or ctx.clock.sleep))
                ctx.tasks.add(task)
                task.add_done_callback(ctx.tasks.discard)
                return task
            _safely(step, ctx, fade)
        return None

    async def _rest(self, ctx: ActionContext, start: int, fade: float | None, sleep: Sleep) -> None:
        for step in self.steps[start:]:
            if isinstance(step, Wait):
                await sleep(step.seconds)
            else:
                _safely(step, ctx, fade)

    @property
    def duration(self) -> float:
        """The sum of its delays (how long the list takes, fades aside)."""
        return sum(step.seconds for step in self.steps if isinstance(step, Wait))

    longest_fade: float = 0.0
    """The longest fade its `set` actions name (a cue's own fade time is added by the cue)."""


def _safely(step: Step, ctx: ActionContext, fade: float | None) -> None:
    try:
        step(ctx, fade)
    except Exception:  # one broken action must not stop a cue or a state change
        ctx.errors += 1
        log.exception("an action failed")


def compile_actions(
    actions: Sequence[Action],
    compile_expression: CompileExpression,
    default_fade: float | None = None,
    origin: Cause | None = None,
) -> ActionList:
    """``origin`` says whose actions they are (a cue, a rule, a state, the opening hours): its kind and
    name, and in ``text`` how to say it (`cue evening/2 (Night)`). What they set records it as its cause."""
    fades = [a.fade for a in actions if isinstance(a, SetAction | PresetAction) and a.fade is not None]
    return ActionList(
        [_compile(action, compile_expression, origin, default_fade) for action in actions],
        default_fade,
        max(fades, default=0.0),
    )


def _compile(
    action: Action,
    compile_expression: CompileExpression,
    origin: Cause | None = None,
    default_fade: float | None = None,
) -> Step | Wait:
    if isinstance(action, DelayAction):
        return Wait(action.delay)
    if isinstance(action, SetAction):
        return _set_step(action, compile_expression, origin, default_fade)
    if isinstance(action, VariableAction):
        return _variable_step(action, compile_expression)
    if isinstance(action, PresetAction):
        return _preset_step(action, origin, default_fade)
    if isinstance(action, EventAction):
        name, payload = action.event, action.payload
        return lambda ctx, fade: ctx.store.set(name, payload)
    if isinstance(action, OscAction):
        return _osc_step(action)
    if isinstance(action, CueAction):
        return lambda ctx, fade: ctx.cue(action)
    if isinstance(action, ArmAction):
        return lambda ctx, fade: ctx.arm(action.arm, True)
    if isinstance(action, DisarmAction):
        return lambda ctx, fade: ctx.arm(action.disarm, False)
    if isinstance(action, SoundAction):
        return _sound_step(action)
    assert isinstance(action, TimelineAction)
    return _timeline_step(action, origin)


def _timeline_step(action: TimelineAction, origin: Cause | None) -> Step:
    by = origin.text if origin is not None else ""

    def step(ctx: ActionContext, fade: float | None) -> None:
        ctx.timeline(action)
        if by and action.do in ("play", "resume"):
            ctx.played(action.timeline, by)

    return step


def _memo(make: Callable[[float | None], Cause], *expected: float | None) -> Callable[[float | None], Cause]:
    """One cause per fade time: those ``expected`` built now (compiling), others on first use, so that
    running a step (a GO) only looks its cause up."""
    made: dict[float | None, Cause] = {fade: make(fade) for fade in (None, *expected)}

    def get(fade: float | None) -> Cause:
        cause = made.get(fade)
        if cause is None:
            cause = made[fade] = make(fade)
        return cause

    return get


def _fading(fade: float | None) -> str:
    return f", fade {fade:g} s" if fade else ""


def _set_step(
    action: SetAction,
    compile_expression: CompileExpression,
    origin: Cause | None = None,
    default_fade: float | None = None,
) -> Step:
    target, prop = action.set.split(".", 1)
    expression = compile_expression(action.expr) if action.expr is not None else None
    literal = action.value
    what = f"`{action.expr}`" if action.expr is not None else _literal(literal)

    def make(fade: float | None) -> Cause:
        if origin is None:  # a set action run on its own (a test, a tool): say what it did
            kind: Any = "fade" if fade else "action"
            return Cause(kind, action.set, f"set {action.set} to {what}{_fading(fade)}")
        return Cause(origin.kind, origin.name, f"{origin.text}: set {action.set} to {what}{_fading(fade)}")

    planned = action.fade if action.fade is not None else default_fade
    cause_for = _memo(make, planned)
    now_cause, planned_cause = cause_for(None), cause_for(planned)  # a GO only passes a reference on

    def step(ctx: ActionContext, default_fade: float | None) -> None:
        value = expression.evaluate() if expression is not None else literal
        if value is None:
            return  # an expression with nothing to read yet changes nothing
        fade = action.fade if action.fade is not None else default_fade
        if fade and isinstance(value, int | float) and not isinstance(value, bool):
            cause = planned_cause if fade == planned else cause_for(fade)
            ctx.fades.fade(target, prop, float(value), fade, action.curve, cause=cause)
        else:
            ctx.fades.set_now(target, prop, value, now_cause)

    return step


def _literal(value: Any) -> str:
    """A value as the exhibit file writes it: `true`, `'gold'`, `80`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _variable_step(action: VariableAction, compile_expression: CompileExpression) -> Step:
    expression = compile_expression(action.expr) if action.expr is not None else None
    name, literal = f"var.{action.var}", action.value

    def step(ctx: ActionContext, fade: float | None) -> None:
        value = expression.evaluate() if expression is not None else literal
        if value is not None:
            kind = ctx.store.get(name).type
            ctx.store.set(name, _as_type(value, kind))

    return step


def _as_type(value: Any, kind: str) -> Any:
    if kind == "float":
        return float(value)
    if kind == "int":
        return round(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _preset_step(action: PresetAction, origin: Cause | None = None, default_fade: float | None = None) -> Step:
    by = f", recalled by {origin.text}" if origin is not None else ""
    cause_for = _memo(
        lambda fade: Cause("preset", action.preset, f"preset {action.preset}{by}{_fading(fade)}"),
        action.fade if action.fade is not None else default_fade,
    )

    def step(ctx: ActionContext, default_fade: float | None) -> None:
        fade = action.fade if action.fade is not None else default_fade
        for reference, value in ctx.presets[action.preset].items():
            target, prop = reference.split(".", 1)
            if fade and isinstance(value, int | float) and not isinstance(value, bool):
                ctx.fades.fade(target, prop, float(value), fade, cause=cause_for(fade))
            else:
                ctx.fades.set_now(target, prop, value, cause_for(None))

    return step


def _sound_step(action: SoundAction) -> Step:
    """A sound is played by the `sound` device, as a message (`/play/chime [fade]`): it goes through the same safety
    gate as OSC, so nothing starts to sound while PANIC holds."""
    address, args = f"/{action.do}/{action.sound}", [float(action.fade or 0.0)]
    return lambda ctx, fade: ctx.message(SOUND_DEVICE, address, args)


def _osc_step(action: OscAction) -> Step:
    device, address, args = action.target, action.osc, list(action.args)
    return lambda ctx, fade: ctx.message(device, address, args)
