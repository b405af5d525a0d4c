"""The signage's font: the project's WenQuanYi Micro Hei (``content/fonts/wqy-microhei.ttc``, Apache-2.0),
its first face. Every character a sign prints is checked against it, so a sign never shows a missing glyph;
the HTML embeds a subset of just those characters, the PDF embeds its own subset (fpdf2 makes it)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Final

from engine.errors import UserError

FONT: Final = Path(__file__).resolve().parents[1] / "fonts" / "wqy-microhei.ttc"
FACE: Final = 0
"""WenQuanYi Micro Hei (the collection's second face is its Mono)."""
FAMILY: Final = "Signage Sans"

logging.getLogger("fontTools").setLevel(logging.WARNING)  # its subsetter logs every table at INFO


@cache
def _cmap() -> frozenset[int]:
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(FONT), lazy=True)
    try:
        return frozenset(collection.fonts[FACE].getBestCmap())
    finally:
        collection.close()


def characters(texts: Iterable[str]) -> set[str]:
    return {char for text in texts for char in text if not char.isspace()}


def check_coverage(texts: Iterable[str]) -> None:
    """Raise :class:`UserError` naming the characters the font cannot print."""
    cmap = _cmap()
    missing = sorted(char for char in characters(texts) if ord(char) not in cmap)
    if missing:
        shown = " ".join(f"{char} (U+{ord(char):04X})" for char in missing)
        raise UserError(
            f"The signage font has no glyph for {shown}; write those words another way / "
            "告示字体缺少这些字符，请换一种写法。"
        )


def subset_woff(texts: Iterable[str]) -> bytes:
    """A WOFF font (zlib, no extra dependency) with the glyphs for ``texts`` and the licence records."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(FONT))
    font = collection.fonts[FACE]
    options = subset.Options()
    options.flavor = "woff"
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    options.hinting = False
    options.drop_tables += ["FFTM"]  # FontForge's timestamps
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted({ord(char) for char in characters(texts)} | {0x20}))
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):  # ours, so no installed font is confused with this subset
            record.string = FAMILY
    font.recalcTimestamp = False
    font.flavor = "woff"
    out = io.BytesIO()
    font.save(out, reorderTables=False)
    collection.close()
    return out.getvalue()
