"""One monotonic clock, injectable, so tests can run on virtual time."""

from __future__ import annotations

import asyncio
import datetime
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    def wall(self) -> datetime.datetime:
        """The date and time now (timezone-aware, UTC), for opening hours."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that moves only when a test calls :meth:`advance`."""

    def __init__(self, start: float = 0.0, wall: datetime.datetime | None = None) -> None:
        self._now = start
        self._start = start
        self._wall = wall or datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime.datetime:
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
