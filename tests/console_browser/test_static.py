"""The console's files, checked without a browser: both languages say everything, every string the
scripts ask for exists, nothing is fetched from outside the exhibit, and the console's font has a
glyph for every character the console itself writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from content.console import build_font

STATIC = Path(__file__).resolve().parents[2] / "content" / "console" / "static"
EN = json.loads((STATIC / "i18n" / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((STATIC / "i18n" / "zh.json").read_text(encoding="utf-8"))
PAGE_FILES = sorted(p for p in STATIC.rglob("*") if p.suffix in {".js", ".html", ".css", ".json", ".svg"})
CJK = re.compile(r"[\u3400-\u9fff]")


def test_english_and_chinese_have_the_same_strings_and_none_is_empty() -> None:
    assert set(EN) == set(ZH), sorted(set(EN) ^ set(ZH))
    assert all(text.strip() for text in [*EN.values(), *ZH.values()])
    # the Chinese dictionary is Chinese: every sentence has Chinese in it, bar names and symbols
    untranslated = [k for k, v in ZH.items() if not CJK.search(v) and v == EN[k] and re.search(r"[a-z]{3}", v)]
    assert untranslated == ["header.signed_in"], untranslated


def test_every_string_the_page_asks_for_is_in_the_dictionary() -> None:
    asked: set[str] = set()
    for path in PAGE_FILES:
        text = path.read_text(encoding="utf-8")
        asked |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
        asked |= set(re.findall(r"""data-i18n(?:-\w+)?="([\w.]+)\"""", text))
    # keys the scripts compose (`tab.${view.id}`, `health.status.${status}`...)
    composed = {
        "tab": ["show", "safety", "health", "site", "analytics", "signals", "visitors", "log", "audit"],
        "health.kind": ["sensor", "device", "service"],
        "health.status": ["ok", "degraded", "offline"],
        "role": ["viewer", "operator", "admin"],
        "log.level": ["debug", "info", "warning", "error", "critical"],
        "audit": ["time", "who", "via", "from", "action", "result"],
        "studio.tab": ["preview", "simulate", "inspector", "history"],
        "studio.saved": ["applied", "restart", "off"],
        "studio.kind": ["mapping", "fade", "timeline", "cue", "preset", "action", "safe", "schedule", "operator"],
    }
    asked |= {f"{group}.{word}" for group, words in composed.items() for word in words}
    asked |= {f"show.timeline_{word}" for word in ("playing", "paused", "stopped")}
    assert len(asked) > 100, "few t('...') calls found: the pattern is out of date"
    assert sorted(asked - set(EN)) == []


def test_nothing_is_fetched_from_outside_the_exhibit() -> None:
    for path in PAGE_FILES:
        text = path.read_text(encoding="utf-8")
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, never fetched
        found = re.findall(r"(?:https?:)?//[\w-]+(?:\.[\w-]+)+", text)
        assert found == [], (path.name, found)
        assert "@import" not in text, path.name


def test_the_font_has_a_glyph_for_every_character_the_console_writes() -> None:
    from fontTools.ttLib import TTFont

    font = TTFont(str(build_font.OUTPUT))
    covered = set(font.getBestCmap())
    needed = {ord(c) for text in build_font.console_text() for c in text if c.isprintable() and ord(c) > 0x20}
    missing = "".join(sorted(chr(code) for code in needed - covered))
    assert missing == "", f"rebuild the font (python -m content.console.build_font); missing: {missing}"
    assert font["name"].getDebugName(1) == build_font.FAMILY
    assert (STATIC / "fonts" / "NOTICE").exists() and (STATIC / "fonts" / "LICENSE-Apache-2.0").exists()
