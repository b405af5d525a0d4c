"""State machines: several in parallel, each in one state at a time, with enter and
exit actions and transitions on a held condition, an event or a timeout. A
machine's state reads as the signal ``states.<machine>``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.actions import ActionContext, ActionList
from engine.clock import Clock
from engine.conditions import ConditionWatcher
from engine.expressions import Expression
from engine.signals import Signal, SignalStore

log = logging.getLogger("engine.states")


@dataclass
class CompiledTransition:
    to: str
    do: ActionList
    when: tuple[Expression, float | None] | None = None
    on: str | None = None
    after: float | None = None


@dataclass
class CompiledState:
    enter: ActionList
    exit: ActionList
    transitions: list[CompiledTransition] = field(default_factory=list)


class Machine:
    def __init__(
        self,
        name: str,
        initial: str,
        states: dict[str, CompiledState],
        store: SignalStore,
        clock: Clock,
        ctx: ActionContext,
    ) -> None:
        self.name = name
        self.initial = initial
        self.states = states
        self.store = store
        self.clock = clock
        self.ctx = ctx
        self.state: str | None = None
        self.entered_at = 0.0
        self.history: list[tuple[float, str]] = []
        self._watchers: list[ConditionWatcher] = []
        self._cleanup: list[Callable[[], None]] = []
        self._timers: list[asyncio.Task[None]] = []

    @property
    def signal(self) -> str:
        return f"states.{self.name}"

    def start(self, state: str | None = None) -> None:
        """Enter the initial state (or ``state``, when a reload keeps where the show was)."""
        kept = state is not None and state in self.states
        self._enter(state if kept and state is not None else self.initial, run_actions=not kept)

    def stop(self) -> None:
        self._disarm()

    def go(self, target: str, actions: ActionList | None = None) -> None:
        """Leave the current state for ``target`` (exit actions, transition actions, enter actions)."""
        current = self.states[self.state] if self.state is not None else None
        self._disarm()
        if current is not None:
            current.exit.run(self.ctx)
        if actions is not None:
            actions.run(self.ctx)
        log.info("state %s: %s -> %s", self.name, self.state, target)
        self._enter(target)

    def _enter(self, name: str, run_actions: bool = True) -> None:
        self.state = name
        self.entered_at = self.clock.now()
        self.history.append((self.entered_at, name))
        self.store.set(self.signal, name)
        state = self.states[name]
        if run_actions:
            state.enter.run(self.ctx)
        if self.state == name:  # enter actions may not have moved us on
            self._arm(state)

    def _arm(self, state: CompiledState) -> None:
        loop = asyncio.get_running_loop()
        for transition in state.transitions:
            if transition.when is not None:
                expression, hold = transition.when
                watcher = ConditionWatcher(expression, hold, self.store, self.clock, self._on_condition(transition))
                self._watchers.append(watcher)
            elif transition.on is not None:
                self._cleanup.append(self.store.subscribe(transition.on, self._on_signal(transition)))
            elif transition.after is not None:
                self._timers.append(loop.create_task(self._timeout(transition, transition.after)))
        for watcher in list(self._watchers):
            watcher.start()  # may transition at once; then the rest were disarmed already

    def _disarm(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        for cleanup in self._cleanup:
            cleanup()
        for timer in self._timers:
            timer.cancel()
        self._watchers, self._cleanup, self._timers = [], [], []

    def _on_condition(self, transition: CompiledTransition) -> Callable[[bool], None]:
        def changed(value: bool) -> None:
            if value:
                self.go(transition.to, transition.do)

        return changed

    def _on_signal(self, transition: CompiledTransition) -> Callable[[Signal], None]:
        def fired(signal: Signal) -> None:
            # An event fires on every occurrence; a true/false signal on its rising edge.
            if signal.stale or (signal.type == "bool" and signal.value is not True):
                return
            self.go(transition.to, transition.do)

        return fired

    async def _timeout(self, transition: CompiledTransition, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.go(transition.to, transition.do)
