"""The show: what turns signals into an experience. Builds the exhibit's mappings,
variables, presets, state machines, rules, cue lists, timelines and opening hours
on a shared fade engine, and offers the one control interface (GO, BACK, PANIC...)
that the console and the OSC/MQTT control APIs use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.actions import ActionContext, ActionList, compile_actions
from engine.catalogue import ESTOP_SIGNAL, PANIC_SIGNAL, collection_fields, show_catalogue, visitor_alias
from engine.clock import Clock
from engine.cues import CompiledCue, CueList
from engine.exhibit import ExhibitBase
from engine.expressions import Expression, StoreResolver, compile_expression, parse_condition
from engine.fades import FadeEngine
from engine.mapping import BoundMapping, Transfer, bind_fan_out, bind_mapping, fan_out_slots, mapping_cause
from engine.model import Mapping as MappingSpec
from engine.model import Outputs
from engine.provenance import CLOSING, OPENING, Cause, cue_origin, rule_origin, state_origin
from engine.rules import Rule
from engine.safety import Safety
from engine.show_model import CueAction, SetAction, TimelineAction
from engine.signals import Signal, SignalStore
from engine.states import CompiledState, CompiledTransition, Machine
from engine.timeline import Timeline

log = logging.getLogger("engine.show")

Messenger = Callable[[str, list[Any]], None]
"""Sends one whole message (address, arguments) with a device: an OSC out device's ``send_message``."""


@dataclass
class ShowStatus:
    """What an operator's console shows."""

    panic: bool
    states: dict[str, str | None]
    cue_lists: dict[str, dict[str, Any]]
    timelines: dict[str, dict[str, Any]]
    open: bool | None
    action_errors: int
    estop: bool = False
    estop_by: str = ""
    armed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Carried:
    """What a hot reload carries from the running show to the new one, besides machine states."""

    timelines: dict[str, tuple[bool, float, bool]] = field(default_factory=dict)
    """Timelines that were playing or paused: (playing, position, loop)."""
    standby: dict[str, str] = field(default_factory=dict)
    """Each cue list's standby cue, by id."""


