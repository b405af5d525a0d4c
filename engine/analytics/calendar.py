"""The exhibit's own days: where a day of visitor figures starts and which hour of the day a bin is.

Bins are stored on UTC hours (:mod:`engine.analytics.records`); reports, exports and the console group them into
the days of the exhibit's time zone, so that a museum in Shanghai sees its day from midnight to midnight and its
busy hours at 10:00, not at 02:00. The zone is ``analytics.timezone``, else the opening hours' ``timezone``, else
the computer's own (``TZ``, then ``/etc/localtime``), else UTC: :func:`exhibit_calendar`.

A bin belongs to the local day its start falls in. In the zones whose offset is not whole hours (India, Nepal,
parts of Australia) a day therefore starts at the first UTC hour that begins on or after local midnight. A day
across a daylight-saving change is 23 or 25 hours long (:meth:`Calendar.day_length`).
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine.analytics.records import HOUR

UTC_NAME: Final = "UTC"


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local days and hours in the IANA time zone ``zone``; every time is UTC seconds."""

    zone: str = UTC_NAME

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.zone)  # ZoneInfo keeps its own cache

    def date_of(self, t: float) -> dt.date:
        """The local date at ``t``."""
        return dt.datetime.fromtimestamp(t, self.tz).date()

    def midnight(self, day: dt.date) -> int:
        """UTC seconds of the first bin of local ``day``: its midnight, rounded up to a whole UTC hour."""
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())
        return -(-start // HOUR) * HOUR

    def day_of(self, t: float) -> int:
        """The start (:meth:`midnight`) of the local day whose bins include the one starting at ``t``."""
        day = self.date_of(t)
        return self.midnight(day) if self.midnight(day) <= t else self.midnight(day - dt.timedelta(days=1))

    def next_day(self, start: int) -> int:
        """The start of the local day after the one starting at ``start``."""
        return self.midnight(self.date_of(start) + dt.timedelta(days=1))

    def day_length(self, start: int) -> int:
        """Seconds in the local day starting at ``start`` (86 400; 82 800 or 90 000 across a clock change)."""
        return self.next_day(start) - start

    def hour_of_day(self, t: float) -> int:
        """The local hour (0..23) of the bin starting at ``t``."""
        return dt.datetime.fromtimestamp(t, self.tz).hour

    def days(self, first: dt.date, last: dt.date) -> list[int]:
        """The starts of local days ``first`` to ``last`` inclusive."""
        return [self.midnight(first + dt.timedelta(days=n)) for n in range((last - first).days + 1)]

    def local_text(self, t: float, pattern: str = "%Y-%m-%d %H:%M") -> str:
        """``t`` on the exhibit's clock, for people."""
        return dt.datetime.fromtimestamp(t, self.tz).strftime(pattern)


UTC_CALENDAR: Final = Calendar()
"""Days as UTC days: the default where no exhibit says otherwise (tests, old callers)."""


def system_zone() -> str | None:
    """The computer's IANA time zone: ``TZ`` if it names one, else where ``/etc/localtime`` points; None if
    neither says (a container without zone files, for one)."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1].removeprefix("posix/").removeprefix("right/"))
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                continue
            return name
    return None


def exhibit_calendar(exhibit: Any) -> Calendar:
    """The calendar an exhibit's figures are told in (see the module's documentation for the order)."""
    chosen = getattr(exhibit.analytics, "timezone", None)
    if chosen is None:
        chosen = getattr(getattr(exhibit, "schedule", None), "timezone", None)
    return Calendar(chosen or system_zone() or UTC_NAME)
