"""A supervisor of named tasks: a failing task is restarted with capped, jittered
back-off (:mod:`engine.reconnect`) and never takes the others down."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.clock import Clock, MonotonicClock
from engine.reconnect import Backoff, Reconnect

log = logging.getLogger("engine.supervisor")


@dataclass
class TaskState:
    name: str
    task: asyncio.Task[None]
    failures: int = 0
    last_error: str | None = None
    running: bool = True


@dataclass
class Supervisor:
    clock: Clock = field(default_factory=MonotonicClock)
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    tasks: dict[str, TaskState] = field(default_factory=dict)

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> TaskState:
        """Run ``factory()`` as task ``name``, restarting it whenever it raises."""
        if name in self.tasks and not self.tasks[name].task.done():
            raise ValueError(f"task `{name}` is already running")
        task = asyncio.create_task(self._supervise(name, factory), name=name)
        state = TaskState(name, task)
        self.tasks[name] = state
        return state

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        restarts = Reconnect(self.backoff, self.clock, self.rng)
        while True:
            restarts.up()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state = self.tasks[name]
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                wait = restarts.next_delay()
                log.warning(
                    "task %s failed (%s); restart %d in %.2fs",
                    name,
                    state.last_error,
                    restarts.attempt,
                    wait,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                await self.clock.sleep(wait)
            else:
                self.tasks[name].running = False
                log.debug("task %s finished", name)
                return

    async def cancel(self, *names: str, timeout: float = 2.0) -> None:
        """Cancel the named tasks and wait for them (none named: nothing to do)."""
        await self._cancel([self.tasks[n] for n in names], timeout)

    async def cancel_all(self, timeout: float = 2.0) -> None:
        """Cancel every task and wait for them."""
        await self._cancel(list(self.tasks.values()), timeout)

    async def _cancel(self, states: list[TaskState], timeout: float) -> None:
        for state in states:
            state.task.cancel()
        tasks = [s.task for s in states]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.error("task %s did not stop within %.1fs", task.get_name(), timeout)
        for state in states:
            state.running = False
