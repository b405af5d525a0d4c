"""``launcher.py bench``: the curator studio. How long a keystroke in the studio's editor takes to show the server
checker's problems (``studio_check_latency_*``, against the same texts posted bare to the checker), and how many
preview frames a second its MJPEG stream delivers (``preview_fps``, against the rate the stream asks for).

Both run against one ``launcher.py studio`` process on a copy of the flagship (``exhibits/canal-lanterns``: the
studio writes ``.history/`` into the exhibit's folder), with simulated sensors, the embedded broker and the scene
rendered offscreen: the render process competes for the CPU as it does for a curator. The studio is opened in
Debian's Chromium (headless, driven by Playwright's sync API, the console browser tests' arguments) through the
one-time login link the studio prints, so the preview pane streams while the curator types. Keystrokes alternate
between misspelling a key (``title`` -> ``tixtle``: an unknown key, and a missing one) and fixing it (Backspace);
the page itself times each from the oldest unanswered keystroke to the problems on screen (``performance.now()``,
``document.body.dataset.checkMs``). The preview is read by a plain HTTP client carrying the browser's session
cookie.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import numpy as np

from content.preview import DEFAULT_RATE
from tests.bench.procs import BenchError, Children
from tests.bench.results import Latencies, PreviewRate, StudioCheck, StudioResults
from tests.console_browser.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_path

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP_DIR = ROOT / "exhibits" / "canal-lanterns"
STUDIO = "studio"
LOGIN_LINE = re.compile(r"^Studio / 工作室: (?P<base>https?://[^/\s]+)/login\?token=\S+$")
"""What ``launcher.py studio`` prints on stdout (its log, on stderr, names the address without the token)."""
SESSION_COOKIE = "exhibit_session"
KEY = "title"
"""The flagship's top-level key the keystrokes misspell: ``ti`` + ``x`` + ``tle``."""
TYPED = "x"
INSERT_AT = 2
VIEWPORT: Any = {"width": 1280, "height": 800}  # Playwright's ViewportSize: a laptop's window
PREVIEW_WIDTH = 640
STOP_WAIT_S = 15.0
CHROMIUM_HINT = "Chromium is needed for the studio benchmark: apt-get install chromium"

STATE = (
    "() => [document.body.dataset.checks || '0', document.body.dataset.checkMs || '', "
    "document.querySelectorAll('.cm-lintRange-error').length]"
)
"""What the page shows after a check: how many checks, the latest one's time, the error marks in the editor."""
CHECKED = "(before) => Number(document.body.dataset.checks || 0) > before"
"""A function, not an expression: the studio's CSP (no 'unsafe-eval') refuses Playwright's string predicates."""


@dataclass(frozen=True)
class StudioPlan:
    keystrokes: int
    """Timed keystrokes, after ``warmup``: misspelling and fixing alternately."""
    preview_s: float
    """How long the MJPEG stream is counted, after its first frame."""
    spacing_s: float = 0.4
    warmup: int = 2
    """Keystrokes left out (a misspelling and its fix): the first check after the page loaded is a cold one."""

    @property
    def count(self) -> int:
        return self.warmup + self.keystrokes


QUICK_STUDIO = StudioPlan(keystrokes=15, preview_s=4.0)
FULL_STUDIO = StudioPlan(keystrokes=60, preview_s=10.0)


@dataclass(frozen=True)
class Studio:
    """The studio process under test: its address (``http://127.0.0.1:PORT``) and its one-time login link."""

    base: str
    login: str

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    def connection(self, timeout: float = 15.0) -> http.client.HTTPConnection:
        parts = urlsplit(self.base)
        assert parts.hostname is not None and parts.port is not None
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def run_studio(plan: StudioPlan) -> StudioResults:
    """The check latency through the browser, its bare baseline, then the preview's frame rate, all against one
    studio process; the studio is stopped with SIGINT, the browser closed and every temp file removed."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-studio-") as tmp:
        children = Children(Path(tmp))
        try:
            started = time.monotonic()
            studio = start_studio(children)
            log.info("studio at %s after %.1f s", studio.base, time.monotonic() - started)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
                    context.set_default_timeout(30_000)
                    page = context.new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    page.goto(studio.login)
                    page.wait_for_selector(".cm-content")
                    cookie = session_cookie(context.cookies(studio.base))
                    typed = type_and_check(page, plan)
                    bare = bare_checks(studio, cookie, plan)
                    preview = preview_rate(studio, cookie, plan)
                    if errors:
                        raise BenchError(f"the studio page threw: {errors[:3]}")
                except PlaywrightError as exc:
                    raise children.failed(STUDIO, f"the browser could not drive the studio: {exc}") from None
                finally:
                    browser.close()
            stop_studio(children)
        finally:
            children.stop_all()
    check = StudioCheck(
        editor=Latencies(ms=typed.ms, measured=plan.keystrokes),
        bare=Latencies(ms=bare, measured=plan.keystrokes),
        first_ms=typed.first_ms,
        spacing_s=plan.spacing_s,
        warmup=plan.warmup,
        misspelt=typed.misspelt,
        fixed=typed.fixed,
    )
    log.info(
        "studio check: p99 %.1f ms in the page, %.1f ms bare", check.editor.percentile(99), check.bare.percentile(99)
    )
    return StudioResults(check=check, preview=preview)


def find_chromium() -> str:
    """The console browser tests' Chromium; its absence ends the bench with one sentence."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        raise BenchError(CHROMIUM_HINT)
    return chromium_path()


