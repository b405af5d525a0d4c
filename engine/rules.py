"""Rules: when a condition becomes true, run actions once; re-arm when it becomes false
again, or (hysteresis) when a separate `release` condition becomes true."""

from __future__ import annotations

import logging

from engine.actions import ActionContext, ActionList
from engine.clock import Clock
from engine.conditions import ConditionWatcher
from engine.expressions import Expression
from engine.signals import SignalStore

log = logging.getLogger("engine.rules")


class Rule:
    def __init__(
        self,
        name: str,
        when: tuple[Expression, float | None],
        release: tuple[Expression, float | None] | None,
        do: ActionList,
        otherwise: ActionList,
        store: SignalStore,
        clock: Clock,
        ctx: ActionContext,
    ) -> None:
        self.name = name
        self.do, self.otherwise, self.ctx = do, otherwise, ctx
        self.armed = True
        self.fired = 0
        self.enabled = True
        self._when = ConditionWatcher(when[0], when[1], store, clock, self._on_when)
        self._release = ConditionWatcher(release[0], release[1], store, clock, self._on_release) if release else None

    def start(self) -> None:
        self._when.start()
        if self._release is not None:
            self._release.start()

    def stop(self) -> None:
        self._when.stop()
        if self._release is not None:
            self._release.stop()

    def _on_when(self, value: bool) -> None:
        if value and self.armed and self.enabled:
            self.armed = False
            self.fired += 1
            log.debug("rule %s fired", self.name)
            self.do.run(self.ctx)
        elif not value and self._release is None and not self.armed:
            self._rearm()

    def _on_release(self, value: bool) -> None:
        if value and not self.armed:
            self._rearm()

    def _rearm(self) -> None:
        self.armed = True
        if self.enabled:
            self.otherwise.run(self.ctx)
