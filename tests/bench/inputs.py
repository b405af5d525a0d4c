"""``launcher.py bench``: the inputs. How fast the engine's OSC input takes datagrams without losing
one, against python-osc's own server; and how long a line from a serial board takes to become a
signal, against a bare pyserial-asyncio-fast reader. Each baseline is measured in the same run,
first, the same way.

OSC: a separate sender process fires bursts at a receiver process (``osc_sink.py``)
on loopback; the rate is doubled until a burst loses messages, then bisected.
Serial: a separate process plays the board on a pty (``arduino.py``); the reader
runs on an asyncio loop in this process, as the engine runs its sensors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import serial_asyncio_fast

from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import Signal, SignalStore
from sensors.osc.inputs import OscSensorConfig
from sensors.serial import SerialSensor, SerialSensorConfig
from tests.bench.procs import BenchError, Children
from tests.bench.results import InputResults, Latencies, OscIngest, RateSearch, RateStep, SerialLatency, latencies
from tests.bench.sender import datagrams
from tests.support.net import free_port

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
SENDER = "osc-flood"
BOARD = "board"
RCVBUF = int(OscSensorConfig.model_fields["receive_buffer"].default)
"""What the sensor asks for unless an exhibit says otherwise; the baseline is given the same."""
POLL_S = 0.01
QUIET_S = 0.25
"""A receiver whose count has not moved for this long has drained its socket."""
SERIAL_BAUD = 115200
"""Meaningless on a pty (bytes move at memory speed), but what an Uno sketch uses."""
Arrived = list[tuple[int, int]]
"""(sequence number, monotonic_ns when it was in hand)."""


@dataclass(frozen=True)
class InputPlan:
    burst: int
    """Datagrams per burst of the OSC search; more than the socket buffer holds, or nothing is ever lost."""
    bisect_steps: int
    serial_lines: int
    """Serial lines timed, after the warm-up."""
    serial_warmup: int = 100
    start_rate: float = 5_000.0
    cap: float = 640_000.0
    serial_rate: float = 1_000.0

    @property
    def floor(self) -> float:
        """The slowest burst tried when even the first one loses messages."""
        return self.start_rate / 4


QUICK_INPUTS = InputPlan(burst=15_000, bisect_steps=1, serial_lines=400, start_rate=10_000.0)
FULL_INPUTS = InputPlan(burst=20_000, bisect_steps=4, serial_lines=3_000)


def run_inputs(plan: InputPlan) -> InputResults:
    """Both input comparisons; every child process is stopped and every temp file removed."""
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-inputs-") as tmp:
        children = Children(Path(tmp))
        try:
            osc = osc_ingest(children, plan)
            serial = serial_latency(children, plan)
        finally:
            children.stop_all()
    return InputResults(osc=osc, serial=serial)


# --- talking to the children ------------------------------------------------------------


def start_module(children: Children, name: str, module: str, *args: object) -> subprocess.Popen[str]:
    """Run ``python -m tests.bench.<module>`` from the project root, so it can import the engine."""
    argv = [sys.executable, "-m", f"tests.bench.{module}", *map(str, args)]
    return children.start(name, argv, pipes=True, cwd=ROOT)


def tell(children: Children, name: str, line: str) -> None:
    stdin = children.procs[name].stdin
    assert stdin is not None
    stdin.write(line + "\n")
    stdin.flush()


def reply(children: Children, name: str, timeout: float) -> str:
    """The child's next line; one line per request, so nothing is ever left in the pipe's buffer."""
    proc = children.procs[name]
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        line = proc.stdout.readline() if selector.select(timeout) else None
    if line is None:
        raise children.failed(name, f"{name} did not answer within {timeout:.0f} s")
    if not line:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)  # it closed its output: let it finish exiting, so its status is known
        raise children.failed(name, f"{name} exited with status {proc.returncode}")
    return line.strip()


def ask(children: Children, name: str, request: str, timeout: float = 5.0) -> str:
    tell(children, name, request)
    return reply(children, name, timeout)


# --- OSC ingest rate ----------------------------------------------------------------------


def osc_ingest(children: Children, plan: InputPlan) -> OscIngest:
    """The rate search against the baseline, then the engine, each with the same sender and buffer."""
    baseline, rcvbuf_baseline = search_receiver(children, "baseline", plan)
    engine, rcvbuf_engine = search_receiver(children, "engine", plan)
    if baseline.best is None:
        raise BenchError(f"python-osc's server lost messages even at {plan.floor:,.0f}/s; the machine is too busy")
    return OscIngest(
        engine=engine,
        baseline=baseline,
        burst=plan.burst,
        rcvbuf_asked=RCVBUF,
        rcvbuf_engine=rcvbuf_engine,
        rcvbuf_baseline=rcvbuf_baseline,
        rmem_max=rmem_max(),
        buffer_datagrams=buffer_capacity(RCVBUF, datagrams(1)[0]),
    )


def search_receiver(children: Children, kind: str, plan: InputPlan) -> tuple[RateSearch, int]:
    """Start one receiver and a sender aimed at it, search, stop both; returns the search and SO_RCVBUF."""
    port = free_port(socket.SOCK_DGRAM)
    receiver = f"osc-{kind}"
    start_module(children, receiver, "osc_sink", "--kind", kind, "--port", port, "--rcvbuf", RCVBUF)
    children.wait_ready(receiver, timeout=20.0)
    start_module(children, SENDER, "osc_flood", "--port", port, "--max-count", plan.burst)
    children.wait_ready(SENDER, timeout=20.0)
    try:
        rcvbuf = int(ask(children, receiver, "rcvbuf"))
        send_burst(children, receiver, plan.start_rate, min(1_000, plan.burst))  # warm-up: caches, first calls
        search = find_rate(lambda rate: send_burst(children, receiver, rate, plan.burst), plan)
    finally:
        children.stop(SENDER)
        children.stop(receiver)
    log.info("osc %s: %.0f msg/s with zero loss", kind, search.rate)
    return search, rcvbuf


def find_rate(trial: Callable[[float], RateStep], plan: InputPlan) -> RateSearch:
    """Double the rate until a burst loses messages (halve it if the first does), then bisect."""
    steps: list[RateStep] = []

    def lossless(rate: float) -> bool:
        steps.append(trial(rate))
        return steps[-1].lossless

    good, bad = bracket(lossless, plan)
    for _ in range(plan.bisect_steps):
        if good is None or bad is None:
            break
        middle = (good + bad) / 2
        if lossless(middle):
            good = middle
        else:
            bad = middle
    return RateSearch(steps=tuple(steps), cap=plan.cap)


def bracket(lossless: Callable[[float], bool], plan: InputPlan) -> tuple[float | None, float | None]:
    """(the fastest lossless rate, the slowest lossy one) tried; None where there was none."""
    rate = plan.start_rate
    if lossless(rate):
        while rate * 2 <= plan.cap:
            if not lossless(rate * 2):
                return rate, rate * 2
            rate *= 2
        return rate, None
    while rate / 2 >= plan.floor:
        rate /= 2
        if lossless(rate):
            return rate, rate * 2
    return None, rate


def send_burst(children: Children, receiver: str, rate: float, count: int) -> RateStep:
    """One paced burst; the receiver's count is read back once its socket has drained."""
    before = int(ask(children, receiver, "count"))
    first_ns, last_ns, sent = map(int, ask(children, SENDER, f"{rate} {count}", timeout=count / rate + 10.0).split())
    handled, settled_ns = drain(children, receiver, before + sent)
    step = RateStep(
        target=rate,
        sent=sent,
        achieved=(sent - 1) * 1e9 / max(last_ns - first_ns, 1),
        handled=handled - before,
        busy_s=max(settled_ns - first_ns, 1) / 1e9,
    )
    log.info("osc %s: %.0f/s asked, %.0f/s sent, %d of %d handled", receiver, rate, step.achieved, step.handled, sent)
    return step


