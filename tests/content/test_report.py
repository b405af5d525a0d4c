"""`exhibit report` (content/report/): a self-contained HTML page with inline SVG charts, the same k-anonymity as
exports, a banner on simulated data; rendered in Debian's Chromium (as the console's browser tests run it) and
printed to a PDF that opens."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from content.report import page, print_pdf, report_html
from engine.analytics.export import Period, read_totals
from engine.errors import UserError
from tests.console_browser.conftest import CHROMIUM_ARGS, chromium_path
from tests.engine.test_analytics_export import EX, FIRST, LAST, ROOT, write_sample

NOW = dt.datetime(2023, 11, 16, 9, 0, tzinfo=dt.UTC)
WIDTH = 1280


def html_of(state_dir: Path, *, simulated: bool = False) -> str:
    write_sample(state_dir, simulated=simulated)
    period = Period.parse(FIRST, LAST)
    totals = read_totals(state_dir, EX, period, simulated=simulated)
    return report_html(totals, EX, "Lanterns of the Grand Canal / 运河灯影", period, k=5, now=NOW)


def screenshot(html_file: Path, png: Path) -> list[str]:
    """Open ``html_file`` in Chromium at 1280 px wide, save a full-page PNG; returns every request made."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_page(viewport={"width": WIDTH, "height": 900})
            context.on("request", lambda request: requests.append(request.url))
            context.goto(html_file.as_uri())
            context.wait_for_load_state("load")
            assert context.evaluate("document.fonts.check('16px \"Exhibit Sans\"', '访客')")
            assert context.locator("svg").count() >= 7
            assert context.locator("svg rect").count() > 20
            context.screenshot(path=str(png), full_page=True)
        finally:
            browser.close()
    return requests


def test_the_report_is_self_contained_bilingual_and_k_anonymous(tmp_path: Path):
    html = html_of(tmp_path)
    assert "<script" not in html and "@import" not in html
    outside = re.findall(r"(?:https?:)?//[\w-]+(?:\.[\w-]+)+", html.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    assert outside == []
    assert re.findall(r'(?:src|href)="(?!data:)', html) == []
    for heading in ("每日吸引力 · Attraction power per day", "停留时间分布 · Holding time distribution",
                    "各时段在场人数 · Occupancy by hour (UTC)", "站位热力图 · Floor heatmap", "各区域 · Per zone",
                    "各状态与提示 · Engagement per state and cue", "隐私 · Privacy"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in html
    assert "SIMULATED" not in html and "模拟" not in html
    # k = 5: day 1 publishes its 10 h (8 visitors), not its small hours (3); day 2 its 15 h and its day bin (5)
    assert "<tr><td>2023-11-14</td><td>8</td><td>6</td><td>75%</td>" in html
    assert "<tr><td>2023-11-15</td><td>15</td><td>9</td><td>60%</td>" in html
    assert "door" not in html and "show:idle" not in html  # keys below k
    assert "show:finale" in html and "main:finale" in html and "plinth.button" in html
    assert "2 hours with fewer were merged into their day, 2 left out" in html


def test_a_simulated_database_gets_a_banner(tmp_path: Path):
    html = html_of(tmp_path, simulated=True)
    assert '<div class="banner" role="alert">模拟数据：并非真实访客 · SIMULATED DATA' in html


def test_an_empty_period_says_so(tmp_path: Path):
    write_sample(tmp_path)
    period = Period.parse("2024-01-01", "2024-01-02")
    html = report_html(read_totals(tmp_path, EX, period, simulated=False), EX, "X", period, k=5, now=NOW)
    assert "Nothing to publish for this period" in html and html.endswith("</html>")


def test_the_font_has_every_character_the_report_writes(tmp_path: Path):
    from fontTools.ttLib import TTFont

    text = re.sub(r"<[^>]*>|@font-face[^}]*}", " ", html_of(tmp_path, simulated=True))
    covered = set(TTFont(str(page.FONT)).getBestCmap())
    missing = {c for c in text if c.isprintable() and ord(c) > 0x7F and ord(c) not in covered}
    assert missing == set()


def test_the_report_renders_in_chromium_and_its_pdf_opens(tmp_path: Path):
    from pypdf import PdfReader

    html_file = tmp_path / "report.html"
    html_file.write_text(html_of(tmp_path / "state"), encoding="utf-8")
    png = tmp_path / "report.png"
    requests = screenshot(html_file, png)
    assert requests == [html_file.as_uri()]  # nothing else fetched
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.width == WIDTH and picture.height > 900
    pdf = tmp_path / "report.pdf"
    print_pdf(html_file, pdf)
    reader = PdfReader(pdf)
    assert len(reader.pages) >= 1
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Attraction power" in text and "canal-lanterns" in text


def test_without_chromium_the_pdf_is_refused_in_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("content.report.shutil.which", lambda name: None)
    with pytest.raises(UserError, match="needs Chromium") as refused:
        print_pdf(tmp_path / "r.html", tmp_path / "r.pdf")
    assert "\n" not in str(refused.value)


def test_the_report_command_end_to_end(tmp_path: Path):
    write_sample(tmp_path / "state")
    out = tmp_path / "r.html"
    done = subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), "report", EX, "--from", FIRST, "--to", LAST,
         "--state-dir", str(tmp_path / "state"), "--out", str(out), "--pdf"],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "运河灯影" in out.read_text(encoding="utf-8")
    assert out.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")


def write_readme_screenshot() -> None:
    """`python -m tests.content.test_report`: docs/images/analytics-report.png, a month of simulated visitors at
    the flagship (tests/support/visitor_month.py: the real folding code, a database marked simulated)."""
    import tempfile

    from tests.support.visitor_month import CALENDAR, EXHIBIT, write_month

    last = dt.date(2026, 11, 30)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state"
        write_month(state, last)
        period = Period.parse("2026-11-01", last.isoformat(), CALENDAR)
        totals = read_totals(state, EXHIBIT, period, simulated=True)
        when = dt.datetime(2026, 12, 1, 1, 30, tzinfo=dt.UTC)
        html = report_html(totals, EXHIBIT, "Lanterns of the Grand Canal / 运河灯影", period, k=5, now=when)
        html_file = Path(folder) / "report.html"
        html_file.write_text(html, encoding="utf-8")
        (ROOT / "docs" / "images").mkdir(exist_ok=True)
        screenshot(html_file, ROOT / "docs" / "images" / "analytics-report.png")


if __name__ == "__main__":
    write_readme_screenshot()
