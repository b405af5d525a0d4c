"""The ``analytics:`` section of an exhibit: what is measured, and the privacy bounds on it (issue 17)."""

from __future__ import annotations

from pydantic import Field

from engine.curves import Duration
from engine.model import Strict


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
    retention_days: int = Field(
        default=400, ge=1, description="Days the hourly figures are kept; older ones are deleted every day."
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
