"""The audit log: every control action (who, what, when, from where, and how it ended), as JSON lines
in a rotating file and in memory for the console's Audit view."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.control.protocol import after_output, plain

if TYPE_CHECKING:
    from engine.control.commands import Actor, Reply

log = logging.getLogger("engine.control.audit")


class AuditLog:
    """Writes one JSON line per action to ``path`` (rotated at ``max_bytes``, ``backups`` old files kept)
    and keeps the last ``keep`` in memory. Without a path, only memory."""

    def __init__(self, path: Path | None, max_bytes: int = 5_000_000, backups: int = 10, keep: int = 500) -> None:
        self.path = path
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._writer: logging.Logger | None = None
        self._pending: list[dict[str, Any]] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            writer = logging.getLogger(f"exhibit.audit.{path}")
            writer.propagate = False  # the audit file is its own record, not a line in the run's log
            writer.setLevel(logging.INFO)
            writer.handlers[:] = [handler]
            self._writer = writer

    def record(self, actor: Actor, action: str, params: dict[str, Any], reply: Reply) -> dict[str, Any]:
        entry = {
            "t": round(time.time(), 3),
            "who": actor.name,
            "role": actor.role,
            "via": actor.via,
            "from": actor.address,
            "action": action,
            "params": plain(params),
            "ok": reply.ok,
            **({} if reply.ok else {"error": reply.error}),
        }
        return self.add(entry)

    def note(self, who: str, via: str, address: str, action: str, ok: bool, detail: str = "") -> dict[str, Any]:
        """An action that is not a show command: a login, a failed login, a token used..."""
        entry = {"t": round(time.time(), 3), "who": who, "via": via, "from": address, "action": action, "ok": ok}
        if detail:
            entry["detail"] = detail
        return self.add(entry)

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep ``entry``; it is written and told to listeners once what the command sent to the devices has
        left (:func:`engine.control.protocol.after_output`): the paperwork never delays a cue."""
        self.recent.append(entry)
        self._pending.append(entry)
        if len(self._pending) == 1:
            after_output(self.flush)
        return entry

    def flush(self) -> None:
        """Write what is waiting and tell the listeners."""
        pending, self._pending = self._pending, []
        for entry in pending:
            if self._writer is not None:
                self._writer.info(json.dumps(entry, ensure_ascii=False, default=str))
            for listener in list(self.listeners):
                try:
                    listener(entry)
                except Exception:
                    log.exception("an audit listener failed")

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            for handler in self._writer.handlers:
                handler.close()
            self._writer.handlers.clear()
