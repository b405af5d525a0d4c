"""Waits that an operator can pause and resume (PAUSE/RESUME on a running cue list)."""

from __future__ import annotations

import asyncio

from engine.clock import Clock


class Pauser:
    """A ``sleep`` whose remaining time freezes while paused."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._running = asyncio.Event()
        self._running.set()
        self._paused = asyncio.Event()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._running.set()

    async def sleep(self, seconds: float) -> None:
        remaining = seconds
        while remaining > 0:
            await self._running.wait()
            started = self.clock.now()
            sleeper = asyncio.ensure_future(self.clock.sleep(remaining))
            interrupt = asyncio.ensure_future(self._paused.wait())
            try:
                await asyncio.wait({sleeper, interrupt}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                interrupt.cancel()
            if sleeper.done() and not sleeper.cancelled():
                return
            remaining -= self.clock.now() - started
