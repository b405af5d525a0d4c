"""Bilingual visitor signage: a self-contained A4 HTML page and an A4 PDF with its Chinese text embedded."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fontTools.ttLib import TTFont

from content.signage import sign_for, write_signage
from content.signage.font import check_coverage
from engine.analytics.disclosure import Disclosure, PoseSource
from engine.errors import UserError

CONTACT = "展馆服务台 021-5555 0100 · info@museum.example"


def _disclosure(analytics: bool = True, mirror: bool = False) -> Disclosure:
    camera = PoseSource("body", "camera", "0", "640×480, 30 fps", 4, ("bridge",), measured=analytics)
    return Disclosure(
        exhibit="lanterns",
        title_en="Lanterns of the Grand Canal",
        title_zh="运河灯影",
        sources=[camera],
        mirror=mirror,
        analytics=analytics,
        database=Path("/state/analytics.sqlite") if analytics else None,
        retention_days=90,
        k=5,
        stop_after=2.0,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("signs")
    html, pdf = write_signage(sign_for(_disclosure(mirror=True), CONTACT, "运河博物馆"), folder)
    assert (html.name, pdf.name) == ("lanterns-signage.html", "lanterns-signage.pdf")
    return html.read_text(encoding="utf-8"), pdf


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


REQUIRED = [
    ("此处使用摄像头", "A camera is in use here"),
    ("本展项使用摄像头识别参观者的身体动作", "uses a camera to see visitors' body movements"),
    ("不录制、不保存、不传送任何图像或视频", "No images or video are recorded, kept or sent"),
    ("不使用人脸识别", "No face recognition"),
    ("保存 90 天", "are kept, for 90 days"),
    ("如有疑问，请联系", "Questions? Please contact"),
]


def test_the_html_says_it_all_in_both_languages(written: tuple[str, Path]) -> None:
    html, _ = written
    for zh, en in REQUIRED:
        assert zh in html and en.replace("'", "&#x27;") in html
    assert CONTACT in html and "运河博物馆" in html and "运河灯影" in html
    assert "实时画面仅显示在本展项的屏幕上" in html
    assert html.index("此处使用摄像头") < html.index("A camera is in use here")  # Chinese first
    assert "size: A4" in html and "<svg" in html


def test_the_html_is_self_contained(written: tuple[str, Path]) -> None:
    html, _ = written
    urls = re.findall(r"url\(([^)]*)\)", html)
    assert len(urls) == 1 and urls[0].startswith("data:font/woff;base64,")  # the font, embedded
    rest = html.replace(urls[0], "")
    assert "http" not in rest and "//" not in rest
    assert not re.search(r"<(link|script|img|iframe|object|embed)\b", rest)
    assert not re.search(r"\s(src|href)=", rest)


def test_the_embedded_font_covers_every_character(written: tuple[str, Path]) -> None:
    html, _ = written
    data = re.search(r"url\(data:font/woff;base64,([^)]*)\)", html)
    assert data is not None
    cmap = TTFont(io.BytesIO(base64.b64decode(data.group(1)))).getBestCmap()
    visible = re.sub(r"<head>.*?</head>|<[^>]+>", "", html, flags=re.S)  # what the page draws
    visible = visible.replace("&#x27;", "'").replace("&amp;", "&")
    missing = {c for c in visible if not c.isspace() and ord(c) not in cmap}
    assert not missing


def test_the_pdf_is_a4_with_the_text_embedded(written: tuple[str, Path]) -> None:
    _, pdf = written
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (210, 297)
    text = _flat(reader.pages[0].extract_text())
    for zh, en in REQUIRED:
        assert _flat(zh) in text and _flat(en) in text
    assert _flat(CONTACT) in text
    fonts: Any = reader.pages[0]["/Resources"]["/Font"]  # type: ignore[index]
    for font in fonts.values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]  # the TrueType font is in the file


def test_without_analytics_nothing_is_kept(tmp_path: Path) -> None:
    html, _ = write_signage(sign_for(_disclosure(analytics=False), "room 3"), tmp_path)
    text = html.read_text(encoding="utf-8")
    assert "不保存任何参观者信息" in text and "Nothing about visitors is stored." in text
    assert "并匿名统计参观人数" not in text and "天" not in text.split("<body>")[1].split("请联系")[0]


@pytest.mark.parametrize("contact", [None, "", "   "])
def test_signage_needs_a_contact(contact: str | None) -> None:
    with pytest.raises(UserError, match="--contact"):
        sign_for(_disclosure(), contact)


def test_a_character_the_font_lacks_is_refused() -> None:
    with pytest.raises(UserError, match="U\\+1F600"):
        check_coverage(["联系 😀"])
    check_coverage(["联系方式：展馆服务台 info@museum.example"])