@dataclass
class Show:
    exhibit: ExhibitBase
    store: SignalStore
    clock: Clock
    fades: FadeEngine
    outputs: Mapping[str, Outputs]
    """Every mapping target (devices, and sensors with outputs), by name."""
    safety: Safety = field(default_factory=Safety)
    messengers: Mapping[str, Messenger] = field(default_factory=dict)
    """Devices that send whole messages (`{osc: ...}` actions), by name, behind the safety gate."""
    machines: dict[str, Machine] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    cue_lists: dict[str, CueList] = field(default_factory=dict)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    panicked: bool = False

    def __post_init__(self) -> None:
        show_catalogue(self.exhibit).declare(self.store)
        aliases = visitor_alias(self.exhibit)
        self.resolver = StoreResolver(
            self.store, now=self.clock.now, aliases=aliases, item_fields=collection_fields(self.exhibit)
        )
        self.ctx = ActionContext(
            self.store,
            self.clock,
            self.fades,
            self.exhibit.presets,
            cue=self._cue_action,
            timeline=self._timeline_action,
            arm=self._arm_action,
            message=self._message,
            played=self._played,
        )
        self.bound: list[BoundMapping] = []
        """The mappings as bound by the last start (the inspector lists them as candidates)."""
        self._unbind: list[Callable[[], None]] = []
        self._schedule_task: asyncio.Task[None] | None = None
        self._build()

    # --- building ---------------------------------------------------------------------

    def compile(self, source: str) -> Expression:
        return compile_expression(source, self.resolver)

    def condition(self, source: str) -> tuple[Expression, float | None]:
        expression_source, hold = parse_condition(source)
        return self.compile(expression_source), hold

    def actions(self, actions: list[Any], default_fade: float | None = None, origin: Cause | None = None) -> ActionList:
        """``origin``: whose actions (a cue, a rule, a state...), recorded as the cause of what they set."""
        return compile_actions(actions, self.compile, default_fade, origin)

    def _build(self) -> None:
        for name, spec in self.exhibit.states.items():
            states = {
                state_name: CompiledState(
                    enter=self.actions(state.enter, origin=state_origin(name, f"{state_name} (enter)")),
                    exit=self.actions(state.exit, origin=state_origin(name, f"{state_name} (exit)")),
                    transitions=[
                        CompiledTransition(
                            to=t.to,
                            do=self.actions(t.do, origin=state_origin(name, f"{state_name} → {t.to}")),
                            when=self.condition(t.when) if t.when else None,
                            on=self.resolver.canonical(t.on) if t.on else None,
                            after=t.after,
                        )
                        for t in state.transitions
                    ],
                )
                for state_name, state in spec.states.items()
            }
            self.machines[name] = Machine(name, spec.initial, states, self.store, self.clock, self.ctx)
        for index, rule in enumerate(self.exhibit.rules):
            release = self.condition(rule.release) if rule.release else None
            self.rules.append(
                Rule(
                    f"rule {index + 1}",
                    self.condition(rule.when),
                    release,
                    self.actions(rule.do, origin=rule_origin(index, rule.when)),
                    self.actions(rule.otherwise, origin=rule_origin(index, rule.when, otherwise=True)),
                    self.store,
                    self.clock,
                    self.ctx,
                )
            )
        for name, cue_spec in self.exhibit.cues.items():
            cues = []
            for cue in cue_spec.cues:
                actions = self.actions(cue.actions, cue.fade, cue_origin(name, cue.id, cue.name))
                length = actions.duration + max(actions.longest_fade, cue.fade or 0.0)
                cues.append(
                    CompiledCue(cue.id, cue.name, actions, cue.fade, cue.pre_wait, cue.post_wait, cue.follow, length)
                )
            self.cue_lists[name] = CueList(name, cues, cue_spec.guard, self.clock, self.ctx)
        for name, timeline in self.exhibit.timelines.items():
            self.timelines[name] = played = Timeline(timeline, self.fades, name)
            if timeline.actions:
                compiled = {id(timed.do): self.actions(timed.do, origin=played.cause) for timed in timeline.actions}
                played.on_actions = lambda actions, compiled=compiled: compiled[id(actions)].run(self.ctx)

    # --- running ----------------------------------------------------------------------

    def carry(self) -> Carried:
        """Where this show's timelines and cue lists are, for the show that replaces it (hot reload)."""
        timelines = {
            name: (t.playing, t.position, t.loop) for name, t in self.timelines.items() if t.playing or t.paused
        }
        standby = {name: c.standby.id for name, c in self.cue_lists.items() if c.standby is not None}
        return Carried(timelines, standby)

    def start(
        self, keep: Mapping[str, str | None] | None = None, carried: Carried | None = None, arm: bool = True
    ) -> None:
        """Start the logic; ``keep`` gives machine states to resume (hot reload) instead of initial ones,
        and ``carried`` where the replaced show's timelines and cue lists were. ``arm``: arm the
        ``safety.armed_at_start`` devices (not after a PANIC, nor on a hot reload)."""
        self._bind_mappings()
        triggers = [self.resolver.canonical(trigger) for trigger in self.exhibit.safety.estop]
        for trigger in triggers:
            self._unbind.append(self.store.subscribe(trigger, self._on_estop_signal))
        # Never pinned; a pin already on one (a reload made it a trigger) is released: the e-stop sees its input.
        self.store.protect({PANIC_SIGNAL, ESTOP_SIGNAL, *triggers})
        if keep is None and arm:
            for name in self.exhibit.safety.armed_at_start:
                self.safety.arm(name)
        for name, machine in self.machines.items():
            machine.start((keep or {}).get(name))
        for rule in self.rules:
            rule.start()
        if carried is not None:
            self._take_over(carried)
        if self.exhibit.schedule is not None:
            self._schedule_task = asyncio.get_running_loop().create_task(self._follow_schedule())

    def _take_over(self, carried: Carried) -> None:
        for name, (playing, position, loop) in carried.timelines.items():
            timeline = self.timelines.get(name)
            if timeline is None:
                continue
            if timeline.length > 0:
                timeline.loop = loop
            if playing:
                timeline.continue_at(position)
            else:
                timeline.seek(min(position, timeline.length))
        for name, cue_id in carried.standby.items():
            cue_list = self.cue_lists.get(name)
            if cue_list is not None and any(cue.id == cue_id for cue in cue_list.cues):
                cue_list.goto(cue_id)

    def stop(self) -> None:
        """Stop the logic (not the fades already running: a reload must not make lights jump)."""
        for unbind in self._unbind:
            unbind()
        self._unbind.clear()
        for machine in self.machines.values():
            machine.stop()
        for rule in self.rules:
            rule.stop()
        for cue_list in self.cue_lists.values():
            cue_list.stop()
        for timeline in self.timelines.values():
            timeline.stop()
        if self._schedule_task is not None:
            self._schedule_task.cancel()
        self.ctx.cancel_all()

    def _bind_mappings(self) -> None:
        self.bound = []
        for mapping in self.exhibit.mappings:
            if mapping.field is not None:
                self._bind_fan_out(mapping)
                continue
            target, prop = mapping.target.split(".", 1)
            output = self._range(mapping, target, prop)
            # Built once per binding: each write records a reference to this cause, nothing more.
            transfer = Transfer(mapping, output)
            cause = mapping_cause(transfer, mapping.source, mapping.target)
            setter = _setter(self.fades, target, cause)
            enabled = self._enabled(mapping)
            self.bound.append(BoundMapping(mapping, [(target, prop)], [cause], enabled))
            self._unbind.append(bind_mapping(mapping, output, self.store, setter, enabled, transfer))

    def _bind_fan_out(self, mapping: MappingSpec) -> None:
        prop = mapping.target.rsplit(".", 1)[1]
        slots = [(name, self._range(mapping, name, prop)) for name in fan_out_slots(mapping, self.outputs)]
        transfers = [Transfer(mapping, output) for _, output in slots]
        causes = {
            name: mapping_cause(transfer, f"{mapping.source}[slot {slot}].{mapping.field}", f"{name}.{prop}")
            for slot, ((name, _), transfer) in enumerate(zip(slots, transfers, strict=True), 1)
        }
        fades = self.fades

        def set_target(target: str, prop: str, value: Any) -> None:
            fades.set_now(target, prop, value, causes[target])

        enabled = self._enabled(mapping)
        self.bound.append(BoundMapping(mapping, [(name, prop) for name, _ in slots], list(causes.values()), enabled))
        self._unbind.append(bind_fan_out(mapping, slots, self.store, set_target, enabled, transfers))

    def _enabled(self, mapping: MappingSpec) -> Callable[[], bool] | None:
        return self.compile(mapping.when).evaluate_bool if mapping.when is not None else None

    def _range(self, mapping: MappingSpec, target: str, prop: str) -> tuple[float, float]:
        output = mapping.output or self.outputs[target].property_range(prop)
        assert output is not None, "validation guarantees an output range"
        return output

    # --- control interface --------------------------------------------------------------

    def cue_list(self, name: str | None) -> CueList:
        if name is None:
            if len(self.cue_lists) != 1:
                raise KeyError("name the cue list: this exhibit has " + (", ".join(self.cue_lists) or "none"))
            return next(iter(self.cue_lists.values()))
        return self.cue_lists[name]

    def go(self, cue_list: str | None = None, cue: str | None = None) -> bool:
        if self.panicked:
            log.warning("GO ignored: the show is in PANIC; reset it first")
            return False
        return self.cue_list(cue_list).go(cue)

    def back(self, cue_list: str | None = None) -> None:
        self.cue_list(cue_list).back()

    def goto(self, cue: str, cue_list: str | None = None) -> None:
        self.cue_list(cue_list).goto(cue)

    def pause(self) -> None:
        for cue_list in self.cue_lists.values():
            cue_list.pause()
        for timeline in self.timelines.values():
            timeline.pause()
        self.fades.pause()

    def resume(self) -> None:
        for cue_list in self.cue_lists.values():
            cue_list.resume()
        for timeline in self.timelines.values():
            if timeline.paused:  # RESUME continues what PAUSE froze; it starts nothing that was stopped
                timeline.resume()
        self.fades.resume()

    def panic(self) -> asyncio.Task[None]:
        """Stop cues, timelines and logic, and fade every output to its safe state within the
        exhibit's ``safety.panic_time``. Mappings and rules stay off until :meth:`reset`.
        Returns at once; the task ends when all is safe."""
        log.warning("PANIC: every output goes to its safe state within %.1f s", self.exhibit.safety.panic_time)
        self.panicked = True
        self.store.set(PANIC_SIGNAL, True)
        self.stop()
        for name in list(self.safety.armed):
            self.safety.disarm(name)  # motion waits for a deliberate re-arm after a PANIC
        # At once: a motor does not coast through the fade (its steps are not safe values).
        self._stop_motion(Cause("safe", "PANIC", "PANIC: motion stopped at once, safe state"))
        self.fades.resume()
        safe = {name: outputs.safe_state() for name, outputs in self.outputs.items()}
        seconds = self.exhibit.safety.panic_time
        cause = Cause("safe", "PANIC", f"PANIC: safe state (within {seconds:g} s), until reset")
        return asyncio.get_running_loop().create_task(self.fades.fade_all(safe, seconds, cause))

    def estop(self, by: str = "") -> None:
        """Latch the e-stop: motion devices stop (their safe state) and take no motion command until
        :meth:`reset_estop`. Lights and other devices are not affected. ``by`` names the input or
        operator, for the console."""
        self.safety.estop(by)
        self.store.set(ESTOP_SIGNAL, True)
        by = self.safety.latched_by
        self._stop_motion(Cause("safe", "e-stop", "e-stop latched" + (f" by {by}" if by else "") + ": motion stopped"))

    def _stop_motion(self, cause: Cause | None = None) -> None:
        """Every motion device to its safe state now: nothing drives any of its properties any more
        (a position fade too, though the safe state leaves position out), and no step a fade had
        waiting for the device's rate limit goes out with the stop, for the gate would block it whole."""
        for name, safe in self.safety.motion.items():
            self.fades.halt(name, safe, cause)

    def reset_estop(self) -> None:
        """Release the e-stop latch: nothing is re-armed and no cue resumes by itself."""
        self.safety.reset()
        self.store.set(ESTOP_SIGNAL, False)

    def arm(self, name: str) -> bool:
        return self.safety.arm(name)

    def disarm(self, name: str) -> None:
        self.safety.disarm(name)

    def _arm_action(self, name: str, armed: bool) -> None:
        if armed:
            self.safety.arm(name)
        else:
            self.safety.disarm(name)

    def _on_estop_signal(self, signal: Signal) -> None:
        if not signal.stale and (signal.type == "event" or signal.value is True):
            self.estop(by=signal.name)

    def reset(self) -> None:
        """Leave PANIC: logic restarts from the initial states; no cue resumes by itself."""
        if not self.panicked:
            return
        self.panicked = False
        self.store.set(PANIC_SIGNAL, False)
        cause = Cause("safe", "PANIC reset", "PANIC reset: put back")
        for name, outputs in self.outputs.items():
            for prop, value in outputs.reset_state().items():  # the sound's master: the room is not mute for ever
                self.fades.set_now(name, prop, value, cause)
        self.start(arm=False)  # motion waits for a deliberate arm, as after an e-stop
        log.info("PANIC reset: logic restarted from the initial states; motion devices stay disarmed until armed")

    def status(self) -> ShowStatus:
        return ShowStatus(
            panic=self.panicked,
            states={name: machine.state for name, machine in self.machines.items()},
            cue_lists={
                name: {
                    "standby": cue.standby.id if cue.standby else None,
                    "paused": cue.pauser.paused,
                    "last": cue.fired[-1][1] if cue.fired else None,
                }
                for name, cue in self.cue_lists.items()
            },
            timelines={name: {"playing": t.playing, "position": t.position} for name, t in self.timelines.items()},
            open=self.store.get("schedule.open").value if self.exhibit.schedule is not None else None,
            action_errors=self.ctx.errors,
            estop=self.safety.latched,
            estop_by=self.safety.latched_by,
            armed=sorted(self.safety.armed),
        )

    # --- what actions call ----------------------------------------------------------------

    def _cue_action(self, action: CueAction) -> None:
        cue_list = self.cue_lists[action.cue]
        if action.do == "go":
            cue_list.go(action.go)
        elif action.do == "stop":
            cue_list.stop()
        elif action.do == "pause":
            cue_list.pause()
        else:
            cue_list.resume()

    def _message(self, device: str, address: str, args: list[Any]) -> None:
        send = self.messengers.get(device)
        if send is None:
            self.ctx.errors += 1
            log.warning("no device `%s` sends messages; %s was not sent", device, address)
            return
        send(address, args)

    def _played(self, timeline: str, by: str) -> None:
        self.timelines[timeline].started_by = by

    def _timeline_action(self, action: TimelineAction) -> None:
        timeline = self.timelines[action.timeline]
        if action.do == "play":
            if action.loop is not None:
                timeline.loop = action.loop
            timeline.play()
        elif action.do == "pause":
            timeline.pause()
        elif action.do == "resume":
            timeline.resume()
        else:
            timeline.stop()

    # --- opening hours ----------------------------------------------------------------------

    async def _follow_schedule(self) -> None:
        schedule = self.exhibit.schedule
        assert schedule is not None
        is_open = schedule.is_open(self.clock.wall())
        self.store.set("schedule.open", is_open)
        (self._on_open if is_open else self._on_close)(initial=True)
        while True:
            change, opens = schedule.next_change(self.clock.wall())
            if not await self.clock.sleep_wall(max(0.0, (change - self.clock.wall()).total_seconds())):
                # The wall time jumped (the studio's pretended time set or cleared): as it is at the new time.
                opens = schedule.is_open(self.clock.wall())
                if opens == is_open:
                    continue
            is_open = opens
            self.store.set("schedule.open", opens)
            (self._on_open if opens else self._on_close)(initial=False)

    def _on_open(self, initial: bool) -> None:
        assert self.exhibit.schedule is not None
        log.info("opening hours: open")
        if not initial:
            self._replay_state_timelines()
        self.actions(self.exhibit.schedule.on_open, origin=OPENING).run(self.ctx)

    def _replay_state_timelines(self) -> None:
        """At opening time, the timelines that the machines' current states play (their ``enter``) play again:
        closing time stopped them, and an exhibit that opens in `attract` must breathe at 9:00 as it did when
        it entered `attract`, not wait dark for a visitor to come and go. Their other actions are not run again
        (a visit is not counted twice)."""
        for name, machine in self.machines.items():
            state = self.exhibit.states[name].states.get(machine.state or "")
            plays = [a for a in (state.enter if state else []) if isinstance(a, TimelineAction) and a.do == "play"]
            if plays:
                self.actions(plays, origin=OPENING).run(self.ctx)

    def _on_close(self, initial: bool) -> None:
        assert self.exhibit.schedule is not None
        log.info("opening hours: closed; every output fades to its safe state")
        for cue_list in self.cue_lists.values():
            cue_list.stop()
        for timeline in self.timelines.values():
            timeline.stop()
        self.actions(self.exhibit.schedule.on_close, origin=CLOSING).run(self.ctx)
        safe = {name: outputs.safe_state() for name, outputs in self.outputs.items()}
        seconds = self.exhibit.schedule.close_fade
        cause = Cause("safe", "closing time", f"closing time: safe state (faded over {seconds:g} s)")
        asyncio.get_running_loop().create_task(self.fades.fade_all(safe, seconds, cause))


def _setter(fades: FadeEngine, target: str, cause: Cause | None = None) -> Callable[[str, Any], None]:
    def set_property(prop: str, value: Any) -> None:
        fades.set_now(target, prop, value, cause)

    return set_property


__all__ = ["PANIC_SIGNAL", "SetAction", "Show", "ShowStatus"]
