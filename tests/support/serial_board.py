"""The test plays the Arduino: a pty pair whose slave end the sensor opens as a serial
port, reached through a ``/dev/serial/by-id``-style symlink that survives replugging.

:class:`PtyBoard` is the cable alone (the test writes the board's bytes); :class:`Arduino` is a
board on it, in real time, that restarts when the port opens like an Uno does.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import threading
import time
import tty
from pathlib import Path
from typing import Any

from sensors.simulated_board import BOOTLOADER_SECONDS, AutoResetBoard, LineSketch, Sketch

UNO = "usb-Arduino_LLC_Arduino_Uno_75735323-if00"


class PtyBoard:
    """A board on a pty. ``unplug()`` closes it (the kernel hangs up the port);
    ``replug()`` makes a new pty at a new path and points the by-id link at it."""

    def __init__(self, directory: Path, name: str = UNO, hold_slave: bool = True) -> None:
        self.link = directory / "by-id" / name
        self.hold_slave = hold_slave
        """Keep the port's own end open (the test writes before the host opens it); without it,
        :meth:`host_has_it_open` tells when the host opens and closes the port."""
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self.paths: list[str] = []
        self.master = -1
        self.slave = -1
        self.replug()

    def replug(self) -> None:
        self.master, self.slave = os.openpty()
        path = os.ttyname(self.slave)
        if path in self.paths:  # the kernel reuses pty numbers; a replugged board gets a new name
            spare = (self.master, self.slave)
            self.master, self.slave = os.openpty()
            path = os.ttyname(self.slave)
            for fd in spare:
                os.close(fd)
        self.paths.append(path)
        if not self.hold_slave:
            tty.setraw(self.slave)  # kept by the pty: the host's first open sees a raw line, no echo
            os.close(self.slave)
            self.slave = -1
        if self.link.is_symlink():
            self.link.unlink()
        self.link.symlink_to(path)
        os.set_blocking(self.master, False)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
        self.link.unlink()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def host_has_it_open(self) -> tuple[bool, bytes]:
        """Whether the host has the port open now (only without ``hold_slave``), and what it sent."""
        try:
            return True, os.read(self.master, 4096)
        except BlockingIOError:
            return True, b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # nobody has the port open
                return False, b""
            raise

    def send_lines(self, lines: list[bytes], rate: float = 1000.0) -> float:
        """Write lines paced at ``rate`` per second (absolute deadlines); returns the seconds taken."""
        start = time.perf_counter()
        for index, line in enumerate(lines):
            deadline = start + index / rate
            while (now := time.perf_counter()) < deadline:
                time.sleep(min(deadline - now, 0.0005))
            os.write(self.master, line)
        return time.perf_counter() - start

    def read(self) -> bytes:
        """What the host has sent to the board so far."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()


class Arduino:
    """A board at the end of a pty, in real time, in its own thread, as an Uno behaves: opening
    the port restarts it and its bootloader swallows what the host sends for ``bootloader_s``;
    then ``sketch`` boots and runs. ``unplug``/``replug`` pull the cable, ``brown_out`` restarts
    the board while the port stays open. What the board sends while the port is closed is lost."""

    def __init__(
        self,
        directory: Path,
        sketch: Sketch,
        bootloader_s: float = BOOTLOADER_SECONDS,
        auto_reset: bool = True,
        name: str = UNO,
    ) -> None:
        self.sketch = sketch
        self.cable = PtyBoard(directory, name, hold_slave=False)
        self.board = AutoResetBoard(sketch, time.monotonic(), bootloader_s, auto_reset)
        self.opens = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="arduino", daemon=True)
        self._thread.start()

    @property
    def link(self) -> Path:
        return self.cable.link

    def _main(self) -> None:
        was_open = False
        while not self._stop.is_set():
            with self._lock:
                was_open = self._step(was_open)
            time.sleep(0.001)

    def _step(self, was_open: bool) -> bool:
        now = time.monotonic()
        if self.cable.master < 0:  # unplugged
            return False
        is_open, data = self.cable.host_has_it_open()
        if is_open and not was_open:
            self.opens += 1
            self.board.open(now)
        out = self.board.receive(data, now) if data else b""
        out += self.board.poll(now)
        if is_open and out:
            with contextlib.suppress(BlockingIOError):  # the host is not reading: a USB-serial chip drops it too
                os.write(self.cable.master, out)
        return is_open

    def unplug(self) -> None:
        with self._lock:
            self.cable.unplug()

    def replug(self) -> None:
        """Plugged back in: powered up again (it boots while nobody has the port open), at a new path."""
        with self._lock:
            self.cable.replug()
            self.board.reset(time.monotonic())

    def brown_out(self) -> None:
        with self._lock:
            self.board.reset(time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.cable.close()


class ScriptedSketch:
    """A sketch that sends what the test tells it to (:meth:`say`), once it runs, and keeps what it is sent."""

    def __init__(self, banner: bytes = b"") -> None:
        self.banner = banner
        self.received = bytearray()
        self._said: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def say(self, data: bytes) -> None:
        self._said.put(data)

    def boot(self) -> bytes:
        return self.banner

    def receive(self, data: bytes) -> bytes:
        self.received += data
        return b""

    def poll(self, t: float) -> bytes:
        out = bytearray()
        while not self._said.empty():
            out += self._said.get()
        return bytes(out)


def json_sketch(values: dict[str, Any], rate: float = 50.0) -> LineSketch:
    """A sketch printing ``values`` as a JSON line ``rate`` times a second (ArduinoJson's
    ``serializeJson`` + ``println``); the test changes ``values`` as the inputs change."""
    return LineSketch(lambda _t: json.dumps(values).encode() + b"\r\n", rate)
