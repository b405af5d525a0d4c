"""Why a device property has its value: what last wrote it (a :class:`Cause`) and when.

Every write goes through the :class:`engine.fades.FadeEngine`, so that is where causes are
recorded: each write method takes an optional ``cause``, and an animation (a fade, a timeline)
carries its own in a ``cause`` attribute. Writers build their causes once (a mapping when it is
bound, an action when it is compiled), so recording is a reference store on the hot path; the
English ``detail`` is only formatted when someone asks (the curator studio's inspector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

CauseKind = Literal["mapping", "fade", "timeline", "cue", "preset", "action", "safe", "schedule", "operator", "initial"]
CAUSE_KINDS: tuple[CauseKind, ...] = (
    "mapping",
    "fade",
    "timeline",
    "cue",
    "preset",
    "action",
    "safe",
    "schedule",
    "operator",
    "initial",
)


@dataclass(frozen=True, slots=True, eq=False)
class Cause:
    """What drives a property, and why it has its value now.

    ``kind``: a mapping, a fade, a timeline, a cue, a preset, an action (a rule's or a state's),
    the safe state (PANIC, e-stop, closing time), the opening hours, an operator, or the initial
    value. ``name`` says which one (``controls.wash → wash.brightness``, ``evening/2``). The detail
    is ``explain()`` when given (formatted on read, from live state), else ``text``.
    """

    kind: CauseKind
    name: str
    text: str = ""
    explain: Callable[[], str] | None = field(default=None, repr=False)

    @property
    def detail(self) -> str:
        if self.explain is None:
            return self.text
        try:
            return self.explain()
        except Exception:  # an explanation must never break the inspector; say what we know
            return self.text or f"{self.kind} {self.name}"


class Provenance:
    """The record of one property: its cause, when that cause took it over, when its value last changed.

    One mutable record per property, updated in place, so that the hot path allocates nothing."""

    __slots__ = ("cause", "changed", "since")

    def __init__(self, cause: Cause | None, now: float) -> None:
        self.cause = cause
        self.since = now
        """When ``cause`` took the property over (engine clock)."""
        self.changed = now
        """When the property's value last changed (engine clock)."""

    def record(self, cause: Cause | None, now: float) -> None:
        """``cause`` wrote a new value at ``now``."""
        if cause is not self.cause:
            self.cause = cause
            self.since = now
        self.changed = now

    def claim(self, cause: Cause | None, now: float) -> None:
        """``cause`` took the property over at ``now`` (a timeline's play), its value unchanged yet."""
        if cause is not self.cause:
            self.cause = cause
            self.since = now

    def __repr__(self) -> str:
        return f"Provenance({self.cause!r}, since {self.since:g}, changed {self.changed:g})"


INITIAL = Cause("initial", "start", "its safe value when the show started (nothing has set it since)")


# Whose actions: the show names them so, and the inspector finds them by the same names. -----------------


def state_origin(machine: str, what: str) -> Cause:
    """A state machine's actions: ``what`` is `finale (enter)`, `finale (exit)` or `attract → engaged`."""
    return Cause("action", f"{machine}: {what}", f"state {machine}: {what}")


def rule_origin(index: int, when: str, otherwise: bool = False) -> Cause:
    """Rule ``index`` (from 0): its `do` when ``when`` became true, or its `otherwise` when it became false."""
    said = f"otherwise: {when} is false" if otherwise else f"when {when}"
    return Cause("action", f"rule {index + 1}", f"rule {index + 1} ({said})")


def cue_origin(cue_list: str, cue_id: str, name: str | None = None) -> Cause:
    return Cause("cue", f"{cue_list}/{cue_id}", f"cue {cue_list}/{cue_id}" + (f" ({name})" if name else ""))


OPENING = Cause("schedule", "opening hours", "opening hours: open")
CLOSING = Cause("schedule", "opening hours", "opening hours: closed")
