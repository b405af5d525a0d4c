"""Clock offsets between the nodes of a show network, measured over the broker as NTP does over UDP: a ping
carries the sender's wall time ``t0``, the answer the peer's ``t1``; arriving at ``t2``, the peer's clock reads
``t1 - (t0 + t2) / 2`` ahead of ours, within half the round trip. The sample with the shortest round trip of the
last few is kept: the broker's queueing only ever lengthens a trip."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SAMPLES = 16


@dataclass
class OffsetEstimate:
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    """(round trip, offset) in seconds."""

    def add(self, t0: float, t1: float, t2: float) -> None:
        if t2 >= t0:
            self.samples.append((t2 - t0, t1 - (t0 + t2) / 2))

    @property
    def best(self) -> tuple[float, float] | None:
        return min(self.samples) if self.samples else None


class ClockSync:
    """Offsets to every peer that answered, by name."""

    def __init__(self) -> None:
        self.estimates: dict[str, OffsetEstimate] = {}

    def answered(self, peer: str, t0: float, t1: float, t2: float) -> None:
        self.estimates.setdefault(peer, OffsetEstimate()).add(t0, t1, t2)

    def offsets(self) -> dict[str, float]:
        return {peer: best[1] for peer, e in self.estimates.items() if (best := e.best) is not None}

    def round_trips(self) -> dict[str, float]:
        return {peer: best[0] for peer, e in self.estimates.items() if (best := e.best) is not None}

    def forget(self, peer: str) -> None:
        self.estimates.pop(peer, None)
