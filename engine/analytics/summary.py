"""The figures a report shows, computed from stored (or published) totals: pure functions, exact arithmetic.

Input is hour records (:class:`~engine.analytics.records.BinRecord`, as :meth:`AnalyticsStore.totals` reads them
or as :func:`~engine.analytics.privacy.suppress` keeps them) and, optionally, *day bins* (the per-visitor measures
of a day's small hours merged by k-anonymity, ``start`` = the day's start). Days and hours of the day are the
exhibit's own (:class:`~engine.analytics.calendar.Calendar`).

- **visitors**, **stopped**: summed over keys (pose sensors). **Attraction power** = stopped / visitors.
- **Holding time** quantiles (nearest rank, over the ``holding_s`` histogram): the bucket holding the visitor of
  rank ``ceil(q * n)``, given as a :class:`Bucket` (``[low, high)`` seconds; ``high`` None for ``600+``). Buckets
  merged by k-anonymity (``a-b``, ``a+``) are read as the ranges they name.
- **Occupancy**: mean = ``occupancy_s`` / the seconds of the period (3600 for an hour, 86 400 for a day, the
  number of days x 3600 for an hour of the day over a period); peak = the maximum of ``occupancy_peak``.
- **Zones**: visitors who stood in the zone, total dwell seconds, and dwell per visitor (total / zone visitors).
- **Interactions**, **engagement per state and per cue**, **heatmap**: summed per key.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from engine.analytics.calendar import UTC_CALENDAR, Calendar
from engine.analytics.records import HOUR, MAXIMA, BinRecord

DAY: Final = 86_400


@dataclass(frozen=True, slots=True)
class Bucket:
    """A holding-time bucket: ``[low, high)`` seconds, ``high`` None for "``low`` s and more"."""

    low: int
    high: int | None

    @classmethod
    def parse(cls, key: str) -> Bucket:
        """``12`` (1 s), ``600+`` or ``30+`` (open), ``12-19`` (merged: buckets 12 to 19, i.e. [12, 20) s)."""
        if key.endswith("+"):
            return cls(int(key[:-1]), None)
        low, _, high = key.partition("-")
        return cls(int(low), int(high or low) + 1)

    def __str__(self) -> str:
        if self.high is None:
            return f"{self.low}+ s"
        if self.high == self.low + 1:
            return f"{self.low} s"
        return f"{self.low}–{self.high} s"


@dataclass(frozen=True, slots=True)
class Figures:
    """Every figure of one period (an hour, a day, an hour of the day over several days, or a whole report)."""

    seconds: int
    """The length of the period, for the mean occupancy."""
    visitors: float = 0.0
    stopped: float = 0.0
    holding: dict[str, float] = field(default_factory=dict)
    occupancy_s: float = 0.0
    occupancy_peak: float | None = None
    zone_visitors: dict[str, float] = field(default_factory=dict)
    zone_dwell_s: dict[str, float] = field(default_factory=dict)
    interactions: dict[str, float] = field(default_factory=dict)
    engaged_state: dict[str, float] = field(default_factory=dict)
    engaged_cue: dict[str, float] = field(default_factory=dict)
    heatmap: dict[str, float] = field(default_factory=dict)
    heatmap_visitors: dict[str, float] = field(default_factory=dict)

    @property
    def attraction(self) -> float | None:
        """Share of visitors who stopped; None without visitors."""
        return self.stopped / self.visitors if self.visitors else None

    @property
    def occupancy_mean(self) -> float:
        return self.occupancy_s / self.seconds

    @property
    def holding_median(self) -> Bucket | None:
        return quantile(self.holding, 0.5)

    @property
    def holding_p90(self) -> Bucket | None:
        return quantile(self.holding, 0.9)

    def dwell_per_visitor(self, zone: str) -> float | None:
        visitors = self.zone_visitors.get(zone, 0.0)
        return self.zone_dwell_s.get(zone, 0.0) / visitors if visitors else None


_KEYED: Final = (
    "zone_visitors",
    "zone_dwell_s",
    "interactions",
    "engaged_state",
    "engaged_cue",
    "heatmap",
    "heatmap_visitors",
)


def figures(records: Iterable[BinRecord], seconds: int) -> Figures:
    """The figures of ``records`` taken together as one period of ``seconds``."""
    totals: dict[str, float] = defaultdict(float)
    keyed: dict[str, dict[str, float]] = {name: defaultdict(float) for name in (*_KEYED, "holding_s")}
    peak: float | None = None
    for r in records:
        if r.measure in MAXIMA:
            peak = r.value if peak is None else max(peak, r.value)
        elif r.measure in keyed:
            keyed[r.measure][r.key] += r.value
        else:
            totals[r.measure] += r.value
    return Figures(
        seconds=seconds,
        visitors=totals["visitors"],
        stopped=totals["stopped"],
        holding=dict(keyed["holding_s"]),
        occupancy_s=totals["occupancy_s"],
        occupancy_peak=peak,
        **{name: dict(keyed[name]) for name in _KEYED},
    )


def quantile(histogram: dict[str, float], q: float) -> Bucket | None:
    """The bucket of the visitor of rank ``ceil(q * n)`` (nearest rank, at least 1); None for no visitors."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile {q} outside (0, 1]")
    buckets = sorted(
        ((Bucket.parse(key), count) for key, count in histogram.items() if count > 0), key=lambda b: b[0].low
    )
    n = sum(count for _, count in buckets)
    if not n:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0.0
    for bucket, count in buckets:
        seen += count
        if seen >= rank:
            return bucket
    return buckets[-1][0]  # unreachable: float sums of counts are exact


