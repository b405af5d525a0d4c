"""CPU priority for the exhibit's helper processes (the sound process, the audience page's server), so that where
they want the same core as the show, the show's control path comes first (measured by ``launcher.py bench``).

Linux keeps a priority per thread, and threads inherit their creator's: each call sets every thread the process
has now (a library's worker threads, started at import), and the threads started later follow."""

from __future__ import annotations

import contextlib
import os


def _threads() -> list[int]:
    try:
        return [int(thread) for thread in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the process as a whole
        return [0]


def lower_priority(niceness: int) -> None:
    """Nice every thread of this process by ``niceness`` (a lower weight: it still gets its share of a busy core,
    but no longer takes the core from the show's processes as they wake)."""
    for thread in _threads():
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + niceness)


def idle_priority(fallback_niceness: int) -> str:
    """Put every thread of this process in the idle scheduling class (``SCHED_IDLE``): it runs on what the other
    processes leave, and any of them that wakes takes the core from it at once, which a nice value does not promise
    under the kernel's EEVDF scheduler. Where that class is not there, :func:`lower_priority`. Says which."""
    try:
        for thread in _threads():
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (OSError, AttributeError):
        lower_priority(fallback_niceness)
        return f"nice {fallback_niceness}"
