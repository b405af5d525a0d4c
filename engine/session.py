"""One run of an exhibit, from start to stop: what ``exhibit run`` does once the command line is read.

The runtime is assembled and started, the exhibit file is watched for hot reload, and the run ends
on SIGINT/SIGTERM or after ``duration`` seconds, with every device brought to its safe state.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from engine.exhibit import ExhibitBase
from engine.health_history import start_health_history
from engine.registry import Registry
from engine.reload import ExhibitWatcher
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.watchdog import Notifier, ServiceWatchdog, watchdog_interval

Companion = Callable[[Runtime, asyncio.Event], Coroutine[None, None, None]]
"""Runs beside the exhibit (the benchmark's question-and-answer channel); it may end the run by setting the event."""

log = logging.getLogger("engine.session")


async def serve(
    exhibit: ExhibitBase,
    registry: Registry,
    options: RuntimeOptions,
    *,
    duration: float | None = None,
    watch: Path | None = None,
    companion: Companion | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Run ``exhibit`` until SIGINT/SIGTERM (or ``duration``), reloading it when ``watch`` changes."""
    runtime = assemble(exhibit, registry, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_late_registrations)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    start_health_history(runtime)  # <state dir>/health.jsonl: a line a minute and on every change of status
    if watch is not None:
        watcher = ExhibitWatcher(watch, registry, runtime, runtime.clock)
        runtime.supervisor.start("reload", watcher.run)
        runtime.control.reloader = lambda: watcher.check(force=True)
        runtime.resources.put(watcher)  # the studio applies its saves through it
    watchdog = ServiceWatchdog(runtime, notifier, watchdog_interval()) if notifier is not None else None
    if watchdog is not None:  # run as a systemd service (Type=notify): ready now, and fed while healthy
        runtime.supervisor.start("watchdog", watchdog.run)
    beside = asyncio.create_task(companion(runtime, stop)) if companion is not None else None
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration)
        log.info("stop requested")
    except TimeoutError:
        log.info("ran for the requested %.1f s", duration)
    finally:
        if beside is not None:
            beside.cancel()
            await asyncio.gather(beside, return_exceptions=True)
    if watchdog is not None:
        watchdog.stopping()
    await runtime.stop()


def quiet_late_registrations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's error handler: as asyncio's, except for a socket registered after it closed.

    aiomqtt registers the MQTT socket's writer from paho's callback with ``call_soon_threadsafe``; when the
    connection closes before that callback runs (the DISCONNECT at the end of a run), the registration
    fails with EBADF and asyncio would print its traceback. Nothing is lost (there is no socket left to
    write to), so it is logged at debug level only."""
    handle = context.get("handle")
    callback = getattr(handle, "_callback", None)
    exception = context.get("exception")
    late = callback in (loop.add_writer, loop.add_reader) and isinstance(exception, (OSError, ValueError))
    if late and (not isinstance(exception, OSError) or exception.errno == errno.EBADF):
        log.debug("a socket closed before its registration ran: %s", exception)
        return
    loop.default_exception_handler(context)
