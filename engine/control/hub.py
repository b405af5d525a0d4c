"""The event hub: turns the running exhibit into protocol events and hands them to every subscriber
(each console WebSocket, the MQTT state publisher, OSC clients that asked for updates).

State topics are refreshed at ``interval`` and soon after every command (once its device packets have
left), and only what changed is sent. A change of a watched signal costs the control path a version
count and a wake of its watchers; each watcher reads the signal's value when it takes its mail, so it
gets the latest value, never a backlog. Each subscriber has a bounded mailbox: for state topics too the
latest value wins (a slow tablet skips intermediate values, never gets a stale one last); log and audit
lines are kept up to ``stream_limit`` and the ones that did not fit are counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from engine.control.protocol import STREAM_TOPICS, after_output, event, plain, signal_data, state_topics

if TYPE_CHECKING:
    from engine.control.commands import Controller, Reply
    from engine.runtime import Runtime
    from engine.signals import Signal

log = logging.getLogger("engine.control.hub")

FIGURES_EVERY = 1.0
"""Seconds between two sends of a component's health when only its figures changed (a rate, the sounds playing,
the phones' messages a second): some change ten times a second, which no operator reads, and each send costs the
show's loop a publish per subscriber. A change of status or reason goes at once."""
HEALTH_STATE = ("status", "reason", "since", "kind", "in_use")


class Subscription:
    """One subscriber's mailbox. ``topics`` are prefixes (``health/``, ``cuelist/main``); empty: every
    state and stream topic. Signals are only sent when watched (:meth:`EventHub.watch`)."""

    def __init__(self, hub: EventHub, topics: Iterable[str] = (), stream_limit: int = 200) -> None:
        self.hub = hub
        self.topics = tuple(topics)
        self.signals: set[str] = set()
        self._sent: dict[str, int] = {}
        """Watched signals: the version last taken (-1: not yet)."""
        self._latest: dict[str, dict[str, Any]] = {}
        self._stream: deque[dict[str, Any]] = deque(maxlen=stream_limit)
        self.dropped = 0
        self._wake = asyncio.Event()
        self._on_put: Callable[[], None] | None = None
        self.closed = False

    @property
    def on_put(self) -> Callable[[], None] | None:
        """Called whenever an event arrives, instead of waking :meth:`next`: a sender that serves many
        mailboxes on one schedule (the console's) reads them with :meth:`take`."""
        return self._on_put

    @on_put.setter
    def on_put(self, callback: Callable[[], None] | None) -> None:
        self._on_put = callback
        self.hub.forget_wakers()

    @property
    def waker(self) -> Callable[[], None]:
        """What :meth:`poke` calls: mailboxes served by one sender share it, so a signal change wakes it once."""
        return self._on_put if self._on_put is not None else self._wake.set

    def wants(self, topic: str) -> bool:
        if topic.startswith("signal/"):
            return False  # signals are not put: take() reads the watched ones' latest values
        return not self.topics or any(topic.startswith(prefix) for prefix in self.topics)

    def put(self, topic: str, data: Any) -> None:
        if self.closed or not self.wants(topic):
            return
        if topic in STREAM_TOPICS:
            if len(self._stream) == self._stream.maxlen:
                self.dropped += 1
            self._stream.append(event(topic, data))
        else:
            self._latest.pop(topic, None)  # re-insert: events go out in the order of their last change
            self._latest[topic] = event(topic, data)
        self.poke()

    def poke(self) -> None:
        """Something is waiting: wake whoever reads this mailbox."""
        self.waker()

    def _changed_signals(self) -> list[str]:
        versions = self.hub.signal_versions
        return [name for name in self.signals if versions.get(name, 0) != self._sent.get(name)]

    def take(self) -> list[dict[str, Any]]:
        """Every event waiting (none: an empty list), without waiting; watched signals with their value now."""
        changed = self._changed_signals() if self.signals else []
        if not (self._latest or self._stream or changed):
            return []
        events = [*self._stream, *self._latest.values()]
        for name in changed:
            self._sent[name] = self.hub.signal_versions.get(name, 0)
            events.append(self.hub.signal_event(name))
        self._stream.clear()
        self._latest.clear()
        return events

    async def next(self) -> list[dict[str, Any]]:
        """Every event waiting (at least one); waits for one when none is (a mailbox without ``on_put``)."""
        while not (self._latest or self._stream or (self.signals and self._changed_signals())):
            self._wake.clear()
            await self._wake.wait()
        return self.take()

    def close(self) -> None:
        self.closed = True
        self.hub.unsubscribe(self)


