"""Which node of a show network drives the devices: never more than one.

A node that drives holds a *claim*: an epoch (a number that only grows) and its node name, kept retained on the
broker and repeated in its heartbeat and in every device command it sends. A node that hears a claim that
outranks its own (a higher epoch; on a tie, the lower node name: deterministic everywhere) stops its output at
once. A backup takes over with a new epoch when the driver's heartbeat has been silent for ``takeover_after``, or
when an operator says so. The MQTT side (topics, the heartbeat, the barrier after a reconnect) is
``devices/site``'s; this module only decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("engine.authority")

NodeRole = Literal["primary", "backup"]
TAKEOVER_AFTER = 3.0


@dataclass(frozen=True)
class Claim:
    epoch: int
    node: str

    def outranks(self, other: Claim | None) -> bool:
        if other is None:
            return True
        return self.epoch > other.epoch or (self.epoch == other.epoch and self.node < other.node)


class Authority:
    """One node's view of who drives, and whether it may: the output gate of a node with a role."""

    def __init__(self, node: str, role: NodeRole, takeover_after: float = TAKEOVER_AFTER) -> None:
        self.node = node
        self.role = role
        self.takeover_after = takeover_after
        self.holder: Claim | None = None
        """The highest claim heard (ours included)."""
        self.driving = False
        self.ready = False
        """True once the broker's retained claim has been read since the last (re)connection: until then a node
        cannot know whether another took over while it was away, and sends nothing."""
        self.heard_at: float | None = None
        """When (monotonic seconds) the holder's claim was last heard, lease or heartbeat."""
        self.takeovers = 0
        self.yielded = 0
        self.followed = False
        """Whether another node's claim has been heard since this process started: then this node's devices are
        another's to reset, and a takeover carries the show on without sending them their safe state first."""
        self.listeners: list[Callable[[], None]] = []

    @property
    def epoch(self) -> int:
        return self.holder.epoch if self.holder else 0

    def may_send(self) -> bool:
        return self.driving and self.ready

    def heard(self, claim: Claim, now: float) -> None:
        """A claim from the broker (the retained lease, a heartbeat): the highest one is the holder; one that
        outranks ours stops our output at once."""
        if self.holder is not None and not claim.outranks(self.holder) and claim != self.holder:
            return  # an older claim (a late heartbeat of a node that has yielded): ignored
        self.holder = claim
        self.heard_at = now
        if claim.node != self.node:
            self.followed = True
        if self.driving and claim.node != self.node:
            self.driving = False
            self.yielded += 1
            log.warning(
                "输出已停止：节点 %s 已接管 / output stopped: node %s holds epoch %d, above ours; this node tracks it",
                claim.node,
                claim.node,
                claim.epoch,
            )
            self._changed()

    def lost_broker(self) -> None:
        """Our connection dropped: what was read before may be stale."""
        self.ready = False
        self._changed()

    def synced(self, now: float) -> None:
        """The retained claim (if any) has been read after a (re)connection."""
        self.ready = True
        self.heard_at = now  # a grace of takeover_after for the holder's heartbeat to reach us
        self._changed()

    def due(self, now: float) -> bool:
        """Whether this node should claim now: it is in sync with the broker, does not drive, and either nobody
        holds a claim (a primary at once, a backup after ``takeover_after``), the claim is its own from before a
        restart, or the holder has been silent for ``takeover_after``."""
        if not self.ready or self.driving:
            return False
        if self.holder is None:
            return self.role == "primary" or self._silent(now)
        if self.holder.node == self.node:
            return True
        return self._silent(now)

    def _silent(self, now: float) -> bool:
        return self.heard_at is None or now - self.heard_at > self.takeover_after

    def take_over(self, now: float, why: str) -> Claim:
        """Claim the next epoch and drive."""
        claim = Claim(self.epoch + 1, self.node)
        self.holder = claim
        self.heard_at = now
        self.driving = True
        self.takeovers += 1
        log.warning("本节点接管输出 / node %s drives the devices now (epoch %d): %s", self.node, claim.epoch, why)
        self._changed()
        return claim

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()


@dataclass
class SiteView:
    """What this node knows of the show network, for the console and ``exhibit site``: the nodes heard (their
    retained announcements), the clock offsets measured to each, and this node's own standing."""

    prefix: str
    node: str
    authority: Authority | None = None
    nodes: dict[str, dict[str, object]] = field(default_factory=dict)
    """Each node's latest announcement, by name (this one's included)."""
    offsets: dict[str, float] = field(default_factory=dict)
    """Seconds to add to this node's wall clock to read each peer's (the best of the recent round trips)."""
    reference: str = ""
    """The node whose clock is site time: the first online node by name."""
    file_hash: str = ""
    analytics: dict[str, dict[str, object]] = field(default_factory=dict)
    """Each exhibit's last 24 hours of visitor figures, as its retained ``analytics/today`` says them."""
    send_cue: Callable[[list[str], str | None, str | None, float], dict[str, object]] | None = None
    """Sends a synced GO to nodes of the site (set by the site service while connected)."""

    def site_offset(self) -> float:
        """Seconds to add to this node's wall clock to read site time."""
        return 0.0 if self.reference in ("", self.node) else self.offsets.get(self.reference, 0.0)
