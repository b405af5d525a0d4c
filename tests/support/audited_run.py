"""``launcher.py`` under a Python audit hook: every file the process opens for writing (``open`` events with a
writing mode or flag), every rename's destination, and every SQLite database it connects to are noted, one JSON
line each, in a log a test reads afterwards (then it reads those files itself).

    python tests/support/audited_run.py AUDIT_LOG launcher-arguments...

The log is opened before the hook is installed and written with ``os.write`` on its descriptor, which raises no
audit event, so noting never notes itself. Audit hooks see what Python opens; SQLite opens its files in C, so its
``sqlite3.connect`` event names the database (and the test reads the database and its ``-wal``/``-journal``).
Each line says whether a module was being imported at the time (``importing``).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[2]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _writing(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _importing() -> bool:
    """Whether a module is being imported (a library probing at import time: ctypes' ``find_library`` writes
    and removes a file in the temporary folder), not the exhibit running."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def install(log: Path) -> None:
    """Note every write-open, rename and SQLite connection of this process in ``log`` (JSON lines)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def note(event: str, path: object) -> None:
        if isinstance(path, str | bytes | os.PathLike):
            entry = {"event": event, "path": os.path.abspath(os.fsdecode(path)), "importing": _importing()}
            os.write(fd, (json.dumps(entry) + "\n").encode())

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if _writing(mode, flags):
                note(event, path)
        elif event in ("os.rename", "os.replace", "os.link", "shutil.copyfile", "shutil.move"):
            note(event, args[1])
        elif event == "sqlite3.connect":
            note(event, args[0])

    sys.addaudithook(hook)


def main() -> None:
    log, arguments = Path(sys.argv[1]), sys.argv[2:]
    install(log)
    launcher = str(ROOT / "launcher.py")
    sys.argv = [launcher, *arguments]
    sys.path[0] = str(ROOT)  # the launcher's folder, as `python launcher.py` has it (not tests/support)
    runpy.run_path(launcher, run_name="__main__")


if __name__ == "__main__":
    main()
