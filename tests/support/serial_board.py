"""The test plays the Arduino: a pty pair whose slave end the sensor opens as a serial
port, reached through a ``/dev/serial/by-id``-style symlink that survives replugging."""

from __future__ import annotations

import os
import time
from pathlib import Path


class PtyBoard:
    """A board on a pty. ``unplug()`` closes it (the kernel hangs up the port);
    ``replug()`` makes a new pty at a new path and points the by-id link at it."""

    def __init__(self, directory: Path, name: str = "usb-Arduino_LLC_Arduino_Uno_75735323-if00") -> None:
        self.link = directory / "by-id" / name
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