# --- the studio process --------------------------------------------------------------------------------------------


def start_studio(children: Children) -> Studio:
    """``launcher.py studio`` on a copy of the flagship on any free port, rendering; returns once it printed its
    login link (stdout is a pipe read here; its log goes to ``<workdir>/studio.log``)."""
    folder = children.workdir / FLAGSHIP_DIR.name
    shutil.copytree(FLAGSHIP_DIR, folder, ignore=shutil.ignore_patterns(".history"))
    argv = [
        sys.executable, "launcher.py", "studio", str(folder), "--port", "0",
        "--accounts", str(children.workdir / "accounts.json"), "--audit-log", str(children.workdir / "audit.log"),
    ]  # fmt: skip
    proc = children.start(STUDIO, argv, pipes=True, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60.0
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                raise children.failed(STUDIO, f"the studio exited with status {proc.wait()}: {seen}")
            seen.append(line.rstrip("\n"))
            match = LOGIN_LINE.match(line.strip())
            if match:
                return Studio(base=match.group("base"), login=line.strip().split(": ", 1)[1])
    raise children.failed(STUDIO, f"the studio printed no login link within 60 s: {seen}")


def stop_studio(children: Children) -> None:
    """SIGINT (Ctrl+C, as a curator stops it), killed if it has not ended after :data:`STOP_WAIT_S`."""
    proc = children.procs.pop(STUDIO, None)
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("the studio did not stop within %.0f s of SIGINT; killing it", STOP_WAIT_S)
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    if proc.returncode != 0:
        log.warning("the studio exited with status %s after SIGINT:\n%s", proc.returncode, children.log_text(STUDIO))


def session_cookie(cookies: Any) -> str:
    for cookie in cookies:
        if cookie.get("name") == SESSION_COOKIE and cookie.get("value"):
            return str(cookie["value"])
    raise BenchError(f"the login link left no `{SESSION_COOKIE}` cookie in the browser: {cookies}")


# --- keystrokes in the editor --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Typed:
    ms: np.ndarray
    """Each timed keystroke's ``checkMs``, as the page measured it."""
    first_ms: float
    misspelt: int
    """Misspellings after which the editor marked an error (every one, or the bench stops)."""
    fixed: int
    """Fixes after which it marked none."""


def type_and_check(page: Any, plan: StudioPlan) -> Typed:
    """``plan.count`` keystrokes :attr:`StudioPlan.spacing_s` apart (absolute deadlines) in the key ``title``,
    each waited for until the page counted a check, whose time it then reads."""
    line = page.locator(".cm-line", has_text=re.compile(rf"^{KEY}:\s*$"))
    if line.count() != 1:
        raise BenchError(f"the studio's editor shows {line.count()} lines `{KEY}:`, not one")
    line.click(position={"x": 2, "y": 5})
    page.keyboard.press("Home")
    for _ in range(INSERT_AT):
        page.keyboard.press("ArrowRight")
    ms: list[float] = []
    misspelt = fixed = 0
    start = time.monotonic()
    for index in range(plan.count):
        time.sleep(max(0.0, start + index * plan.spacing_s - time.monotonic()))
        before = int(page.evaluate(STATE)[0])
        if index % 2 == 0:
            page.keyboard.type(TYPED)
        else:
            page.keyboard.press("Backspace")
        page.wait_for_function(CHECKED, arg=before, timeout=15_000)
        _, shown, marks = page.evaluate(STATE)
        wanted = index % 2 == 0
        if bool(marks) != wanted:
            what = "no error mark after a misspelling" if wanted else f"{marks} error marks after the fix"
            raise BenchError(f"keystroke {index + 1}: the editor shows {what}; the check is not what was typed")
        misspelt, fixed = misspelt + wanted, fixed + (not wanted)
        ms.append(float(shown))
    log.info("studio: %d keystrokes checked in %.1f s", plan.count, time.monotonic() - start)
    return Typed(ms=np.array(ms[plan.warmup :], dtype=np.float64), first_ms=ms[0], misspelt=misspelt, fixed=fixed)


# --- the same texts posted bare to the checker ---------------------------------------------------------------------


def bare_checks(studio: Studio, cookie: str, plan: StudioPlan) -> np.ndarray:
    """The baseline: the texts the keystrokes made (the file, and the file with ``title`` misspelt), alternately,
    ``POST /api/v1/studio/check`` over one keep-alive connection as the page does (the session cookie and its
    CSRF token), as far apart; from before the request to the parsed answer."""
    conn = studio.connection()
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}", "Accept": "application/json"}
    try:
        csrf = str(request(conn, "GET", "/api/v1/session", None, headers)["csrf"])
        text = str(request(conn, "GET", "/api/v1/studio/file", None, headers)["text"])
        if not re.search(rf"^{KEY}:", text, re.MULTILINE):
            raise BenchError(f"the flagship has no top-level `{KEY}:` to misspell")
        wrong = re.sub(rf"^{KEY}:", f"{KEY[:INSERT_AT]}{TYPED}{KEY[INSERT_AT:]}:", text, count=1, flags=re.MULTILINE)
        sent = {**headers, "Content-Type": "application/json", "X-CSRF-Token": csrf}
        ms: list[float] = []
        start = time.monotonic()
        for index in range(plan.count):
            time.sleep(max(0.0, start + index * plan.spacing_s - time.monotonic()))
            body = json.dumps({"text": wrong if index % 2 == 0 else text}).encode("utf-8")
            began = time.perf_counter()
            answer = request(conn, "POST", "/api/v1/studio/check", body, sent)
            ms.append((time.perf_counter() - began) * 1000.0)
            if bool(answer.get("problems")) != (index % 2 == 0):
                raise BenchError(f"the checker's answer to a bare check is not what was sent: {answer}")
    finally:
        conn.close()
    return np.array(ms[plan.warmup :], dtype=np.float64)


