"""systemd's notify protocol and watchdog, for an exhibit run as a service (``Type=notify``).

systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket; ``@`` starts an abstract name) and, with
``WatchdogSec=``, ``WATCHDOG_USEC``. The run says ``READY=1`` once the exhibit runs, then ``WATCHDOG=1`` at
half the watchdog interval, but only while an in-loop health check passes: the event loop answered in time
(its lag is under :data:`LAG_LIMIT`) and every supervised task is alive. A loop that hangs, or a task that died,
stops the pings, and systemd restarts the service. ``STATUS=`` carries a one-line health summary
(``systemctl status`` shows it); ``STOPPING=1`` is said on the way out.

Without ``NOTIFY_SOCKET`` (an ordinary `run`) nothing here runs. The socket itself is protocol code, which the
engine does not hold: :mod:`devices.systemd_notify` sends the datagrams.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("engine.watchdog")

LAG_LIMIT = 1.0
"""Seconds the loop may be late to a tick before the exhibit counts as hung (a cue waits that long at most)."""
DEFAULT_TICK = 5.0
"""Seconds between health checks when systemd asks for no watchdog (STATUS= is still kept fresh)."""


class Notifier(Protocol):
    """Where the notifications go: systemd's socket (:class:`devices.systemd_notify.SystemdNotifier`)."""

    def send(self, *lines: str) -> bool: ...


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between pings systemd expects (half its ``WatchdogSec=``), or None when it asks for none."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2


class ServiceWatchdog:
    """READY=1, then the watchdog pings and the status line, from inside the exhibit's own loop."""

    def __init__(self, runtime: Runtime, notifier: Notifier, interval: float | None) -> None:
        self.runtime, self.notifier = runtime, notifier
        self.watchdog = interval is not None
        self.tick = interval if interval is not None else DEFAULT_TICK
        self.withheld = 0
        """Pings not sent because the check failed."""

    def check(self, lag: float) -> str | None:
        """Why the exhibit is not well (a sentence), or None when the watchdog may be fed."""
        if lag > LAG_LIMIT:
            return f"the event loop was {lag:.1f} s late"
        dead = [s.name for s in self.runtime.supervisor.tasks.values() if s.task.done() and s.running]
        if dead:
            return f"task {', '.join(sorted(dead))} stopped"
        return None

    def status_line(self, problem: str | None = None) -> str:
        summary = self.runtime.health.summary()
        unwell = [f"{name} {c['status']}" for name, c in summary["components"].items() if c["status"] != "ok"]
        line = f"{self.runtime.exhibit.id}: {summary['status']}" + (f" ({', '.join(unwell)})" if unwell else "")
        mode = self.runtime.mode
        if mode != "running":  # safe mode after repeated crashes, or a backup tracking the node that drives
            line = f"{mode.upper()}; {line}"
        return f"{line}; {problem}" if problem else line

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.notifier.send("READY=1", f"STATUS={self.status_line()}")
        log.info("systemd: ready%s", f", watchdog every {self.tick:g} s" if self.watchdog else "")
        while True:
            due = loop.time() + self.tick
            await asyncio.sleep(self.tick)
            problem = self.check(loop.time() - due)
            status = f"STATUS={self.status_line(problem)}"
            if problem is None and self.watchdog:
                self.notifier.send("WATCHDOG=1", status)
            else:
                if problem is not None:
                    self.withheld += 1
                    log.error("systemd watchdog not fed: %s", problem)
                self.notifier.send(status)

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", f"STATUS={self.runtime.exhibit.id}: stopping")
