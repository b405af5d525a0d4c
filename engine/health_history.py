"""The exhibit's health over time, kept in the node's state folder for whoever looks into a problem later.

``<state dir>/health.jsonl`` gets one JSON line a minute and one on every change of a component's status:

    {"t": 1767225600.0, "why": "minute", "status": "degraded", "lag_ms": 0.4,
     "components": {"body": {"status": "degraded", "reason": "no frames for 2 s"}, ...}}

``why`` is ``start``, ``minute``, ``change`` or ``stop``; a ``change`` line holds only the component that changed
(``status`` is still the whole exhibit's); ``lag_ms`` (on minute lines) is how late the event loop woke for the
minute's timer. The file is rotated to ``health.jsonl.1``
at :data:`HISTORY_MAX_BYTES`, so the two together stay under twice that. A sensor that flaps writes at most
:data:`CHANGES_PER_MINUTE` change lines a minute; the minute line counts those left out (``unrecorded``).
A write that fails (a full disk) is said once in the log and the exhibit goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.clock import Clock
from engine.health import ComponentHealth, HealthBoard

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("engine.health_history")

HISTORY_FILE = "health.jsonl"
HISTORY_MAX_BYTES = 4 * 1024 * 1024
"""About three days of minute lines for a dozen components, in each of the two files."""
INTERVAL_S = 60.0
CHANGES_PER_MINUTE = 60
FILE_MODE = 0o640


class HealthHistory:
    """Appends the board's summary to ``path``: every ``interval`` seconds, and on each change of status."""

    def __init__(
        self,
        board: HealthBoard,
        path: Path,
        clock: Clock,
        *,
        interval: float = INTERVAL_S,
        max_bytes: int = HISTORY_MAX_BYTES,
        changes_per_interval: int = CHANGES_PER_MINUTE,
    ) -> None:
        self.board, self.path, self.clock = board, path, clock
        self.interval, self.max_bytes, self.changes_per_interval = interval, max_bytes, changes_per_interval
        self.written = 0
        self.failed = False
        self._statuses: dict[str, str] = {}
        self._changes = 0
        self._unrecorded = 0

    async def run(self) -> None:
        """Write a line now, every ``interval`` and on each change, until cancelled (then a last one)."""
        self._statuses = {c.name: c.status for c in self.board}
        unlisten = self.board.listen(self._changed)
        try:
            self.record("start")
            while True:
                due = self.clock.now() + self.interval
                await self.clock.sleep(self.interval)
                lag_ms = max(0.0, self.clock.now() - due) * 1000
                extra: dict[str, Any] = {"lag_ms": round(lag_ms, 1)}
                if self._unrecorded:
                    extra["unrecorded"] = self._unrecorded
                self._changes = self._unrecorded = 0
                self.record("minute", **extra)
        finally:
            unlisten()
            self.record("stop")

    def _changed(self, component: ComponentHealth) -> None:
        if self._statuses.get(component.name) == component.status:
            return  # only its reason changed: the next minute's line has it
        self._statuses[component.name] = component.status
        if self._changes >= self.changes_per_interval:
            self._unrecorded += 1
            return
        self._changes += 1
        self.record("change", only=component.name)

    def line(self, why: str, only: str | None = None, **extra: Any) -> dict[str, Any]:
        """One line: the overall status and every component's (``only`` that one's, on a change)."""
        summary = self.board.summary()
        components = {
            name: {"status": entry["status"], "reason": entry["reason"]}
            for name, entry in summary["components"].items()
            if only is None or name == only
        }
        t = round(self.clock.true_wall().timestamp(), 3)
        return {"t": t, "why": why, **extra, "status": summary["status"], "components": components}

    def record(self, why: str, only: str | None = None, **extra: Any) -> None:
        line = self.line(why, only, **extra)
        data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            self._rotate_for(len(data))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            if not self.failed:
                log.warning(
                    "cannot write the health history %s (%s); the exhibit goes on without it / 无法写入健康记录",
                    self.path,
                    exc.strerror or exc,
                )
            self.failed = True
            return
        self.written += 1

    def _rotate_for(self, size: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size + size > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))


def start_health_history(runtime: Runtime) -> HealthHistory | None:
    """Keep the runtime's health history in its state folder, as a supervised task; None without a folder."""
    folder = runtime.options.state_dir
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot make the state folder %s (%s): no health history / 无法创建状态文件夹", folder, exc)
        return None
    history = HealthHistory(runtime.health, folder / HISTORY_FILE, runtime.clock)
    runtime.supervisor.start("health-history", history.run)
    return history
