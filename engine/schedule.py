"""Opening hours: a weekly schedule with date exceptions, in the exhibit's own time zone.

This module is only the time logic (is it open now, when does that change); the
actions that run at opening and closing live elsewhere.

Rules, chosen so that curators and operators can predict them:

* A range whose end is earlier than its start (``19:00-02:00``) runs past
  midnight and belongs to the day it *starts* on: Saturday's ``19:00-02:00``
  keeps the exhibit open on Sunday 00:00-02:00 even when Sunday is closed.
  Only an exception on the starting date (Saturday) removes that spill-over;
  an exception on Sunday replaces Sunday's own hours and leaves it alone.
* An exception replaces its date's hours entirely. Where exceptions overlap,
  the later one in the list wins, so a range (Golden Week) can be followed by
  a single day carved out of it.
* Time zone changes: a wall time that does not exist (the hour skipped when
  clocks go forward) is taken as the next existing minute, the moment clocks
  jump; a wall time that happens twice (clocks going back) means its first
  occurrence. A range that lies wholly inside a skipped hour opens not at all.
* Ranges of one day may touch (``09:00-12:00, 12:00-17:00``) but not overlap:
  an overlap is almost always a typo. Openings that meet across midnight, or
  a spill-over that runs into the next day's hours, are simply merged.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import itertools
import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from engine.clock import Clock
from engine.model import Strict
from engine.problems import did_you_mean

UTC = dt.UTC
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day keys of ``weekly``, in ``date.weekday()`` order."""
LOOKAHEAD_DAYS = 400
"""How far :meth:`OpeningHours.next_change` searches before it gives up."""
MINUTES_PER_DAY = 24 * 60

Span = tuple[int, int]
"""One opening within a day, in minutes from that day's midnight: 0 <= start < end < start + 1440."""
Interval = tuple[dt.datetime, dt.datetime]
"""An opening as aware datetimes, start inclusive and end exclusive."""

_TIME = r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9]"
_RANGE = rf"\s*{_TIME}\s*-\s*(?:{_TIME}|24:00)\s*"
_RANGES = rf"{_RANGE}(?:[,，]{_RANGE})*"
# Editors check these; the validators below enforce the same rules with clearer messages.
HOURS_PATTERN = rf"^(?:\s*(?:[Cc]losed|CLOSED)\s*|{_RANGES})$"
ITEM_PATTERN = rf"^{_RANGES}$"

HoursText = Annotated[str, Field(json_schema_extra={"pattern": HOURS_PATTERN})]
RangeItem = Annotated[str, Field(json_schema_extra={"pattern": ITEM_PATTERN})]
DayHours = HoursText | list[RangeItem]
"""What a curator writes for one day: ``closed``, ``"09:00-17:00"``, ``"09:00-12:00, 13:00-17:00"`` or a list."""

_HOURS_HELP = (
    "`closed`, a range `HH:MM-HH:MM`, several separated by commas, or a list of ranges. "
    "`24:00` may end a range; an end earlier than the start runs past midnight into the next day "
    "(`19:00-02:00`) and still belongs to this day."
)


# --- parsing ---------------------------------------------------------------------


def _minute_of_day(text: str, *, end: bool) -> int:
    """``"09:05"`` to 545; ``24:00`` only as the end of a range."""
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", text)
    if match is None:
        raise ValueError(f"`{text}` is not a time: write HH:MM, e.g. `09:05`")
    hours, minutes = int(match[1]), int(match[2])
    if end and (hours, minutes) == (24, 0):
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"`{text}` is not a time of day: hours go 00-23, minutes 00-59 (`24:00` may end a range)")
    return hours * 60 + minutes


def _clock_text(minute: int) -> str:
    """Minutes back to ``HH:MM``; an end at exactly midnight reads ``24:00``."""
    if minute == MINUTES_PER_DAY:
        return "24:00"
    minute %= MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _span_text(span: Span) -> str:
    return f"{_clock_text(span[0])}-{_clock_text(span[1])}"


def _parse_range(text: str) -> Span:
    """``"19:00-02:00"`` to ``(1140, 1560)``: an earlier end means the next day."""
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"`{text}` is not a range: write `HH:MM-HH:MM`, e.g. `09:00-17:00`")
    start = _minute_of_day(parts[0].strip(), end=False)
    stop = _minute_of_day(parts[1].strip(), end=True)
    if stop == start:
        raise ValueError(f"`{text}` is empty: it starts and ends at the same time (a whole day is `00:00-24:00`)")
    if stop < start:
        stop += MINUTES_PER_DAY
    return start, stop


