"""Analytics beside a running show: the measures are fed by the pose sensors (ids, floor positions, zones: never
landmarks), by the inputs the curator marks as interactions and by the state machines; every minute they are folded
into hour aggregates and handed to the writer thread, so the control loop never waits on the disk; retention runs
once a day. A ``--simulate`` run keeps its own, marked database; ``analytics.enabled: false`` creates nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from engine.analytics.folding import Measures
from engine.analytics.settings import AnalyticsSettings
from engine.analytics.store import AnalyticsStore, AnalyticsWriter, database_path
from engine.cues import CompiledCue, CueList
from engine.signals import Signal, SignalStore

log = logging.getLogger("engine.analytics")

FLUSH_EVERY = 60.0
"""Seconds between two hand-overs of aggregates to the writer: a crash loses at most this much."""
RETAIN_EVERY = 24 * 3600.0
MIN_CUE_RUN = 1.0


class AnalyticsRecorder:
    def __init__(
        self,
        exhibit_id: str,
        settings: AnalyticsSettings,
        state_dir: Path,
        *,
        simulated: bool,
        wall: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.wall = wall
        self.sleep = sleep
        """The runtime's clock's sleep: the minute flush and the daily retention follow virtual time in tests."""
        self.measures = Measures(exhibit_id, settings, wall)
        self.path = database_path(state_dir, simulated)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.writer = AnalyticsWriter(AnalyticsStore(self.path, simulated=simulated))
        self.sensors: list[str] = []
        self._unbind: list[Callable[[], None]] = []

    def bind(self, store: SignalStore, machines: list[str], sensors: list[str]) -> None:
        """Listen to the interactions the curator marked and to the state machines."""
        self.sensors = sensors
        for name in self.settings.interactions:
            if name in store:
                self._unbind.append(store.subscribe(name, self._interaction(name)))
            else:
                log.warning("analytics: `%s` is no signal of this exhibit; it is not counted as an interaction", name)
        for machine in machines:
            self._unbind.append(store.subscribe(f"states.{machine}", self._state(machine)))

    def follow_cues(self, cue_lists: Mapping[str, CueList]) -> None:
        """Count who was in view while each cue ran: from its start for its length (at least a second: a cue that
        only sets values runs for an instant), or until it starts again."""
        for name, cue_list in cue_lists.items():
            cue_list.listeners.append(self._cue(name))

    def _cue(self, cue_list: str) -> Callable[[CompiledCue], None]:
        def started(cue: CompiledCue) -> None:
            self.measures.cue_started(cue_list, cue.id, self.wall())
            seconds = max(cue.length, MIN_CUE_RUN)
            asyncio.get_running_loop().call_later(seconds, self.measures.cue_ended, cue_list, cue.id, None)

        return started

    def _interaction(self, name: str) -> Callable[[Signal], None]:
        def counted(signal: Signal) -> None:
            if signal.value is not None and signal.value is not False:
                self.measures.interaction(name, self.wall())

        return counted

    def _state(self, machine: str) -> Callable[[Signal], None]:
        def entered(signal: Signal) -> None:
            if isinstance(signal.value, str):
                self.measures.state_entered(machine, signal.value, self.wall())

        return entered

    async def run(self) -> None:
        since_retention = RETAIN_EVERY  # once at start, then daily
        while True:
            if since_retention >= RETAIN_EVERY:
                self.writer.retain(self.wall(), self.settings.retention_days)
                since_retention = 0.0
            await self.sleep(FLUSH_EVERY)
            since_retention += FLUSH_EVERY
            self.writer.submit(self.measures.flush(self.wall()))

    def close(self) -> None:
        """The stop: visitors still in view are folded as they are, the last aggregates written, the database
        closed."""
        for unbind in self._unbind:
            unbind()
        for sensor in self.sensors:
            self.measures.reset(sensor)
        self.writer.submit(self.measures.flush(self.wall()))
        self.writer.close(timeout=10)
