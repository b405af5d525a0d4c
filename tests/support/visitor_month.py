"""A month of simulated visitors at the flagship, folded by the real analytics code: pictures for the docs.

Visitors arrive through the opening hours (Asia/Shanghai, busier in the afternoon and on the late Friday and
Saturday evenings), most stop, a few pass by; those who stop stand on the bridge, press the plinth's button or raise
their hands, and the button plays the finale. Each second of a day goes through :class:`Measures` as the pose
pipeline would feed it (a frame of who is in view), so the stored records are what a real month would leave, in a
database marked simulated. Deterministic (seeded).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from engine.analytics.calendar import Calendar
from engine.analytics.folding import Measures, Seen
from engine.analytics.settings import AnalyticsSettings
from engine.analytics.store import AnalyticsStore, database_path

EXHIBIT = "canal-lanterns"
SENSOR = "body"
CALENDAR = Calendar("Asia/Shanghai")
HOURS = {0: None, 1: (9, 17), 2: (9, 17), 3: (9, 17), 4: (9, 21), 5: (9, 21), 6: (9, 17)}
"""Monday closed; the flagship's weekly hours (Monday is 0)."""
SETTINGS = AnalyticsSettings(
    interactions=["plinth.button", "body.raise_both_hands", "body.wave"], timezone=CALENDAR.zone
)


@dataclass
class _Visitor:
    id: int
    arrives: int
    leaves: int
    floor: tuple[float, float]
    presses: int | None = None
    raises: int | None = None
    zones: frozenset[str] = field(default_factory=frozenset)


def _rate(hour: float, weekday: int) -> float:
    """Visitors arriving per hour: a morning rise, an afternoon peak, weekends busier."""
    base = 18 + 22 * math.exp(-(((hour - 15.0) / 2.2) ** 2)) + 8 * math.exp(-(((hour - 10.5) / 1.0) ** 2))
    return base * (1.6 if weekday >= 5 else 1.0)


def _visitors(day: dt.date, rng: random.Random, first_id: int) -> list[_Visitor]:
    hours = HOURS[day.weekday()]
    if hours is None:
        return []
    opening = CALENDAR.midnight(day) + hours[0] * 3600
    found: list[_Visitor] = []
    t = float(opening)
    closing = CALENDAR.midnight(day) + hours[1] * 3600
    while True:
        hour = CALENDAR.hour_of_day(int(t)) + (t % 3600) / 3600
        t += rng.expovariate(_rate(hour, day.weekday()) / 3600)
        if t >= closing - 60:
            break
        stops = rng.random() < 0.62
        stay = rng.lognormvariate(math.log(28), 0.8) if stops else rng.uniform(0.4, 1.8)
        arrives = int(t)
        leaves = min(arrives + max(1, round(stay)), closing)
        x, y = rng.gauss(3.0, 1.1), rng.uniform(0.6, 3.6) if stops else rng.uniform(3.0, 4.0)
        visitor = _Visitor(first_id + len(found), arrives, leaves, (x, y))
        visitor.zones = frozenset({"bridge"}) if stops and 1.0 < x < 5.0 and y < 3.0 else frozenset()
        if stops and rng.random() < 0.35:
            visitor.presses = arrives + rng.randint(1, max(1, leaves - arrives - 1))
        if stops and rng.random() < 0.25:
            visitor.raises = arrives + rng.randint(1, max(1, leaves - arrives - 1))
        found.append(visitor)
    return found


def write_month(state_dir: Path, last: dt.date, days: int = 30, seed: int = 17) -> Path:
    """``days`` days up to ``last`` into ``state_dir``'s simulated-run database; returns its path."""
    rng = random.Random(seed)
    store = AnalyticsStore(database_path(state_dir, simulated=True), simulated=True)
    measures = Measures(EXHIBIT, SETTINGS, clock_wall=lambda: 0.0)
    next_id = 1
    try:
        for n in range(days):
            day = last - dt.timedelta(days=days - 1 - n)
            visitors = _visitors(day, rng, next_id)
            next_id += len(visitors)
            if not visitors:
                continue
            measures.state_entered("show", "attract", visitors[0].arrives - 60)
            finale_until = 0
            start, end = visitors[0].arrives, max(v.leaves for v in visitors) + 1
            for t in range(start, end + 1):
                present = [v for v in visitors if v.arrives <= t <= v.leaves]
                for v in present:
                    if v.presses == t:
                        measures.interaction("plinth.button", t)
                        if t >= finale_until:  # the button plays the finale, 20 s
                            measures.state_entered("show", "finale", t)
                            measures.cue_started("main", "finale", t)
                            finale_until = t + 20
                    if v.raises == t:
                        measures.interaction("body.raise_both_hands", t)
                if finale_until and t == finale_until:
                    measures.cue_ended("main", "finale", t)
                    measures.state_entered("show", "attract", t)
                    finale_until = 0
                measures.frame(SENSOR, t, [Seen(v.id, v.floor, v.zones) for v in present])
                for v in present:
                    if v.leaves == t:
                        measures.left(SENSOR, v.id, t + 1.5)
                if t % 3600 == 0:
                    store.add(measures.flush(t))
            measures.state_ended("show", end)
            store.add(measures.flush(end + 120))
    finally:
        store.close()
    return database_path(state_dir, simulated=True)
