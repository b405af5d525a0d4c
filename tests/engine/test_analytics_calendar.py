"""The exhibit's own days for visitor figures (engine/analytics/calendar.py): where a day starts in its time zone,
how long it is across a clock change, which zone an exhibit uses, and that summaries, k-anonymity and exports
group hours into those days rather than UTC ones."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.analytics.calendar import UTC_CALENDAR, Calendar, exhibit_calendar, system_zone
from engine.analytics.export import Period, export
from engine.analytics.privacy import suppress
from engine.analytics.records import HOUR, BinRecord
from engine.analytics.settings import AnalyticsSettings
from engine.analytics.store import StoredTotals
from engine.analytics.summary import summarize

SHANGHAI = Calendar("Asia/Shanghai")
EX = "canal-lanterns"


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp())


def rec(start: int, measure: str, key: str, value: float) -> BinRecord:
    return BinRecord(EX, start, measure, key, value)


def test_a_day_in_shanghai_starts_at_16_utc_the_day_before():
    day = dt.date(2026, 12, 5)
    assert SHANGHAI.midnight(day) == utc(2026, 12, 4, 16)
    assert SHANGHAI.day_of(utc(2026, 12, 4, 16)) == utc(2026, 12, 4, 16)  # 00:00 local: the day's first bin
    assert SHANGHAI.day_of(utc(2026, 12, 5, 15)) == utc(2026, 12, 4, 16)  # 23:00 local: its last
    assert SHANGHAI.day_of(utc(2026, 12, 5, 16)) == utc(2026, 12, 5, 16)  # the next day
    assert SHANGHAI.hour_of_day(utc(2026, 12, 5, 2)) == 10  # 02:00 UTC is 10:00 in the museum
    assert SHANGHAI.day_length(SHANGHAI.midnight(day)) == 86_400
    assert SHANGHAI.days(day, day + dt.timedelta(days=2)) == [utc(2026, 12, 4, 16) + n * 86_400 for n in range(3)]
    assert UTC_CALENDAR.midnight(day) == utc(2026, 12, 5)


def test_a_clock_change_makes_a_day_of_23_or_25_hours():
    berlin = Calendar("Europe/Berlin")
    spring, autumn = berlin.midnight(dt.date(2026, 3, 29)), berlin.midnight(dt.date(2026, 10, 25))
    assert (berlin.day_length(spring), berlin.day_length(autumn)) == (23 * HOUR, 25 * HOUR)
    assert berlin.day_of(spring + 22 * HOUR) == spring and berlin.day_of(spring + 23 * HOUR) != spring


def test_a_zone_half_an_hour_off_starts_its_day_at_the_first_whole_utc_hour():
    kolkata = Calendar("Asia/Kolkata")  # UTC+5:30: local midnight is 18:30 UTC
    start = kolkata.midnight(dt.date(2026, 12, 5))
    assert start == utc(2026, 12, 4, 19) and start % HOUR == 0
    assert kolkata.day_of(utc(2026, 12, 4, 18)) == kolkata.midnight(dt.date(2026, 12, 4))


def test_the_exhibit_zone_comes_from_analytics_then_opening_hours_then_the_computer(monkeypatch):
    def exhibit(analytics_zone: str | None, hours_zone: str | None) -> SimpleNamespace:
        schedule = SimpleNamespace(timezone=hours_zone) if hours_zone else None
        return SimpleNamespace(analytics=AnalyticsSettings(timezone=analytics_zone), schedule=schedule)

    assert exhibit_calendar(exhibit("Asia/Shanghai", "Europe/Paris")).zone == "Asia/Shanghai"
    assert exhibit_calendar(exhibit(None, "Europe/Paris")).zone == "Europe/Paris"
    monkeypatch.setenv("TZ", "Asia/Urumqi")
    assert system_zone() == "Asia/Urumqi" and exhibit_calendar(exhibit(None, None)).zone == "Asia/Urumqi"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert exhibit_calendar(exhibit(None, None)).zone == (system_zone() or "UTC")


def test_summaries_group_hours_into_the_exhibits_days_and_hours():
    # 10:00 and 23:00 on 5 December in Shanghai (02:00 and 15:00 UTC), and 00:30 local on the 6th (16:00 UTC).
    records = [
        rec(utc(2026, 12, 5, 2), "visitors", "body", 6),
        rec(utc(2026, 12, 5, 15), "visitors", "body", 7),
        rec(utc(2026, 12, 5, 16), "visitors", "body", 8),
    ]
    local = summarize(records, days=2, calendar=SHANGHAI)[EX]
    assert {start: f.visitors for start, f in local.per_day.items()} == {
        utc(2026, 12, 4, 16): 13,
        utc(2026, 12, 5, 16): 8,
    }
    assert {hour: f.visitors for hour, f in local.hour_of_day.items()} == {10: 6, 23: 7, 0: 8}
    in_utc = summarize(records, days=2)[EX]  # the same hours on UTC days: one day of 21 visitors
    assert {start: f.visitors for start, f in in_utc.per_day.items()} == {utc(2026, 12, 5): 21}


def test_small_hours_merge_within_the_local_day():
    # Two hours of 3 visitors: 23:00 local on the 5th and 01:00 local on the 6th (the same UTC day, 15:00 and 17:00).
    records = [rec(utc(2026, 12, 5, 15), "visitors", "body", 3), rec(utc(2026, 12, 5, 17), "visitors", "body", 3)]
    assert suppress(records, k=5).days == [rec(utc(2026, 12, 5), "visitors", "body", 6)]  # one UTC day: merged
    local = suppress(records, k=5, calendar=SHANGHAI)
    assert local.days == [] and local.suppressed_bins == 2  # two local days of 3 each: never published


def test_an_export_covers_the_local_days_and_names_its_zone(tmp_path: Path):
    period = Period.parse("2026-12-05", "2026-12-05", SHANGHAI)
    assert (period.since, period.until) == (utc(2026, 12, 4, 16), utc(2026, 12, 5, 16))
    hours = [rec(utc(2026, 12, 4, 20), "visitors", "body", 2), rec(utc(2026, 12, 5, 3), "visitors", "body", 4)]
    totals = StoredTotals(hours, simulated=False)
    manifest = export(totals, EX, period, tmp_path, k=5, formats=["csv"])
    assert manifest["time_zone"] == "Asia/Shanghai"
    lines = (tmp_path / f"{EX}-analytics-2026-12-05-2026-12-05.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [f"{EX},2026-12-04T16:00:00Z,86400,visitors,body,6"]  # a day bin from local midnight
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["suppression"]["day_rows"] == 1


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_every_bin_belongs_to_exactly_one_local_day(zone: str):
    calendar = Calendar(zone)
    first = calendar.midnight(dt.date(2026, 1, 1))
    for start in range(first, first + 400 * 86_400, HOUR * 7):
        day = calendar.day_of(start)
        assert day <= start < calendar.next_day(day)
