"""``launcher.py bench``: the operator console. How long a GO sent over the console's WebSocket takes to reach
the broker as a device command (``console_go_roundtrip_*``, against a bare aiomqtt publish); how long a signal
change takes to reach a WebSocket client watching it (``console_update_latency_*``, against the same change's
device command at the broker); and what 20 clients watching live plots cost the control path
(``control_latency_console_ratio``: the OSC-to-MQTT p99 with them over the same without).

All three run against one engine process, ``launcher.py run --no-render`` with ``--console-port`` and
``--accounts`` (an API token made by ``launcher.py token add``), on a private Mosquitto. The bench process is the
measuring WebSocket client (aiohttp); device commands are timed by the OSC bench's subscriber in a separate
process, OSC datagrams sent by its sender in another; the 20 watchers are one more (``console_clients.py``, plain
sockets at the lowest CPU priority: they stand in for tablets, which are other machines).
Every clock is ``time.monotonic_ns()``, the same one in every process on Linux. The runs with and without
watchers are driven from ``runner.py`` (``run_console``), which shares the OSC bench's ``measure()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import numpy as np

from tests.bench.inputs import reply, tell
from tests.bench.procs import BenchError, Children, wait_for_payload
from tests.bench.results import ConsoleGo, ConsoleUpdate, Latencies, WatcherRun, latencies
from tests.support.net import free_port, wait_for_port

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
EXHIBIT_ID = "bench-console"
ENGINE = "console-engine"
PROBE_TOPIC = f"exhibit/{EXHIBIT_ID}/devices/probe/set"
"""Where the OSC stream's device commands go (the OSC bench's mapping)."""
CUED_TOPIC = f"exhibit/{EXHIBIT_ID}/devices/cued/set"
"""Where the cues' device commands go: cue "1" sets value 1, cue "2" value 2."""
DIRECT_TOPIC = "bench/console/direct/set"
"""Where the GO baseline publishes: not a device's topic, so the two runs cannot mix."""
SIGNAL = "probe_in.seq"
"""The signal the OSC stream changes, which the clients watch."""
HEALTH_SIGNALS = ("probe_in.health.rate", "probe_in.health.age", "probe_in.health.status", "probe.health.status")
"""What a live plot of the health view watches next to it."""
QUIET_S = 0.3
SETTLE_S = 1.0
"""After the watchers are ready: their connections' first state sent, the sender's pace found."""
"""A WebSocket stream counts as drained after this long without a message."""

EXHIBIT = """\
format_version: 1
id: {exhibit_id}
title: {{en: Console benchmark, zh: 控制台基准}}
sensors:
  probe_in:
    kind: osc
    host: 127.0.0.1
    port: {udp_port}
    signals:
      seq: {{address: /bench/seq, type: float}}
devices:
  probe:
    kind: mqtt
    properties:
      value: {{type: int, range: [0, 10000000], safe: 0}}
  cued:
    kind: mqtt
    properties:
      value: {{type: int, range: [0, 10], safe: 0}}
mappings:
  - {{from: probe_in.seq, to: probe.value, input: [0, 10000000]}}
cues:
  bench:
    guard: 0s
    cues:
      - {{id: "1", actions: [{{set: cued.value, value: 1}}]}}
      - {{id: "2", actions: [{{set: cued.value, value: 2}}]}}
control:
  osc: {{port: 0}}
"""
"""The OSC bench's exhibit (an OSC float mapped to an MQTT device), plus a cue list of two cues that each set
another device to its own value, and OSC control on any free port (QLab's 53000 may be taken on this machine)."""


@dataclass(frozen=True)
class ConsolePlan:
    gos: int
    """GOs timed, after ``go_warmup``; as many bare publishes for the baseline."""
    go_warmup: int
    go_spacing_s: float
    """Between two GOs (50 Hz): longer than a GO's round trip, so GOs never queue."""
    updates: int
    """OSC messages timed to the watching client, after ``update_warmup``."""
    update_warmup: int
    update_rate: float
    rounds: int
    """Pairs of OSC-to-MQTT runs, one with the watchers and one without: without, with, with, without, ..."""
    messages: int
    """Measured OSC messages per run of a pair, after ``latency_warmup``, at 1 kHz as the OSC bench sends."""
    latency_warmup: int = 300
    clients: int = 20

    @property
    def go_count(self) -> int:
        return self.go_warmup + self.gos

    @property
    def signals(self) -> tuple[str, ...]:
        return (SIGNAL, *HEALTH_SIGNALS)