def drain(children: Children, receiver: str, expected: int) -> tuple[int, int]:
    """Poll the count until it reaches ``expected`` or stops moving; (count, when it was first seen)."""
    count, seen_ns = -1, time.monotonic_ns()
    while True:
        now = time.monotonic_ns()
        latest = int(ask(children, receiver, "count"))
        if latest != count:
            count, seen_ns = latest, now
        if count >= expected or now - seen_ns > QUIET_S * 1e9:
            return count, seen_ns
        time.sleep(POLL_S)


def rmem_max() -> int | None:
    """Linux's cap on SO_RCVBUF, which a receiver cannot ask past without privileges."""
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return None


def buffer_capacity(rcvbuf: int, datagram: bytes, limit: int = 100_000) -> int:
    """How many copies of ``datagram`` a socket asking for ``rcvbuf`` holds before the kernel drops them.

    The kernel charges each datagram its whole buffer, not its payload, so this is far fewer than
    ``rcvbuf / len(datagram)``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        receiver.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(limit):
                sender.sendto(datagram, receiver.getsockname())
        receiver.setblocking(False)
        held = 0
        while held < limit:
            try:
                receiver.recv(65536)
            except BlockingIOError:
                break
            held += 1
    return held


# --- serial latency -------------------------------------------------------------------------


Reader = Callable[[Path, Arrived], AbstractAsyncContextManager[None]]
"""Opens the board at a path and appends (sequence number, monotonic_ns) as each value is in hand."""


def serial_latency(children: Children, plan: InputPlan) -> SerialLatency:
    """The bare reader first, then the engine's sensor, each on its own fresh pty."""
    baseline = asyncio.run(time_lines(children, "baseline", plan, read_bare))
    engine = asyncio.run(time_lines(children, "engine", plan, read_with_sensor))
    return SerialLatency(engine=engine, baseline=baseline, rate=plan.serial_rate, warmup=plan.serial_warmup)


