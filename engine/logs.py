"""Structured logs: readable lines by default, JSON lines with ``--log-format json``."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import Literal

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        self.converter = time.localtime


LEVEL_ENV, FORMAT_ENV = "EXHIBIT_LOG_LEVEL", "EXHIBIT_LOG_FORMAT"
"""Where the choice is left for child processes (the renderer), so all lines of a run look alike."""


def setup_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    os.environ[LEVEL_ENV], os.environ[FORMAT_ENV] = level, fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def setup_child_logging() -> None:
    """In a child process: log as the parent chose (text when it chose nothing)."""
    fmt = os.environ.get(FORMAT_ENV, "text")
    setup_logging(os.environ.get(LEVEL_ENV, "info"), "json" if fmt == "json" else "text")


# --- log files: <state dir>/logs/exhibit.log, rotated by size ---------------------------------------------------

LOG_DIR, LOG_FILE = "logs", "exhibit.log"
LOG_MAX_BYTES = 10 * 1024 * 1024
"""One log file grows to at most this many bytes before it is rotated (``exhibit.log`` -> ``exhibit.log.1``)."""
LOG_BACKUPS = 4
"""Rotated files kept beside the current one: at most ``(LOG_BACKUPS + 1) * LOG_MAX_BYTES`` on disk (50 MiB)."""
LOG_MODE = 0o640
"""Not world-readable: log lines may name users and addresses."""
RECORD_MAX_CHARS = 64 * 1024
"""A longer line is cut (shorter still for a small cap): one record never overruns a file's cap."""
RETRY_S = 60.0
"""After a failed write (a full disk), how long the file is left alone before it is tried again."""


class CappedFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that never grows past its cap (counted in bytes, not characters), is created
    with :data:`LOG_MODE`, and never stops the exhibit: a failed write is said once on stderr, and the file
    is tried again :data:`RETRY_S` later."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.failures = 0
        self._paused_until = 0.0

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)
        with contextlib.suppress(OSError):  # an older file made with looser permissions
            os.fchmod(fd, LOG_MODE)
        return open(fd, "a", encoding="utf-8", errors="backslashreplace")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        most = max(64, min(RECORD_MAX_CHARS, self.maxBytes // 4 - 16))  # UTF-8: at most 4 bytes a character
        return text if len(text) <= most else text[:most] + " [cut]"

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        stream = self.stream if self.stream is not None else self._open()
        self.stream = stream
        size = len(f"{self.format(record)}\n".encode("utf-8", "backslashreplace"))
        stream.seek(0, 2)
        return stream.tell() > 0 and stream.tell() + size > self.maxBytes

    def emit(self, record: logging.LogRecord) -> None:
        if self._paused_until and time.monotonic() < self._paused_until:
            return
        super().emit(record)  # a failure lands in handleError

    def handleError(self, record: logging.LogRecord) -> None:
        self.failures += 1
        self._paused_until = time.monotonic() + RETRY_S
        if self.stream is not None:
            with contextlib.suppress(OSError):
                self.stream.close()
            self.stream = None
        if self.failures == 1:
            error = sys.exc_info()[1]
            warn_once(
                f"cannot write the log file {self.baseFilename} ({error}); the exhibit goes on, logging "
                "to the terminal only / 无法写入日志文件，展项继续运行，日志仅输出到终端"
            )


def warn_once(text: str) -> None:
    """One line on stderr, never an exception (stderr itself may be gone under a service manager)."""
    with contextlib.suppress(Exception):
        print(f"warning: {text}", file=sys.stderr, flush=True)


def add_file_logging(
    state_dir: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS
) -> CappedFileHandler | None:
    """Log also to ``<state_dir>/logs/exhibit.log``, in the format the terminal shows; None (and one warning
    on stderr) when the folder cannot be made or the file cannot be opened: the exhibit runs without it."""
    path = state_dir / LOG_DIR / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = CappedFileHandler(path, max_bytes, backups)
    except OSError as exc:
        warn_once(
            f"cannot write log files in {path.parent} ({exc.strerror or exc}); the exhibit goes on, logging "
            "to the terminal only / 无法写入日志文件，展项继续运行，日志仅输出到终端"
        )
        return None
    handler.setFormatter(JsonFormatter() if os.environ.get(FORMAT_ENV) == "json" else TextFormatter())
    logging.getLogger().addHandler(handler)
    return handler


def remove_file_logging(handler: logging.Handler | None) -> None:
    """Stop logging to the file ``add_file_logging`` opened."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()
