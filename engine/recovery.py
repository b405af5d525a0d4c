"""Crash recovery: the show's memory (:mod:`engine.show_memory`) kept on disk as it changes, and the crash record.

``<state dir>/show-state.json`` is replaced atomically (written beside, flushed, renamed) whenever what it keeps
changes: at once for the e-stop latch and the armed devices, within :data:`SAVE_INTERVAL` for the rest, in a
thread so a slow disk (a Raspberry Pi's SD card) never holds up the control loop. It says ``running`` while the
exhibit runs; a clean stop writes ``running: false``. A start that finds ``running: true`` follows a crash
(SIGKILL, the watchdog, a power cut), and is recorded; :data:`CRASHES` of them within :data:`CRASH_WINDOW`
seconds start **safe mode**: devices safe, motion disarmed, no show logic, until an operator says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.show_memory import ShowMemory

log = logging.getLogger("engine.recovery")

FILE_NAME = "show-state.json"
SAVE_INTERVAL = 0.1
"""Seconds between two looks at the show for changes to keep."""
CRASHES = 3
CRASH_WINDOW = 300.0
"""Three crashes within five minutes: safe mode."""


@dataclass(frozen=True)
class Recovered:
    """What a start finds: the memory of the last run, whether it crashed, and whether to start in safe mode."""

    memory: ShowMemory | None
    crashed: bool
    crashes: tuple[float, ...]
    """Wall times of the recent crashes (within :data:`CRASH_WINDOW`), this one included."""
    safe_mode: bool


@dataclass
class RecoveryFile:
    path: Path
    clock: Any = time.time
    """Wall time (seconds since the epoch): crash times outlive the process."""
    _crashes: list[float] = field(default_factory=list)
    _safe_mode: bool = False

    @classmethod
    def in_folder(cls, folder: Path) -> RecoveryFile:
        return cls(folder / FILE_NAME)

    def begin(self) -> Recovered:
        """Read what the last run left, record a crash if it did not stop cleanly, and say ``running`` now."""
        data = self._read()
        memory = None
        crashed = False
        if data is not None and "show" in data:
            try:
                memory = ShowMemory.from_dict(data.get("show", {}))
            except ValueError as exc:
                log.error("恢复文件无法读取 / %s: %s; starting without it", self.path, exc)
        if data is not None:
            crashed = bool(data.get("running", False))
            self._crashes = [float(t) for t in data.get("crashes", []) if isinstance(t, int | float)]
            self._safe_mode = bool(data.get("safe_mode", False))
        now = self.clock()
        self._crashes = [t for t in self._crashes if now - t <= CRASH_WINDOW]
        if crashed:
            self._crashes.append(now)
        # Safe mode lasts until an operator ends it: restarting the service does not end it by itself.
        self._safe_mode = self._safe_mode or len(self._crashes) >= CRASHES
        self.write(memory or ShowMemory(), running=True)
        return Recovered(memory, crashed, tuple(self._crashes), self._safe_mode)

    def leave_safe_mode(self) -> None:
        self._crashes.clear()
        self._safe_mode = False

    def _read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("恢复文件无法读取 / cannot read %s (%s): the show starts as new", self.path, exc)
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            aside = self.path.with_suffix(".unreadable")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            log.error(
                "恢复文件已损坏 / %s is not what this program wrote; kept as %s, counted as a crash", self.path, aside
            )
            return {"running": True}
        return data

    def write(self, memory: ShowMemory, *, running: bool) -> None:
        """Replace the file atomically: a crash in the middle leaves the previous version whole."""
        payload = {
            "version": 1,
            "running": running,
            "saved": self.clock(),
            "pid": os.getpid(),
            "crashes": self._crashes,
            "safe_mode": self._safe_mode,
            "show": memory.as_dict(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(payload, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.path)
        with contextlib.suppress(OSError):  # the rename itself made durable (ext4 without it may lose it)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)


class Keeper:
    """Writes the show's memory when it changes, one write at a time, in a thread."""

    def __init__(self, file: RecoveryFile, capture: Any) -> None:
        self.file = file
        self.capture = capture
        """Returns the show's :class:`ShowMemory` now (None while no show runs: nothing is written)."""
        self.saved: ShowMemory | None = None
        self.writes = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._stopped = False

    def changed(self) -> None:
        """Something that must not wait (the e-stop) changed: look now."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SAVE_INTERVAL):
                    await self._wake.wait()
            self._wake.clear()
            memory = self.capture()
            if memory is None or memory == self.saved:
                continue
            try:
                await asyncio.to_thread(self.file.write, memory, running=True)
            except OSError as exc:
                self.failures += 1
                if self.failures == 1:
                    log.error("恢复文件无法写入 / cannot keep the show's state in %s: %s", self.file.path, exc)
                continue
            self.saved = memory
            self.writes += 1

    def close(self) -> None:
        """The clean stop: the last memory, and ``running: false`` (the next start is not a crash)."""
        self._stopped = True
        memory = self.capture() or self.saved or ShowMemory()
        try:
            self.file.write(memory, running=False)
        except OSError as exc:
            log.error("恢复文件无法写入 / cannot write %s at the stop: %s", self.file.path, exc)
