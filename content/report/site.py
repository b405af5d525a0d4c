"""The site's report: every exhibit's last 24 hours side by side, from the figures each one keeps retained on the
broker (``<prefix>/<id>/analytics/today``: k-anonymous already), with the site's totals."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from typing import Any

from content.report.page import STYLE, font_face
from engine.analytics.calendar import UTC_CALENDAR, Calendar


def _cell(value: Any, suffix: str = "") -> str:
    return "–" if value is None else f"{value}{suffix}"


def site_html(
    summaries: Mapping[str, Mapping[str, Any]], generated: dt.datetime, calendar: Calendar = UTC_CALENDAR
) -> str:
    """One self-contained page: a row per exhibit, then the site's totals (exhibits with fewer than k visitors add
    their visitors to no total: their figures were never sent). ``generated`` is told on ``calendar``'s clock."""
    rows = []
    visitors = stopped = 0.0
    peak = 0.0
    simulated = False
    for exhibit, s in sorted(summaries.items()):
        simulated |= bool(s.get("simulated"))
        peak = max(peak, float(s.get("occupancy_peak") or 0))
        interactions = sum(float(v) for v in dict(s.get("interactions") or {}).values())
        if s.get("suppressed"):
            cells = [f"&lt; {int(s.get('k', 5))}", "–", "–", "–", "–"]
        else:
            visitors += float(s.get("visitors", 0))
            stopped += float(s.get("stopped", 0))
            attraction = s.get("attraction")
            cells = [
                _cell(int(float(s.get("visitors", 0)))),
                _cell(None if attraction is None else round(float(attraction) * 100), " %"),
                _cell(s.get("holding_median_s"), " s"),
                _cell(s.get("holding_p90_s"), " s"),
                _cell(s.get("occupancy_mean")),
            ]
        rows.append(
            f"<tr><td>{html.escape(exhibit)}</td>"
            + "".join(f"<td>{cell}</td>" for cell in cells)
            + f"<td>{_cell(s.get('occupancy_peak'))}</td><td>{int(interactions)}</td></tr>"
        )
    attraction = f"{round(stopped / visitors * 100)} %" if visitors else "–"
    total = (
        f"<tr><th>全站 Site</th><th>{int(visitors)}</th><th>{attraction}</th><th>–</th><th>–</th><th>–</th>"
        f"<th>{_cell(round(peak) if peak else None)}</th><th>–</th></tr>"
    )
    banner = '<p class="banner">模拟数据 · SIMULATED data, not real visitors</p>' if simulated else ""
    heading = (
        "<tr><th>展项 Exhibit</th><th>访客 Visitors</th><th>吸引力 Attraction</th><th>中位停留 Median</th>"
        "<th>P90</th><th>平均在场 Mean occupancy</th><th>最多同时 Peak</th><th>互动 Interactions</th></tr>"
    )
    when = f"{calendar.local_text(generated.timestamp())} {html.escape(calendar.zone)}"
    empty = "" if rows else '<p class="note">没有展项发布统计 · No exhibit has published its figures.</p>'
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>站点访客统计 · Site visitor analytics</title>
<style>{font_face()}{STYLE}</style></head>
<body><h1>站点访客统计 · Site visitor analytics</h1>
<p class="meta">最近 24 小时 · The last 24 hours · 生成于 Generated {when}</p>
{banner}<table>{heading}{"".join(rows)}{total}</table>{empty}
<p class="note">每个数字至少包含 k 位访客；少于 k 的展项只显示“&lt; k”。
Every figure counts at least k visitors; an exhibit with fewer shows “&lt; k” and adds nothing to the totals.</p>
</body></html>
"""
