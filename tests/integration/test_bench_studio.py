"""The studio figures of `launcher.py bench`: a keystroke in the curator studio's editor (Debian's Chromium, driven
by Playwright) to the checker's problems on screen against the same texts posted bare to the checker, and the
preview's MJPEG frame rate, all through one `launcher.py studio` on a copy of the flagship, rendering. Shape only:
timings are never asserted."""

from __future__ import annotations

import io
import json
import math

import pytest

from tests.bench.procs import BenchError
from tests.bench.results import as_json, studio_figures, studio_samples, studio_targets
from tests.bench.runner import GROUPS, NEEDS_BROKER
from tests.bench.studio import LOGIN_LINE, QUICK_STUDIO, read_part, run_studio
from tests.support.bench_checks import assert_figures

NAMES = {"studio_check_latency_p50": "ms", "studio_check_latency_p99": "ms", "preview_fps": "fps"}
JPEG = b"\xff\xd8" + b"\x00" * 10 + b"\xff\xd9"


def part(jpeg: bytes, length: int | None = None) -> bytes:
    size = len(jpeg) if length is None else length
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (size, jpeg)


def test_the_studio_group_runs_before_pose_and_the_soak_on_its_embedded_broker():
    assert GROUPS[-3:] == ("studio", "pose", "soak") and "studio" not in NEEDS_BROKER


def test_the_login_link_is_the_printed_line_not_the_logged_one():
    printed = "Studio / 工作室: http://127.0.0.1:8123/login?token=abc-_DEF&next=/studio"
    match = LOGIN_LINE.match(printed)
    assert match is not None and match.group("base") == "http://127.0.0.1:8123"
    assert LOGIN_LINE.match("12:00 INFO Studio / 工作室: http://127.0.0.1:8123/ (open the login link ...)") is None


def test_the_preview_parts_are_read_whole_and_a_cut_jpeg_is_refused():
    stream = io.BufferedReader(io.BytesIO(part(JPEG) + part(JPEG)))
    assert read_part(stream) == JPEG and read_part(stream) == JPEG
    cut = io.BufferedReader(io.BytesIO(part(JPEG[:-1], len(JPEG))))
    with pytest.raises(BenchError, match="not a whole JPEG"):
        read_part(cut)


def test_quick_studio_figures_come_from_real_checks_and_real_frames():
    studio = run_studio(QUICK_STUDIO)
    figures = json.loads(as_json(studio_figures(studio)))
    assert_figures(figures, NAMES)
    assert all(math.isfinite(figure[key]) for figure in figures.values() for key in ("value", "baseline", "ratio"))
    check, preview = studio.check, studio.preview
    # Every keystroke was answered, and the editor showed what was typed: an error after each misspelling,
    # none after each fix (the bench stops otherwise).
    assert check.editor.measured == len(check.editor.ms) == QUICK_STUDIO.keystrokes
    assert check.bare.measured == len(check.bare.ms) == QUICK_STUDIO.keystrokes
    assert check.misspelt == (QUICK_STUDIO.count + 1) // 2 and check.fixed == QUICK_STUDIO.count // 2
    assert all(0 < ms < 15_000 for ms in check.editor.ms) and all(ms > 0 for ms in check.bare.ms)
    assert check.first_ms > 0
    # Frames really arrived, each a whole JPEG, and no more than the stream asks the renderer for could.
    assert preview.frames > 0 and preview.mean_bytes > 1000
    assert 0 < preview.fps <= 2 * preview.asked
    table = "\n".join(studio_samples(studio) + studio_targets(studio_figures(studio)))
    assert "studio_check_latency_p99 at most 300 ms" in table
    assert "p99 is about the maximum" in table
