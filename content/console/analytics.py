"""``GET /api/v1/analytics?days=N``: the exhibit's visitor analytics over its last ``days`` days (today included,
days and hours in the exhibit's time zone: :func:`engine.analytics.calendar.exhibit_calendar`), as the console's
Analytics page draws them.

What it shows is what an export would publish: the stored hour totals go through the same k-anonymity
(:func:`engine.analytics.privacy.suppress`, ``k`` from the exhibit) before any figure is made, so every figure
counts at least ``k`` visitors. The database is read, and the figures made, in a worker thread (one request at a
time), never on the control loop. A run that keeps no analytics (``analytics.enabled: false``, no state folder,
the studio) answers ``enabled: false`` with a sentence saying so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from typing import Any, Final

from aiohttp import web

from content.console.context import CONTEXT, Refusal, json_response
from content.console.security import require
from content.report.page import holding_groups
from engine.analytics.calendar import UTC_CALENDAR, Calendar, exhibit_calendar
from engine.analytics.privacy import suppress
from engine.analytics.records import HOUR, hour_of
from engine.analytics.store import AnalyticsStore, AnalyticsStoreError
from engine.analytics.summary import DAY, Bucket, Figures, heatmap_grid, summarize

DEFAULT_DAYS: Final = 7
MAX_DAYS: Final = 400
OFF: Final = (
    "this run keeps no visitor analytics (they are off in the exhibit, or the run has no state folder, or it is "
    "the studio) / 本次运行不记录观众统计（展项已关闭统计，或没有状态文件夹，或在工作室中运行）"
)
BUSY: Final = web.AppKey("analytics_busy", asyncio.Lock)
"""One computation at a time: several tablets refreshing at once queue rather than load the CPU together."""


def setup_analytics(app: web.Application) -> None:
    app[BUSY] = asyncio.Lock()
    app.router.add_get("/api/v1/analytics", analytics)


def _days(request: web.Request) -> int:
    text = request.query.get("days", str(DEFAULT_DAYS))
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_DAYS):
        raise Refusal(
            "bad_request",
            f"`days` must be a whole number from 1 to {MAX_DAYS} / days 必须是 1 到 {MAX_DAYS} 的整数",
        )
    return int(text)


async def analytics(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    require(ctx, request)
    days = _days(request)
    runtime = ctx.runtime
    k = runtime.exhibit.analytics.k
    recorder = runtime.analytics
    if recorder is None:
        return json_response(
            {"enabled": False, "message": OFF, "days": days, "k": k, "simulated": bool(runtime.options.simulate)}
        )
    now = runtime.clock.wall().timestamp()
    calendar = exhibit_calendar(runtime.exhibit)
    async with request.app[BUSY]:
        try:
            body = await asyncio.to_thread(
                period_figures, recorder.writer.store, runtime.exhibit.id, days, k, now, calendar
            )
        except (sqlite3.Error, AnalyticsStoreError, OSError) as exc:
            raise Refusal(
                "unavailable", f"the analytics database cannot be read: {exc} / 无法读取观众统计数据库"
            ) from exc
    return json_response(body)


def period_figures(
    store: AnalyticsStore, exhibit: str, days: int, k: int, now: float, calendar: Calendar = UTC_CALENDAR
) -> dict[str, Any]:
    """The figures of ``calendar``'s ``days`` days up to ``now`` (today included), published under
    ``k``-anonymity. Blocks on the disk: call it in a worker thread."""
    until = hour_of(now) + HOUR
    today = calendar.date_of(now)
    starts = calendar.days(today - dt.timedelta(days=days - 1), today)
    first = starts[0]
    totals = store.totals(exhibit, first, until)
    published = suppress(totals, k, calendar)
    summary = summarize(published.kept, published.days, days=days, calendar=calendar).get(exhibit)
    body: dict[str, Any] = {
        "enabled": True,
        "exhibit": exhibit,
        "days": days,
        "since": first,
        "until": until,
        "generated": now,
        "time_zone": calendar.zone,
        "simulated": totals.simulated,
        "k": k,
        "suppressed": {
            "merged_hours": published.merged_bins,
            "suppressed_hours": published.suppressed_bins,
            "suppressed_cells": published.suppressed_cells,
        },
        "empty": summary is None or not summary.total.visitors,
    }
    total = summary.total if summary is not None else Figures(seconds=days * DAY)
    per_day = summary.per_day if summary is not None else {}
    hour_of_day = summary.hour_of_day if summary is not None else {}
    body["totals"] = {
        "visitors": total.visitors,
        "stopped": total.stopped,
        "attraction": total.attraction,
        "holding_median": _bucket(total.holding_median),
        "holding_p90": _bucket(total.holding_p90),
        "occupancy_mean": total.occupancy_mean,
        "occupancy_peak": total.occupancy_peak,
        "interactions": sum(total.interactions.values()),
    }
    body["per_day"] = [_day(start, per_day.get(start), calendar) for start in starts]
    body["hour_of_day"] = [_hour(hour, hour_of_day.get(hour), days) for hour in range(24)]
    labels, counts = holding_groups(total.holding)
    body["holding"] = [{"label": label, "visitors": count} for label, count in zip(labels, counts, strict=True)]
    body["zones"] = [
        {
            "zone": zone,
            "visitors": visitors,
            "dwell_s": total.zone_dwell_s.get(zone, 0.0),
            "dwell_per_visitor_s": total.dwell_per_visitor(zone),
        }
        for zone, visitors in sorted(total.zone_visitors.items(), key=lambda item: (-item[1], item[0]))
    ]
    body["interactions"] = _keyed(total.interactions, "count")
    body["engaged_state"] = _keyed(total.engaged_state, "visitors")
    body["engaged_cue"] = _keyed(total.engaged_cue, "visitors")
    grid = heatmap_grid(total.heatmap)
    body["heatmap"] = {
        "column0": grid.column0,
        "row0": grid.row0,
        "cells": grid.cells,
        "other": grid.other,
        "peak": grid.peak,
    }
    return body


def _bucket(bucket: Bucket | None) -> dict[str, int | None] | None:
    return None if bucket is None else {"low": bucket.low, "high": bucket.high}


def _day(start: int, figures: Figures | None, calendar: Calendar) -> dict[str, Any]:
    f = figures or Figures(seconds=calendar.day_length(start))
    return {
        "start": start,
        "date": calendar.date_of(start).isoformat(),
        "visitors": f.visitors,
        "stopped": f.stopped,
        "attraction": f.attraction,
        "holding_median": _bucket(f.holding_median),
        "occupancy_mean": f.occupancy_mean,
        "occupancy_peak": f.occupancy_peak,
    }


def _hour(hour: int, figures: Figures | None, days: int) -> dict[str, Any]:
    f = figures or Figures(seconds=days * HOUR)
    return {
        "hour": hour,
        "visitors": f.visitors,
        "occupancy_mean": f.occupancy_mean,
        "occupancy_peak": f.occupancy_peak,
    }


def _keyed(values: dict[str, float], name: str) -> list[dict[str, Any]]:
    return [{"key": key, name: value} for key, value in sorted(values.items(), key=lambda item: (-item[1], item[0]))]
