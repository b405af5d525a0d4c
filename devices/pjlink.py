"""Projectors over PJLink class 1 (TCP port 4352): power, input, AV mute, error status, lamp hours.

How it talks: one short TCP session per poll (every ``poll`` seconds) or as soon as the show asks for
something: connect, read the greeting, authenticate when asked (``PJLINK 1 <random>``: the first
command carries ``md5(random + password)``; ``PJLINK ERRA`` means a wrong password), ask ``POWR``,
``ERST``, ``LAMP`` (and ``INPT``, ``AVMT`` while on), send what the show wants, close. Short sessions
suit every projector: many take one connection at a time, and all close idle ones after 30 s.

What it promises:

- An absent projector never delays the exhibit's start and never stops it: the device is ``offline``
  with the reason, and tried again with the project's back-off (:mod:`engine.reconnect`).
- A projector answers ``ERR3`` (unavailable) while it warms up or cools down: what it refused is
  asked again ``retry`` seconds later, not in a loop. ``ERR1``/``ERR2``/``ERR4`` are counted, said
  in the health reason, and not repeated until the show asks again.
- Its state is in the health model: ``power`` (off, warming, on, cooling), ``input``, ``mute``,
  ``lamp_hours``, the six ``ERST`` categories (``fan``, ``lamp``, ``temperature``, ``cover``,
  ``filter``, ``other``: ok, warning or error; any warning or error makes it ``degraded``),
  ``refused`` (error replies so far) and ``last_refusal``.

Safe state (PANIC, start-up, closing time, a clean stop): **un-mute, and leave the power as it is.**
Switching a projector off is never safe in a running show: its light is often the room's light (an
evacuation needs it), a lamp that is switched off must cool for minutes before it lights again, so the
show could not come back after a false alarm, and the power cycles wear the lamp. Un-muting takes a
picture blanked by a cue back to what the content shows, as lights come up to their safe look.
``safe_mute: null`` sends nothing at all; ``safe_mute: true`` blanks the picture instead. Power is
switched by the show (``{set: projector.power, value: false}``) and by the opening hours
(``schedule``, through the ``power`` service of ``devices/power_schedule.py``).

The password is read from the environment or a file (``password_env`` / ``password_file``), never
from the exhibit file, at every session, so fixing it heals the device without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from devices.pjlink_simulator import PjlinkSimulator
from engine.curves import Duration
from engine.drivers import Device, DriverContext, Fault, check_fault
from engine.model import DeviceConfig, StoreType, Strict
from engine.reconnect import Backoff, Reconnect

log = logging.getLogger("devices.pjlink")

PJLINK_PORT = 4352
POWER_STATES = {"0": "off", "1": "on", "2": "cooling", "3": "warming"}
ERROR_CATEGORIES = ("fan", "lamp", "temperature", "cover", "filter", "other")
ERROR_LEVELS = {"0": "ok", "1": "warning", "2": "error"}
REFUSALS = {
    "ERR1": "ERR1: undefined command / 未定义的命令",
    "ERR2": "ERR2: parameter out of range / 参数超出范围",
    "ERR3": "ERR3: unavailable now (warming up, cooling down or standby) / 暂不可用（预热、冷却或待机）",
    "ERR4": "ERR4: projector failure / 投影机故障",
}
INPUT_PATTERN = r"^[1-9][0-9]$"
LINE_LIMIT = 1024
"""PJLink lines are at most 136 bytes; a longer one is garbage."""


# --- configuration --------------------------------------------------------------------------------------------------


class PjlinkSchedule(Strict):
    """When the opening hours switch the projector (the ``power`` service)."""

    on_before_open: Duration = Field(900.0, le=6 * 3600, description="Switch on this long before opening.")
    off_after_close: Duration = Field(0.0, le=6 * 3600, description="Switch off this long after closing.")


class PjlinkConfig(DeviceConfig):
    """A projector (or display) that speaks PJLink class 1 over the network."""

    kind: Literal["pjlink"]
    host: str = Field(min_length=1, description="The projector's address.")
    port: int = Field(PJLINK_PORT, ge=1, le=65535, description="PJLink TCP port.")
    password_env: str | None = Field(None, description="Environment variable holding the PJLink password.")
    password_file: str | None = Field(None, description="File holding the PJLink password (relative to the exhibit).")
    poll: Duration = Field(10.0, ge=0.05, description="How often its state is asked.")
    timeout: Duration = Field(5.0, ge=0.05, description="How long to wait for the connection and each reply.")
    retry: Duration = Field(2.0, ge=0.05, description="How soon a command refused while warming/cooling is retried.")
    safe_mute: bool | None = Field(
        False, description="AV mute in the safe state (PANIC, closing, stop): false un-mutes; null sends nothing."
    )
    schedule: PjlinkSchedule | None = Field(None, description="Switch on and off with the opening hours.")

    @model_validator(mode="after")
    def _one_password(self) -> PjlinkConfig:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give the password through `password_env` or `password_file`, not both")
        return self

    def settable_properties(self) -> list[str]:
        return ["power", "input", "mute"]

    def safe_state(self) -> dict[str, Any]:
        return {} if self.safe_mute is None else {"mute": self.safe_mute}

    def health_figures(self) -> dict[str, StoreType]:
        figures: dict[str, StoreType] = {"power": "str", "input": "str", "mute": "bool", "lamp_hours": "int"}
        return figures | dict.fromkeys(ERROR_CATEGORIES, "str") | {"refused": "int", "last_refusal": "str"}

    def health_meanings(self) -> dict[str, str]:
        meanings = {
            "power": "off, warming, on or cooling",
            "input": "the PJLink input shown (31: the first digital input)",
            "mute": "picture and sound muted (AVMT)",
            "lamp_hours": "hours on the first lamp",
            "refused": "error replies (ERR1..ERR4) so far",
            "last_refusal": "the last command refused, and why",
        }
        return meanings | {name: f"{name} status: ok, warning or error" for name in ERROR_CATEGORIES}

    def max_rate(self) -> float:
        return 2.0  # commands coalesce into the next session anyway


def read_password(config: PjlinkConfig, base: Path) -> str | None:
    """The password the config names, or None; ``PasswordMissing`` with a sentence if it cannot be read."""
    if config.password_env is not None:
        value = os.environ.get(config.password_env)
        if not value:
            raise PasswordMissing(f"PJLink 密码环境变量未设置 / `{config.password_env}` (the password) is not set")
        return value
    if config.password_file is not None:
        path = Path(config.password_file).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise PasswordMissing(
                f"PJLink 密码文件无法读取 / the password file {path} cannot be read ({exc.strerror})"
            ) from None
        if not value:
            raise PasswordMissing(f"PJLink 密码文件为空 / the password file {path} is empty")
        return value
    return None


# --- the protocol ---------------------------------------------------------------------------------------------------


class PjlinkTrouble(Exception):
    """The session cannot go on: the reason, in Chinese and English, for the health model."""


class PasswordMissing(PjlinkTrouble):
    pass


class Refused(Exception):
    """The projector answered ``ERRn`` to one command."""

    def __init__(self, command: str, code: str) -> None:
        super().__init__(f"{command}: {REFUSALS[code]}")
        self.command, self.code = command, code


def parse_reply(line: bytes, command: str) -> str:
    """The value of a reply (``%1POWR=1`` -> ``1``); :class:`Refused` for ``ERRn``, :class:`PjlinkTrouble` else."""
    text = line.rstrip(b"\r").decode("ascii", "replace").strip()
    if text.upper() == "PJLINK ERRA":
        raise PjlinkTrouble("PJLink 密码错误 / the projector refused the password (PJLINK ERRA)")
    head = f"%1{command}="
    if not text.upper().startswith(head):
        raise PjlinkTrouble(f"投影机回复无法识别 / unreadable reply to {command}: {text[:40]!r}")
    value = text[len(head) :]
    if value.upper() in REFUSALS:
        raise Refused(command, value.upper())
    return value


class PjlinkSession:
    """One connection: the greeting, the authentication, then one command at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.prefix = ""

    async def line(self) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await self.reader.readuntil(b"\r")
        except asyncio.IncompleteReadError:
            raise PjlinkTrouble("投影机断开了连接 / the projector closed the connection") from None
        except (asyncio.LimitOverrunError, ValueError):
            raise PjlinkTrouble("投影机回复过长 / the projector sent an overlong line") from None
        except TimeoutError:
            raise PjlinkTrouble(f"投影机无应答 / no answer within {self.timeout:g} s") from None

    async def greet(self, password: str | None) -> None:
        greeting = (await self.line()).rstrip(b"\r").decode("ascii", "replace").strip()
        if greeting == "PJLINK 0":
            return
        if greeting.startswith("PJLINK 1 ") and len(greeting) > 9:
            if password is None:
                raise PjlinkTrouble("投影机需要密码 / the projector asks for a PJLink password; set `password_env`")
            self.prefix = hashlib.md5((greeting[9:] + password).encode("utf-8")).hexdigest()
            return
        raise PjlinkTrouble(f"不是 PJLink 投影机 / not a PJLink greeting: {greeting[:40]!r}")

    async def ask(self, command: str, parameter: str = "?") -> str:
        """Send ``%1<command> <parameter>`` and read its reply's value (the digest goes with the first only)."""
        self.writer.write(f"{self.prefix}%1{command} {parameter}\r".encode("ascii"))
        self.prefix = ""
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()
        return parse_reply(await self.line(), command)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self.writer.wait_closed()


