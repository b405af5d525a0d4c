"""Hot reload: the exhibit file is watched while it runs. A valid new version takes over
its logic within a second (see :meth:`Runtime.reload`); an invalid one is reported,
problem by problem, and the running version goes on unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from engine.clock import Clock
from engine.errors import UserError
from engine.exhibit import ExhibitBase
from engine.problems import ExhibitInvalid
from engine.registry import Registry
from engine.runtime import Runtime
from engine.validate import load_exhibit

log = logging.getLogger("engine.reload")


class ExhibitWatcher:
    name = "reload"

    def __init__(self, path: Path, registry: Registry, runtime: Runtime, clock: Clock, interval: float = 0.25) -> None:
        self.path, self.registry, self.runtime, self.clock, self.interval = path, registry, runtime, clock, interval
        self.reloads = 0
        self.rejected = 0
        self._seen = self._fingerprint()
        self._held = False

    def _fingerprint(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None  # being replaced by an editor: look again next time

    async def run(self) -> None:
        while True:
            await self.clock.sleep(self.interval)
            self.check()

    def check(self, force: bool = False) -> bool:
        """Reload if the file changed (or ``force``: the operator's reload command); True if a new version
        took over. While the show lock is on, a change waits for the unlock."""
        current = self._fingerprint()
        if current is None or (current == self._seen and not force):
            return False
        if self.runtime.control.locked and not force:
            if not self._held:
                log.warning("reload: %s changed; the show lock is on, so it reloads when unlocked", self.path)
                self._held = True
            return False
        self._held = False
        self._seen = current
        exhibit = self._load(lambda: load_exhibit(self.path, self.registry))
        return exhibit is not None and self._take(exhibit)

    async def apply_saved(self) -> str:
        """Take over the file the studio just saved: ``applied``, ``restart`` (sensors, devices or MQTT changed),
        ``held`` (the show lock is on: it reloads when unlocked) or ``rejected``. The file is validated in a thread,
        so the loop goes on running cues meanwhile (the studio's worker checked it already: this is the model)."""
        if self.runtime.control.locked:
            return "held"  # the poll sees the new file and holds it until the unlock
        current = self._fingerprint()
        self._seen = current  # the poll must not load it a second time meanwhile
        exhibit = await asyncio.to_thread(self._load, lambda: load_exhibit(self.path, self.registry))
        if exhibit is None:
            return "rejected"
        if self.runtime.control.locked:  # locked while it was validated: wait for the unlock like any change
            self._seen = None
            return "held"
        return "applied" if self._take(exhibit) else "restart"

    def _load(self, load: Callable[[], ExhibitBase]) -> ExhibitBase | None:
        try:
            return load()
        except ExhibitInvalid as invalid:
            self.rejected += 1
            for problem in invalid.problems:
                log.error("reload: %s", problem)
            log.error(
                "reload: %d problems in %s; the running version goes on unchanged", len(invalid.problems), self.path
            )
        except UserError as exc:
            log.error("reload: %s; the running version goes on unchanged", exc)
        return None

    def _take(self, exhibit: ExhibitBase) -> bool:
        if self.runtime.reload(exhibit):
            self.reloads += 1
            return True
        return False
