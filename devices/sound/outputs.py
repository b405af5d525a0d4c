"""Sound outputs on this computer: what OpenAL can play on (for ``audio.outputs``), and whether one is still there.

Listing asks Panda3D's OpenAL back-end in a fresh Python process (OpenAL Soft reads its configuration once per
process, and prints its device list at Panda's debug level). Presence: OpenAL Soft goes on mixing into nothing
when a USB interface is unplugged, and Panda does not say so, so the device watches ALSA's card list instead:
an output whose name carries ``CARD=<id>`` (as OpenAL Soft's ALSA names do) is there while ``/proc/asound/<id>``
is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ASOUND = Path("/proc/asound")
"""Where ALSA lists the sound cards (one entry per card id)."""
_LISTER = """
import panda3d.core as core
core.loadPrcFileData("outputs", "audio-library-name p3openal_audio\\nnotify-level-audio debug")
core.AudioManager.createAudioManager().shutdown()
"""
_CARD = re.compile(r"CARD=([^,)\s]+)")


def list_outputs(driver: str | None = None, timeout: float = 30.0) -> list[str]:
    """OpenAL's names of the outputs it can play on (the default one first), as ``audio.outputs.<name>.device``
    takes them; empty where there is no sound card."""
    env = dict(os.environ, ALSOFT_LOGLEVEL="0")
    if driver:
        env["ALSOFT_DRIVERS"] = driver
    said = subprocess.run(
        [sys.executable, "-c", _LISTER], capture_output=True, text=True, timeout=timeout, env=env, check=False
    ).stderr
    return parse_device_list(said)


def parse_device_list(said: str) -> list[str]:
    """The device names from Panda's debug lines ``All OpenAL devices:`` ... ``OpenAL drivers:``."""
    names: list[str] = []
    listing = False
    for said_line in said.splitlines():
        line = said_line.removeprefix(":audio(debug):")
        if "All OpenAL devices:" in line:
            listing = True
        elif listing and line.startswith("  "):
            name = line.strip()
            default = name.endswith(" [default]")
            name = name.removesuffix(" [default]")
            if name != "No Output":
                names.insert(0, name) if default else names.append(name)
        elif listing:
            break
    return names


def card_of(device: str | None) -> str | None:
    """The ALSA card id an OpenAL output name points at (``CARD=USB``), or None (the default output, Pulse...)."""
    found = _CARD.search(device or "")
    return found.group(1) if found else None


def present(device: str | None, asound: Path | None = None) -> bool:
    """False only when ``device`` names an ALSA card that is not there (unplugged)."""
    card = card_of(device)
    return card is None or ((asound or ASOUND) / card).exists()
