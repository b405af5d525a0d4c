"""Child processes for the benchmark: started here, always stopped here, logs kept for errors."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.net import free_port, port_accepts

log = logging.getLogger("bench")

HERE = Path(__file__).resolve().parent
MOSQUITTO_HINT = "Mosquitto is needed for the benchmark: apt-get install mosquitto"


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def find_mosquitto() -> str | None:
    # Debian puts it in /usr/sbin, which is often not on a normal user's PATH.
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Children:
    """Every process the benchmark starts; :meth:`stop_all` ends whatever is still running."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(
        self, name: str, argv: list[str], *, pipes: bool = False, cwd: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start ``argv``; stderr (and stdout unless ``pipes``) go to ``<workdir>/<name>.log``. On Linux the child
        is sent SIGTERM when this process dies: a bench killed from outside (a test's timeout) must not leave
        an exhibit or a broker running."""
        log_file = (self.workdir / f"{name}.log").open("w")
        with log_file:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                text=True,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                preexec_fn=_die_with_parent(os.getpid()) if sys.platform == "linux" else None,
            )
        self.procs[name] = proc
        return proc

    def script(self, name: str, script: str, *args: object) -> subprocess.Popen[str]:
        """Run one of the helper scripts next to this file, talking to it over stdin/stdout."""
        return self.start(name, [sys.executable, str(HERE / script), *map(str, args)], pipes=True)

    def log_text(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def failed(self, name: str, what: str) -> BenchError:
        """An error that carries the child's own output, which usually says what went wrong."""
        output = self.log_text(name).rstrip()
        return BenchError(f"{what}\n--- output of {name} ---\n{output}" if output else what)

    def wait_ready(self, name: str, timeout: float) -> None:
        """Wait for the line ``ready`` on the child's stdout."""
        proc = self.procs[name]
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if selector.select(timeout) and proc.stdout.readline().strip() == "ready":
                return
        raise self.failed(name, f"{name} did not get ready within {timeout:.0f} s")

    def finish(self, name: str, timeout: float) -> None:
        """Wait for a child that ends by itself; a non-zero exit is an error."""
        proc = self.procs[name]
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self.failed(name, f"{name} did not finish within {timeout:.0f} s") from None
        if code != 0:
            raise self.failed(name, f"{name} exited with status {code}")

    def stop(self, name: str, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not end in ``timeout``; returns the exit status."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", name, timeout)
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):  # the broker, started first, goes last
            self.stop(name, timeout=5.0)


def start_mosquitto(children: Children, exe: str) -> int:
    """A private broker on a free loopback port, with nothing kept between runs; returns the port."""
    port = free_port(socket.SOCK_STREAM)
    config = children.workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = children.start("mosquitto", [exe, "-c", str(config)])
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise children.failed("mosquitto", f"mosquitto exited with status {proc.returncode}")
        if port_accepts(port):
            return port
        time.sleep(0.05)
    raise children.failed("mosquitto", "mosquitto did not accept connections within 10 s")


def wait_for_payload(port: int, topic: str, payload: bytes, timeout: float, alive: subprocess.Popen[str]) -> bool:
    """True once ``payload`` (e.g. a retained ``online``) is seen on ``topic``; False if ``alive`` exits first."""
    seen = threading.Event()

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic, qos=1)

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.payload == payload:
            seen.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive.poll() is None:
            if seen.wait(0.05):
                return True
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def bench_runtime(text: str, name: str, mqtt_port: int, workdir: Path) -> Runtime:
    """An exhibit's runtime as ``launcher.py run --broker --no-console`` assembles it, on the bench's Mosquitto
    (the console's figures are the console group's; here it would only print its login link into the
    bench's own output)."""
    registry = build_registry()
    exhibit = validate_text(text, name, registry)
    options = RuntimeOptions(base_dir=workdir, broker=f"mqtt://127.0.0.1:{mqtt_port}", console=False)
    return assemble(exhibit, registry, options)


def _die_with_parent(parent: int) -> Any:
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child may only make the call

    def tie() -> None:  # runs in the child, between fork and exec
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before that
            os.kill(os.getpid(), signal.SIGTERM)

    return tie


PROBE_EXHIBIT = """\
format_version: 1
id: {exhibit_id}
title: {{en: Benchmark}}
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
mappings:
  - {{from: probe_in.seq, to: probe.value, input: [0, 10000000]}}
"""
"""The OSC-to-MQTT bench's exhibit: an OSC input mapped to an MQTT device (``.format(exhibit_id=, udp_port=)``)."""