def request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> Any:
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200:
        raise BenchError(f"{method} {path} answered {reply.status}: {data[:300]!r}")
    return json.loads(data)


# --- the preview's MJPEG stream -----------------------------------------------------------------------------------


def preview_rate(studio: Studio, cookie: str, plan: StudioPlan) -> PreviewRate:
    """``GET /api/v1/studio/preview.mjpg?width=640`` with the browser's session cookie (and the Host the studio
    answers to, its own address), read for ``plan.preview_s`` after the first frame; a frame counts once its whole
    part (``Content-Length`` bytes, a JPEG from FF D8 to FF D9) is in hand."""
    path = f"/api/v1/studio/preview.mjpg?width={PREVIEW_WIDTH}"
    conn = studio.connection()
    try:
        asked = time.monotonic()
        conn.request("GET", path, headers={"Cookie": f"{SESSION_COOKIE}={cookie}", "Host": studio.host})
        reply = conn.getresponse()
        kind = reply.getheader("Content-Type", "")
        if reply.status != 200 or "multipart/x-mixed-replace" not in kind or "boundary=frame" not in kind:
            raise BenchError(f"GET {path} answered {reply.status} {kind!r}: {reply.read(300)!r}")
        first = read_part(reply)
        t0 = time.monotonic()
        sizes = [len(first)]
        end = t0 + plan.preview_s
        while True:
            jpeg = read_part(reply)
            if time.monotonic() > end:
                break
            sizes.append(len(jpeg))
    finally:
        conn.close()
    return PreviewRate(
        frames=len(sizes) - 1,
        seconds=plan.preview_s,
        first_frame_s=t0 - asked,
        mean_bytes=float(np.mean(sizes)),
        asked=DEFAULT_RATE,
        width=PREVIEW_WIDTH,
    )


def read_part(reply: BinaryIO) -> bytes:
    """The next part's JPEG: ``--frame``, its headers, ``Content-Length`` bytes."""
    line = reply.readline()
    while line in (b"\r\n", b"\n"):
        line = reply.readline()
    if line.strip() != b"--frame":
        raise BenchError(f"the preview stream has {line[:80]!r} where a part's boundary should be")
    length = None
    while (line := reply.readline()).strip():
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise BenchError("a part of the preview stream has no Content-Length")
    jpeg = reply.read(length)
    if len(jpeg) != length or not (jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")):
        raise BenchError(f"a part of the preview stream is not a whole JPEG ({len(jpeg)} of {length} bytes)")
    return jpeg
