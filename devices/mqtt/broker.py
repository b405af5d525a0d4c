"""The zero-setup broker: amqtt on loopback, in its own thread and event loop so
that broker work never delays the exhibit's control loop. As a service of the running exhibit
(``broker``) it starts before the MQTT link, which then connects to it.

For real installations use Mosquitto (``--broker mqtt://host:port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from engine.errors import UserError
from engine.health import ComponentHealth

log = logging.getLogger("devices.mqtt.broker")


def allow_quick_rebind(sock: socket.socket) -> None:
    """Let a probe bind a TCP port that only connections closed a moment ago still hold (TIME-WAIT), as
    the server that will listen there may (asyncio servers set ``SO_REUSEADDR``): without it, a run
    started within a minute of the last one finds its own port "taken". A listening socket still makes
    the bind fail. Not on Windows, where ``SO_REUSEADDR`` lets a bind take a port that is in use."""
    if sys.platform != "win32" and hasattr(socket, "SO_REUSEADDR"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        allow_quick_rebind(probe)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that the system says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        allow_quick_rebind(probe)
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmbeddedBroker:
    name = "broker"

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, health: ComponentHealth | None = None) -> None:
        self.host = host
        self.port = port
        self.health = health
        self._closing = False
        self._gone = asyncio.Event()
        self._on_exit: Callable[[], object] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    # --- as a service of the running exhibit ---------------------------------------------------

    async def start(self) -> None:
        """Listen before anything connects (the thread start waits, off the loop)."""
        loop, gone = asyncio.get_running_loop(), asyncio.Event()
        self._gone = gone
        self._on_exit = lambda: loop.call_soon_threadsafe(gone.set)
        await asyncio.to_thread(self.start_thread)
        if self.health is not None:
            self.health.set("ok")

    async def run(self) -> None:
        # The broker serves in its own thread; if that thread dies, the service says so.
        await self._gone.wait()
        if self._closing:
            return
        if self.health is not None:
            self.health.set("offline", "the embedded broker stopped")
        raise RuntimeError("the embedded MQTT broker stopped")

    async def close(self, timeout: float) -> None:
        self._closing = True
        await asyncio.to_thread(self.stop, max(timeout, 1.0))
        if self.health is not None:
            self.health.stopped()

    # --- in its own thread ------------------------------------------------------------------

    def start_thread(self, timeout: float = 10.0) -> None:
        """Start on ``port`` (0: any free port); if it is taken, on a free port instead (and say so)."""
        if self.port == 0:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            taken = self.port
            self.port = free_port(self.host)
            log.info("port %d is taken; the embedded broker uses %d instead", taken, self.port)
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._main, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise UserError(f"The embedded MQTT broker did not start within {timeout:.0f} s.")
        if self._error is not None:
            raise UserError(f"The embedded MQTT broker could not start on {self.url}: {self._error}.")
        log.info("embedded MQTT broker (amqtt) listening on %s", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()
        finally:
            if self._on_exit is not None:
                self._on_exit()

    async def _serve(self) -> None:
        from amqtt.broker import Broker  # imported late: it is only needed on the zero-setup path

        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        broker = Broker(config)
        await broker.start()
        self._ready.set()
        await self._stop.wait()
        with contextlib.suppress(Exception):
            await broker.shutdown()
