"""One way to wait before trying again: serial boards, pose sources, the MQTT link, the render
process and the supervisor's tasks all reconnect or restart through :class:`Reconnect`.

The rule, the same for all of them:

- after a failure the wait doubles from ``initial`` up to ``cap`` seconds, and jitter takes up to a
  quarter off it at random (never adds), so a room of devices does not retry in step;
- a connection or run that lasted at least ``stable_after`` seconds before it failed counts as a
  success: the next wait starts from ``initial`` again. One that failed sooner (a board that resets
  when opened, a renderer that crashes at once) keeps the waits growing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from engine.clock import Clock


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off, capped, with jitter that only ever shortens the wait."""

    initial: float = 0.5
    cap: float = 5.0
    factor: float = 2.0
    jitter: float = 0.25
    stable_after: float = 30.0
    """A connection or run that lasted this long starts the waits from ``initial`` again."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.cap, self.initial * self.factor**attempt)
        return base * (1.0 - self.jitter * rng.random())


@dataclass
class Reconnect:
    """Counts the failures of one connection and says how long to wait before the next attempt."""

    backoff: Backoff
    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    """Failures since the last stable connection."""
    _up_since: float | None = None

    def up(self) -> None:
        """The connection was made (or the run began)."""
        self._up_since = self.clock.now()

    def next_delay(self) -> float:
        """It failed (or the attempt did): how long to wait before the next one."""
        if self._up_since is not None and self.clock.now() - self._up_since >= self.backoff.stable_after:
            self.attempt = 0
        self._up_since = None
        wait = self.backoff.delay(self.attempt, self.rng)
        self.attempt += 1
        return wait

    async def wait(self) -> None:
        """Sleep :meth:`next_delay` on the clock."""
        await self.clock.sleep(self.next_delay())
