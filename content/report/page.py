"""The analytics report as one self-contained HTML page: inline CSS, inline SVG charts, the project's CJK font
inlined (the console's subset); no script, nothing fetched. Headings are bilingual (Simplified Chinese / English).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Final

from content.report import svg
from engine.analytics.calendar import UTC_CALENDAR, Calendar
from engine.analytics.summary import Bucket, Figures, Summary, heatmap_grid

FONT: Final = Path(__file__).resolve().parents[1] / "console" / "static" / "fonts" / "exhibit-sans.woff2"
HOLDING_EDGES: Final = (0, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
"""Display groups of the holding-time chart: [0, 5) s, [5, 10) s, ..., then 600 s and more."""
HOLDING_NOTE: Final = "访客人数，横轴为每组起始秒数 · Visitors per group of seconds, labelled by its first second"


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """What the report says about itself: whose data, which period, and what k-anonymity did."""

    exhibit: str
    title: str
    first: dt.date
    last: dt.date
    k: int
    simulated: bool
    merged_hours: int
    suppressed_hours: int
    suppressed_cells: int
    generated: dt.datetime
    calendar: Calendar = UTC_CALENDAR
    """The exhibit's days and hours: dates, the hour-of-day chart and the time of generation are told in it."""


@cache
def font_face() -> str:
    data = base64.b64encode(FONT.read_bytes()).decode("ascii") if FONT.is_file() else ""
    source = f'src: url("data:font/woff2;base64,{data}") format("woff2");' if data else "src: local('sans-serif');"
    return f'@font-face {{ font-family: "Exhibit Sans"; {source} }}'


STYLE: Final = """
body { font-family: "Exhibit Sans", sans-serif; color: #1f2933; margin: 32px auto; max-width: 1180px;
       padding: 0 24px; line-height: 1.45; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #e4e7eb; }
.meta { color: #52606d; margin: 0 0 16px; }
.banner { background: #fff3c4; border: 2px solid #d9822b; padding: 10px 14px; font-weight: bold; margin: 12px 0; }
.figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin: 12px 0; }
.figure { background: #f5f7fa; border-radius: 6px; padding: 10px 12px; }
.figure b { display: block; font-size: 22px; } .figure span { color: #52606d; font-size: 12px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 28px; }
.charts section { break-inside: avoid; } .note { color: #7b8794; font-size: 12px; margin: 4px 0; }
table { border-collapse: collapse; font-size: 12px; width: 100%; } td, th { padding: 3px 8px; text-align: right; }
th { background: #f5f7fa; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
@media print { body { margin: 0; max-width: none; } .charts { grid-template-columns: 1fr 1fr; } }
"""


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _bucket(value: Bucket | None) -> str:
    return "–" if value is None else str(value)


def _day(start: int, calendar: Calendar) -> str:
    return calendar.local_text(start, "%m-%d")


def _figure(value: str, zh: str, en: str) -> str:
    return f'<div class="figure"><b>{escape(value)}</b><span>{zh} · {en}</span></div>'


def _section(zh: str, en: str, chart: str, note: str = "") -> str:
    text = f'<p class="note">{note}</p>' if note else ""
    return f"<section><h2>{zh} · {en}</h2>{chart}{text}</section>"


def holding_groups(holding: dict[str, float]) -> tuple[list[str], list[float]]:
    """The histogram in :data:`HOLDING_EDGES` groups, each bucket going to the group of its lower edge."""
    counts = [0.0] * len(HOLDING_EDGES)
    for key, count in holding.items():
        low = Bucket.parse(key).low
        counts[max(i for i, edge in enumerate(HOLDING_EDGES) if edge <= low)] += count
    labels = [str(edge) for edge in HOLDING_EDGES[:-1]] + [f"{HOLDING_EDGES[-1]}+"]
    return labels, counts


def _keyed(visitors: dict[str, float], unit: str = "") -> list[tuple[str, float, str]]:
    return [(key, value, f"{value:.0f}{unit}") for key, value in sorted(visitors.items(), key=lambda kv: -kv[1])]


def _zones(total: Figures) -> list[tuple[str, float, str]]:
    rows = []
    for zone, visitors in sorted(total.zone_visitors.items(), key=lambda kv: -kv[1]):
        per = total.dwell_per_visitor(zone)
        dwell = total.zone_dwell_s.get(zone, 0.0)
        note = f"{visitors:.0f} · {dwell:.0f} s" + (f" · {per:.1f} s/人" if per is not None else "")
        rows.append((zone, visitors, note))
    return rows


def _day_table(summary: Summary, calendar: Calendar) -> str:
    head = (
        "<tr><th>日期 Date</th><th>访客 Visitors</th><th>停留 Stopped</th><th>吸引力 Attraction</th>"
        "<th>中位停留 Median</th><th>P90</th><th>平均在场 Mean occupancy</th><th>最多在场 Peak</th></tr>"
    )
    rows = [
        f"<tr><td>{calendar.date_of(start).isoformat()}</td><td>{f.visitors:.0f}</td>"
        f"<td>{f.stopped:.0f}</td><td>{_percent(f.attraction)}</td><td>{_bucket(f.holding_median)}</td>"
        f"<td>{_bucket(f.holding_p90)}</td><td>{f.occupancy_mean:.2f}</td>"
        f"<td>{'–' if f.occupancy_peak is None else f'{f.occupancy_peak:.0f}'}</td></tr>"
        for start, f in summary.per_day.items()
    ]
    return f"<table>{head}{''.join(rows)}</table>"


