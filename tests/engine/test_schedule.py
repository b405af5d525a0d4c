"""Opening hours: weekly hours, exceptions, nights past midnight, time zones and DST, and validation."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.clock import VirtualClock
from engine.schedule import OpeningHours, WallClock, wall_time
from engine.yamlpos import load_yaml

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")

EXAMPLE = """
schedule:
  timezone: Asia/Shanghai
  weekly:
    mon: closed                  # museums in China are usually closed on Mondays
    tue: "09:00-17:00"
    wed: ["09:00-12:00", "13:00-17:00"]
    thu: "09:00-17:00"
    fri: "09:00-21:00"
    sat: "09:00-17:00, 19:00-02:00"   # an evening opening that runs past midnight
    sun: "09:00-17:00"
  exceptions:
    - {date: 2026-10-01, closed: true, note: National Day}
    - {dates: [2026-10-02, 2026-10-07], hours: "10:00-16:00", note: Golden Week}   # an inclusive range
    - {date: 2026-12-31, hours: "19:00-24:00", note: New Year's Eve}
"""


def example() -> OpeningHours:
    """The curator's YAML, loaded the way exhibit files are (dates arrive as ``date`` objects)."""
    return OpeningHours.model_validate(load_yaml(EXAMPLE, "exhibit.yaml").data["schedule"])


def hours(weekly: dict[str, object], exceptions: list[dict[str, object]] | None = None, tz: str = "Asia/Shanghai"):
    return OpeningHours.model_validate({"timezone": tz, "weekly": weekly, "exceptions": exceptions or []})


def at(zone: dt.tzinfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0, fold: int = 0):
    return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=zone, fold=fold)


def sh(*args: int) -> dt.datetime:
    return at(SHANGHAI, *args)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, fold: int = 0) -> dt.datetime:
    return at(BERLIN, y, mo, d, h, mi, s, fold=fold)


def utc(*args: int) -> dt.datetime:
    return at(UTC, *args)


