"""``exhibit report``: an exhibit's analytics as a self-contained HTML page (and a PDF of it) for a director or
a funder, with the same k-anonymity as the exports (:mod:`engine.analytics.export`)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from content.report.page import ReportFacts, render
from engine.analytics.export import Period
from engine.analytics.privacy import suppress
from engine.analytics.store import StoredTotals
from engine.analytics.summary import summarize
from engine.errors import UserError

PDF_TIMEOUT_S: Final = 120.0
CHROMIUM_FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


def report_html(
    totals: StoredTotals, exhibit: str, title: str, period: Period, *, k: int, now: dt.datetime | None = None
) -> str:
    """The report of ``exhibit`` over ``period``: ``totals`` published under ``k``-anonymity, then summarized."""
    published = suppress(totals, k, period.calendar)
    summaries = summarize(published.kept, published.days, days=period.days, calendar=period.calendar)
    facts = ReportFacts(
        exhibit=exhibit,
        title=title,
        first=period.first,
        last=period.last,
        k=k,
        simulated=totals.simulated,
        merged_hours=published.merged_bins,
        suppressed_hours=published.suppressed_bins,
        suppressed_cells=published.suppressed_cells,
        generated=now or dt.datetime.now(dt.UTC),
        calendar=period.calendar,
    )
    return render(summaries.get(exhibit), facts)


def chromium() -> str | None:
    """Debian's Chromium, if this machine has it."""
    return shutil.which("chromium")


def print_pdf(html_file: Path, pdf_file: Path) -> None:
    """Print ``html_file`` to ``pdf_file`` with headless Chromium (A4, backgrounds, no header or footer)."""
    browser = chromium()
    if browser is None:
        raise UserError(
            "a PDF needs Chromium (apt-get install chromium), which this machine lacks; the HTML report was written "
            "/ 生成 PDF 需要 Chromium，本机未安装；已生成 HTML 报告"
        )
    with tempfile.TemporaryDirectory(prefix="exhibit-report-") as profile:
        command = [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_file.resolve()}",
            html_file.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"Chromium took over {PDF_TIMEOUT_S:.0f} s to print the report / PDF 生成超时") from None
    if done.returncode != 0 or not pdf_file.is_file():
        raise UserError(f"Chromium could not print the report to PDF (exit {done.returncode}) / PDF 生成失败")
