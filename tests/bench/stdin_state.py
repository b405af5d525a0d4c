"""A bench's questions to an engine child over its stdin: the child answers ``<key> <json>`` lines with the state a
function reads from its runtime; the bench asks and skips the child's other output lines."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.bench.procs import Children

if TYPE_CHECKING:
    from engine.runtime import Runtime


async def answer_questions(runtime: Runtime, stop: asyncio.Event, key: str, state: Callable[[Runtime], Any]) -> None:
    """In the engine child: answer each ``key`` line on stdin with ``key <state(runtime) as JSON>``; set ``stop``
    when stdin closes (the bench went away)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == key.encode():
            sys.stdout.write(f"{key} {json.dumps(state(runtime))}\n")
            sys.stdout.flush()
    stop.set()


def ask_child(children: Children, name: str, key: str, what: str, timeout: float = 5.0) -> dict[str, Any]:
    """In the bench: ask the engine child ``name`` for its ``key`` state; ``what`` says it in the error."""
    from tests.bench.inputs import reply, tell

    tell(children, name, key)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        line = reply(children, name, left)
        if line.startswith(key + " "):
            found: dict[str, Any] = json.loads(line[len(key) + 1 :])
            return found
    raise children.failed(name, f"{name} did not say {what} within {timeout:.0f} s")
