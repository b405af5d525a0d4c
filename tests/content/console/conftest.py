"""A real exhibit with its console on a free port, its devices on a real Mosquitto, and accounts in a
file of the test's own: one operator, one viewer, one admin and API tokens for each role."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from content.console.service import ConsoleService
from engine.control import accounts as accounts_module
from engine.control.accounts import Accounts
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.certs import self_signed

EXHIBIT = """\
format_version: 1
id: consoletest
title: {en: Console test, zh: 控制台测试}
sensors:
  panel:
    kind: osc
    port: 9
    signals:
      level: {address: /level}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
variables:
  visits: 0
cues:
  main:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: wash.level, value: 10}]}
      - {id: "2", actions: [{set: wash.level, value: 20}]}
"""
PASSWORDS = {"ana": "operator pass 1", "vic": "viewer pass 1", "ada": "admin pass 1"}
ROLES = {"ana": "operator", "vic": "viewer", "ada": "admin"}


@pytest.fixture(autouse=True)
def quick_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hashes keep their own cost, so a cheap one for the test's accounts checks just the same way.
    monkeypatch.setattr(accounts_module, "SCRYPT_N", 2**10)


def make_accounts(path: Path) -> tuple[Accounts, dict[str, str]]:
    accounts = Accounts(path)
    for name, password in PASSWORDS.items():
        accounts.add_user(name, password, ROLES[name])
    tokens = {role: accounts.add_token(f"{role}-machine", role) for role in ("viewer", "operator", "admin")}
    return accounts, tokens


@dataclass
class Console:
    runtime: Runtime
    tokens: dict[str, str] = field(default_factory=dict)
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def service(self) -> ConsoleService:
        service = self.runtime.service("console")
        assert isinstance(service, ConsoleService)
        return service

    @property
    def url(self) -> str:
        return self.service.url.rstrip("/")

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def client(self, **options: Any) -> aiohttp.ClientSession:
        # unsafe: keep cookies set by an IP address (127.0.0.1), as a browser does.
        session = aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True), **options)
        self.clients.append(session)
        return session

    async def login(self, user: str) -> tuple[aiohttp.ClientSession, str]:
        """A client logged in as ``user``, and its CSRF token."""
        client = self.client()
        async with client.post("/api/v1/login", json={"user": user, "password": PASSWORDS[user]}) as response:
            assert response.status == 200, await response.text()
            return client, (await response.json())["csrf"]

    @property
    def playhead(self) -> int:
        assert self.runtime.show is not None
        return self.runtime.show.cue_lists["main"].playhead

    def audited(self, action: str) -> list[dict[str, Any]]:
        return [entry for entry in self.runtime.control.audit.recent if entry["action"] == action]


def options(tmp_path: Path, broker: str, **more: Any) -> RuntimeOptions:
    settings: dict[str, Any] = {
        "simulate": True,
        "base_dir": tmp_path,
        "broker": broker,
        "console_port": 0,
        "accounts": tmp_path / "accounts.json",
        "audit_log": tmp_path / "audit.log",
    }
    settings.update(more)
    return RuntimeOptions(**settings)


def assemble_console(tmp_path: Path, broker: str, text: str = EXHIBIT, **more: Any) -> Runtime:
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    return assemble(exhibit, registry, options(tmp_path, broker, **more))


@contextlib.asynccontextmanager
async def running_console(runtime: Runtime, tokens: dict[str, str] | None = None) -> AsyncIterator[Console]:
    await runtime.start()
    console = Console(runtime, tokens or {})
    for _ in range(20):  # the services' run() begins once the start is done: the console says where it is then
        await asyncio.sleep(0)
    try:
        yield console
    finally:
        for client in console.clients:
            await client.close()
        await runtime.stop()


@pytest.fixture
async def console(tmp_path: Path, mosquitto) -> AsyncIterator[Console]:
    _, tokens = make_accounts(tmp_path / "accounts.json")
    async with running_console(assemble_console(tmp_path, mosquitto.url), tokens) as running:
        yield running


@pytest.fixture
def cert(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (made by the real openssl)."""
    crt, key = self_signed(tmp_path, "console")
    yield crt, key
