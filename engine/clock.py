"""One monotonic clock, injectable, so tests can run on virtual time.

Both clocks can *pretend* a wall time (:meth:`PretendWall.pretend`, the curator's studio in a simulated
run: "it is 18:55 on a public holiday"): from then :meth:`wall` runs on from the pretended time at normal
speed, until cleared. The monotonic time never jumps. Who waits for a wall time (the opening hours) sleeps
with :meth:`PretendWall.sleep_wall`, which ends early when the wall time jumps, so it can look again.
"""

from __future__ import annotations

import asyncio
import datetime
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    def wall(self) -> datetime.datetime:
        """The date and time now (timezone-aware, UTC), for opening hours."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""

    def pretend(self, at: datetime.datetime | None) -> None:
        """Make :meth:`wall` read ``at`` now and run on from it (None: the true time again)."""

    @property
    def pretending(self) -> bool:
        """Whether :meth:`wall` reads a pretended time."""

    def true_wall(self) -> datetime.datetime:
        """The wall time without any pretending."""

    async def sleep_wall(self, seconds: float) -> bool:
        """Sleep like :meth:`sleep`; False (early) if the wall time jumps meanwhile."""


class PretendWall(ABC):
    """A wall time that can be moved: ``wall()`` is ``true_wall()`` plus a shift.

    Class-level defaults, so subclasses that do not call ``__init__`` still work."""

    _shift: datetime.timedelta | None = None
    _jumped: asyncio.Future[None] | None = None

    @abstractmethod
    def true_wall(self) -> datetime.datetime:
        """The wall time without any pretending."""

    def wall(self) -> datetime.datetime:
        """The date and time now (timezone-aware, UTC): the true one, or the pretended one running on."""
        true = self.true_wall()
        return true if self._shift is None else true + self._shift

    @property
    def pretending(self) -> bool:
        return self._shift is not None

    def pretend(self, at: datetime.datetime | None) -> None:
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValueError("a pretended wall time needs its time zone")
        self._shift = None if at is None else at.astimezone(datetime.UTC) - self.true_wall()
        jumped, self._jumped = self._jumped, None
        if jumped is not None and not jumped.done():
            jumped.set_result(None)  # every wall sleeper looks again

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""

    async def sleep_wall(self, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        jumped = self._jumped
        if jumped is None or jumped.done() or jumped.get_loop() is not loop:
            jumped = self._jumped = loop.create_future()
        sleeper = loop.create_task(self.sleep(seconds))
        try:
            await asyncio.wait((sleeper, jumped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
        return not jumped.done()


class MonotonicClock(PretendWall):
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def true_wall(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock(PretendWall):
    """A clock that moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 0.0, wall: datetime.datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall = wall or datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def true_wall(self) -> datetime.datetime:
        """The wall clock moves with virtual time, from the ``wall`` it was given."""
        return self._wall + datetime.timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        end = self._now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await _settle()
        self._now = end
        await _settle()


async def _settle(rounds: int = 10) -> None:
    # Let woken tasks run until they block again.
    for _ in range(rounds):
        await asyncio.sleep(0)
