"""The one shape every stored measure has: an aggregate of one hour, never a visitor.

A :class:`BinRecord` says "in the hour starting at ``start`` (UTC seconds, a multiple of 3600), for exhibit
``exhibit``, measure ``measure`` under ``key`` adds ``value``". Records are append-only: the store sums the records
of one (exhibit, start, measure, key) when it is read, so a bin written in several flushes (or after a restart) adds
up, and a crash loses at most what was not flushed yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HOUR: Final = 3600

MEASURES: Final = {
    "visitors": "visitors who left view in the hour (key: the pose sensor)",
    "stopped": "of those, visitors who stayed at least `stop_after` (key: the pose sensor)",
    "holding_s": "holding time histogram of the visitors who stopped: key is the lower edge of a 1 s bucket "
    "(`0`, `1`, ..., `599`, then `600+`), value the number of visitors",
    "zone_visitors": "visitors who stood in a zone at least once (key: the zone)",
    "zone_dwell_s": "seconds visitors spent in a zone, summed over visitors (key: the zone)",
    "occupancy_s": "visitor-seconds in view (key: the pose sensor): divided by 3600 gives the mean occupancy",
    "occupancy_peak": "the most visitors in view at once (key: the pose sensor): the store keeps the maximum",
    "interactions": "interactions (key: the gesture, button or input the curator marks as one)",
    "engaged_state": "visitors in view when a machine entered a state, counted once per visitor and state "
    "(key: `machine:state`)",
    "engaged_cue": "visitors in view while a cue ran, counted once per visitor and cue (key: `list:cue`)",
    "heatmap": "visitor-seconds spent standing in a floor cell (key: `column,row` of the coarse grid)",
    "heatmap_visitors": "visitors who stood in a floor cell at least once (key: `column,row`, as `heatmap`)",
}
"""Every measure, with what its key and value mean (the data dictionary of exports starts here)."""

MAXIMA: Final = frozenset({"occupancy_peak"})
"""Measures whose records combine by maximum, not by sum."""


@dataclass(frozen=True, slots=True)
class BinRecord:
    exhibit: str
    start: int
    """UTC seconds at the start of the hour (a multiple of :data:`HOUR`)."""
    measure: str
    key: str
    value: float

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure `{self.measure}`")
        if self.start % HOUR:
            raise ValueError(f"a bin starts on the hour, not at {self.start}")


def hour_of(t: float) -> int:
    """The start of the hour holding wall time ``t`` (UTC seconds)."""
    return int(t // HOUR) * HOUR
