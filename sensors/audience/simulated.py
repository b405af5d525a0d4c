"""A simulated crowd for ``--simulate``: phones that arrive, tap in bursts, vote when a vote opens, drift their
sliders and shake now and then, so a curator can preview a vote-driven scene without a room full of people.

The patterns follow what audiences do: most phones arrive in the first half minute; at any time about a third
are engaged (tapping 2 to 4 times a second, moving), the rest watch; engagement comes and goes every few
seconds; a vote gathers most of its ballots in its first ten seconds, with a favourite; three phones in four show
Chinese. Seeded: a preview looks the same each time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sensors.audience.crowd import Crowd
from sensors.audience.model import AudienceSensorConfig, VoteOffer

ARRIVAL = 30.0
"""Seconds over which the phones arrive."""
ENGAGED = 0.35
"""Share of the phones engaged at a time."""
SWITCH = 4.0
"""Mean seconds a phone stays engaged or idle."""
VOTE_DELAY = 4.0
"""Mean seconds a phone takes to vote once a vote opens."""


@dataclass
class SimPhone:
    session: str
    arrives: float
    language: str
    engaged: bool = False
    joined: bool = False
    sliders: dict[str, float] = field(default_factory=dict)
    votes_at: dict[tuple[str, int], float] = field(default_factory=dict)
    """(vote, round) -> when this phone will vote."""


class SimulatedCrowd:
    def __init__(self, config: AudienceSensorConfig, seed: int = 19) -> None:
        self.config = config
        self.crowd = Crowd(config)
        self.rng = random.Random(seed)
        self.phones = config.simulated_phones
        self.started: float | None = None
        self.members = [
            SimPhone(f"sim-{i:04d}-phone", self.rng.uniform(0, ARRIVAL), "zh" if self.rng.random() < 0.75 else "en")
            for i in range(self.phones)
        ]
        self.messages = 0

    def step(self, now: float, dt: float) -> None:
        """What the crowd does in the ``dt`` seconds up to ``now``."""
        if self.started is None:
            self.started = now
        t = now - self.started
        for phone in self.members:
            if not phone.joined:
                if t >= phone.arrives:
                    phone.joined = True
                    self.crowd.join(phone.session)
                    self.crowd.language(phone.session, phone.language)
                    self.messages += 1
                continue
            if self.rng.random() < dt / SWITCH:  # now and then a phone makes up its mind again
                phone.engaged = self.rng.random() < ENGAGED
            self._act(phone, now, dt)

    def _act(self, phone: SimPhone, now: float, dt: float) -> None:
        rng = self.rng
        for name, offer in self.config.offers.items():
            if offer.type in ("tap", "button") and phone.engaged:
                for _ in range(_poisson(rng, rng.uniform(2.0, 4.0) * dt)):
                    self.crowd.tap(phone.session, name)
                    self.messages += 1
            elif isinstance(offer, VoteOffer):
                self._vote(phone, name, offer, now)
            elif offer.type == "slider" and (phone.engaged or name not in phone.sliders):
                low, high = offer.range
                value = phone.sliders.get(name, rng.uniform(low, high))
                value = min(high, max(low, value + rng.gauss(0, (high - low) * 0.05)))
                phone.sliders[name] = value
                self.crowd.slide(phone.session, name, value)
                self.messages += 1
            elif offer.type == "motion" and phone.engaged and rng.random() < 5 * dt:
                energy = min(1.0, max(0.0, rng.gauss(0.5, 0.2)))
                self.crowd.motion(phone.session, name, energy, now)
                self.messages += 1

    def _vote(self, phone: SimPhone, name: str, offer: VoteOffer, now: float) -> None:
        vote = self.crowd.votes[name]
        if not vote.open or phone.session in vote.ballots:
            return
        key = (name, vote.round)
        when = phone.votes_at.setdefault(key, now + self.rng.expovariate(1 / VOTE_DELAY))
        if now >= when:
            choices = list(offer.choices)
            weights = [2.0 if i == vote.round % len(choices) else 1.0 for i in range(len(choices))]  # a favourite
            choice = self.rng.choices(choices, weights)[0]
            self.crowd.vote(phone.session, name, choice)
            self.messages += 1

    def health(self, dt: float) -> dict[str, float | int]:
        """The figures a real server reports (messages a second from the count since the last call)."""
        rate, self.messages = self.messages / dt if dt > 0 else 0.0, 0
        return {"connections": self.crowd.count, "messages_per_s": rate, "dropped": self.crowd.dropped, "refused": 0}


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count with a small mean (Knuth's method)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
