"""Bilingual visitor signage (Simplified Chinese first, English below) for an exhibit that sees its visitors:
that a camera is used, for what, that no image is kept, and whom to ask. One A4 HTML page and one A4 PDF,
worded by :mod:`content.signage.wording` from the exhibit's disclosure (:mod:`engine.analytics.disclosure`)."""

from __future__ import annotations

from pathlib import Path

from content.signage.font import check_coverage
from content.signage.wording import Sign, sign_for

__all__ = ["Sign", "sign_for", "write_signage"]


def write_signage(sign: Sign, folder: Path) -> tuple[Path, Path]:
    """Write ``<exhibit>-signage.html`` and ``<exhibit>-signage.pdf`` into ``folder``; returns their paths."""
    from content.signage.html import sign_html
    from content.signage.pdf import sign_pdf

    check_coverage(sign.texts())
    html = folder / f"{sign.exhibit}-signage.html"
    pdf = folder / f"{sign.exhibit}-signage.pdf"
    html.write_text(sign_html(sign), encoding="utf-8")
    pdf.write_bytes(sign_pdf(sign))
    return html, pdf