async def time_lines(children: Children, kind: str, plan: InputPlan, reader: Reader) -> Latencies:
    """Start a board, open it with ``reader``, have the board write its lines, and time each one's arrival."""
    name, count = f"{BOARD}-{kind}", plan.serial_warmup + plan.serial_lines
    sent_file = children.workdir / f"{name}-sent.npy"
    args = ["--dir", children.workdir / name, "--count", count, "--rate", plan.serial_rate, "--out", sent_file]
    start_module(children, name, "arduino", *args)
    # Waiting on a thread (blocked in select, without the GIL) keeps the loop free to read the port.
    link = Path(await asyncio.to_thread(reply, children, name, 20.0))
    arrived: Arrived = []
    async with reader(link, arrived):
        tell(children, name, "go")
        await asyncio.to_thread(reply, children, name, count / plan.serial_rate + 20.0)  # "done"
        await wait_for_lines(arrived, count)
    tell(children, name, "quit")
    children.stop(name)
    result = latencies(np.load(sent_file), np.array(arrived, dtype=np.int64).reshape(-1, 2), plan.serial_warmup)
    if len(result.ms) == 0:
        raise BenchError(f"none of the {plan.serial_lines} serial lines reached the {kind} reader")
    log.info("serial %s: %d of %d lines, p99 %.3f ms", kind, len(result.ms), result.measured, result.percentile(99))
    return result


async def wait_for_lines(arrived: Arrived, count: int) -> None:
    """Until the last line is in, or nothing has come for ``QUIET_S``."""
    seen, since = len(arrived), time.monotonic()
    while (not arrived or arrived[-1][0] < count) and time.monotonic() - since < QUIET_S:
        await asyncio.sleep(POLL_S)
        if len(arrived) != seen:
            seen, since = len(arrived), time.monotonic()


class BareReader(asyncio.Protocol):
    """The least a JSON-lines reader can do: split the bytes into lines and ``json.loads`` each."""

    def __init__(self, arrived: Arrived) -> None:
        self.arrived = arrived
        self.rest = b""

    def data_received(self, data: bytes) -> None:
        *lines, self.rest = (self.rest + data).split(b"\n")
        for line in lines:
            self.arrived.append((json.loads(line)["seq"], time.monotonic_ns()))


@contextlib.asynccontextmanager
async def read_bare(link: Path, arrived: Arrived) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    transport, _ = await serial_asyncio_fast.create_serial_connection(
        loop, lambda: BareReader(arrived), url=str(link), baudrate=SERIAL_BAUD
    )
    try:
        yield
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def read_with_sensor(link: Path, arrived: Arrived) -> AsyncIterator[None]:
    """A ``SerialSensor`` as the runtime builds it (cf. tests/test_serial_sensor.py), noting each signal set."""
    config = SerialSensorConfig.model_validate(
        {"kind": "serial", "port": str(link), "baud": SERIAL_BAUD, "format": "json",
         "signals": {"seq": {"field": "seq", "type": "int"}}}
    )  # fmt: skip
    clock = MonotonicClock()
    store = SignalStore(clock)
    for name, kind in config.signal_types().items():
        store.declare(f"{BOARD}.{name}", kind)

    def note(signal: Signal) -> None:
        arrived.append((signal.value, time.monotonic_ns()))

    store.subscribe(f"{BOARD}.seq", note)
    sensor = SerialSensor(BOARD, config, DriverContext("bench", store, clock, Resources()))
    task = asyncio.create_task(sensor.run(), name="bench-serial-sensor")
    try:
        await wait_online(store, task)
        yield
    finally:
        task.cancel()  # first, so closing the port is not taken for an unplugged board
        await asyncio.gather(task, return_exceptions=True)
        await sensor.close()


async def wait_online(store: SignalStore, task: asyncio.Task[None], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while store.get(f"{BOARD}.health.status").value != "ok":
        if task.done():
            error = None if task.cancelled() else task.exception()
            raise BenchError(f"the serial sensor stopped before the board was open: {error!r}")
        if time.monotonic() > deadline:
            raise BenchError(f"the serial sensor did not open the pty within {timeout:.0f} s")
        await asyncio.sleep(POLL_S)
