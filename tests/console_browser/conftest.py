"""The console in a real headless Chromium (Debian's, driven by Playwright; no browser download),
against the flagship exhibit run as its own process (`launcher.py run --simulate`) on a real
Mosquitto. One exhibit and one browser serve the whole module; each test gets a fresh browser
context (no cookies, no storage) at a 10-inch tablet's 1280x800."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest

from tests.conftest import ROOT, Mosquitto, require_tool, start_mosquitto

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLET: Any = {"width": 1280, "height": 800}  # Playwright's ViewportSize
CONSOLE_LINE = re.compile(r"^Console / 控制台: (https?://\S+?)/?(?:login\?token=(\S+))?$")
USERS = {"olivia": ("operator", "lantern-operator-7"), "victor": ("viewer", "lantern-viewer-7")}
TEST_EXHIBIT = Path(__file__).resolve().parent / "exhibit"
DEVICES = "exhibit/console-test/devices"


def chromium_path() -> str:
    """Debian's Chromium (apt-get install chromium); its absence is a broken install, not a skip."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed; `bash .ci/run` installs it (apt-get install chromium)")
    return path


@dataclass
class ConsoleProcess:
    """`launcher.py run EXHIBIT --simulate ...` with the console on a free port; its output is collected."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    login_token: str | None = None

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_url(self, timeout: float = 40.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = CONSOLE_LINE.match(line.strip())
                if match:
                    self.url, self.login_token = match.group(1), match.group(2)
                    return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError("the exhibit printed no console address; its output:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(2)


def launch_console(exhibit: str, broker: str | None, accounts: Path, audit_log: Path, *extra: str) -> ConsoleProcess:
    """Start ``exhibit`` and wait for the console's address; ``broker`` None: the exhibit's embedded one."""
    command = [
        sys.executable, str(ROOT / "launcher.py"), "run", exhibit,
        "--simulate", "--headless", "--no-render", "--no-reload",
        *(["--broker", broker] if broker else []),
        "--console-port", "0", "--accounts", str(accounts), "--audit-log", str(audit_log),
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8"
    )
    console = ConsoleProcess(process)
    console.wait_for_url()
    return console


def add_user(accounts: Path, name: str, role: str, password: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "user", "add", name, "--role", role,
         "--password-stdin", "--accounts", str(accounts)],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    started = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "accounts.json"
    for name, (role, password) in USERS.items():
        add_user(path, name, role, password)
    return path


@pytest.fixture(scope="module")
def devices(broker: Mosquitto) -> Iterator[MqttLines]:
    """Every device message of the test exhibit on the broker, from before it starts."""
    lines = MqttLines(broker.port, f"{DEVICES}/#")
    yield lines
    lines.close()


@pytest.fixture(scope="module")
def console(
    broker: Mosquitto, devices: MqttLines, accounts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleProcess]:
    """The test exhibit (a cue list, three devices), simulated, with its devices on the real Mosquitto."""
    audit_log = tmp_path_factory.mktemp("audit") / "audit.log"
    started = launch_console(str(TEST_EXHIBIT), broker.url, accounts, audit_log)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def operator_api(console: ConsoleProcess) -> Api:
    """The HTTP API as an operator's script would use it: to set the scene and to read the state."""
    api = Api(console.url)
    api.login("olivia")
    return api


@pytest.fixture(scope="module")  # not the session: Playwright's sync API holds an event loop while it runs,
def browser() -> Iterator[Any]:  # and every asyncio test after this folder would find it running
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def watched_tab(browser: Any, url: str) -> Iterator[Any]:
    """A tablet-sized English tab on ``url`` whose script errors fail the test when it is closed."""
    context = browser.new_context(viewport=TABLET, locale="en-US", base_url=url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    yield tab
    context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def page(browser: Any, console: ConsoleProcess) -> Iterator[Any]:
    with watched_tab(browser, console.url) as tab:
        yield tab


def sign_in(page: Any, user: str) -> None:
    """Sign in through the form, as an operator would, and wait for the live link."""
    page.goto("/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", USERS[user][1])
    page.click("button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector("#conn-dot.online")


class MqttLines:
    """`mosquitto_sub -v` as an outside client: every message on ``topic`` (retained ones too), in order."""

    def __init__(self, port: int, topic: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [require_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-v", "-q", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def mark(self) -> int:
        return len(self.lines)

    def wait_for(self, predicate: Any, since: int = 0, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[since:]:
                if predicate(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no matching message within {timeout} s; got {self.lines[since:][-40:]}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        self._reader.join(2)


class Api:
    """The console's HTTP API from Python (a cookie session and its CSRF token, or nothing at all)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.opener = build_opener(HTTPCookieProcessor())
        self.csrf: str | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            with self.opener.open(
                Request(self.base + path, data=data, method=method, headers=sent), timeout=10
            ) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def login(self, user: str) -> None:
        status, body = self.request("POST", "/api/v1/login", {"user": user, "password": USERS[user][1]})
        assert status == 200, body
        self.csrf = body["csrf"]

    def command(self, name: str, params: dict[str, Any] | None = None) -> Any:
        status, body = self.request("POST", f"/api/v1/{name}", params or {}, {"X-CSRF-Token": self.csrf or ""})
        assert status == 200, (name, status, body)
        return body["data"]

    def state(self) -> dict[str, Any]:
        status, body = self.request("GET", "/api/v1/state")
        assert status == 200, body
        return body["topics"]


def latest(lines: MqttLines, topic: str) -> dict[str, Any] | None:
    """The last payload seen on ``topic`` (JSON), or None."""
    for line in reversed(lines.lines):
        name, _, payload = line.partition(" ")
        if name == topic:
            return json.loads(payload)
    return None


def wait_latest(lines: MqttLines, topic: str, predicate: Any, timeout: float = 10.0) -> None:
    """Wait until the last payload on ``topic`` matches (a device never commanded has none: it matches)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        payload = latest(lines, topic)
        if payload is None or predicate(payload):
            return
        time.sleep(0.02)
    raise AssertionError(f"{topic} never matched; last: {latest(lines, topic)}")


def clean_slate(api: Api, devices: MqttLines) -> None:
    """Every device at its safe state (through a PANIC, reset), no e-stop, the playhead on cue 1."""
    if not api.state()["show"]["panic"]:
        api.command("panic")
    for device, safe in (("lamp", {"level": 0}), ("fog", {"on": False})):
        wait_latest(devices, f"{DEVICES}/{device}/state", lambda p, safe=safe: p.items() >= safe.items())
    api.command("reset")
    if api.state()["safety"]["estop"]:
        api.command("estop/reset")
    api.command("playhead", {"cue": "1"})
