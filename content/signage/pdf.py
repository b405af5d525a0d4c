"""The sign as an A4 PDF (fpdf2), its Chinese and English text in the embedded WenQuanYi Micro Hei subset."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import WrapMode

from content.signage.font import FACE, FONT
from content.signage.wording import ACCENT, INK, PAPER, PICTOGRAM, PICTOGRAM_SIZE, Sign

MARGIN = 12.0
"""mm, from the paper's edge to the red frame."""
FRAME = 3.0
INSET = 14.0
"""mm, from the frame to the text."""
PT = 25.4 / 72
PICTURE = 44.0
"""mm, the pictogram's width."""
"""One point in mm."""


def sign_pdf(sign: Sign) -> bytes:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN + INSET, MARGIN + INSET)
    pdf.set_title(f"{sign.headline.zh} / {sign.headline.en}")
    pdf.set_creator("exhibit privacy")
    pdf.add_font("sign", fname=str(FONT), collection_font_number=FACE)
    pdf.add_page()
    _frame(pdf)
    width = pdf.w - 2 * (MARGIN + INSET)
    pdf.set_y(MARGIN + 10)
    _text(pdf, sign.place(), 12, "#555555", "C")
    top = pdf.get_y() + 4
    _pictogram(pdf, MARGIN + INSET, top, PICTURE)
    left = MARGIN + INSET + PICTURE + 8
    pdf.set_xy(left, top + 4)
    _text(pdf, sign.headline.zh, 36, INK, "L", width - PICTURE - 8, chinese=True)
    pdf.set_x(left)
    _text(pdf, sign.headline.en, 19, INK, "L", width - PICTURE - 8)
    pdf.set_y(max(pdf.get_y(), top + PICTURE * PICTOGRAM_SIZE[1] / PICTOGRAM_SIZE[0]) + 6)
    for line in sign.lines:
        pdf.set_draw_color("#dddddd")
        pdf.set_line_width(0.5)
        pdf.line(MARGIN + INSET, pdf.get_y(), MARGIN + INSET + width, pdf.get_y())
        pdf.set_y(pdf.get_y() + 4)
        _text(pdf, line.zh, 18, INK, chinese=True)
        pdf.set_y(pdf.get_y() + 1)
        _text(pdf, line.en, 12, "#333333")
        pdf.set_y(pdf.get_y() + 5)
    _contact(pdf, sign, width)
    return bytes(pdf.output())


def _text(
    pdf: FPDF, text: str, size: float, color: str, align: str = "L", width: float = 0, chinese: bool = False
) -> None:
    """Chinese wraps between any two characters, other text between words (a too-long word is still cut)."""
    pdf.set_font("sign", size=size)
    pdf.set_text_color(color)
    wrap = WrapMode.CHAR if chinese else WrapMode.WORD
    pdf.multi_cell(width, size * PT * 1.4, text, align=align, wrapmode=wrap, new_x="LMARGIN", new_y="NEXT")


def _frame(pdf: FPDF) -> None:
    pdf.set_draw_color(ACCENT)
    pdf.set_line_width(FRAME)
    inner = MARGIN + FRAME / 2
    pdf.rect(inner, inner, pdf.w - 2 * inner, pdf.h - 2 * inner, style="D", round_corners=True, corner_radius=6)


def _pictogram(pdf: FPDF, x: float, y: float, width: float) -> None:
    scale = width / PICTOGRAM_SIZE[0]
    for shape in PICTOGRAM:
        pdf.set_fill_color(shape.fill)
        if shape.kind == "circle":
            r = shape.w * scale
            pdf.ellipse(x + shape.x * scale - r, y + shape.y * scale - r, 2 * r, 2 * r, style="F")
        else:
            pdf.rect(
                x + shape.x * scale,
                y + shape.y * scale,
                shape.w * scale,
                shape.h * scale,
                style="F",
                round_corners=True,
                corner_radius=shape.radius * scale,
            )


def _contact(pdf: FPDF, sign: Sign, width: float) -> None:
    ask = f"{sign.ask.zh} · {sign.ask.en}"
    inner = width - 14
    height = _height(pdf, ask, 14, inner) + _height(pdf, sign.contact, 22, inner) + 12
    y = pdf.h - MARGIN - FRAME - INSET + 4 - height
    pdf.set_fill_color(ACCENT)
    pdf.rect(MARGIN + INSET, y, width, height, style="F", round_corners=True, corner_radius=3)
    pdf.set_left_margin(MARGIN + INSET + 7)
    pdf.set_xy(MARGIN + INSET + 7, y + 5)
    _text(pdf, ask, 14, PAPER, "L", inner)
    pdf.set_y(pdf.get_y() + 1)
    _text(pdf, sign.contact, 22, PAPER, "L", inner)


def _height(pdf: FPDF, text: str, size: float, width: float) -> float:
    pdf.set_font("sign", size=size)
    lines = pdf.multi_cell(width, size * PT * 1.4, text, wrapmode=WrapMode.WORD, dry_run=True, output="LINES")
    assert isinstance(lines, list)
    return len(lines) * size * PT * 1.4