def _figures_only(sent: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether a component's health changed in its figures only (its status, reason and since are the same)."""
    return all(sent.get(key) == now.get(key) for key in HEALTH_STATE)


class EventHub:
    def __init__(self, runtime: Runtime, controller: Controller, interval: float = 0.05) -> None:
        self.runtime, self.controller, self.interval = runtime, controller, interval
        self.subscribers: set[Subscription] = set()
        self.state: dict[str, Any] = {}
        """The last state sent, by topic: what a new subscriber gets first."""
        self.log_lines: deque[dict[str, Any]] = deque(maxlen=500)
        self._watchers: dict[str, set[Subscription]] = {}
        self._wakers: dict[str, tuple[Callable[[], None], ...]] = {}
        """Per watched signal, its watchers' distinct wakers: 20 tablets served by the console's one sender
        cost a change one call, in the control path, not 20."""
        self._unwatch: dict[str, Callable[[], None]] = {}
        self.signal_versions: dict[str, int] = {}
        """How many times each watched signal changed: a change costs the control path one count and a
        wake per watcher, never an event per watcher (20 plotting tablets on a 1 kHz fader)."""
        self._signal_events: dict[str, tuple[int, dict[str, Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log_handler: _HubLogHandler | None = None
        self._refresh_soon = False
        self._figures_sent: dict[str, float] = {}
        """When each health topic was last sent, for :data:`FIGURES_EVERY`."""
        self.now: Callable[[], float] = time.monotonic
        controller.listeners.append(self._after_command)
        controller.audit.listeners.append(lambda entry: self.publish("audit", entry))

    # --- subscribers ----------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] = (), stream_limit: int = 200, *, replay: bool = True) -> Subscription:
        """A new mailbox, filled with the current state of its topics (and recent log lines) when ``replay``."""
        sub = Subscription(self, topics, stream_limit)
        self.subscribers.add(sub)
        if replay:
            if not self.state:
                self.refresh()
            for topic, data in self.state.items():
                sub.put(topic, data)
            if sub.wants("log"):
                for line in self.log_lines:
                    sub.put("log", line)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        for name in list(sub.signals):
            self.unwatch(sub, name)

    def watch(self, sub: Subscription, name: str) -> bool:
        """Send ``signal/<name>`` to ``sub`` as it changes (now, too). False if there is no such signal."""
        store = self.runtime.store
        if name not in store or name in sub.signals:
            return name in sub.signals
        sub.signals.add(name)
        sub._sent[name] = -1  # its value now goes out first
        watchers = self._watchers.setdefault(name, set())
        self._wakers.pop(name, None)
        if not watchers:
            self._unwatch[name] = store.subscribe(name, self._on_signal)
        watchers.add(sub)
        sub.poke()
        return True

    def unwatch(self, sub: Subscription, name: str) -> None:
        if name not in sub.signals:
            return
        sub.signals.discard(name)
        sub._sent.pop(name, None)
        watchers = self._watchers[name]
        self._wakers.pop(name, None)
        watchers.discard(sub)
        if not watchers:
            del self._watchers[name]
            self._unwatch.pop(name)()
            self.signal_versions.pop(name, None)
            self._signal_events.pop(name, None)

    def signal_event(self, name: str) -> dict[str, Any]:
        """``signal/<name>`` as it is now: one object per change, shared by every watcher (encoded once)."""
        version = self.signal_versions.get(name, 0)
        cached = self._signal_events.get(name)
        if cached is None or cached[0] != version:
            cached = (version, event(f"signal/{name}", signal_data(self.runtime.store.get(name))))
            self._signal_events[name] = cached
        return cached[1]

    # --- publishing -----------------------------------------------------------------------

    def publish(self, topic: str, data: Any) -> None:
        if topic not in STREAM_TOPICS and not topic.startswith("signal/"):
            self.state[topic] = data
        for sub in list(self.subscribers):
            sub.put(topic, data)

    def refresh(self) -> None:
        """Compute every state topic and send the ones that changed."""
        try:
            now = state_topics(self.runtime, self.controller)
        except Exception:  # the console must never take the show down; say it once per kind
            log.exception("could not read the show state for the console")
            return
        clock = self.now()
        for topic, data in now.items():
            sent = self.state.get(topic)
            if sent == data:
                continue
            if topic.startswith("health/") and sent is not None:
                if _figures_only(sent, data) and clock - self._figures_sent.get(topic, -FIGURES_EVERY) < FIGURES_EVERY:
                    continue  # the latest figures go at the first refresh after FIGURES_EVERY
                self._figures_sent[topic] = clock
            self.publish(topic, data)
        for topic in [t for t in self.state if t not in now]:  # a reload took its subject away
            del self.state[topic]
            for sub in list(self.subscribers):
                sub.put(topic, None)

    def _on_signal(self, signal: Signal) -> None:
        name = signal.name
        self.signal_versions[name] = self.signal_versions.get(name, 0) + 1
        wakers = self._wakers.get(name)
        if wakers is None:
            wakers = self._wakers[name] = tuple(dict.fromkeys(sub.waker for sub in self._watchers.get(name, ())))
        for wake in wakers:
            wake()

    def forget_wakers(self) -> None:
        """A mailbox's waker changed: work them out again at the next change."""
        self._wakers.clear()

    def _after_command(self, name: str, reply: Reply) -> None:
        # What the command sent to the devices goes out first.
        if not self._refresh_soon:
            self._refresh_soon = True
            after_output(self._refresh_now)

    def _refresh_now(self) -> None:
        self._refresh_soon = False
        self.refresh()

    # --- running --------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._log_handler = _HubLogHandler(self)
        logging.getLogger().addHandler(self._log_handler)
        try:
            while True:
                self.refresh()
                await asyncio.sleep(self.interval)
        finally:
            logging.getLogger().removeHandler(self._log_handler)

    def add_log_line(self, line: dict[str, Any]) -> None:
        self.log_lines.append(line)
        self.publish("log", line)


class _HubLogHandler(logging.Handler):
    """Log lines to the console's Log view; from other threads they hop onto the loop."""

    def __init__(self, hub: EventHub) -> None:
        super().__init__(logging.INFO)
        self.hub = hub
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("exhibit.audit"):
            return
        try:
            line = {
                "t": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": plain(record.getMessage()),
            }
        except Exception:
            return
        loop = self.hub._loop
        if threading.get_ident() == self._thread or loop is None:
            self.hub.add_log_line(line)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.hub.add_log_line, line)
