"""Watching a condition: re-evaluated when a signal it reads changes (no polling for
ordinary conditions, so a visitor's movement reaches the rule at once), held for a
time when written `... for 0.5s`, and polled only when it depends on time (`since()`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine.clock import Clock
from engine.expressions import Expression
from engine.signals import SignalStore

POLL_INTERVAL = 0.1
"""How often a time-dependent condition (one using `since()`) is re-evaluated."""


class ConditionWatcher:
    """Calls ``on_change(True)`` when the condition has been true for ``hold`` seconds,
    and ``on_change(False)`` when it stops being true (after having been reported true)."""

    def __init__(
        self,
        expression: Expression,
        hold: float | None,
        store: SignalStore,
        clock: Clock,
        on_change: Callable[[bool], None],
    ) -> None:
        self.expression = expression
        self.hold = hold or 0.0
        self.store = store
        self.clock = clock
        self.on_change = on_change
        self.raw = False
        """Whether the expression is true right now (before the hold)."""
        self.reported = False
        """What ``on_change`` was last told."""
        self._timer: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        for name in self.expression.names:
            self._unsubscribe.append(self.store.subscribe(name, lambda _signal: self.evaluate()))
        if self.expression.time_dependent:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        self.evaluate()

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for task in (self._timer, self._poller):
            if task is not None:
                task.cancel()
        self._timer = self._poller = None

    def evaluate(self) -> None:
        value = self.expression.evaluate_bool()
        if value == self.raw:
            return
        self.raw = value
        if value:
            if self.hold <= 0:
                self._report(True)
            else:
                self._timer = asyncio.get_running_loop().create_task(self._after_hold())
        else:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.reported:
                self._report(False)

    async def _after_hold(self) -> None:
        await self.clock.sleep(self.hold)
        self._timer = None
        if self.raw:
            self._report(True)

    async def _poll(self) -> None:
        while True:
            await self.clock.sleep(POLL_INTERVAL)
            self.evaluate()

    def _report(self, value: bool) -> None:
        self.reported = value
        self.on_change(value)