QUICK_CONSOLE = ConsolePlan(
    gos=150, go_warmup=20, go_spacing_s=0.02, updates=300, update_warmup=50, update_rate=200.0, rounds=2, messages=1000
)
FULL_CONSOLE = ConsolePlan(
    gos=500, go_warmup=30, go_spacing_s=0.02, updates=2000, update_warmup=100, update_rate=200.0, rounds=10,
    messages=3000,
)  # fmt: skip


@dataclass(frozen=True)
class ConsoleEngine:
    """The engine process under test and how to reach it."""

    pid: int
    udp_port: int
    console_port: int
    token: str

    @property
    def ws_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}/api/v1/ws"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# --- the engine ---------------------------------------------------------------------------------------------------


def start_console_engine(children: Children, mqtt_port: int) -> ConsoleEngine:
    """``launcher.py run`` with the console on a free port, an accounts file holding one operator token, no scene;
    returns once it said ``online`` on the broker and its console accepts connections."""
    accounts = children.workdir / "accounts.json"
    token = make_token(accounts)
    udp_port = free_port(socket.SOCK_DGRAM)
    console_port = free_port(socket.SOCK_STREAM)
    exhibit = children.workdir / f"{EXHIBIT_ID}.yaml"
    exhibit.write_text(EXHIBIT.format(exhibit_id=EXHIBIT_ID, udp_port=udp_port), encoding="utf-8")
    argv = [
        sys.executable,
        "launcher.py",
        "run",
        str(exhibit),
        "--broker",
        f"mqtt://127.0.0.1:{mqtt_port}",
        "--console-port",
        str(console_port),
        "--accounts",
        str(accounts),
        "--no-render",
    ]
    proc = children.start(ENGINE, argv, cwd=ROOT)
    if not wait_for_payload(mqtt_port, f"exhibit/{EXHIBIT_ID}/status", b"online", timeout=30.0, alive=proc):
        state = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not say online in 30 s"
        raise children.failed(ENGINE, f"the engine {state}")
    try:
        wait_for_port(console_port, timeout=10.0)
    except TimeoutError:
        raise children.failed(ENGINE, f"the engine's console did not listen on port {console_port}") from None
    log.info("engine online, console on port %d", console_port)
    return ConsoleEngine(pid=proc.pid, udp_port=udp_port, console_port=console_port, token=token)


def stop_console_engine(children: Children) -> None:
    code = children.stop(ENGINE)
    if code != 0:
        log.warning("the engine exited with status %s after SIGTERM:\n%s", code, children.log_text(ENGINE))


