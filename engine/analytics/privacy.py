"""k-anonymity for what leaves the exhibit (exports, reports for funders, the site's dashboards).

The rule, applied by :func:`suppress` to aggregates (summed first, as :meth:`AnalyticsStore.totals` reads them):

1. **Small hours.** An hour bin (exhibit, start) whose ``visitors`` total is below ``k`` does not publish its
   per-visitor measures (:data:`PER_VISITOR`) on its own. They are merged with the other small hours of the same
   exhibit and local day (:class:`~engine.analytics.calendar.Calendar`) into one *day bin* (``start`` = the
   day's start, listed in :attr:`Suppression.days`, covering only those small hours) when their visitors
   together reach ``k``; otherwise they are dropped, and the hours counted in
   :attr:`Suppression.suppressed_bins`. Event counters that say nothing about a visitor (``interactions``,
   ``occupancy_peak``) are kept per hour. ``zone_dwell_s`` and ``occupancy_s`` count as
   per-visitor: with one visitor they are that visitor's holding time.
2. **Distributions per day.** ``holding_s``, ``heatmap`` and ``heatmap_visitors`` (:data:`DAILY`) are never
   published per hour: every hour's go to its local day's *day bin*, whatever its visitors (a day bin thus holds
   the day's small hours' other measures and the whole day's distributions).
3. **Small cells**, within every bin published (hour or day):
   - ``holding_s``: buckets are walked from the shortest; a bucket below ``k`` is merged with the next ones until
     the group reaches ``k``; a short remainder at the end joins the last group; if the whole histogram stays below
     ``k`` it is dropped. A merged group is keyed ``a-b`` (buckets ``a`` to ``b`` s, i.e. [a, b + 1) s) or ``a+``
     (``a`` s and more, when it holds the ``600+`` bucket); a group of one bucket keeps its key.
   - ``zone_visitors``, ``engaged_state``, ``engaged_cue`` (visitors per key): keys below ``k`` are summed into the
     key ``other``, which is dropped if it stays below ``k``; ``zone_dwell_s`` follows its zone.
   - ``heatmap_visitors`` (visitors per floor cell) as the visitors per key above; ``heatmap`` (visitor-seconds)
     follows its cell, as ``zone_dwell_s`` its zone: a cell with fewer than ``k`` visitors, or none counted (data
     written before ``heatmap_visitors`` existed), joins ``other``.

   Every key that lost its own value (merged or dropped) is counted in :attr:`Suppression.suppressed_cells`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from engine.analytics.calendar import UTC_CALENDAR, Calendar
from engine.analytics.records import MAXIMA, BinRecord

DEFAULT_K: Final = 5
DEFAULT_RETENTION_DAYS: Final = 400
DAY: Final = 86_400
OTHER: Final = "other"

PER_VISITOR: Final = frozenset(
    {
        "visitors",
        "stopped",
        "holding_s",
        "zone_visitors",
        "zone_dwell_s",
        "occupancy_s",
        "engaged_state",
        "engaged_cue",
        "heatmap",
        "heatmap_visitors",
    }
)
"""Measures an hour with fewer than ``k`` visitors does not publish on its own."""

DAILY: Final = frozenset({"holding_s", "heatmap", "heatmap_visitors"})
"""Distributions, published per local day only (every hour of it together, in its day bin): an hour's few visitors
spread over 1 s buckets or floor cells would leave almost every key below k, and a month's median would be a wide
merged range."""

VISITORS_PER_KEY: Final = frozenset({"zone_visitors", "engaged_state", "engaged_cue", "heatmap_visitors"})
FOLLOWS: Final = {"zone_dwell_s": "zone_visitors", "heatmap": "heatmap_visitors"}
"""Measures of seconds whose keys are kept or merged as the visitor count of the same key is."""

_Bin = tuple[str, int]
_Cells = dict[str, dict[str, float]]
"""measure -> key -> value, for one bin."""


@dataclass(frozen=True, slots=True)
class Suppression:
    kept: list[BinRecord] = field(default_factory=list)
    """Hour bins that may be published (sorted by exhibit, start, measure, key)."""
    days: list[BinRecord] = field(default_factory=list)
    """Day bins (``start`` = the local day's start) holding the per-visitor measures of a day's small hours together."""
    suppressed_bins: int = 0
    """Hours whose per-visitor measures were dropped: their day's small hours stayed below ``k`` together."""
    merged_bins: int = 0
    """Hours whose per-visitor measures went into their day bin."""
    suppressed_cells: int = 0
    """Keys that lost their own value: merged into neighbours or ``other``, or dropped."""


def suppress(records: Iterable[BinRecord], k: int = DEFAULT_K, calendar: Calendar = UTC_CALENDAR) -> Suppression:
    """What of ``records`` may be published under ``k``-anonymity (the rule is this module's documentation); small
    hours merge within ``calendar``'s days."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    bins = _combine(records)
    kept: dict[_Bin, _Cells] = {}
    small: dict[_Bin, list[_Cells]] = defaultdict(list)
    spread: dict[_Bin, list[_Cells]] = defaultdict(list)
    suppressed_cells = 0
    for (exhibit, start), every in sorted(bins.items()):
        day = calendar.day_of(start)
        distributions = {m: keys for m, keys in every.items() if m in DAILY}
        if distributions:
            spread[exhibit, day].append(distributions)
        cells = {m: keys for m, keys in every.items() if m not in DAILY}
        if not cells:
            continue
        if sum(cells.get("visitors", {}).values()) >= k:
            kept[exhibit, start] = cells
            continue
        public = {m: keys for m, keys in cells.items() if m not in PER_VISITOR}
        if public:
            kept[exhibit, start] = public
        private = {m: keys for m, keys in cells.items() if m in PER_VISITOR}
        if private:
            small[exhibit, day].append(private)
    days: dict[_Bin, _Cells] = {}
    merged_bins = suppressed_bins = 0
    for whose_day, hours in small.items():
        if sum(v for hour in hours for v in hour.get("visitors", {}).values()) >= k:
            days[whose_day] = _sum_cells(hours)
            merged_bins += len(hours)
        else:
            suppressed_bins += len(hours)
    for whose_day, parts in spread.items():
        days[whose_day] = _sum_cells([days[whose_day], *parts] if whose_day in days else parts)
    result: dict[str, list[BinRecord]] = {"kept": [], "days": []}
    for name, published in (("kept", kept), ("days", days)):
        for (exhibit, start), cells in published.items():
            safe, lost = _suppress_cells(cells, k)
            suppressed_cells += lost
            result[name] += [
                BinRecord(exhibit, start, measure, key, value)
                for measure, keys in safe.items()
                for key, value in keys.items()
            ]
    return Suppression(
        kept=sorted(result["kept"], key=_order),
        days=sorted(result["days"], key=_order),
        suppressed_bins=suppressed_bins,
        merged_bins=merged_bins,
        suppressed_cells=suppressed_cells,
    )


def _order(record: BinRecord) -> tuple[str, int, str, str]:
    return record.exhibit, record.start, record.measure, record.key


def _combine(records: Iterable[BinRecord]) -> dict[_Bin, _Cells]:
    bins: dict[_Bin, _Cells] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        keys = bins[r.exhibit, r.start][r.measure]
        if r.key in keys:
            keys[r.key] = max(keys[r.key], r.value) if r.measure in MAXIMA else keys[r.key] + r.value
        else:
            keys[r.key] = r.value
    return bins


def _sum_cells(hours: list[_Cells]) -> _Cells:
    total: _Cells = defaultdict(lambda: defaultdict(float))
    for cells in hours:  # per-visitor measures only: all of them add up
        for measure, keys in cells.items():
            for key, value in keys.items():
                total[measure][key] += value
    return total


def _suppress_cells(cells: _Cells, k: int) -> tuple[_Cells, int]:
    safe: _Cells = {m: dict(keys) for m, keys in cells.items()}
    lost = 0
    if "holding_s" in safe:
        safe["holding_s"], n = _merge_buckets(safe["holding_s"], k)
        lost += n
    small_keys: dict[str, set[str]] = {}
    for measure in VISITORS_PER_KEY & safe.keys():
        small_keys[measure] = small = {key for key, value in safe[measure].items() if value < k}
        safe[measure], n = _into_other(safe[measure], small, k)
        lost += n
    for measure, counted_by in FOLLOWS.items():
        if measure not in safe:
            continue
        counts = cells.get(counted_by, {})
        small = {key for key in safe[measure] if key in small_keys.get(counted_by, set()) or key not in counts}
        kept_other = OTHER in safe.get(counted_by, {})
        safe[measure], n = _into_other(safe[measure], small, k, keep_other=kept_other)
        lost += n
    return {m: keys for m, keys in safe.items() if keys}, lost


def _into_other(
    keys: dict[str, float], small: set[str], k: int, keep_other: bool | None = None
) -> tuple[dict[str, float], int]:
    """``keys`` with the ``small`` ones summed into ``other`` (kept if it reaches ``k``, or as ``keep_other``
    says), and how many keys lost their own value."""
    if not small:
        return keys, 0
    other = sum(keys[key] for key in small)
    result = {key: value for key, value in keys.items() if key not in small}
    if keep_other if keep_other is not None else other >= k:
        result[OTHER] = result.get(OTHER, 0.0) + other
    return result, len(small)


def _merge_buckets(histogram: dict[str, float], k: int) -> tuple[dict[str, float], int]:
    """The holding-time histogram with buckets below ``k`` merged into their neighbours."""
    buckets = sorted(histogram.items(), key=lambda item: int(item[0].rstrip("+")))
    groups: list[list[tuple[str, float]]] = []
    current: list[tuple[str, float]] = []
    for bucket in buckets:
        current.append(bucket)
        if sum(value for _, value in current) >= k:
            groups.append(current)
            current = []
    if current and not groups:
        return {}, len(buckets)
    if current:
        groups[-1] += current
    merged: dict[str, float] = {}
    lost = 0
    for group in groups:
        total = sum(value for _, value in group)
        if len(group) == 1:
            merged[group[0][0]] = total
            continue
        lost += len(group)
        first, last = group[0][0], group[-1][0]
        merged[f"{first}+" if last.endswith("+") else f"{first}-{last}"] = total
    return merged, lost
