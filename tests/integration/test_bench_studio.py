"""The studio figures of `launcher.py bench`: a keystroke in the curator studio's editor (Debian's Chromium, driven
by Playwright) to the checker's problems on screen against the same texts posted bare to the checker, and the
preview's MJPEG frame rate, all through one `launcher.py studio` on a copy of the flagship, rendering; then the
OSC-to-MQTT p99 of a running exhibit (`launcher.py run --headless` with its console) with a curator at work in its
studio over the same with no studio open. Shape only: timings are never asserted."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from tests.bench.procs import BenchError, find_mosquitto
from tests.bench.results import (
    CuratorRun,
    Latencies,
    StudioLoad,
    as_json,
    studio_figures,
    studio_samples,
    studio_targets,
)
from tests.bench.runner import GROUPS, NEEDS_BROKER, run_studio_group
from tests.bench.studio import CONSOLE_LINE, LOGIN_LINE, PANES, QUICK_STUDIO, read_part
from tests.support.bench_checks import assert_figures

NAMES = {
    "studio_check_latency_p50": "ms",
    "studio_check_latency_p99": "ms",
    "preview_fps": "fps",
    "control_latency_studio_ratio": "ms",
}
JPEG = b"\xff\xd8" + b"\x00" * 10 + b"\xff\xd9"


def part(jpeg: bytes, length: int | None = None) -> bytes:
    size = len(jpeg) if length is None else length
    return b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (size, jpeg)


def test_the_studio_group_runs_before_pose_and_the_soak_with_a_broker_for_its_control_latency():
    assert GROUPS.index("studio") < GROUPS.index("pose") < GROUPS.index("soak") == len(GROUPS) - 1
    assert "studio" in NEEDS_BROKER


def test_the_login_link_is_the_printed_line_not_the_logged_one():
    printed = "Studio / 工作室: http://127.0.0.1:8123/login?token=abc-_DEF&next=/studio"
    match = LOGIN_LINE.match(printed)
    assert match is not None and match.group("base") == "http://127.0.0.1:8123"
    assert LOGIN_LINE.match("12:00 INFO Studio / 工作室: http://127.0.0.1:8123/ (open the login link ...)") is None


def test_the_login_link_of_a_run_without_accounts_is_the_printed_console_line():
    match = CONSOLE_LINE.match("Console / 控制台: http://127.0.0.1:8123/login?token=abc-_DEF")
    assert match is not None and match.group("base") == "http://127.0.0.1:8123"
    assert CONSOLE_LINE.match("Console / 控制台: http://127.0.0.1:8123/") is None  # accounts exist: no link


def test_each_pane_pools_its_own_runs():
    runs = tuple(Latencies(ms=np.array([float(i + 1)] * 2), measured=2) for i in range(4))
    curator = tuple(CuratorRun(pane=PANES[i % 2], keystrokes=10, checks=9, seconds=4.0) for i in range(4))
    load = StudioLoad(
        curated=runs[0], alone=runs[0], curated_runs=runs, alone_runs=runs, curated_cpu=(), alone_cpu=(),
        curator=curator, rate=1000.0, spacing_s=0.4, browser_nice=0,
    )  # fmt: skip
    assert load.pane("preview").ms.tolist() == [1.0, 1.0, 3.0, 3.0] and load.pane("preview").measured == 4
    assert load.pane("inspector").ms.tolist() == [2.0, 2.0, 4.0, 4.0]


def test_the_preview_parts_are_read_whole_and_a_cut_jpeg_is_refused():
    stream = io.BufferedReader(io.BytesIO(part(JPEG) + part(JPEG)))
    assert read_part(stream) == JPEG and read_part(stream) == JPEG
    cut = io.BufferedReader(io.BytesIO(part(JPEG[:-1], len(JPEG))))
    with pytest.raises(BenchError, match="not a whole JPEG"):
        read_part(cut)


@pytest.mark.timeout(240)  # two studio processes, a browser twice: about 45 s alone on two cores
def test_quick_studio_figures_come_from_real_checks_real_frames_and_a_curator_at_work():
    mosquitto = find_mosquitto()
    assert mosquitto is not None, "Mosquitto is needed: apt-get install mosquitto"
    studio = run_studio_group(QUICK_STUDIO, mosquitto)
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
    # The control latency: as many runs with the curator as without, every run's messages through, each pane in
    # turn; the curator typed all along and the page showed checks; Chromium worked only while the studio was open.
    load = studio.load
    assert load is not None
    assert len(load.curated_runs) == len(load.alone_runs) == QUICK_STUDIO.rounds
    for run in load.curated_runs + load.alone_runs:
        assert run.measured == QUICK_STUDIO.messages and len(run.ms) > 0 and all(run.ms > 0)
    assert [run.pane for run in load.curator] == [PANES[i % len(PANES)] for i in range(QUICK_STUDIO.rounds)]
    assert all(run.keystrokes >= 2 and run.keystrokes % 2 == 0 and run.checks > 0 for run in load.curator)
    assert all(share.browser > 0 and share.engine > 0 for share in load.curated_cpu)
    assert all(share.engine > 0 for share in load.alone_cpu)
    # With no tab open the browser idles (its timers still tick now and then), far below a curator at work.
    assert max(share.browser for share in load.alone_cpu) < min(share.browser for share in load.curated_cpu)
    assert "control_latency_studio_ratio at most 1.1" in table
