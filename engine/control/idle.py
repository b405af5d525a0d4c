"""Work that must never delay the control path (the console's sends to its clients) runs on the loop's
idle turns: it lets every callback that is ready go first.

asyncio has no priorities: a task that yields with ``sleep(0)`` runs again on the next turn, before the
I/O callbacks that turn's poll finds. An OSC datagram's way to the broker takes three turns (read and
map, register the MQTT writer, write), so a sender that did a slice of work on every turn would add three
slices to it. :func:`idle_turn` instead comes back on a turn where nothing else was ready, so the control
path only ever waits for the one slice that was running when its packet arrived.
"""

from __future__ import annotations

import asyncio
from collections import deque

IDLE_WAIT_LIMIT = 0.005
"""How long :func:`idle_turn` defers to other work at most: on a loop that is never idle, the idle work
still goes on, a turn at a time."""


async def idle_turn(delay: float = 0.0, limit: float = IDLE_WAIT_LIMIT) -> None:
    """Yield (for ``delay`` seconds at least), and return on a turn of the loop where nothing else is waiting
    to run (or ``limit`` seconds after that)."""
    loop = asyncio.get_running_loop()
    # The ready queue of CPython's own loops; another loop (uvloop) just gets a plain yield.
    ready = getattr(loop, "_ready", None)
    await asyncio.sleep(delay)
    if not isinstance(ready, deque):
        return
    deadline = loop.time() + limit
    while ready and loop.time() < deadline:  # noqa: ASYNC110 (a yield per turn is the point: no event says "idle")
        await asyncio.sleep(0)
