"""The datagrams of systemd's notify protocol (``NOTIFY_SOCKET``: a Unix datagram socket, ``@`` for an abstract
name). What to say and when is the engine's (:mod:`engine.watchdog`); sending never raises: a refused message is
counted and logged once."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("devices.systemd_notify")


class SystemdNotifier:
    """Datagrams to systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sent = 0
        self.failed = 0
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.setblocking(False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> SystemdNotifier | None:
        address = env.get("NOTIFY_SOCKET", "")
        return cls(address) if address.startswith(("/", "@")) else None

    def send(self, *lines: str) -> bool:
        try:
            self._socket.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            self.failed += 1
            if self.failed == 1:
                log.warning("systemd's notify socket refused a message (%s); the service may be restarted", exc)
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._socket.close()