@dataclass(frozen=True, slots=True)
class Summary:
    """One exhibit's figures over a period."""

    exhibit: str
    days: int
    """How many days the period spans (for the hour-of-day means)."""
    total: Figures
    per_day: dict[int, Figures]
    """The local day's start (:meth:`Calendar.midnight`) -> the day's figures (its hours and its day bin)."""
    per_hour: dict[int, Figures]
    """Hour start -> that hour's figures (hour records only: a day bin's small hours are not told apart)."""
    hour_of_day: dict[int, Figures]
    """0..23 (local) -> that hour over every day of the period (hour records only)."""


def summarize(
    hours: Iterable[BinRecord], day_bins: Iterable[BinRecord] = (), *, days: int = 1, calendar: Calendar = UTC_CALENDAR
) -> dict[str, Summary]:
    """Per exhibit: the figures of the period, of each day, of each hour and of each hour of the day.
    ``days`` is the length of the period in days (at least 1); days and hours of the day are ``calendar``'s."""
    if days < 1:
        raise ValueError(f"a period of {days} days")
    by_hour: dict[str, dict[int, list[BinRecord]]] = defaultdict(lambda: defaultdict(list))
    by_day: dict[str, dict[int, list[BinRecord]]] = defaultdict(lambda: defaultdict(list))
    by_hour_of_day: dict[str, dict[int, list[BinRecord]]] = defaultdict(lambda: defaultdict(list))
    everything: dict[str, list[BinRecord]] = defaultdict(list)
    for r in hours:
        by_hour[r.exhibit][r.start].append(r)
        by_day[r.exhibit][calendar.day_of(r.start)].append(r)
        by_hour_of_day[r.exhibit][calendar.hour_of_day(r.start)].append(r)
        everything[r.exhibit].append(r)
    for r in day_bins:
        by_day[r.exhibit][calendar.day_of(r.start)].append(r)
        everything[r.exhibit].append(r)
    return {
        exhibit: Summary(
            exhibit=exhibit,
            days=days,
            total=figures(records, days * DAY),
            per_day={start: figures(rs, calendar.day_length(start)) for start, rs in sorted(by_day[exhibit].items())},
            per_hour={start: figures(rs, HOUR) for start, rs in sorted(by_hour[exhibit].items())},
            hour_of_day={h: figures(rs, days * HOUR) for h, rs in sorted(by_hour_of_day[exhibit].items())},
        )
        for exhibit, records in sorted(everything.items())
    }


@dataclass(frozen=True, slots=True)
class Grid:
    """The heatmap as a grid: ``cells[row][column]`` visitor-seconds, rows from ``row0``, columns from ``column0``;
    ``other`` holds the cells k-anonymity merged (no position)."""

    column0: int
    row0: int
    cells: list[list[float]]
    other: float = 0.0

    @property
    def peak(self) -> float:
        return max((v for row in self.cells for v in row), default=0.0)


def heatmap_grid(heatmap: dict[str, float]) -> Grid:
    """``column,row`` keys (``other`` apart) laid out on the smallest grid that holds them all."""
    positions: dict[tuple[int, int], float] = {}
    other = 0.0
    for key, value in heatmap.items():
        if "," not in key:
            other += value
            continue
        column, row = (int(part) for part in key.split(","))
        positions[column, row] = positions.get((column, row), 0.0) + value
    if not positions:
        return Grid(0, 0, [], other)
    columns = [c for c, _ in positions]
    rows = [r for _, r in positions]
    column0, row0 = min(columns), min(rows)
    width, height = max(columns) - column0 + 1, max(rows) - row0 + 1
    cells = [[positions.get((column0 + c, row0 + r), 0.0) for c in range(width)] for r in range(height)]
    return Grid(column0, row0, cells, other)
