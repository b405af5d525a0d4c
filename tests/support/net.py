"""Loopback helpers shared by the tests and the benchmarks (no pytest here)."""

from __future__ import annotations

import socket
import time

from devices.mqtt.broker import allow_quick_rebind


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A loopback port that is free now (the OS picks it; a tiny race with other programs remains)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            allow_quick_rebind(probe)  # probed as the embedded broker probes (TIME-WAIT is TCP's alone)
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_accepts(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.05)
