"""The ``analytics:`` section of an exhibit: what is measured, and the privacy bounds on it (issue 17)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from engine.curves import Duration
from engine.model import Strict
from engine.schedule import check_timezone

_DAYS = re.compile(r"^\s*([1-9][0-9]*)\s*(d|days?)?\s*$")


class AnalyticsSettings(Strict):
    """Visitor analytics: anonymous counts, times and floor positions per hour, never images or faces."""

    enabled: bool = Field(
        default=True,
        description="Measure visitors. When off, nothing is measured and nothing about visitors is written to disk.",
    )
    stop_after: Duration = Field(
        default=2.0,
        description="A visitor who stays in view at least this long has stopped at the exhibit (for example `2s`). "
        "Attraction power is the share of visitors who stopped.",
    )
    retention: int | str = Field(
        default=400,
        description="How long the hourly figures are kept, in days (`400`, or `400d`); older ones are deleted "
        "every day.",
        json_schema_extra={"pattern": _DAYS.pattern, "minimum": 1},
    )
    timezone: str | None = Field(
        default=None,
        description="IANA time zone the days and hours of reports and exports are told in, e.g. `Asia/Shanghai`. "
        "Leave out to use the opening hours' time zone, else the computer's.",
    )
    k: int = Field(
        default=5,
        ge=2,
        description="Exports leave out (or merge) any figure that counts fewer visitors than this, so no one can "
        "be singled out.",
    )
    heatmap_cell: float = Field(
        default=0.5,
        gt=0,
        description="Size in metres of the squares of the floor map of where visitors stood (needs a calibrated "
        "floor).",
    )
    interactions: list[str] = Field(
        default_factory=list,
        description="Signals that count as an interaction when they fire, such as a button (`plinth.button`) or a "
        "gesture (`body.wave`).",
    )
    sensors: list[str] | None = Field(
        default=None, description="Pose sensors whose visitors are measured; leave out to measure all of them."
    )

    @field_validator("retention", mode="before")
    @classmethod
    def _days(cls, value: int | str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("`retention` is a number of days, such as `400` or `400d`")
        match = _DAYS.match(str(value))
        if not match:
            raise ValueError(f"`retention` is a whole number of days (at least 1), such as `400` or `400d`: `{value}`")
        return int(match.group(1))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @property
    def retention_days(self) -> int:
        """Days the figures are kept (``retention``, validated)."""
        return int(self.retention)
