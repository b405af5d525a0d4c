"""The crowd as signals: every phone's taps, votes, sliders, motion and language, folded ``rate`` times a second
into a few steady numbers (pure: no sockets, no clock of its own).

The audience server (:mod:`sensors.audience.server`) feeds it what phones send, after checking it; the simulated
crowd (:mod:`sensors.audience.simulated`) feeds it invented phones. :meth:`Crowd.frame` is called once a tick and
returns every signal of the sensor (short names, as :meth:`AudienceSensorConfig.signal_types` lists them).

Rules, chosen to be predictable for a curator:

* A phone is a session (a tab that reconnects is the same phone); it counts while it has a connection.
* Taps are counted exactly (``taps``); ``taps_per_s`` is the count of the last second's ticks.
* A vote takes one ballot per phone per round; opening a closed vote starts a new round with no ballots; shares are
  of the round's ballots, and a phone that leaves keeps its ballot. The leader is the choice with most ballots
  (on a tie, the one declared first); empty before any.
* A slider's value counts while its phone is connected; a phone's motion counts for a second after it was sent.
* While paused, nothing a phone sends counts (it is dropped and counted as such).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sensors.audience.model import AudienceSensorConfig, SliderOffer, VoteOffer
from sensors.audience.protocol import LANGUAGES

MOTION_FRESH = 1.0
"""Seconds a phone's motion energy counts after it was sent."""