def make_token(accounts: Path) -> str:
    """An operator's API token, made as a user makes one: ``launcher.py token add`` (it prints the token)."""
    argv = [sys.executable, "launcher.py", "token", "add", "bench", "--role", "operator", "--accounts", str(accounts)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    tokens = re.findall(r"[A-Za-z0-9_\-]{24,}", done.stdout)
    if done.returncode != 0 or not tokens:
        raise BenchError(
            f"`launcher.py token add` did not make a token (status {done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return str(tokens[-1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux's /proc); NaN where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


# --- a WebSocket client of the bench's own -------------------------------------------------------------------------


class Client:
    """One console WebSocket, read all along: each event stamped on arrival, replies kept by command id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.signals: list[tuple[int, int]] = []
        """``(round(value), monotonic_ns)`` of each ``signal/<SIGNAL>`` event."""
        self.replies: dict[int, dict[str, Any]] = {}
        self.hello: dict[str, Any] | None = None
        self._hello = asyncio.Event()
        self._signal = asyncio.Event()
        self._arrived = asyncio.Event()

    async def read(self) -> None:
        async for message in self.ws:
            at = time.monotonic_ns()  # before parsing: the message is in hand
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            for event in events(json.loads(message.data)):
                self.take(event, at)

    def take(self, event: dict[str, Any], at: int) -> None:
        topic, data = event.get("topic"), event.get("data")
        if topic == "hello" and isinstance(data, dict):
            self.hello = data
            self._hello.set()
        elif topic == "reply" and isinstance(data, dict) and isinstance(data.get("id"), int):
            self.replies[data["id"]] = data
            self._arrived.set()
        elif topic == f"signal/{SIGNAL}" and isinstance(data, dict):
            self._signal.set()
            self._arrived.set()
            value = data.get("value")
            if isinstance(value, int | float) and math.isfinite(value):
                self.signals.append((round(value), at))

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def greeted(self, timeout: float) -> dict[str, Any]:
        await wait_for(self._hello, timeout, "the console did not say hello over the WebSocket")
        assert self.hello is not None
        return self.hello

    async def watching(self, timeout: float) -> None:
        await self.send({"op": "watch", "signals": [SIGNAL]})
        await wait_for(self._signal, timeout, f"the console sent no `signal/{SIGNAL}` after the client watched it")

    async def quiet(self, limit_s: float = 10.0) -> None:
        """Until no reply and no value of :data:`SIGNAL` came for :data:`QUIET_S` (at most ``limit_s``); the
        other topics (health figures...) may change all along."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), QUIET_S)
            except TimeoutError:
                return


def events(payload: Any) -> list[dict[str, Any]]:
    """A message's events: one event object, or a list of them (a server may batch what its mailbox held)."""
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    return []


async def wait_for(flag: asyncio.Event, timeout: float, what: str) -> None:
    try:
        await asyncio.wait_for(flag.wait(), timeout)
    except TimeoutError:
        raise BenchError(f"{what} within {timeout:.0f} s") from None


@contextlib.asynccontextmanager
async def connected(engine: ConsoleEngine) -> AsyncIterator[Client]:
    """A client on the console's WebSocket with the operator's token, greeted, read by a task until closed."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(engine.ws_url, headers=engine.headers, max_msg_size=0)
        except aiohttp.ClientError as exc:
            raise BenchError(f"could not open the console's WebSocket {engine.ws_url}: {exc}") from None
        client = Client(ws)
        reader = asyncio.create_task(client.read())
        try:
            await client.greeted(timeout=10.0)
            yield client
        finally:
            await ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await reader


# --- GO over the WebSocket to the device command at the broker -------------------------------------------------------


Fire = Callable[[int], Awaitable[None]]
"""Sends the N-th GO (or publish), which carries value 1 + N % 2; times are taken from just before the call."""


def go_roundtrip(children: Children, engine: ConsoleEngine, mqtt_port: int, plan: ConsolePlan) -> ConsoleGo:
    """The bare publish first, then GOs over the WebSocket, both from this process's event loop, same broker."""
    return asyncio.run(_go_roundtrip(children, engine, mqtt_port, plan))


async def _go_roundtrip(children: Children, engine: ConsoleEngine, mqtt_port: int, plan: ConsolePlan) -> ConsoleGo:
    async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier="bench-console-direct") as mqtt:

        async def publish(index: int) -> None:
            await mqtt.publish(DIRECT_TOPIC, json.dumps({"value": alternate(index)}), qos=1)

        baseline = await time_alternating(children, mqtt_port, "go-direct", DIRECT_TOPIC, plan, publish)
    async with connected(engine) as client:

        async def go(index: int) -> None:
            params = {"cue": str(alternate(index))}
            await client.send({"op": "command", "id": index + 1, "name": "go", "params": params})

        result = await time_alternating(children, mqtt_port, "go-console", CUED_TOPIC, plan, go)
        await client.quiet()
    refused = {id_: r for id_, r in client.replies.items() if r.get("status") != "ok"}
    if refused or len(client.replies) < plan.go_count:
        first = next(iter(refused.values()), None)
        raise BenchError(
            f"{len(client.replies)} of {plan.go_count} GOs were answered, {len(refused)} refused"
            + (f"; the first refusal: {first}" if first else "")
        )
    return ConsoleGo(engine=result, baseline=baseline, spacing_s=plan.go_spacing_s, warmup=plan.go_warmup)


def alternate(index: int) -> int:
    """The value the ``index``-th GO (from 0) carries: cue "1", then cue "2", then "1"... each a change."""
    return 1 + index % 2


async def time_alternating(
    children: Children, mqtt_port: int, name: str, topic: str, plan: ConsolePlan, fire: Fire
) -> Latencies:
    received = children.workdir / f"{name}-received.npy"
    sub = f"{name}-subscriber"
    children.script(sub, "subscriber.py", "--port", mqtt_port, "--topic", topic, "--out", received)
    await asyncio.to_thread(children.wait_ready, sub, 10.0)  # off the loop: the WebSocket keeps being read
    sent = np.zeros(plan.go_count, dtype=np.int64)
    start = time.monotonic() + plan.go_spacing_s
    for index in range(plan.go_count):
        # Absolute deadlines: a late GO does not push every later one back.
        await asyncio.sleep(max(0.0, start + index * plan.go_spacing_s - time.monotonic()))
        sent[index] = time.monotonic_ns()
        await fire(index)
    tell(children, sub, "done")  # the subscriber drains, saves and exits
    await asyncio.to_thread(children.finish, sub, 15.0)
    result = alternating_latencies(sent, np.load(received), plan.go_warmup)
    if len(result.ms) == 0:
        raise BenchError(f"none of the {plan.gos} measured commands reached {topic}")
    log.info("%s: %d of %d arrived, p99 %.3f ms", name, len(result.ms), result.measured, result.percentile(99))
    return result


def alternating_latencies(sent_ns: np.ndarray, received: np.ndarray, warmup: int) -> Latencies:
    """``sent_ns[i]`` is when the i-th command, carrying ``alternate(i)``, was sent; ``received`` holds
    ``(value, monotonic_ns)`` rows. Its arrival is the first row with its value at or after it was sent and
    before the next command with the same value was (a lost one is not mistaken for a later one's)."""
    rows = received[np.argsort(received[:, 1], kind="stable")] if len(received) else received.reshape(0, 2)
    ms: list[float] = []
    for index in range(warmup, len(sent_ns)):
        end = int(sent_ns[index + 2]) if index + 2 < len(sent_ns) else np.iinfo(np.int64).max
        hit = rows[(rows[:, 0] == alternate(index)) & (rows[:, 1] >= sent_ns[index]) & (rows[:, 1] < end)]
        if len(hit):
            ms.append((int(hit[0, 1]) - int(sent_ns[index])) / 1e6)
    return Latencies(ms=np.array(ms, dtype=np.float64), measured=len(sent_ns) - warmup)


# --- a signal change to the watching client ---------------------------------------------------------------------------


def update_latency(children: Children, engine: ConsoleEngine, mqtt_port: int, plan: ConsolePlan) -> ConsoleUpdate:
    """OSC datagrams ``/bench/seq f N`` at ``plan.update_rate`` to the engine's OSC input; each N timed to the
    ``signal/probe_in.seq`` event carrying it at this process's client, and to the device command carrying it at
    the subscriber (the same datagrams' way out over MQTT: the baseline)."""
    return asyncio.run(_update_latency(children, engine, mqtt_port, plan))


async def _update_latency(
    children: Children, engine: ConsoleEngine, mqtt_port: int, plan: ConsolePlan
) -> ConsoleUpdate:
    count = plan.update_warmup + plan.updates
    sent_file = children.workdir / "update-sent.npy"
    received_file = children.workdir / "update-received.npy"
    sub, sender = "update-subscriber", "update-sender"
    async with connected(engine) as client:
        await client.watching(timeout=10.0)
        client.signals.clear()  # the value before the stream
        children.script(sub, "subscriber.py", "--port", mqtt_port, "--topic", PROBE_TOPIC, "--out", received_file)
        await asyncio.to_thread(children.wait_ready, sub, 10.0)
        children.script(
            sender, "sender.py", "--port", engine.udp_port, "--count", count, "--rate", plan.update_rate,
            "--out", sent_file,
        )  # fmt: skip
        await asyncio.to_thread(children.finish, sender, count / plan.update_rate + 20.0)
        tell(children, sub, "done")
        await client.quiet()
        await asyncio.to_thread(children.finish, sub, 15.0)
        arrivals = np.array(client.signals, dtype=np.int64).reshape(-1, 2)
    sent = np.load(sent_file)
    result = latencies(sent, arrivals, plan.update_warmup)
    baseline = latencies(sent, np.load(received_file), plan.update_warmup)
    if len(result.ms) == 0 or len(baseline.ms) == 0:
        raise BenchError(
            f"of {plan.updates} measured OSC messages, {len(result.ms)} reached the WebSocket client as "
            f"`signal/{SIGNAL}` and {len(baseline.ms)} reached {PROBE_TOPIC}"
        )
    log.info("update: %d of %d at the client, p99 %.3f ms", len(result.ms), plan.updates, result.percentile(99))
    return ConsoleUpdate(engine=result, baseline=baseline, rate=plan.update_rate, warmup=plan.update_warmup)


# --- 20 watchers in a process of their own (console_clients.py) -------------------------------------------------------


def start_watchers(children: Children, engine: ConsoleEngine, name: str, plan: ConsolePlan) -> None:
    """The clients connected, greeted and sent a first value of each signal they watch, and
    :data:`SETTLE_S` on: what is measured is watching, not 20 clients connecting."""
    children.script(
        # --token=...: a token may begin with "-", which argparse would take for an option.
        name, "console_clients.py", "--url", engine.ws_url, f"--token={engine.token}", "--clients", plan.clients,
        "--signals", ",".join(plan.signals),
    )  # fmt: skip
    children.wait_ready(name, timeout=30.0)
    time.sleep(SETTLE_S)


def stop_watchers(children: Children, name: str) -> WatcherRun:
    """Closes the clients; what they received since they were ready, and what they cost their process."""
    tell(children, name, "done")
    line = reply(children, name, timeout=15.0)
    children.finish(name, timeout=10.0)
    try:
        report = json.loads(line)
        return WatcherRun(
            messages=int(report["messages"]),
            events=int(report["events"]),
            seconds=float(report["seconds"]),
            cpu_s=float(report["cpu_s"]),
            fewest=int(report["fewest"]),
        )
    except (ValueError, KeyError, TypeError):
        raise children.failed(name, f"the watchers' report is not what was expected: {line!r}") from None