def render(summary: Summary | None, facts: ReportFacts) -> str:
    """The whole page; ``summary`` None when nothing was published for the period."""
    title = f"访客统计报告 · Visitor analytics report — {facts.title}"
    zone = facts.calendar.zone
    period = f"{facts.first.isoformat()} – {facts.last.isoformat()} ({escape(zone)})"
    banner = (
        '<div class="banner" role="alert">模拟数据：并非真实访客 · SIMULATED DATA: a --simulate run, not real visitors'
        "</div>"
        if facts.simulated
        else ""
    )
    privacy = (
        f"每个数字至少包含 {facts.k} 位访客 · Every figure counts at least k = {facts.k} visitors: "
        f"{facts.merged_hours} hours with fewer were merged into their day, {facts.suppressed_hours} left out, "
        f"{facts.suppressed_cells} small cells merged or left out. Days and hours are {escape(zone)} time."
    )
    head = (
        f'<!DOCTYPE html><html lang="zh-Hans"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{font_face()}{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta">{escape(facts.exhibit)} · {period} · '
        f"生成于 Generated {facts.calendar.local_text(facts.generated.timestamp())} {escape(zone)}</p>{banner}"
    )
    if summary is None:
        empty = "<p>本时段没有可发布的数据 · Nothing to publish for this period.</p>"
        return head + empty + f'<p class="note">{privacy}</p></body></html>'
    return head + _body(summary, facts.calendar) + f'<h2>隐私 · Privacy</h2><p class="note">{privacy}</p></body></html>'


def _body(summary: Summary, calendar: Calendar) -> str:
    total = summary.total
    peak = "–" if total.occupancy_peak is None else f"{total.occupancy_peak:.0f}"
    figures = (
        '<div class="figures">'
        + _figure(f"{total.visitors:.0f}", "访客", "Visitors")
        + _figure(_percent(total.attraction), "吸引力", "Attraction power")
        + _figure(_bucket(total.holding_median), "中位停留时间", "Median holding time")
        + _figure(_bucket(total.holding_p90), "P90 停留时间", "P90 holding time")
        + _figure(f"{total.stopped:.0f}", "停留访客", "Visitors who stopped")
        + _figure(f"{total.occupancy_s / 3600:.1f} h", "在场总时长", "Visitor-hours in view")
        + _figure(peak, "最多同时在场", "Peak occupancy")
        + _figure(f"{sum(total.interactions.values()):.0f}", "互动次数", "Interactions")
        + "</div>"
    )
    days = list(summary.per_day.items())
    attraction = svg.bars(
        [_day(s, calendar) for s, _ in days],
        [f.attraction or 0.0 for _, f in days],
        top=1.0,
        percent=True,
        title="Attraction power per day",
    )
    labels, counts = holding_groups(total.holding)
    holding_title = "Holding time distribution"
    holding = svg.bars(labels, counts, title=holding_title) if total.holding else svg.no_data(holding_title)
    hours = [(h, summary.hour_of_day.get(h)) for h in range(24)]
    occupancy = svg.bars(
        [f"{h:02d}" for h, _ in hours],
        [f.occupancy_mean if f else 0.0 for _, f in hours],
        marks=[f.occupancy_peak if f else None for _, f in hours],
        title="Occupancy by hour of day",
    )
    grid = heatmap_grid(total.heatmap)
    heat = svg.heat_grid(grid.cells, column0=grid.column0, row0=grid.row0, title="Floor heatmap")
    heat_note = "每格为访客停留秒数 · Visitor-seconds per floor cell (column, row)" + (
        f"; {grid.other:.0f} s in small cells merged (no position)" if grid.other else ""
    )
    engagement = _keyed(total.engaged_state) + _keyed(total.engaged_cue)
    charts = (
        '<div class="charts">'
        + _section("每日吸引力", "Attraction power per day", attraction, "停留访客占比 · Share of visitors who stopped")
        + _section("停留时间分布", "Holding time distribution", holding, HOLDING_NOTE)
        + _section(
            "各时段在场人数",
            f"Occupancy by hour ({escape(calendar.zone)})",
            occupancy,
            "柱：平均在场人数；橙线：最多同时在场 · Bars: mean visitors in view; orange: peak",
        )
        + _section("站位热力图", "Floor heatmap", heat, heat_note)
        + _section("各区域", "Per zone", svg.hbars(_zones(total), title="Per zone"), "访客 · 总停留 · 人均停留")
        + _section(
            "各状态与提示",
            "Engagement per state and cue",
            svg.hbars(engagement, title="Engagement per state and cue"),
            "在场访客人数 · Visitors in view",
        )
        + _section("互动", "Interactions", svg.hbars(_keyed(total.interactions), title="Interactions"))
        + "</div>"
    )
    table = f"<h2>每日明细 · Per day</h2>{_day_table(summary, calendar)}"
    return figures + charts + table
