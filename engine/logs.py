"""Structured logs: readable lines by default, JSON lines with ``--log-format json``."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
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
