"""How phones reach the audience page: its address, and a QR code of it for the wall (``exhibit qr``)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from sensors.audience.model import AudienceSensorConfig


def local_address() -> str:
    """This computer's address on its network (the one its default route leaves by), or 127.0.0.1. No packet is
    sent: connecting a UDP socket only chooses the route."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        return str(probe.getsockname()[0])
    return "127.0.0.1"


def join_url(config: AudienceSensorConfig, host: str | None = None) -> str:
    """The address phones open: ``public_url`` if the exhibit gives one, else this computer's address."""
    if config.public_url:
        return config.public_url
    if host is None:
        host = config.host if config.host not in ("0.0.0.0", "::", "") else local_address()
    scheme = "http" if config.tls is None else "https"
    return f"{scheme}://{host}:{config.port}{config.path}"


def write_qr(url: str, folder: Path, stem: str) -> list[Path]:
    """``<stem>.png`` and ``<stem>.svg`` of ``url`` in ``folder``, big enough to scan from a few metres (error
    correction Q: a quarter of it may be dirty or covered)."""
    import segno

    folder.mkdir(parents=True, exist_ok=True)
    code = segno.make(url, error="q", micro=False)
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    code.save(str(png), scale=16, border=4)
    code.save(str(svg), scale=16, border=4, title=url)
    return [png, svg]
