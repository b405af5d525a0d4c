"""The controller's handle on the sound process (:mod:`devices.sound.worker`), for asyncio code.

The worker is spawned (never forked: the controller has an event loop and threads), commands go to it through a
``multiprocessing`` queue (``put`` hands the pickling and the write to the queue's own thread, so :meth:`send`
never blocks the loop), and a reader thread passes its replies to the loop. Starting and joining, which do
block, run in the loop's executor.

Replies (see :mod:`devices.sound.protocol`) go to the ``on_reply`` callable, called on the loop, once the worker
is ready; without one they wait for :meth:`SoundProcess.get` or :meth:`SoundProcess.replies`. The handle adds one
reply of its own: ``("exited", exitcode)``, last, once the process has ended and everything it sent was read.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
from collections.abc import AsyncIterator, Callable
from multiprocessing.queues import Queue
from typing import Any

from devices.sound.protocol import Quit, SoundCommand, SoundReply, WorkerSettings
from devices.sound.worker import worker_main

log = logging.getLogger("devices.sound")

READ_POLL = 0.1
"""Seconds the reader thread waits for a reply before checking that the worker is still alive."""


class SoundProcessError(RuntimeError):
    """The sound process did not start."""


class SoundProcess:
    """One sound worker process: :meth:`start`, :meth:`send` commands, read the replies, :meth:`close`."""

    def __init__(
        self, settings: WorkerSettings | None = None, on_reply: Callable[[SoundReply], None] | None = None
    ) -> None:
        self.settings = settings or WorkerSettings()
        self.on_reply = on_reply
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with a loop and threads
        self._commands: Queue[SoundCommand] = self._context.Queue()
        self._replies: Queue[SoundReply] = self._context.Queue()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader: threading.Thread | None = None
        self._inbox: asyncio.Queue[SoundReply] = asyncio.Queue()
        self._ready = False
        self._exited = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    async def start(self, timeout: float = 15.0) -> dict[str, Any]:
        """Spawn the worker and wait for its ``ready`` reply; return its info (``valid`` False: no sound device,
        the worker runs on silently). Raises :class:`SoundProcessError` if it fails or takes over ``timeout``."""
        if self._process is not None:
            raise SoundProcessError("the sound process was started already")
        loop = asyncio.get_running_loop()
        process = self._context.Process(
            target=worker_main, args=(self._commands, self._replies, self.settings), name="exhibit-sound", daemon=True
        )
        self._process = process
        await loop.run_in_executor(None, process.start)
        self._reader = threading.Thread(target=self._read, args=(loop,), name="sound-replies", daemon=True)
        self._reader.start()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    reply = await self._inbox.get()
                    if reply[0] == "ready":
                        self._ready = True  # from now on replies go to on_reply, if given
                        info: dict[str, Any] = reply[1]
                        return info
                    if reply[0] in ("fatal", "exited"):
                        raise SoundProcessError(f"the sound process did not start: {reply[1]}")
        except TimeoutError:
            await self.close(timeout=1.0)
            raise SoundProcessError(f"the sound process did not start within {timeout} s") from None

    def send(self, command: SoundCommand) -> bool:
        """Queue a command for the worker (never blocks); False if the worker is not running."""
        if not self.alive:
            log.debug("sound: dropped %r: the sound process is not running", command)
            return False
        self._commands.put(command)
        return True

    async def wait(self) -> int | None:
        """Wait until the process has ended (quit, crashed or killed) and its replies are read; its exit code."""
        await self._exited.wait()
        return self.exitcode

    async def get(self, timeout: float | None = None) -> SoundReply:
        """The next reply, without ``on_reply`` (raises TimeoutError after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            return await self._inbox.get()

    async def replies(self) -> AsyncIterator[SoundReply]:
        """Every reply as it comes, ending after ``("exited", code)``."""
        while True:
            reply = await self._inbox.get()
            yield reply
            if reply[0] == "exited":
                return

    async def close(self, timeout: float = 5.0) -> int | None:
        """Ask the worker to quit (it finalises a rendered WAV), wait up to ``timeout`` seconds, kill it if it
        has not gone; return its exit code."""
        process = self._process
        if process is None:
            return None
        loop = asyncio.get_running_loop()
        if process.is_alive():
            self._commands.put(Quit())
            await loop.run_in_executor(None, process.join, timeout)
            if process.is_alive():
                log.warning("sound: the sound process did not quit within %s s: killed", timeout)
                process.kill()
                await loop.run_in_executor(None, process.join, 2.0)
        if self._reader is not None:
            await loop.run_in_executor(None, self._reader.join, 2.0)
        self._commands.cancel_join_thread()  # a worker that died unread must not hold up our exit
        self._commands.close()
        return process.exitcode

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread: replies from the worker to the loop, then ``("exited", code)``."""
        assert self._process is not None
        process = self._process
        while True:
            try:
                reply = self._replies.get(timeout=READ_POLL)
            except queue.Empty:
                if process.is_alive():
                    continue
                break  # it wrote everything before it ended (its queue thread is joined at exit); drain below
            except (EOFError, OSError):
                break
            if not self._post(loop, reply):
                return
        while True:
            try:
                reply = self._replies.get_nowait()
            except (queue.Empty, EOFError, OSError):
                break
            self._post(loop, reply)
        process.join(1.0)
        self._post(loop, ("exited", process.exitcode))

    def _post(self, loop: asyncio.AbstractEventLoop, reply: SoundReply) -> bool:
        try:
            loop.call_soon_threadsafe(self._deliver, reply)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            return False
        return True

    def _deliver(self, reply: SoundReply) -> None:
        """On the loop: a reply to ``on_reply`` (once ready) or to the inbox."""
        if reply[0] == "exited":
            self._exited.set()
        if self.on_reply is None or not self._ready:
            self._inbox.put_nowait(reply)
            return
        try:
            self.on_reply(reply)
        except Exception:  # the reader must go on: a bug in a handler is logged, not fatal
            log.exception("sound: handling %r failed", reply)
