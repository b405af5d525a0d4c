"""What the visitor signage says: worded from an exhibit's :class:`~engine.analytics.disclosure.Disclosure`,
Simplified Chinese first, English below (a prominent notice of image capture, as public places in China
require), and the camera pictogram both renderers draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from engine.analytics.disclosure import Disclosure, Said
from engine.errors import UserError

INK: Final = "#1a1a1a"
PAPER: Final = "#ffffff"
ACCENT: Final = "#c8102e"


@dataclass(frozen=True, slots=True)
class Sign:
    exhibit: str
    """The exhibit's id, for the file names."""
    venue: str | None
    title: Said
    """The exhibit's title (its English one where it has no Chinese one)."""
    headline: Said
    lines: list[Said]
    ask: Said
    """The words before the contact."""
    contact: str
    """Whom visitors can ask: a phone, an e-mail or an office, as the operator gave it."""

    def place(self) -> str:
        """Where the sign hangs: the venue, then the exhibit's titles."""
        titles = [self.title.zh] + ([self.title.en] if self.title.en != self.title.zh else [])
        return " · ".join([*([self.venue] if self.venue else []), *titles])

    def texts(self) -> list[str]:
        """Every text the sign prints (for the font's coverage check)."""
        saids = [self.headline, *self.lines, self.ask]
        return [self.place(), self.contact, *(text for said in saids for text in (said.zh, said.en))]


def sign_for(disclosure: Disclosure, contact: str | None, venue: str | None = None) -> Sign:
    """The sign's wording; ``contact`` (whom visitors ask) is required."""
    if contact is None or not contact.strip():
        raise UserError(
            'Signage needs someone visitors can contact: add --contact "TEXT" (a phone, an e-mail or an office) / '
            '制作告示须注明联系方式：请加上 --contact "联系方式"。'
        )
    title = Said(disclosure.title_en, disclosure.title_zh or disclosure.title_en)
    camera = bool(disclosure.cameras)
    headline = Said("A camera is in use here", "此处使用摄像头")
    if not camera:
        headline = Said("No camera in use", "本展项不使用摄像头")
    lines: list[Said] = []
    if camera:
        counting = disclosure.analytics and any(source.measured for source in disclosure.cameras)
        lines.append(
            Said(
                "This exhibit uses a camera to see visitors' body movements (such as raised hands and where you "
                "stand), so that it can respond to you" + (", and to count visitors anonymously." if counting else "."),
                "本展项使用摄像头识别参观者的身体动作（如举手、站立位置），以便与您互动"
                + ("，并匿名统计参观人数。" if counting else "。"),
            )
        )
        if disclosure.mirror:
            lines.append(
                Said("The live picture is shown on this exhibit's screen only.", "实时画面仅显示在本展项的屏幕上。")
            )
    lines.append(
        Said(
            "No images or video are recorded, kept or sent. No face recognition: nobody is identified.",
            "不录制、不保存、不传送任何图像或视频。不使用人脸识别，不识别个人身份。",
        )
    )
    if disclosure.analytics and any(source.measured for source in disclosure.sources):
        lines.append(
            Said(
                f"Only anonymous hourly totals (number of visitors, time spent) are kept, for "
                f"{disclosure.retention_days} days.",
                f"仅保存匿名的每小时汇总数字（参观人数、停留时间），保存 {disclosure.retention_days} 天。",
            )
        )
    else:
        lines.append(Said("Nothing about visitors is stored.", "不保存任何参观者信息。"))
    ask = Said("Questions? Please contact", "如有疑问，请联系")
    return Sign(disclosure.exhibit, venue, title, headline, lines, ask, contact.strip())


@dataclass(frozen=True, slots=True)
class Shape:
    kind: Literal["rect", "circle"]
    x: float
    """rect: left; circle: centre."""
    y: float
    w: float
    """rect: width; circle: radius."""
    h: float = 0.0
    radius: float = 0.0
    """rect: corner radius."""
    fill: str = INK


PICTOGRAM_SIZE: Final = (100.0, 72.0)
PICTOGRAM: Final = (
    Shape("rect", 30, 4, 32, 16, 3),
    Shape("rect", 4, 14, 92, 56, 9),
    Shape("circle", 50, 43, 20, fill=PAPER),
    Shape("circle", 50, 43, 13),
    Shape("circle", 50, 43, 5, fill=PAPER),
    Shape("rect", 78, 21, 11, 7, 2, fill=PAPER),
)
"""A camera, in a 100 × 72 box (y down), drawn by both the HTML (SVG) and the PDF."""
