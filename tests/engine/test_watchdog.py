"""systemd's notify protocol and watchdog, through a notify socket of the test's own (no systemd needed)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.systemd_notify import SystemdNotifier
from engine.watchdog import LAG_LIMIT, ServiceWatchdog, watchdog_interval
from tests.conftest import ROOT
from tests.support.show_harness import start_show

pytestmark = pytest.mark.timeout(120)
SMALL = """\
format_version: 1
id: watched
title: {en: Watched}
"""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.settimeout(0.05)
    yield receiver
    receiver.close()


def drain(receiver: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(receiver.recv(4096).decode("utf-8"))
        except (TimeoutError, BlockingIOError):
            return messages


def test_the_watchdog_interval_is_half_what_systemd_asks_and_only_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None  # meant for another
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert SystemdNotifier.from_environment({}) is None
    assert SystemdNotifier.from_environment({"NOTIFY_SOCKET": "relative/path"}) is None


def test_a_run_says_ready_feeds_the_watchdog_and_says_it_stops(notify_socket: socket.socket) -> None:
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "600000"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "run", "canal-lanterns", "--simulate", "--headless",
         "--no-render", "--no-console", "--embedded-port", "0", "--duration", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = drain(notify_socket)
    assert messages[0].startswith("READY=1\nSTATUS=canal-lanterns: "), messages[:2]
    pings = [m for m in messages if m.startswith("WATCHDOG=1\n")]
    assert len(pings) >= 4  # every 0.3 s for 3 s, while healthy
    assert all("STATUS=canal-lanterns: " in m for m in pings)
    assert messages[-1].startswith("STOPPING=1")


async def test_a_blocked_loop_stops_the_pings(notify_socket: socket.socket) -> None:
    runtime, _ = await start_show(SMALL)
    watchdog = ServiceWatchdog(runtime, SystemdNotifier(notify_socket.getsockname()), interval=0.1)
    task = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0.5)
    before = drain(notify_socket)
    assert before[0].startswith("READY=1") and sum(m.startswith("WATCHDOG=1") for m in before) >= 3
    time.sleep(LAG_LIMIT + 0.5)  # noqa: ASYNC251 -- the point: the loop hangs, nothing can ping meanwhile
    await asyncio.sleep(0.05)
    after_hang = drain(notify_socket)
    assert after_hang and not after_hang[0].startswith("WATCHDOG=1")  # the first look after the hang: no ping
    assert "the event loop was" in after_hang[0] and watchdog.withheld == 1
    await asyncio.sleep(0.4)
    assert any(m.startswith("WATCHDOG=1") for m in drain(notify_socket))  # well again: fed again
    task.cancel()
    await runtime.stop()


async def test_a_task_that_died_stops_the_pings(notify_socket: socket.socket) -> None:
    runtime, _ = await start_show(SMALL)
    watchdog = ServiceWatchdog(runtime, SystemdNotifier(notify_socket.getsockname()), interval=0.1)
    state = runtime.supervisor.start("doomed", lambda: asyncio.sleep(3600))
    task = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0.3)
    assert any(m.startswith("WATCHDOG=1") for m in drain(notify_socket))
    state.task.cancel()  # gone, though nobody asked it to finish
    await asyncio.sleep(0.3)
    late = drain(notify_socket)
    assert late and not any(m.startswith("WATCHDOG=1") for m in late)
    assert "task doomed stopped" in late[-1]
    task.cancel()
    await runtime.stop()
