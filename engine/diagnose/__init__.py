"""``exhibit diagnose``: one file to send to whoever supports the exhibit, with what they need to see
(versions, the exhibit file and its check, recent logs, health history, the audit log's last lines, the
latest benchmark figures, the systemd unit and its status) and never what they must not: every secret is
redacted (:mod:`engine.diagnose.redact`), and no picture, video, 3D model, recording or accounts file goes in.

``exhibit bench`` saves its figures with :func:`save_bench_output`, where the bundle finds them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from engine.diagnose.bundle import Bundle
from engine.diagnose.collect import Sources, collect

BENCH_JSON, BENCH_TEXT = "latest.json", "latest.txt"


def write_bundle(sources: Sources, out: Path) -> int:
    """Collect everything ``sources`` points at into the ``.tar.gz`` ``out``; its size in bytes."""
    bundle = Bundle(f"exhibit-diagnose-{sources.exhibit_id} support bundle / 支持包")
    collect(bundle, sources)
    return bundle.write(out)


def default_bundle_name(exhibit_id: str) -> str:
    return f"exhibit-diagnose-{exhibit_id}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def save_bench_output(output: str, folder: Path) -> Path | None:
    """Keep what ``exhibit bench`` printed as the latest figures: ``latest.json`` when it is the JSON of
    ``--json``, else ``latest.txt`` (the table); None when there is nothing to keep or it cannot be written."""
    text = output.strip()
    if not text:
        return None
    try:
        json.loads(text.splitlines()[-1])
        name, text = BENCH_JSON, text.splitlines()[-1]
    except ValueError:
        name = BENCH_TEXT
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{name}.{os.getpid()}")
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, target)
    except OSError:
        return None
    return target


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KiB" if size < 1024**2 else f"{size / 1024**2:.1f} MiB"