@dataclass
class Phone:
    connections: int = 0
    language: str | None = None
    sliders: dict[str, float] = field(default_factory=dict)
    motion: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Offer -> (energy, time sent)."""


@dataclass
class VoteRound:
    open: bool
    results: bool
    round: int = 1
    ballots: dict[str, str] = field(default_factory=dict)
    """Session -> choice, this round."""


class Crowd:
    def __init__(self, config: AudienceSensorConfig) -> None:
        self.config = config
        self.phones: dict[str, Phone] = {}
        self.paused = False
        self.votes = {name: VoteRound(offer.open, offer.results) for name, offer in config.of_type("vote").items()}
        self.taps = dict.fromkeys(config.of_type("tap", "button"), 0)
        ticks = max(1, round(config.rate))
        self._tick_taps = dict.fromkeys(self.taps, 0)
        self._window: dict[str, deque[int]] = {name: deque([0] * ticks, maxlen=ticks) for name in self.taps}
        self.dropped = 0
        """Messages that did not count: paused, closed votes, second ballots, unknown offers or values."""

    # --- phones ----------------------------------------------------------------------------------------

    def join(self, session: str) -> None:
        self.phones.setdefault(session, Phone()).connections += 1

    def leave(self, session: str) -> None:
        phone = self.phones.get(session)
        if phone is None:
            return
        phone.connections -= 1
        if phone.connections <= 0:
            del self.phones[session]  # its ballots stay in their rounds: a vote is cast, not lent

    @property
    def count(self) -> int:
        return len(self.phones)

    # --- what phones send (each returns whether it counted) ----------------------------------------------

    def _phone(self, session: str) -> Phone | None:
        """The phone, if what it sends may count now (the caller counts it as dropped if not)."""
        return None if self.paused else self.phones.get(session)

    def tap(self, session: str, offer: str) -> bool:
        if offer not in self.taps or self._phone(session) is None:
            return self._drop()
        self.taps[offer] += 1
        self._tick_taps[offer] += 1
        return True

    def vote(self, session: str, offer: str, choice: str) -> tuple[bool, str | None]:
        """(counted, why not: ``closed``, ``again`` or ``invalid``)."""
        spec = self.config.offers.get(offer)
        if not isinstance(spec, VoteOffer) or choice not in spec.choices or self._phone(session) is None:
            self._drop()
            return False, "closed" if self.paused else "invalid"
        vote = self.votes[offer]
        if not vote.open:
            self._drop()
            return False, "closed"
        if session in vote.ballots:
            self._drop()
            return False, "again"
        vote.ballots[session] = choice
        return True, None

    def ballot(self, session: str, offer: str) -> str | None:
        """The choice ``session`` made in this round of ``offer``."""
        vote = self.votes.get(offer)
        return vote.ballots.get(session) if vote is not None else None

    def slide(self, session: str, offer: str, value: float) -> bool:
        spec = self.config.offers.get(offer)
        if not isinstance(spec, SliderOffer) or not math.isfinite(value):
            return self._drop()
        low, high = spec.range
        if not low <= value <= high or (phone := self._phone(session)) is None:
            return self._drop()
        phone.sliders[offer] = value
        return True

    def motion(self, session: str, offer: str, energy: float, now: float) -> bool:
        spec = self.config.offers.get(offer)
        if spec is None or spec.type != "motion" or not (math.isfinite(energy) and 0 <= energy <= 1):
            return self._drop()
        if (phone := self._phone(session)) is None:
            return self._drop()
        phone.motion[offer] = (energy, now)
        return True

    def language(self, session: str, code: str) -> bool:
        if code not in LANGUAGES or (phone := self._phone(session)) is None:
            return self._drop()
        phone.language = code
        return True

    def _drop(self) -> bool:
        self.dropped += 1
        return False

    # --- what the show sets --------------------------------------------------------------------------------

    def set(self, values: dict[str, Any]) -> None:
        for prop, value in values.items():
            if prop == "paused":
                self.paused = bool(value)
                continue
            offer, _, what = prop.partition(".")
            vote = self.votes.get(offer)
            if vote is None:
                continue
            if what == "open":
                if bool(value) and not vote.open:
                    vote.round += 1
                    vote.ballots.clear()
                vote.open = bool(value)
            elif what == "results":
                vote.results = bool(value)

    # --- signals -------------------------------------------------------------------------------------------

    def frame(self, now: float) -> dict[str, Any]:
        """Every signal now; call once a tick (the taps of the tick go into the last second's window)."""
        signals: dict[str, Any] = {"count": self.count}
        for offer, total in self.taps.items():
            self._window[offer].append(self._tick_taps[offer])
            self._tick_taps[offer] = 0
            signals[f"{offer}.taps_per_s"] = float(sum(self._window[offer]))
            signals[f"{offer}.taps"] = total
        for offer, vote in self.votes.items():
            signals |= self._vote_signals(offer, vote)
        for offer in self.config.of_type("slider"):
            values = [phone.sliders[offer] for phone in self.phones.values() if offer in phone.sliders]
            signals |= _spread(offer, values)
        for offer in self.config.of_type("motion"):
            sent = [phone.motion[offer] for phone in self.phones.values() if offer in phone.motion]
            fresh = [energy for energy, at in sent if now - at <= MOTION_FRESH]
            signals[f"{offer}.energy"] = sum(fresh) / len(fresh) if fresh else 0.0
            signals[f"{offer}.count"] = len(fresh)
        spoken = [phone.language for phone in self.phones.values() if phone.language is not None]
        shares = {code: spoken.count(code) / len(spoken) if spoken else 0.0 for code in LANGUAGES}
        signals |= {f"language.{code}": share for code, share in shares.items()}
        signals["language.leader"] = max(LANGUAGES, key=lambda code: shares[code]) if spoken else ""
        return signals

    def _vote_signals(self, offer: str, vote: VoteRound) -> dict[str, Any]:
        choices = list(self.config.offers[offer].choices)  # type: ignore[union-attr]
        counts = dict.fromkeys(choices, 0)
        for choice in vote.ballots.values():
            counts[choice] += 1
        total = len(vote.ballots)
        signals: dict[str, Any] = {f"{offer}.{choice}": n / total if total else 0.0 for choice, n in counts.items()}
        leader = max(choices, key=lambda choice: counts[choice]) if total else ""  # max keeps the first of a tie
        return signals | {f"{offer}.votes": total, f"{offer}.leader": leader, f"{offer}.voting": vote.open}

    def shares(self, offer: str) -> dict[str, float]:
        """This round's shares of ``offer``, for phones when its results are shown."""
        vote = self.votes[offer]
        signals = self._vote_signals(offer, vote)
        return {choice: signals[f"{offer}.{choice}"] for choice in self.config.offers[offer].choices}  # type: ignore[union-attr]

    def state(self) -> dict[str, Any]:
        """What phones are told: votes open, results shown, paused, phones here (the ``state`` message)."""
        return {
            "t": "state",
            "open": {offer: vote.open for offer, vote in self.votes.items()},
            "results": {offer: self.shares(offer) for offer, vote in self.votes.items() if vote.results},
            "paused": self.paused,
            "count": self.count,
        }


def _spread(offer: str, values: list[float]) -> dict[str, Any]:
    if not values:
        return {f"{offer}.mean": 0.0, f"{offer}.spread": 0.0, f"{offer}.count": 0}
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {f"{offer}.mean": mean, f"{offer}.spread": spread, f"{offer}.count": len(values)}