def _check_overlaps(spans: list[Span]) -> None:
    """Ranges of one day may touch but not overlap; an overlap is almost always a typo."""
    for before, after in itertools.pairwise(spans):
        if after[0] < before[1]:
            raise ValueError(f"`{_span_text(before)}` and `{_span_text(after)}` overlap")


@functools.lru_cache(maxsize=1024)
def _parse_cached(value: str | tuple[str, ...]) -> tuple[Span, ...]:
    if isinstance(value, str) and value.strip() in ("closed", "Closed", "CLOSED"):
        return ()
    items = [value] if isinstance(value, str) else list(value)
    if not items or not any(item.strip() for item in items):
        raise ValueError("no hours given: write `closed` or ranges such as `09:00-17:00`")
    texts = [piece.strip() for item in items for piece in re.split(r"[,，]", item)]
    if not all(texts):
        raise ValueError(f"`{', '.join(items)}` has an empty part between commas")
    if any(text.lower() == "closed" for text in texts):
        raise ValueError("`closed` cannot be mixed with hours: write it alone")
    spans = sorted(_parse_range(text) for text in texts)
    _check_overlaps(spans)
    return tuple(spans)


def parse_hours(value: DayHours | None) -> tuple[Span, ...]:
    """A day's hours as sorted spans; ``None`` and ``closed`` give none. Raises ValueError with the reason."""
    if value is None:
        return ()
    return _parse_cached(value if isinstance(value, str) else tuple(value))


def check_timezone(name: str) -> None:
    """Raise ValueError naming the closest real zone when ``name`` is not one."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone `{name}`" + _timezone_hint(name)) from None


def _timezone_hint(name: str) -> str:
    known = zoneinfo.available_timezones()
    wanted = name.strip().replace(" ", "_")
    by_lower = {zone.lower(): zone for zone in known}
    if wanted.lower() in by_lower:
        return f": did you mean `{by_lower[wanted.lower()]}`?"
    if any(word in wanted.lower() for word in ("beijing", "china")):
        return ": did you mean `Asia/Shanghai`? (it is the zone for all of China)"
    close = difflib.get_close_matches(wanted, sorted(known), n=1, cutoff=0.6)
    if close:
        return f": did you mean `{close[0]}`?"
    return ": use a name such as `Asia/Shanghai` or `Europe/Berlin`"


# --- wall time and DST -------------------------------------------------------------


def _resolve(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A naive wall time in ``tz`` to a UTC instant: skipped times move to the jump, repeated ones take the first."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    return _gap_end(wall, tz)


def _gap_end(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant clocks jumped over ``wall`` (which does not exist): a binary search between its two readings."""
    late = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # read with the offset before the jump
    early = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # read with the offset after it
    lo, hi = int(early.timestamp()), int(late.timestamp())
    after = late.astimezone(tz).utcoffset()
    while lo < hi:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid + 1
    return dt.datetime.fromtimestamp(lo, UTC)


def _instant(day: dt.date, minute: int, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """``minute`` minutes after ``day``'s midnight on the wall clock, as a UTC instant."""
    return _resolve(dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute), tz)


