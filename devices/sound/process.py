"""The controller's handle on the sound process (:mod:`devices.sound.worker`), for asyncio code: a
:class:`~engine.worker_process.WorkerProcess` whose replies are :mod:`devices.sound.protocol`'s and whose
:meth:`close` sends :class:`~devices.sound.protocol.Quit` (the worker finalises a rendered WAV)."""

from __future__ import annotations

from collections.abc import Callable

from devices.sound.protocol import Quit, SoundReply, WorkerSettings
from devices.sound.worker import worker_main
from engine.worker_process import WorkerProcess, WorkerStartError


class SoundProcessError(WorkerStartError):
    """The sound process did not start."""


class SoundProcess(WorkerProcess):
    """One sound worker process: :meth:`start`, :meth:`send` commands, read the replies, :meth:`close`."""

    settings: WorkerSettings

    def __init__(
        self, settings: WorkerSettings | None = None, on_reply: Callable[[SoundReply], None] | None = None
    ) -> None:
        super().__init__(worker_main, settings or WorkerSettings(), Quit(), "sound process", on_reply)

    def _error(self, text: str) -> WorkerStartError:
        return SoundProcessError(text)