def in_utc(periods: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Aware datetimes sharing a zone compare by wall time, blind to DST; compare instants instead."""
    return [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in periods]


def errors(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        OpeningHours.model_validate(data)
    return str(info.value)


# --- weekly hours --------------------------------------------------------------------


def test_a_normal_tuesday_opens_at_nine_and_closes_at_five():
    schedule = example()  # 2026-09-15 is a Tuesday
    assert schedule.is_open(sh(2026, 9, 15, 8, 59, 59)) is False
    assert schedule.is_open(sh(2026, 9, 15, 9, 0)) is True
    assert schedule.is_open(sh(2026, 9, 15, 16, 59, 59)) is True
    assert schedule.is_open(sh(2026, 9, 15, 17, 0)) is False


def test_monday_is_closed_all_day():
    schedule = example()  # 2026-09-14 is a Monday
    assert [schedule.is_open(sh(2026, 9, 14, h)) for h in range(24)] == [False] * 24


def test_wednesday_closes_for_lunch():
    schedule = example()  # 2026-09-16 is a Wednesday
    assert schedule.is_open(sh(2026, 9, 16, 11, 59)) is True
    assert schedule.is_open(sh(2026, 9, 16, 12, 0)) is False
    assert schedule.is_open(sh(2026, 9, 16, 12, 59, 59)) is False
    assert schedule.is_open(sh(2026, 9, 16, 13, 0)) is True


def test_saturday_evening_runs_past_midnight_into_a_closed_sunday():
    schedule = hours({"sat": "09:00-17:00, 19:00-02:00"})  # Sunday missing: closed
    assert schedule.is_open(sh(2026, 9, 19, 18, 59)) is False
    assert schedule.is_open(sh(2026, 9, 19, 19, 0)) is True
    assert schedule.is_open(sh(2026, 9, 20, 0, 0)) is True
    assert schedule.is_open(sh(2026, 9, 20, 1, 59, 59)) is True
    assert schedule.is_open(sh(2026, 9, 20, 2, 0)) is False
    assert schedule.next_change(sh(2026, 9, 19, 23, 0)) == (sh(2026, 9, 20, 2, 0), False)


def test_the_spill_over_is_cut_only_by_an_exception_on_the_starting_date():
    sunday_closed = hours({"sat": "19:00-02:00"}, [{"date": dt.date(2026, 9, 20), "closed": True}])
    assert sunday_closed.is_open(sh(2026, 9, 20, 1, 0)) is True
    saturday_closed = hours({"sat": "19:00-02:00"}, [{"date": dt.date(2026, 9, 19), "closed": True}])
    assert saturday_closed.is_open(sh(2026, 9, 19, 20, 0)) is False
    assert saturday_closed.is_open(sh(2026, 9, 20, 1, 0)) is False


def test_24_00_ends_at_midnight():
    schedule = hours({"fri": "18:00-24:00"})  # 2026-09-18 is a Friday
    assert schedule.is_open(sh(2026, 9, 18, 23, 59, 59)) is True
    assert schedule.is_open(sh(2026, 9, 19, 0, 0)) is False
    assert schedule.next_change(sh(2026, 9, 18, 20, 0)) == (sh(2026, 9, 19, 0, 0), False)


def test_a_whole_day_every_day_is_always_open_and_never_changes():
    schedule = hours(dict.fromkeys(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00-24:00"))
    assert schedule.is_open(sh(2026, 9, 15, 0, 0)) is True
    assert schedule.is_open(sh(2026, 9, 20, 23, 59, 59)) is True
    with pytest.raises(ValueError, match="does not change within 400 days"):
        schedule.next_change(sh(2026, 9, 15, 12, 0))


def test_a_schedule_that_is_always_closed_never_changes():
    with pytest.raises(ValueError, match="does not change within 400 days"):
        hours({}).next_change(sh(2026, 9, 15, 12, 0))


# --- exceptions ----------------------------------------------------------------------


def test_national_day_is_closed_and_noted():
    schedule = example()  # 2026-10-01 is a Thursday, normally 09:00-17:00
    assert schedule.is_open(sh(2026, 10, 1, 12, 0)) is False
    assert schedule.note(dt.date(2026, 10, 1)) == "National Day"
    assert schedule.note(dt.date(2026, 9, 30)) is None


def test_golden_week_has_its_own_hours_on_every_day_of_the_range():
    schedule = example()
    # Monday 2026-10-05 is normally closed; during Golden Week it opens 10:00-16:00.
    assert schedule.is_open(sh(2026, 10, 5, 9, 59)) is False
    assert schedule.is_open(sh(2026, 10, 5, 10, 0)) is True
    assert schedule.is_open(sh(2026, 10, 5, 16, 0)) is False
    # Both ends of the inclusive range.
    assert schedule.is_open(sh(2026, 10, 2, 9, 30)) is False
    assert schedule.is_open(sh(2026, 10, 7, 15, 59)) is True
    assert schedule.is_open(sh(2026, 10, 8, 9, 30)) is True  # Thursday again, normal hours
    # Saturday 2026-10-03 loses its evening, and so Sunday loses the spill-over.
    assert schedule.is_open(sh(2026, 10, 3, 20, 0)) is False
    assert schedule.is_open(sh(2026, 10, 4, 1, 0)) is False
    assert [schedule.note(dt.date(2026, 10, d)) for d in (1, 2, 7, 8)] == [
        "National Day",
        "Golden Week",
        "Golden Week",
        None,
    ]


def test_new_years_eve_opens_in_the_evening_until_midnight():
    schedule = example()  # Thursday 2026-12-31, normally 09:00-17:00
    assert schedule.is_open(sh(2026, 12, 31, 10, 0)) is False
    assert schedule.is_open(sh(2026, 12, 31, 19, 0)) is True
    assert schedule.is_open(sh(2026, 12, 31, 23, 59, 59)) is True
    assert schedule.is_open(sh(2027, 1, 1, 0, 0)) is False
    assert schedule.next_change(sh(2026, 12, 31, 19, 0)) == (sh(2027, 1, 1, 0, 0), False)


def test_where_exceptions_overlap_the_later_one_wins():
    schedule = hours(
        {"sat": "09:00-17:00"},
        [
            {"dates": [dt.date(2026, 10, 1), dt.date(2026, 10, 7)], "hours": "10:00-16:00", "note": "Golden Week"},
            {"date": dt.date(2026, 10, 3), "closed": True, "note": "Maintenance"},
        ],
    )
    assert schedule.is_open(sh(2026, 10, 3, 12, 0)) is False
    assert schedule.note(dt.date(2026, 10, 3)) == "Maintenance"
    assert schedule.is_open(sh(2026, 10, 4, 12, 0)) is True
    assert schedule.note(dt.date(2026, 10, 4)) == "Golden Week"


def test_an_exception_may_run_past_midnight_and_dates_may_be_strings():
    schedule = hours({}, [{"date": "2026-12-31", "hours": "20:00-01:30", "note": "Countdown"}])
    assert schedule.is_open(sh(2027, 1, 1, 1, 29)) is True
    assert schedule.is_open(sh(2027, 1, 1, 1, 30)) is False


# --- next_change and periods ----------------------------------------------------------


def test_next_change_from_sunday_closing_skips_the_closed_monday():
    schedule = example()  # 2026-09-13 is a Sunday
    assert schedule.next_change(sh(2026, 9, 13, 16, 0)) == (sh(2026, 9, 13, 17, 0), False)
    assert schedule.next_change(sh(2026, 9, 13, 17, 0)) == (sh(2026, 9, 15, 9, 0), True)


def test_next_change_skips_a_tuesday_holiday_too():
    schedule = hours(
        {"tue": "09:00-17:00", "wed": "09:00-17:00", "sun": "09:00-17:00"},
        [{"date": dt.date(2026, 9, 15), "closed": True, "note": "Staff day"}],
    )
    assert schedule.next_change(sh(2026, 9, 13, 17, 0)) == (sh(2026, 9, 16, 9, 0), True)


def test_next_change_across_national_day_reaches_golden_week():
    changed, opens = example().next_change(sh(2026, 9, 30, 17, 0))
    assert (changed, opens) == (sh(2026, 10, 2, 10, 0), True)
    assert changed.tzinfo == SHANGHAI


def test_next_change_finds_a_single_opening_months_ahead():
    schedule = hours({}, [{"date": dt.date(2027, 6, 1), "hours": "10:00-12:00"}])
    assert schedule.next_change(sh(2026, 9, 1, 0, 0)) == (sh(2027, 6, 1, 10, 0), True)


def test_periods_merge_across_midnight_and_are_clipped():
    schedule = hours({"fri": "09:00-12:00, 23:00-24:00", "sat": "00:00-02:00, 10:00-11:00"})
    found = schedule.periods(sh(2026, 9, 18, 0, 0), sh(2026, 9, 19, 10, 30))
    assert found == [
        (sh(2026, 9, 18, 9, 0), sh(2026, 9, 18, 12, 0)),
        (sh(2026, 9, 18, 23, 0), sh(2026, 9, 19, 2, 0)),
        (sh(2026, 9, 19, 10, 0), sh(2026, 9, 19, 10, 30)),
    ]


def test_periods_of_a_week_of_the_example():
    found = example().periods(sh(2026, 9, 14, 0, 0), sh(2026, 9, 21, 0, 0))  # Monday to Monday
    assert found == [
        (sh(2026, 9, 15, 9, 0), sh(2026, 9, 15, 17, 0)),
        (sh(2026, 9, 16, 9, 0), sh(2026, 9, 16, 12, 0)),
        (sh(2026, 9, 16, 13, 0), sh(2026, 9, 16, 17, 0)),
        (sh(2026, 9, 17, 9, 0), sh(2026, 9, 17, 17, 0)),
        (sh(2026, 9, 18, 9, 0), sh(2026, 9, 18, 21, 0)),
        (sh(2026, 9, 19, 9, 0), sh(2026, 9, 19, 17, 0)),
        (sh(2026, 9, 19, 19, 0), sh(2026, 9, 20, 2, 0)),
        (sh(2026, 9, 20, 9, 0), sh(2026, 9, 20, 17, 0)),
    ]


def test_periods_rejects_an_end_before_the_start():
    with pytest.raises(ValueError, match="is before `start`"):
        example().periods(sh(2026, 9, 15, 12, 0), sh(2026, 9, 15, 11, 0))
    assert example().periods(sh(2026, 9, 15, 12, 0), sh(2026, 9, 15, 12, 0)) == []


# --- time zones ------------------------------------------------------------------------


def test_a_utc_instant_gives_the_same_answer_as_shanghai_time():
    schedule = example()
    assert schedule.is_open(utc(2026, 9, 15, 1, 0)) is True  # 09:00 in Shanghai
    assert schedule.is_open(utc(2026, 9, 15, 0, 59, 59)) is False
    assert schedule.is_open(utc(2026, 9, 15, 8, 59)) is True
    assert schedule.is_open(utc(2026, 9, 15, 9, 0)) is False  # 17:00 in Shanghai
    new_york = dt.datetime(2026, 9, 14, 21, 0, tzinfo=ZoneInfo("America/New_York"))  # Tue 09:00 in Shanghai
    assert schedule.is_open(new_york) is True
    changed, opens = schedule.next_change(utc(2026, 9, 13, 9, 0))  # Sunday 17:00 in Shanghai
    assert (changed, opens) == (sh(2026, 9, 15, 9, 0), True)
    assert changed.utcoffset() == dt.timedelta(hours=8)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="must be time-zone aware"):
        example().is_open(dt.datetime(2026, 9, 15, 9, 0))


def test_berlin_spring_forward_night():
    # 2026-03-29, a Sunday: at 02:00 CET clocks jump to 03:00 CEST.
    schedule = hours({"sun": "01:00-04:00"}, tz="Europe/Berlin")
    # 01:00 CET to 04:00 CEST: two real hours.
    found = schedule.periods(utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0))
    assert in_utc(found) == [(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0))]
    assert [(a.utcoffset(), b.utcoffset()) for a, b in found] == [(dt.timedelta(hours=1), dt.timedelta(hours=2))]
    assert schedule.is_open(utc(2026, 3, 29, 1, 59, 59)) is True  # 03:59:59 CEST
    assert schedule.is_open(utc(2026, 3, 29, 2, 0)) is False  # 04:00 CEST
    assert schedule.next_change(utc(2026, 3, 29, 0, 30)) == (utc(2026, 3, 29, 2, 0), False)


def test_berlin_a_skipped_start_opens_when_the_clocks_jump():
    schedule = hours({"sun": "02:30-05:00"}, tz="Europe/Berlin")
    changed, opens = schedule.next_change(berlin(2026, 3, 29, 0, 0))
    assert (changed, opens) == (berlin(2026, 3, 29, 3, 0), True)  # 03:00 CEST, the next minute that exists
    assert changed.utcoffset() == dt.timedelta(hours=2)
    assert schedule.is_open(utc(2026, 3, 29, 0, 59, 59)) is False  # 01:59:59 CET
    # A week later the same range opens at 02:30 as written.
    assert schedule.next_change(berlin(2026, 4, 5, 0, 0)) == (berlin(2026, 4, 5, 2, 30), True)


def test_berlin_a_range_wholly_inside_the_skipped_hour_does_not_open():
    schedule = hours({"sun": "02:10-02:50"}, tz="Europe/Berlin")
    assert schedule.periods(berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)) == []
    assert schedule.next_change(berlin(2026, 3, 29, 0, 0)) == (utc(2026, 4, 5, 0, 10), True)


def test_berlin_fall_back_night():
    # 2026-10-25, a Sunday: at 03:00 CEST clocks go back to 02:00 CET, so 02:00-03:00 happens twice.
    schedule = hours({"sun": "01:00-04:00"}, tz="Europe/Berlin")
    # 01:00 CEST to 04:00 CET: four real hours.
    found = schedule.periods(utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0))
    assert in_utc(found) == [(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0))]
    assert schedule.is_open(utc(2026, 10, 24, 22, 59, 59)) is False  # 00:59:59 CEST
    assert schedule.is_open(utc(2026, 10, 24, 23, 0)) is True  # 01:00 CEST
    assert schedule.is_open(utc(2026, 10, 25, 2, 59, 59)) is True  # 03:59:59 CET: four real hours open
    assert schedule.is_open(utc(2026, 10, 25, 3, 0)) is False  # 04:00 CET


def test_berlin_an_ambiguous_time_means_its_first_occurrence():
    opens_then = hours({"sun": "02:30-05:00"}, tz="Europe/Berlin")
    changed, opens = opens_then.next_change(berlin(2026, 10, 25, 0, 0))
    # Python never finds an ambiguous time == to one in another zone (PEP 495), so compare in UTC.
    assert (changed.astimezone(UTC), opens) == (utc(2026, 10, 25, 0, 30), True)  # 02:30 CEST, the first 02:30
    assert changed.utcoffset() == dt.timedelta(hours=2)
    closes_then = hours({"sun": "00:00-02:30"}, tz="Europe/Berlin")
    assert closes_then.is_open(utc(2026, 10, 25, 0, 29)) is True
    assert closes_then.is_open(berlin(2026, 10, 25, 2, 45, fold=1)) is False  # the second 02:45 (CET)


# --- validation -------------------------------------------------------------------------


def test_the_example_keeps_what_the_curator_wrote():
    schedule = example()
    assert schedule.weekly.mon == "closed"
    assert schedule.weekly.wed == ["09:00-12:00", "13:00-17:00"]
    assert schedule.exceptions[1].dates == [dt.date(2026, 10, 2), dt.date(2026, 10, 7)]


def test_friendly_spellings_are_accepted():
    schedule = hours({"tue": "9:00-17:00", "wed": "09:00-12:00，13:00-17:00", "thu": "Closed", "fri": None})
    assert schedule.is_open(sh(2026, 9, 15, 9, 0)) is True
    assert schedule.is_open(sh(2026, 9, 16, 13, 0)) is True
    assert schedule.is_open(sh(2026, 9, 17, 12, 0)) is False
    assert schedule.is_open(sh(2026, 9, 18, 12, 0)) is False


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("25:00-26:00", "`25:00` is not a time of day: hours go 00-23, minutes 00-59 (`24:00` may end a range)"),
        ("09:00-9:5", "`9:5` is not a time: write HH:MM, e.g. `09:05`"),
        ("09:60-10:00", "`09:60` is not a time of day"),
        ("24:00-02:00", "`24:00` is not a time of day"),
        ("0900", "`0900` is not a range: write `HH:MM-HH:MM`, e.g. `09:00-17:00`"),
        ("09:00-09:00", "`09:00-09:00` is empty: it starts and ends at the same time (a whole day is `00:00-24:00`)"),
        ("09:00-12:00, 11:00-17:00", "`09:00-12:00` and `11:00-17:00` overlap"),
        ("22:00-02:00, 23:00-01:00", "`22:00-02:00` and `23:00-01:00` overlap"),
        ("09:00-12:00,", "has an empty part between commas"),
        ("", "no hours given: write `closed` or ranges such as `09:00-17:00`"),
        (["closed", "09:00-12:00"], "`closed` cannot be mixed with hours: write it alone"),
        ([], "no hours given"),
    ],
)
def test_bad_hours_are_explained(value, message):
    text = errors({"timezone": "Asia/Shanghai", "weekly": {"tue": value}})
    assert message in text
    assert "weekly.tue" in text


def test_a_range_that_ends_at_the_next_days_start_is_not_an_overlap():
    assert hours({"sat": "19:00-02:00, 02:00-03:00"}).is_open(sh(2026, 9, 19, 2, 30)) is True


def test_a_misspelt_time_zone_gets_a_suggestion():
    assert "unknown time zone `Asia/Shangai`: did you mean `Asia/Shanghai`?" in errors({"timezone": "Asia/Shangai"})
    assert "did you mean `Asia/Shanghai`? (it is the zone for all of China)" in errors({"timezone": "Asia/Beijing"})
    assert "unknown time zone `europe/berlin`: did you mean `Europe/Berlin`?" in errors({"timezone": "europe/berlin"})
    assert "use a name such as `Asia/Shanghai`" in errors({"timezone": "???"})


@pytest.mark.parametrize(
    ("key", "hint"),
    [("tues", "did you mean `tue`?"), ("Wednesday", "did you mean `wed`?"), ("mo", "did you mean `mon`?")],
)
def test_an_unknown_day_gets_a_suggestion(key, hint):
    text = errors({"timezone": "Asia/Shanghai", "weekly": {key: "09:00-17:00"}})
    assert f"unknown day `{key}`: {hint} (days are mon, tue, wed, thu, fri, sat, sun)" in text


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        ({"date": "2026-10-01", "closed": True, "hours": "10:00-16:00"}, "give either `closed: true` or `hours:`"),
        ({"date": "2026-10-01", "note": "National Day"}, "say `closed: true` or give `hours:` for these dates"),
        ({"date": "2026-10-01", "closed": False}, "`closed: false` says nothing on its own"),
        ({"closed": True}, "give `date:` (one day) or `dates: [first, last]` (an inclusive range)"),
        ({"date": "2026-10-01", "dates": ["2026-10-01", "2026-10-02"], "closed": True}, "not both"),
        ({"dates": ["2026-10-07", "2026-10-02"], "closed": True}, "`dates` runs backwards: 2026-10-07 comes after"),
        ({"dates": ["2026-10-01", "2026-10-03", "2026-10-05"], "closed": True}, "give exactly two dates"),
        ({"date": "2026-10-01", "hours": "10:00-10:00"}, "`10:00-10:00` is empty"),
    ],
)
def test_bad_exceptions_are_explained(exception, message):
    assert message in errors({"timezone": "Asia/Shanghai", "exceptions": [exception]})


def test_unknown_keys_in_an_exception_are_refused():
    assert "Extra inputs are not permitted" in errors(
        {"timezone": "Asia/Shanghai", "exceptions": [{"date": "2026-10-01", "closed": True, "reason": "x"}]}
    )


def test_the_json_schema_gives_editors_patterns_and_descriptions():
    schema = OpeningHours.model_json_schema()
    tue = schema["$defs"]["Weekly"]["properties"]["tue"]
    assert "Missing means closed" in tue["description"]
    assert all("pattern" in (branch.get("items") or branch) for branch in tue["anyOf"] if branch["type"] != "null")
    assert schema["$defs"]["Weekly"]["additionalProperties"] is False
    assert "later one in the list wins" in schema["properties"]["exceptions"]["description"]


# --- wall clock ---------------------------------------------------------------------------


def test_wall_time_follows_the_monotonic_clock():
    epoch = utc(2026, 9, 15, 0, 59, 0)
    assert wall_time(100.0, 100.0, epoch) == epoch
    assert wall_time(160.5, 100.0, epoch) == utc(2026, 9, 15, 1, 0, 0, 500000)
    with pytest.raises(ValueError, match="must be time-zone aware"):
        wall_time(1.0, 0.0, dt.datetime(2026, 9, 15))


def test_wall_time_counts_real_seconds_across_a_dst_change():
    later = wall_time(3600.0, 0.0, berlin(2026, 3, 29, 1, 30))  # one real hour after 01:30 CET
    assert (later.astimezone(UTC), later.tzinfo) == (utc(2026, 3, 29, 1, 30), BERLIN)
    assert (later.hour, later.minute) == (3, 30)  # 03:30 CEST on the wall


async def test_a_virtual_clock_drives_the_schedule():
    clock = VirtualClock(start=1000.0)
    wall = WallClock.pair(clock, sh(2026, 9, 15, 8, 59))
    schedule = example()
    assert schedule.is_open(wall.now()) is False
    changed, opens = schedule.next_change(wall.now())
    assert wall.seconds_until(changed) == 60.0
    await clock.advance(wall.seconds_until(changed))
    assert (wall.now(), schedule.is_open(wall.now()), opens) == (sh(2026, 9, 15, 9, 0), True, True)
    assert wall.seconds_until(sh(2026, 9, 15, 8, 0)) == 0.0


# --- properties ----------------------------------------------------------------------------

BERLIN_NIGHTS = {
    "timezone": "Europe/Berlin",
    "weekly": {
        "tue": "09:00-17:00",
        "fri": "22:00-03:00",
        "sat": "01:30-02:45, 09:00-24:00",
        "sun": "00:00-02:30, 23:00-01:00",
    },
    "exceptions": [
        {"dates": ["2026-03-28", "2026-03-29"], "hours": "02:15-02:40, 20:00-04:00"},
        {"date": "2026-10-25", "hours": "02:10-02:50, 03:00-05:00"},
    ],
}
SCHEDULES = [example(), OpeningHours.model_validate(BERLIN_NIGHTS)]
ZONES = [UTC, SHANGHAI, BERLIN, ZoneInfo("America/Los_Angeles")]
DST_NIGHTS = [utc(2026, 3, 29, 1, 0), utc(2026, 10, 25, 1, 0), utc(2027, 3, 28, 1, 0), utc(2027, 10, 31, 1, 0)]
anywhere = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31), timezones=st.sampled_from(ZONES)
)
near_dst = st.builds(
    lambda night, seconds, zone: (night + dt.timedelta(seconds=seconds)).astimezone(zone),
    st.sampled_from(DST_NIGHTS),
    st.integers(-8 * 3600, 8 * 3600),
    st.sampled_from(ZONES),
)
moments = st.one_of(anywhere, near_dst)


@settings(max_examples=400, deadline=None)
@given(schedule=st.sampled_from(SCHEDULES), when=moments)
def test_the_state_holds_until_next_change_and_flips_there(schedule, when):
    state = schedule.is_open(when)
    changed, opens = schedule.next_change(when)
    # Arithmetic in UTC: on zoned datetimes it would be wall-clock arithmetic.
    start, flip = when.astimezone(UTC), changed.astimezone(UTC)
    assert schedule.is_open(start) is state
    assert flip > start
    assert opens is not state
    assert schedule.is_open(flip) is opens
    gap = flip - start
    for fraction in (0.25, 0.5, 0.75):  # kept before the flip: a gap of microseconds rounds
        assert schedule.is_open(min(start + gap * fraction, flip - dt.timedelta(microseconds=1))) is state
    assert schedule.is_open(flip - dt.timedelta(microseconds=1)) is state


@settings(max_examples=200, deadline=None)
@given(schedule=st.sampled_from(SCHEDULES), when=moments)
def test_periods_agree_with_is_open(schedule, when):
    instant = when.astimezone(UTC)
    found = in_utc(schedule.periods(instant - dt.timedelta(days=1), instant + dt.timedelta(days=1)))
    assert schedule.is_open(when) is any(start <= instant < end for start, end in found)
    assert all(start < end for start, end in found)
    assert all(end < after for (_, end), (after, _) in itertools.pairwise(found))  # merged: none touch
