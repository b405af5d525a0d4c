"""Shared fixtures: the driver registry, a real Mosquitto on a free loopback port,
and helpers to run the launcher as a separate process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher import build_registry
from tests.support.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = ROOT / "exhibits" / "canal-lanterns" / "exhibit.yaml"


def require_tool(name: str) -> str:
    """The path of a real peer program; its absence is a broken install, not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed; `bash .ci/run` installs it (apt-get)")
    return path


@pytest.fixture
def registry():
    return build_registry()


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Tasks a test starts (drivers' ``run``, links): cancelled and awaited when it ends."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Mosquitto:
    port: int
    process: subprocess.Popen[bytes]
    config: Path

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [require_tool("mosquitto"), "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)


def start_mosquitto(directory: Path, port: int | None = None) -> Mosquitto:
    port = port or free_port()
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = Mosquitto(port, None, config)  # type: ignore[arg-type]
    broker.start()
    return broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = start_mosquitto(tmp_path)
    yield broker
    broker.stop()


class Subscriber:
    """`mosquitto_sub` as an outside client, printing `topic payload` lines (retained ones too)."""

    def __init__(self, port: int, topic: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [require_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-v", "-q", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # A thread collects lines so waiting never blocks on a half-written line.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no matching message within {timeout} s; got {self.lines}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        self._reader.join(2)


@pytest.fixture
def subscriber() -> Iterator[type[Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topic: str) -> Subscriber:
        sub = Subscriber(port, topic)
        made.append(sub)
        return sub

    yield make  # type: ignore[misc]
    for sub in made:
        sub.close()


class Launcher:
    """`python launcher.py ...` as a separate process, like an operator would start it."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "launcher.py"), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)


@pytest.fixture
def launcher() -> Iterator[type[Launcher]]:
    started: list[Launcher] = []

    def start(*args: str) -> Launcher:
        proc = Launcher(*args)
        started.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in started:
        proc.kill()


def run_launcher(
    *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(autouse=True, scope="session")
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test (nor a launcher it starts) reads or writes the real accounts file or audit logs."""
    home = tmp_path_factory.mktemp("home")
    names = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "EXHIBIT_ACCOUNTS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    os.environ["EXHIBIT_ACCOUNTS"] = str(home / "config" / "exhibit-controller" / "accounts.json")
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def private_state(private_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's launchers keep their node state (crash recovery, logs) apart: an e-stop one test latches must
    not greet the next one. Under the private home, not beside the tests' own folders, which some tests list."""
    (private_home / "states").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(dir=private_home / "states"))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state
