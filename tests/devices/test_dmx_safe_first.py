"""After a restart the DMX gear sees its safe state first: one Art-Net frame of safe levels goes out before the
show's first values (an attract state that lights the dimmer at once), read on a real UDP socket."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from engine.runtime import RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry

EXHIBIT = """\
format_version: 1
id: dmx-first
title: {{en: Safe first, zh: 安全优先}}
mqtt: {{broker: embedded, prefix: exhibit}}
devices:
  par:
    kind: dmx
    protocol: artnet
    destination: 127.0.0.1
    port: {port}
    universe: 0
    address: 1
    profile: dimmer
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{{set: par.level, value: 200}}]
"""

ARTNET_DATA = 18
"""Art-Net's ArtDmx header is 18 bytes; slot 1 follows."""


async def test_the_first_frame_carries_the_safe_levels_then_the_show_lights_the_dimmer(tmp_path: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as node:
        node.bind(("127.0.0.1", 0))
        node.settimeout(5)
        registry = build_registry()
        text = EXHIBIT.format(port=node.getsockname()[1])
        exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
        runtime = assemble(exhibit, registry, RuntimeOptions(base_dir=tmp_path, embedded_port=0, console=False))
        await runtime.start()
        try:
            levels: list[int] = []
            while not levels or levels[-1] == 0:
                packet = await asyncio.to_thread(node.recv, 1024)
                levels.append(packet[ARTNET_DATA])
        finally:
            await runtime.stop()
    assert levels[0] == 0, levels  # the safe frame, on its own
    assert levels[-1] > 0
