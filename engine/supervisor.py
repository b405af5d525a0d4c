"""A supervisor of named tasks: a failing task is restarted with capped, jittered
back-off and never takes the others down."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.clock import Clock, MonotonicClock

log = logging.getLogger("engine.supervisor")


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off, capped, with jitter that only ever shortens the wait."""

    initial: float = 0.5
    cap: float = 5.0
    factor: float = 2.0
    jitter: float = 0.25
    reset_after: float = 30.0
    """A task that ran this long before failing starts again from ``initial``."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.cap, self.initial * self.factor**attempt)
        return base * (1.0 - self.jitter * rng.random())


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
        attempt = 0
        while True:
            started = self.clock.now()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state = self.tasks[name]
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                if self.clock.now() - started >= self.backoff.reset_after:
                    attempt = 0
                wait = self.backoff.delay(attempt, self.rng)
                attempt += 1
                log.warning(
                    "task %s failed (%s); restart %d in %.2fs",
                    name,
                    state.last_error,
                    attempt,
                    wait,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                await self.clock.sleep(wait)
            else:
                self.tasks[name].running = False
                log.debug("task %s finished", name)
                return

    async def cancel(self, *names: str, timeout: float = 2.0) -> None:
        """Cancel the named tasks (all of them when none are named) and wait for them."""
        states = [self.tasks[n] for n in names] if names else list(self.tasks.values())
        for state in states:
            state.task.cancel()
        tasks = [s.task for s in states]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.error("task %s did not stop within %.1fs", task.get_name(), timeout)
        for state in states:
            state.running = False
