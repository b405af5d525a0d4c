"""The sign as one self-contained A4 HTML page: its font embedded, its pictogram inline SVG, no external
resource of any kind (no link, no script, no URL)."""

from __future__ import annotations

import base64
from html import escape

from content.signage.font import FAMILY, subset_woff
from content.signage.wording import ACCENT, INK, PAPER, PICTOGRAM, PICTOGRAM_SIZE, Sign

LABEL = "摄像头 · camera"
"""The pictogram's text alternative."""

STYLE = """
@page { size: A4; margin: 0; }
* { box-sizing: border-box; margin: 0; padding: 0; }
html, body { width: 210mm; height: 297mm; background: PAPER; color: INK; }
body { font-family: "FAMILY", sans-serif; }
.sheet { width: 210mm; height: 297mm; padding: 12mm; display: flex; flex-direction: column; }
.frame { flex: 1; border: 3mm solid ACCENT; border-radius: 6mm; padding: 10mm 12mm; display: flex;
  flex-direction: column; gap: 5mm; }
.place { font-size: 13pt; color: #555; text-align: center; }
.head { display: flex; align-items: center; gap: 8mm; }
.head svg { width: 44mm; height: auto; flex: none; }
.zh.h { font-size: 38pt; font-weight: bold; line-height: 1.2; }
.en.h { font-size: 20pt; line-height: 1.2; }
.line p { overflow-wrap: anywhere; }
.line { border-top: 0.5mm solid #ddd; padding-top: 4mm; }
.zh { font-size: 19pt; line-height: 1.45; }
.en { font-size: 13pt; line-height: 1.4; color: #333; margin-top: 1mm; }
.contact { margin-top: auto; background: ACCENT; color: PAPER; border-radius: 3mm; padding: 5mm 7mm; }
.contact .ask { font-size: 15pt; }
.contact .who { font-size: 24pt; font-weight: bold; line-height: 1.35; margin-top: 1mm; overflow-wrap: anywhere; }
"""


def pictogram_svg() -> str:
    width, height = PICTOGRAM_SIZE
    shapes = []
    for shape in PICTOGRAM:
        if shape.kind == "circle":
            shapes.append(f'<circle cx="{shape.x:g}" cy="{shape.y:g}" r="{shape.w:g}" fill="{shape.fill}"/>')
        else:
            shapes.append(
                f'<rect x="{shape.x:g}" y="{shape.y:g}" width="{shape.w:g}" height="{shape.h:g}" '
                f'rx="{shape.radius:g}" fill="{shape.fill}"/>'
            )
    return (
        f'<svg viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{LABEL}">'
        f"<title>{LABEL}</title>{''.join(shapes)}</svg>"
    )


def sign_html(sign: Sign) -> str:
    font = base64.b64encode(subset_woff([*sign.texts(), LABEL])).decode("ascii")
    style = STYLE.replace("FAMILY", FAMILY).replace("ACCENT", ACCENT).replace("PAPER", PAPER).replace("INK", INK)
    lines = "\n".join(
        f'<section class="line"><p class="zh" lang="zh-Hans">{escape(line.zh)}</p>'
        f'<p class="en" lang="en">{escape(line.en)}</p></section>'
        for line in sign.lines
    )
    return f"""<!DOCTYPE html>
<html lang="zh-Hans">
<head>
<meta charset="utf-8">
<title>{escape(sign.headline.zh)} / {escape(sign.headline.en)}</title>
<style>
@font-face {{ font-family: "{FAMILY}"; src: url(data:font/woff;base64,{font}) format("woff"); }}
{style}</style>
</head>
<body>
<div class="sheet"><div class="frame">
<p class="place">{escape(sign.place())}</p>
<header class="head">{pictogram_svg()}<div>
<h1 class="zh h" lang="zh-Hans">{escape(sign.headline.zh)}</h1>
<p class="en h" lang="en">{escape(sign.headline.en)}</p>
</div></header>
{lines}
<section class="contact"><p class="ask"><span lang="zh-Hans">{escape(sign.ask.zh)}</span> · \
<span lang="en">{escape(sign.ask.en)}</span></p>
<p class="who">{escape(sign.contact)}</p></section>
</div></div>
</body>
</html>
"""
