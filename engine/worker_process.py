"""A worker process driven from asyncio code: the sound mixer, the audience's web server.

The worker is spawned (never forked: the controller has an event loop and threads), commands go to it through a
``multiprocessing`` queue (``put`` hands the pickling and the write to the queue's own thread, so :meth:`send`
never blocks the loop), and a reader thread passes its replies to the loop. Starting and joining, which do
block, run in the loop's executor.

The worker's entry point is ``target(commands, replies, settings)``. Replies are tuples whose first item says what
they are; the worker's first is ``("ready", info)`` (or ``("fatal", text)`` when it cannot start). Replies go to
the ``on_reply`` callable, called on the loop, once the worker is ready; without one they wait for
:meth:`WorkerProcess.get` or :meth:`WorkerProcess.replies`. The handle adds one reply of its own:
``("exited", exitcode)``, last, once the process has ended and everything it sent was read.
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

log = logging.getLogger("engine.worker_process")

READ_POLL = 0.1
"""Seconds the reader thread waits for a reply before checking that the worker is still alive."""

WorkerReply = tuple[Any, ...]


class WorkerStartError(RuntimeError):
    """The worker process did not start."""


class WorkerProcess:
    """One worker process: :meth:`start`, :meth:`send` commands, read the replies, :meth:`close`."""

    def __init__(
        self,
        target: Callable[..., None],
        settings: Any,
        quit_command: Any,
        name: str,
        on_reply: Callable[[WorkerReply], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_reply = on_reply
        self.name = name
        """How logs and errors name it: ``sound process``."""
        self._target, self._quit = target, quit_command
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with a loop and threads
        self._commands: Queue[Any] = self._context.Queue()
        self._replies: Queue[WorkerReply] = self._context.Queue()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader: threading.Thread | None = None
        self._inbox: asyncio.Queue[WorkerReply] = asyncio.Queue()
        self._ready = False
        self._exited = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    def _error(self, text: str) -> WorkerStartError:
        return WorkerStartError(text)

    async def start(self, timeout: float = 15.0) -> dict[str, Any]:
        """Spawn the worker and wait for its ``ready`` reply; return its info. Raises :class:`WorkerStartError` if
        it fails or takes over ``timeout``."""
        if self._process is not None:
            raise self._error(f"the {self.name} was started already")
        loop = asyncio.get_running_loop()
        process = self._context.Process(
            target=self._target,
            args=(self._commands, self._replies, self.settings),
            name=f"exhibit-{self.name.replace(' ', '-')}",
            daemon=True,
        )
        self._process = process
        await loop.run_in_executor(None, process.start)
        self._reader = threading.Thread(target=self._read, args=(loop,), name=f"{self.name} replies", daemon=True)
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
                        raise self._error(f"the {self.name} did not start: {reply[1]}")
        except TimeoutError:
            await self.close(timeout=1.0)
            raise self._error(f"the {self.name} did not start within {timeout} s") from None

    def send(self, command: Any) -> bool:
        """Queue a command for the worker (never blocks); False if the worker is not running."""
        if not self.alive:
            log.debug("%s: dropped %r: it is not running", self.name, command)
            return False
        self._commands.put(command)
        return True

    async def wait(self) -> int | None:
        """Wait until the process has ended (quit, crashed or killed) and its replies are read; its exit code."""
        await self._exited.wait()
        return self.exitcode

    async def get(self, timeout: float | None = None) -> WorkerReply:
        """The next reply, without ``on_reply`` (raises TimeoutError after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            return await self._inbox.get()

    async def replies(self) -> AsyncIterator[WorkerReply]:
        """Every reply as it comes, ending after ``("exited", code)``."""
        while True:
            reply = await self._inbox.get()
            yield reply
            if reply[0] == "exited":
                return

    async def close(self, timeout: float = 5.0) -> int | None:
        """Ask the worker to quit, wait up to ``timeout`` seconds, kill it if it has not gone; its exit code."""
        process = self._process
        if process is None:
            return None
        loop = asyncio.get_running_loop()
        if process.is_alive():
            self._commands.put(self._quit)
            await loop.run_in_executor(None, process.join, timeout)
            if process.is_alive():
                log.warning("%s: did not quit within %s s: killed", self.name, timeout)
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

    def _post(self, loop: asyncio.AbstractEventLoop, reply: WorkerReply) -> bool:
        try:
            loop.call_soon_threadsafe(self._deliver, reply)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            return False
        return True

    def _deliver(self, reply: WorkerReply) -> None:
        """On the loop: a reply to ``on_reply`` (once ready) or to the inbox."""
        if reply[0] == "exited":
            self._exited.set()
        if self.on_reply is None or not self._ready:
            self._inbox.put_nowait(reply)
            return
        try:
            self.on_reply(reply)
        except Exception:  # the reader must go on: a bug in a handler is logged, not fatal
            log.exception("%s: handling %r failed", self.name, reply)
