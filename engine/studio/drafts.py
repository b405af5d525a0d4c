"""Checking a draft of the exhibit file as the curator types, with the project's own checker.

A check of the flagship takes 50-100 ms of pure Python: on the engine's loop that would hold up cues and
sensor-to-light paths at every keystroke. So drafts are checked in one worker process of their own (spawned,
with its own registry), one at a time; the loop only awaits the answer. A check that hangs (a pathological
file) is abandoned after :data:`CHECK_TIMEOUT` and the worker replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.problems import ExhibitInvalid, Problem

log = logging.getLogger("engine.studio")

MAX_DRAFT = 1024 * 1024
"""The largest exhibit file the studio checks or saves (the flagship is 10 KB)."""
CHECK_TIMEOUT = 10.0
IDLE_SECONDS = 600.0
"""The worker (about 100 MB) stops after this long without a check; the next keystroke starts it again."""

_registry: Any = None


CHECKER_NICENESS = 10
"""The checking worker yields the CPU to the engine (which runs cues and sensors at normal priority): on a busy
machine a check is a little later, a cue never is."""


def _warm_up() -> None:
    """In the worker: step back in priority, load the drivers once, and check a tiny file so the first real
    check is quick."""
    global _registry
    from engine.registry import load_registry

    with contextlib.suppress(AttributeError, OSError):
        os.nice(CHECKER_NICENESS)

    _registry = load_registry()
    check_text("format_version: 1\nid: warm\n", "warm/exhibit.yaml")


def check_text(text: str, file: str) -> list[Problem]:
    """Every problem in ``text`` (the exhibit file at ``file``, whose folder holds its assets); [] if it is valid.
    Runs in the checking worker (it uses the worker's registry)."""
    from engine.validate import validate_text

    try:
        validate_text(text, file, _registry)
    except ExhibitInvalid as invalid:
        return invalid.problems
    except UserError as exc:
        return [Problem(file, 1, 1, str(exc))]
    except RecursionError:
        return [Problem(file, 1, 1, "the file nests too deeply to be read / 文件嵌套过深，无法读取")]
    except Exception as exc:  # a checker bug must be a problem on the page, never a failed request
        log.exception("studio: the checker failed")
        return [Problem(file, 1, 1, f"the checker failed ({type(exc).__name__}): see the log / 检查器出错，请查看日志")]
    return []


def _check_in_worker(text: str, file: str) -> tuple[list[tuple[int, int, str, str | None]], float]:
    started = time.perf_counter()
    problems = check_text(text, file)
    return [(p.line, p.col, p.message, p.hint) for p in problems], (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class CheckResult:
    problems: list[Problem]
    check_ms: float
    """Time the checker itself took (the rest of a round trip is the wait and the transfer)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "check_ms": round(self.check_ms, 1),
            "problems": [
                {"line": p.line, "column": p.col, "message": p.message, "hint": p.hint, "text": str(p)}
                for p in self.problems
            ],
        }


class DraftChecker:
    """Checks drafts of one exhibit file in a worker process, one at a time, latest first."""

    def __init__(self, path: Path, idle: float = IDLE_SECONDS) -> None:
        self.path = path
        self.idle = idle
        self._pool: ProcessPoolExecutor | None = None
        self._one_at_a_time = asyncio.Lock()
        self._idle_timer: asyncio.TimerHandle | None = None
        self.checks = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # no fork of a process with a loop and threads
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_warm_up)
        return self._pool

    def start(self) -> None:
        """Start the worker now, so the first keystroke does not wait for it."""
        self._executor().submit(time.perf_counter)
        self._rest_later()

    def _rest_later(self) -> None:
        """Stop the worker (and give back its memory) once nobody has typed for :attr:`idle` seconds."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = asyncio.get_running_loop().call_later(self.idle, self.close)

    @property
    def running(self) -> bool:
        return self._pool is not None

    async def check(self, text: str) -> CheckResult:
        if len(text.encode("utf-8")) > MAX_DRAFT:
            return CheckResult([_too_big(str(self.path))], 0.0)
        async with self._one_at_a_time:
            loop = asyncio.get_running_loop()
            try:
                future = loop.run_in_executor(self._executor(), _check_in_worker, text, str(self.path))
                found, ms = await asyncio.wait_for(future, CHECK_TIMEOUT)
            except (TimeoutError, BrokenExecutor) as exc:
                self._replace(exc)
                return CheckResult(
                    [
                        Problem(
                            str(self.path),
                            1,
                            1,
                            "the check did not finish: the file may be too complex / 检查未能完成，文件可能过于复杂",
                        )
                    ],
                    CHECK_TIMEOUT * 1000,
                )
            self.checks += 1
            self._rest_later()
        file = str(self.path)
        return CheckResult([Problem(file, line, col, message, hint) for line, col, message, hint in found], ms)

    def _replace(self, reason: BaseException) -> None:
        log.warning("studio: the draft checker stopped (%s); a new one starts", type(reason).__name__)
        pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()  # a hung check never returns by itself
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _too_big(file: str) -> Problem:
    return Problem(
        file,
        1,
        1,
        f"the file is larger than {MAX_DRAFT // 1024} KiB; split long lists or move data into assets "
        f"/ 文件超过 {MAX_DRAFT // 1024} KiB",
    )