# --- the driver -----------------------------------------------------------------------------------------------------


class PjlinkDevice(Device):
    config: PjlinkConfig

    def __init__(self, name: str, config: PjlinkConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.wanted: dict[str, Any] = dict(config.safe_state())
        """What the show asked, by property; sent when the projector can take it."""
        self.state: dict[str, Any] = {"power": "unknown"}
        """What the projector said last (power, input, mute, lamp_hours, the ERST categories)."""
        self.refused = 0
        self.problems: dict[str, str] = {}
        """Commands refused for good (ERR1, ERR2, ERR4), by property: the health reason until asked again."""
        self.reached = False
        self._held = False
        """A command was refused with ERR3 or a warm-up is under way: look again after ``retry``."""
        self._asked = asyncio.Event()
        self._reconnect = Reconnect(Backoff(initial=0.5, cap=max(config.poll, 5.0)), context.clock)

    # --- what the show calls ---

    def set(self, values: Mapping[str, Any]) -> None:
        for prop, value in values.items():
            if prop == "input":
                text = str(value).strip()
                if not re.match(INPUT_PATTERN, text):
                    log.warning("projector %s: `%s` is not a PJLink input (11..59, e.g. 31); ignored", self.name, value)
                    continue
                value = text
            else:
                value = bool(value)
            self.wanted[prop] = value
            self.problems.pop(prop, None)
        self._asked.set()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, PjlinkTrouble) as exc:
                self.reached = False
                self.health.set("offline", self._reason(exc))
                await self._reconnect.wait()  # back off; what the show asks meanwhile waits for the projector
                continue
            self._reconnect.attempt = 0
            await self._pause(min(self.config.retry, self.config.poll) if self._held else self.config.poll)

    async def go_safe(self, timeout: float) -> bool:
        """Send the safe mute now; True when it is delivered, or when the projector is off (dark anyway)."""
        safe = self.config.safe_state()
        if not safe:
            return True
        self.wanted.update(safe)
        try:
            async with asyncio.timeout(timeout):
                await self._session(safe_only=True)
        except (OSError, PjlinkTrouble, TimeoutError) as exc:
            log.error("projector %s: safe state not sent: %s", self.name, self._reason(exc))
            return False
        return self.state.get("power") in ("off", "cooling") or self.state.get("mute") == safe["mute"]

    # --- one session ---

    def address(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    def password(self) -> str | None:
        return read_password(self.config, self.context.base_dir)

    async def _session(self, safe_only: bool = False) -> None:
        password = self.password()
        host, port = self.address()
        self._asked.clear()
        async with asyncio.timeout(self.config.timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        session = PjlinkSession(reader, writer, self.config.timeout)
        try:
            await session.greet(password)
            try:
                await self._poll(session)
            except Refused as refusal:  # even its power state: no projector worth the name
                raise PjlinkTrouble(f"投影机拒绝状态查询 / the projector refused a status query ({refusal})") from None
            if not self.reached:
                self.reached = True
                log.info("projector %s answers on %s:%d (power %s)", self.name, host, port, self.state["power"])
            await self._apply(session, ["mute"] if safe_only else ["power", "input", "mute"])
        finally:
            await session.close()
        self._say_health()

    async def _poll(self, session: PjlinkSession) -> None:
        power = await session.ask("POWR")
        if power not in POWER_STATES:
            raise PjlinkTrouble(f"投影机回复无法识别 / unknown power state {power!r}")
        self._note("power", POWER_STATES[power])
        errors = await session.ask("ERST")
        if not re.fullmatch(r"[0-2]{6}", errors):
            raise PjlinkTrouble(f"投影机回复无法识别 / unknown error status {errors!r}")
        for category, level in zip(ERROR_CATEGORIES, errors, strict=True):
            self._note(category, ERROR_LEVELS[level])
        with contextlib.suppress(Refused):  # a laser projector has no lamp (ERR1)
            hours = (await session.ask("LAMP")).split()
            if hours and hours[0].isdigit():
                self._note("lamp_hours", int(hours[0]))
        if self.state["power"] == "on":
            with contextlib.suppress(Refused):  # it began to cool down meanwhile (ERR3)
                self._note("input", await session.ask("INPT"))
                self._note("mute", (await session.ask("AVMT")) in ("11", "21", "31"))

    async def _apply(self, session: PjlinkSession, props: list[str]) -> None:
        """Send what the show wants and the projector does not show yet; ERR3 holds it for ``retry``."""
        self._held = self.state["power"] == "warming"
        for prop in props:
            command = self._command(prop)
            if command is None:
                continue
            try:
                await session.ask(*command)
            except Refused as refusal:
                self._refusal(prop, refusal)
                if refusal.code == "ERR3":
                    return  # not now: the rest would be refused too
                continue
            if prop == "power":
                self._note("power", "warming" if self.wanted["power"] else "cooling")
                self._held = True
                return  # input and mute follow once it is on
            self._note(prop, self.wanted[prop])

    def _command(self, prop: str) -> tuple[str, str] | None:
        """The command that brings ``prop`` to what is wanted, or None when nothing needs sending now."""
        if prop not in self.wanted or prop in self.problems:
            return None
        want, power = self.wanted[prop], self.state["power"]
        if prop == "power":
            if want == (power in ("on", "warming")):
                return None
            return "POWR", "1" if want else "0"
        if power not in ("on", "warming") or self.state.get(prop) == want:
            return None  # in standby: kept for when it is on
        return ("INPT", want) if prop == "input" else ("AVMT", "31" if want else "30")

    def _refusal(self, prop: str, refusal: Refused) -> None:
        self.refused += 1
        self.health.figure("refused", self.refused)
        self.health.figure("last_refusal", str(refusal))
        if refusal.code == "ERR3":
            self._held = True
        else:
            self.problems[prop] = f"投影机拒绝命令 / the projector refused {refusal}"
            log.warning("projector %s refused %s=%s: %s", self.name, prop, self.wanted[prop], refusal)

    def _note(self, name: str, value: Any) -> None:
        self.state[name] = value
        self.health.figure(name, value)

    def _say_health(self) -> None:
        faults = [f"{c} {self.state[c]}" for c in ERROR_CATEGORIES if self.state.get(c, "ok") != "ok"]
        if faults:
            self.health.set("degraded", "投影机报告故障 / the projector reports " + ", ".join(faults))
        elif self.problems:
            self.health.set("degraded", "; ".join(self.problems.values()))
        else:
            self.health.set("ok")

    def _reason(self, exc: BaseException) -> str:
        host, port = self.address()
        if isinstance(exc, PjlinkTrouble):
            return f"{exc} ({host}:{port})"
        if isinstance(exc, TimeoutError):
            return f"投影机无应答 / no answer from {host}:{port} within {self.config.timeout:g} s"
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return f"投影机无法连接 / cannot reach the projector at {host}:{port} ({why})"

    async def _pause(self, seconds: float) -> None:
        """Until the next poll, or sooner when the show asks for something."""
        if self._asked.is_set():
            return
        waiters = [asyncio.ensure_future(self._asked.wait()), asyncio.ensure_future(self.context.clock.sleep(seconds))]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


class SimulatedPjlink(PjlinkDevice):
    """The driver against an in-process projector on 127.0.0.1 (no password, 2-second warm-up and
    cool-down); ``inject`` tells the projector a fault."""

    def __init__(self, name: str, config: PjlinkConfig, context: DriverContext) -> None:
        super().__init__(name, config, context)
        self.simulator = PjlinkSimulator(warm_up=2.0, cool_down=2.0)
        self._listening = False

    def inject(self, fault: Fault) -> None:
        check_fault(self, fault, ("disconnect", "stall", "garbage", "slow", "clear"))
        self.simulator.inject(fault)

    def address(self) -> tuple[str, int]:
        return self.simulator.host, self.simulator.port

    def password(self) -> str | None:
        return None

    async def run(self) -> None:
        if not self._listening:
            await self.simulator.start()
            self._listening = True
        await super().run()

    async def go_safe(self, timeout: float) -> bool:
        try:
            return await super().go_safe(timeout) if self._listening else True
        finally:
            await self.simulator.close()
            self._listening = False
