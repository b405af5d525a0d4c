"""Build the console's font, ``content/console/static/fonts/exhibit-sans.woff2``, from the project's
WenQuanYi Micro Hei (``content/fonts/wqy-microhei.ttc``).

Browsers refuse a TrueType collection in ``@font-face``, and the whole face is 5 MB; the console needs
far less. This keeps the first face of the collection with the glyphs for: Latin and punctuation;
every character of the console's own files (its i18n dictionaries, scripts and page); every Chinese
character in the project's sources and exhibits (the server's bilingual sentences); and the 3755
most common Chinese characters (GB 2312 level 1), for names and notes an exhibit brings. Characters
outside it fall back to the tablet's own fonts.

Run it after changing the console's strings (the output is committed; the build needs fontTools and
brotli, which running the console does not)::

    .venv/bin/pip install fonttools brotli
    .venv/bin/python -m content.console.build_font
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "content" / "fonts" / "wqy-microhei.ttc"
STATIC = Path(__file__).resolve().parent / "static"
OUTPUT = STATIC / "fonts" / "exhibit-sans.woff2"
FAMILY = "Exhibit Sans"

BASE_RANGES = (
    (0x20, 0x7E),  # ASCII
    (0xA0, 0xFF),  # Latin-1: ° · × and accented names
    (0x2010, 0x2027),  # dashes, quotes, bullet, ellipsis
    (0x2190, 0x2193),  # arrows (state machine → state)
    (0x2212, 0x2212),  # minus
    (0x3000, 0x303F),  # CJK punctuation: 、。「」《》
    (0xFF01, 0xFF5E),  # full-width forms: ，：（）！？
)
PROJECT_SOURCES = ("engine", "sensors", "devices", "content", "exhibits", "launcher.py")
SOURCE_SUFFIXES = {".py", ".yaml", ".yml", ".json"}


def is_cjk(char: str) -> bool:
    return 0x3400 <= ord(char) <= 0x9FFF or 0xF900 <= ord(char) <= 0xFAFF


def gb2312_level_1() -> Iterator[str]:
    """The 3755 most common Chinese characters, in GB 2312 order (rows 16-55)."""
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                yield bytes((row, cell)).decode("gb2312")
            except UnicodeDecodeError:
                continue  # row 55 ends early


def console_text() -> Iterator[str]:
    for path in sorted(STATIC.rglob("*")):
        if path.suffix in {".json", ".js", ".html", ".css"}:
            yield path.read_text(encoding="utf-8")


def project_text() -> Iterator[str]:
    for name in PROJECT_SOURCES:
        top = ROOT / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.suffix in SOURCE_SUFFIXES)
        for path in paths:
            if "static" not in path.parts and path.is_file():
                yield path.read_text(encoding="utf-8", errors="ignore")


def characters(console: Iterable[str], project: Iterable[str]) -> set[str]:
    chars = {chr(code) for low, high in BASE_RANGES for code in range(low, high + 1)}
    for text in console:
        chars.update(c for c in text if c.isprintable())
    for text in project:
        chars.update(c for c in text if is_cjk(c))
    chars.update(gb2312_level_1())
    return chars


def build(output: Path = OUTPUT) -> int:
    """Write the subset; returns how many characters it covers."""
    try:
        from fontTools import subset
        from fontTools.ttLib import TTCollection
    except ImportError:
        sys.exit("building the font needs fontTools and brotli: .venv/bin/pip install fonttools brotli")
    font = TTCollection(str(SOURCE)).fonts[0]  # WenQuanYi Micro Hei (the second face is its Mono)
    chars = characters(console_text(), project_text())
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    options.hinting = False  # smaller; tablets and Chromium do not use TrueType hinting at these sizes
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: not needed, and they would vary
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in chars))
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):  # family and full name: ours, so no system font is confused with it
            record.string = FAMILY
    font.recalcTimestamp = False  # the same input gives the same bytes
    font["head"].modified = font["head"].created
    output.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(str(output), reorderTables=False)
    return len(chars)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the console's subset font from WenQuanYi Micro Hei.")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="where to write the .woff2")
    args = parser.parse_args()
    count = build(args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({count} characters, {size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