def _aware_utc(when: dt.datetime, name: str = "when") -> dt.datetime:
    """Schedules answer about instants; a naive datetime would silently mean the server's zone."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"`{name}` must be time-zone aware (e.g. `datetime.now(UTC)`), got naive {when.isoformat()}")
    return when.astimezone(UTC)


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sort and join intervals that overlap or touch (23:00-24:00 then 00:00-02:00)."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# --- models ------------------------------------------------------------------------


def _day_field(name: str) -> Any:
    return Field(None, description=f"{name}: {_HOURS_HELP} Missing means closed.")


class Weekly(Strict):
    """The usual week. A missing day is closed (museums in China usually close on Mondays)."""

    mon: DayHours | None = _day_field("Monday")
    tue: DayHours | None = _day_field("Tuesday")
    wed: DayHours | None = _day_field("Wednesday")
    thu: DayHours | None = _day_field("Thursday")
    fri: DayHours | None = _day_field("Friday")
    sat: DayHours | None = _day_field("Saturday")
    sun: DayHours | None = _day_field("Sunday")

    @model_validator(mode="before")
    @classmethod
    def _known_days(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key not in DAYS:
                    raise ValueError(f"unknown day `{key}`: {_day_hint(str(key))} (days are {', '.join(DAYS)})")
        return data

    @field_validator(*DAYS)
    @classmethod
    def _valid_hours(cls, value: DayHours | None) -> DayHours | None:
        parse_hours(value)
        return value

    def spans(self, weekday: int) -> tuple[Span, ...]:
        """The spans of ``weekday`` (0 = Monday)."""
        return parse_hours(getattr(self, DAYS[weekday]))


def _day_hint(key: str) -> str:
    prefix = key.strip().lower()[:3]
    if prefix in DAYS:
        return f"did you mean `{prefix}`?"
    return did_you_mean(key, DAYS) or "did you mean one of the days?"


class SpecialDay(Strict):
    """A date or an inclusive range of dates whose hours replace the weekly ones: a holiday or a special opening."""

    date: dt.date | None = Field(None, description="The one date this applies to (`2026-10-01`).")
    dates: list[dt.date] | None = Field(
        None,
        description="An inclusive range `[first, last]` (`[2026-10-02, 2026-10-07]`); for scattered days, "
        "write one exception each.",
        json_schema_extra={"minItems": 2, "maxItems": 2},
    )
    closed: bool | None = Field(None, description="`true`: closed all day, replacing the weekly hours.")
    hours: DayHours | None = Field(
        None, description=f"The hours on these dates, replacing the weekly ones: {_HOURS_HELP}"
    )
    note: str | None = Field(None, description="Why (`National Day`); shown to operators.")

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: DayHours | None) -> DayHours | None:
        parse_hours(value)
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> SpecialDay:
        if self.date is not None and self.dates is not None:
            raise ValueError("give `date:` (one day) or `dates: [first, last]`, not both")
        if self.date is None and self.dates is None:
            raise ValueError("give `date:` (one day) or `dates: [first, last]` (an inclusive range)")
        if self.dates is not None:
            _check_range(self.dates)
        if self.closed is not None and self.hours is not None:
            raise ValueError("give either `closed: true` or `hours:`, not both")
        if self.closed is None and self.hours is None:
            raise ValueError("say `closed: true` or give `hours:` for these dates")
        if self.closed is False:
            raise ValueError("`closed: false` says nothing on its own: give `hours:` for a special opening")
        return self

    @property
    def first(self) -> dt.date:
        return self.date if self.date is not None else self.dates[0]  # type: ignore[index]

    @property
    def last(self) -> dt.date:
        return self.date if self.date is not None else self.dates[1]  # type: ignore[index]

    def spans(self) -> tuple[Span, ...]:
        return () if self.closed else parse_hours(self.hours)


def _check_range(dates: list[dt.date]) -> None:
    if len(dates) != 2:
        raise ValueError(
            "`dates` is an inclusive range `[first, last]`: give exactly two dates "
            "(for scattered days, write one exception each)"
        )
    if dates[0] > dates[1]:
        raise ValueError(f"`dates` runs backwards: {dates[0].isoformat()} comes after {dates[1].isoformat()}")


class OpeningHours(Strict):
    """When the exhibit is open: a weekly schedule plus date exceptions, in one time zone."""

    timezone: str = Field(description="IANA time zone the hours are written in, e.g. `Asia/Shanghai`.")
    weekly: Weekly = Field(default_factory=Weekly, description="The usual hours of each day of the week.")
    exceptions: list[SpecialDay] = Field(
        default_factory=list,
        description="Dates whose hours replace the weekly ones (holidays, special openings). "
        "Where two overlap, the later one in the list wins.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def exception_for(self, day: dt.date) -> SpecialDay | None:
        """The exception that decides ``day``'s hours: the last one in the list that covers it."""
        return next((e for e in reversed(self.exceptions) if e.first <= day <= e.last), None)

    def note(self, day: dt.date) -> str | None:
        """The note of the exception that applies on ``day`` (a local date), for operators."""
        special = self.exception_for(day)
        return special.note if special is not None else None

    def day_summary(self, when: dt.datetime) -> dict[str, Any]:
        """For operators: the hours of ``when``'s local day as ``HH:MM-HH:MM`` (none: closed all day), and the
        note of the exception that sets them, if one does."""
        day = self._local_date(_aware_utc(when))
        return {"today": [_span_text(span) for span in self._spans(day)], "note": self.note(day)}

    def _spans(self, day: dt.date) -> tuple[Span, ...]:
        special = self.exception_for(day)
        return special.spans() if special is not None else self.weekly.spans(day.weekday())

    def _intervals(self, first: dt.date, last: dt.date) -> list[Interval]:
        """Merged UTC openings that start on local dates ``first`` to ``last``."""
        tz = self.tz
        raw = []
        for day in _days(first, last):
            for start, end in self._spans(day):
                opens, closes = _instant(day, start, tz), _instant(day, end, tz)
                if opens < closes:  # a range inside a skipped hour is empty
                    raw.append((opens, closes))
        return _merge(raw)

    def _local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.tz).date()

    def is_open(self, when: dt.datetime) -> bool:
        """Whether the exhibit is open at ``when`` (aware, any time zone)."""
        instant = _aware_utc(when)
        day = self._local_date(instant)
        # Openings are shorter than a day, so only the last two days' can reach ``when``; one more for DST.
        intervals = self._intervals(day - dt.timedelta(days=2), day + dt.timedelta(days=1))
        return any(start <= instant < end for start, end in intervals)

    def next_change(self, when: dt.datetime) -> tuple[dt.datetime, bool]:
        """The next instant after ``when`` the state flips, in the schedule's zone, and the new state (True: opens).

        Searches :data:`LOOKAHEAD_DAYS` ahead; raises ValueError when nothing changes in that time
        (always closed, always open). Python never finds a time in a repeated (fall-back) hour ``==``
        to one in another zone; compare ``.astimezone(UTC)`` or subtract.
        """
        instant = _aware_utc(when)
        day = self._local_date(instant)
        for horizon in (8, LOOKAHEAD_DAYS):
            last = day + dt.timedelta(days=horizon)
            # Openings not computed yet start at or after this, so an edge before it is a real flip.
            unseen = _instant(last + dt.timedelta(days=1), 0, self.tz)
            for start, end in self._intervals(day - dt.timedelta(days=2), last):
                for edge, opens in ((start, True), (end, False)):
                    if instant < edge < unseen:
                        return edge.astimezone(self.tz), opens
        raise ValueError(f"the schedule does not change within {LOOKAHEAD_DAYS} days after {when.isoformat()}")

    def periods(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Openings within ``[start, end)``, clipped to it and merged where contiguous, in the schedule's zone."""
        lo, hi = _aware_utc(start, "start"), _aware_utc(end, "end")
        if hi < lo:
            raise ValueError(f"`end` {end.isoformat()} is before `start` {start.isoformat()}")
        first = self._local_date(lo) - dt.timedelta(days=2)
        last = self._local_date(hi) + dt.timedelta(days=1)
        clipped = [(max(a, lo), min(b, hi)) for a, b in self._intervals(first, last)]
        return [(a.astimezone(self.tz), b.astimezone(self.tz)) for a, b in clipped if a < b]


# --- wall clock glue ----------------------------------------------------------------


def wall_time(monotonic_now: float, epoch_monotonic: float, epoch_wall: dt.datetime) -> dt.datetime:
    """The wall time at ``monotonic_now``, given that ``epoch_monotonic`` was ``epoch_wall``.

    The engine runs on a monotonic (possibly virtual) clock; pairing it once with a wall time lets
    the same clock drive wall-clock schedules, and lets tests jump to any date.
    """
    # Add in UTC: adding to a zoned datetime is wall-clock arithmetic, an hour off across a DST change.
    instant = _aware_utc(epoch_wall, "epoch_wall") + dt.timedelta(seconds=monotonic_now - epoch_monotonic)
    return instant.astimezone(epoch_wall.tzinfo)


@dataclass(frozen=True, slots=True)
class WallClock:
    """A monotonic :class:`~engine.clock.Clock` paired with the wall time at one of its readings.

    Wall time drifts from a monotonic clock when the system clock is adjusted (NTP); pair again
    now and then in long runs.
    """

    clock: Clock
    epoch_monotonic: float
    epoch_wall: dt.datetime

    @classmethod
    def pair(cls, clock: Clock, wall: dt.datetime | None = None) -> WallClock:
        """Pair ``clock``'s current reading with ``wall`` (default: the real time now)."""
        epoch_wall = wall if wall is not None else dt.datetime.now(UTC)
        _aware_utc(epoch_wall, "wall")
        return cls(clock, clock.now(), epoch_wall)

    def now(self) -> dt.datetime:
        return wall_time(self.clock.now(), self.epoch_monotonic, self.epoch_wall)

    def seconds_until(self, when: dt.datetime) -> float:
        """Monotonic seconds to sleep until ``when`` (0 when it has passed)."""
        return max(0.0, (_aware_utc(when) - self.now()).total_seconds())
