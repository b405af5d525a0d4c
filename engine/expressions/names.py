"""Resolving names: what a name in an expression means (:class:`NameInfo`), who says so (:class:`Resolver`), and
the usual resolver, over the signals of a :class:`~engine.signals.SignalStore` (:class:`StoreResolver`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.expressions.values import INF, Fn
from engine.signals import SignalStore


@dataclass(frozen=True, slots=True)
class NameInfo:
    """What a name means: its type and how to read it."""

    type: str
    """``float``, ``int``, ``bool``, ``str``, ``event`` or ``object``."""
    get: Fn
    """Reads the current value (None while there is none)."""
    stale: Callable[[], bool] | None = None
    """Whether the source is offline or has never spoken."""
    since: Callable[[], float] | None = None
    """For events: seconds since the last one (``inf`` if never)."""
    cell: Any = None
    """Optional object whose ``.value`` is ``get()`` and ``.stale`` is ``stale()`` (a Signal): read without a call."""
    key: str | None = None
    """The signal's name in the store (after aliases), listed in :attr:`Expression.names`; default: the name."""
    fields: Mapping[str, str] | None = None
    """For collections: the item fields and their types, so misspelt fields are compile errors."""


class Resolver(Protocol):
    """Tells the compiler what names mean."""

    def resolve(self, name: str) -> NameInfo | None:
        """The meaning of ``name``, or None if there is no such name."""

    def names(self) -> Iterable[str]:
        """Every known name, for did-you-mean hints."""


class StoreResolver:
    """Names are signals of a :class:`SignalStore`, captured once at compile time.

    ``event_times(name)`` gives an event's last time (default: the signal's
    timestamp); ``now`` must be the clock the store stamps with. ``aliases``
    maps a prefix to another (``{"visitors": "body"}`` makes ``visitors.count``
    read ``body.count``). ``item_fields`` gives, per collection signal, its
    items' fields and types, so that tests in ``any``/``all``/``count`` are checked.
    """

    def __init__(
        self,
        store: SignalStore,
        event_times: Callable[[str], float | None] | None = None,
        now: Callable[[], float] = time.monotonic,
        aliases: Mapping[str, str] | None = None,
        item_fields: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.store = store
        self.event_times = event_times
        self.now = now
        # Longest prefix first, so a more specific alias wins.
        self.aliases = sorted((aliases or {}).items(), key=lambda item: -len(item[0]))
        self.item_fields = dict(item_fields or {})

    def canonical(self, name: str) -> str:
        """The store name ``name`` stands for (after aliases)."""
        if self._declared(name):
            return name
        for alias, target in self.aliases:
            if name == alias or name.startswith(alias + "."):
                return target + name[len(alias) :]
        return name

    def _declared(self, name: str) -> bool:
        try:
            self.store.get(name)
        except KeyError:
            return False
        return True

    def resolve(self, name: str) -> NameInfo | None:
        key = self.canonical(name)
        if not self._declared(key):
            return None
        signal = self.store.get(key)
        since = self._since(key, signal) if signal.type == "event" else None
        return NameInfo(
            type=signal.type,
            get=lambda: signal.value,
            stale=lambda: signal.stale,
            since=since,
            cell=signal,
            key=key,
            fields=self.item_fields.get(key),
        )

    def names(self) -> list[str]:
        names = self.store.names()
        extra = [
            alias + name[len(target) :]
            for alias, target in self.aliases
            for name in names
            if name.startswith(target + ".")
        ]
        return names + extra

    def _since(self, key: str, signal: Any) -> Callable[[], float]:
        now, event_times = self.now, self.event_times

        def since() -> float:
            last = signal.timestamp if event_times is None else event_times(key)
            return INF if last is None else now() - last

        return since
