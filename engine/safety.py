"""Safety for motion devices (winches, turntables, motors).

Motion devices start disarmed and take no motion command until armed (by the
exhibit or an operator). An e-stop latches: it disarms every motion device and
blocks every motion command until a deliberate reset; a reset re-arms nothing
and resumes no cue by itself. Commands that only bring a device to its safe state
(stop, disable) always pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("engine.safety")

Setter = Callable[[Mapping[str, Any]], None]


class Safety:
    def __init__(self) -> None:
        self.latched = False
        self.latched_by = ""
        """What latched the e-stop: an input's signal, or the operator who pressed it."""
        self.armed: set[str] = set()
        self.motion: dict[str, Mapping[str, Any]] = {}
        """Motion devices and their safe states."""
        self.blocked = 0
        self._said: set[str] = set()
        self.listeners: list[Callable[[], None]] = []

    def add_motion(self, name: str, safe_state: Mapping[str, Any]) -> None:
        self.motion[name] = dict(safe_state)

    def gate(self, name: str, setter: Setter) -> Setter:
        """``setter`` for ``name``, passing motion commands only while it may move."""
        if name not in self.motion:
            return setter
        safe = self.motion[name]

        def guarded(values: Mapping[str, Any]) -> None:
            if self.may_move(name) or all(safe.get(key) == value for key, value in values.items()):
                setter(values)
                return
            self.blocked += 1
            if name not in self._said:
                self._said.add(name)
                why = "the e-stop is latched" if self.latched else "it is not armed"
                log.warning("motion command to %s blocked: %s (%s)", name, why, dict(values))

        return guarded

    def gate_message(self, name: str, send: Callable[[str, list[Any]], None]) -> Callable[[str, list[Any]], None]:
        """``send`` for whole messages to ``name`` (`{osc: ...}` actions): a motion device takes none
        unless it may move, since a message cannot be told apart from a motion command."""
        if name not in self.motion:
            return send

        def guarded(address: str, args: list[Any]) -> None:
            if self.may_move(name):
                send(address, args)
                return
            self.blocked += 1
            log.warning("message %s to %s blocked: it may not move now", address, name)

        return guarded

    def may_move(self, name: str) -> bool:
        return not self.latched and name in self.armed

    def arm(self, name: str) -> bool:
        """Allow ``name`` to move; refused while the e-stop is latched."""
        if name not in self.motion:
            raise KeyError(f"`{name}` is not a motion device")
        if self.latched:
            log.warning("arming %s refused: the e-stop is latched; reset it first", name)
            return False
        self.armed.add(name)
        self._said.discard(name)
        log.info("%s armed", name)
        self._changed()
        return True

    def disarm(self, name: str) -> None:
        self.armed.discard(name)
        self._changed()

    def estop(self, by: str = "") -> None:
        """Latch: every motion device is disarmed and stays still until :meth:`reset`. ``by`` says what
        latched it (the first cause is kept until the reset)."""
        if not self.latched:
            log.warning("E-STOP: motion is inhibited until a deliberate reset%s", f" (by {by})" if by else "")
            self.latched_by = by
        self.latched = True
        self.armed.clear()
        self._said.clear()
        self._changed()

    def reset(self) -> None:
        """Release the latch. Nothing is re-armed and no cue resumes by itself."""
        if self.latched:
            log.info("e-stop reset: motion devices stay disarmed until armed again")
        self.latched = False
        self.latched_by = ""
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()
