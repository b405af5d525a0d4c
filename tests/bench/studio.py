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

Then what a curator at work costs the control path (``control_latency_studio_ratio``: the OSC-to-MQTT p99 with a
curator in the studio over the same with no studio open), through one running exhibit: the render bench's (the
OSC bench's mapping, the flagship's scene and recorded visitors) run as ``launcher.py run --headless`` with its
console on any free port and a fresh accounts file (so it prints a one-time login link, admin), on a private
Mosquitto, measured by the OSC bench's sender and subscriber. The curator is one Chromium (as above, on this
machine, as the browser of a curator working on the exhibit's computer would be) with the session from that link:
in each run with the studio, ``/studio`` opens in a new tab showing the preview pane (MJPEG from the render
process) or, the next run, the inspector pane (which polls ``/api/v1/studio/inspect`` every 500 ms), and the
curator types a keystroke every 400 ms into the editor (``x`` into the key ``mappings``, then Backspace: each
change a draft check in the checker's worker process) from a second before the messages to their end; then the
tab is closed. Runs with and without alternate (driven from ``runner.py``, :func:`run_studio_load`), and each
records the cores its parts kept busy (the exhibit's process, its render process, its checker, Chromium).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import numpy as np

from content.preview import DEFAULT_RATE
from tests.bench.console import cpu_seconds
from tests.bench.procs import BenchError, Children, wait_for_payload
from tests.bench.render import flagship_scene, render_exhibit
from tests.bench.results import CpuShare, CuratorRun, Latencies, PreviewRate, StudioCheck, StudioResults
from tests.console_browser.conftest import CHROMIUM, CHROMIUM_ARGS, chromium_path
from tests.support.net import free_port

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
    rounds: int = 2
    """Control latency: pairs of OSC-to-MQTT runs through one running exhibit, one with a curator at work in its
    studio and one with no studio open: without, with, with, without, ...; the curator's pane alternates between
    rounds (the preview in the first, the inspector in the second, ...)."""
    messages: int = 1000
    """Control latency: measured OSC messages per run, after ``latency_warmup``, at 1 kHz as the OSC bench sends."""
    latency_warmup: int = 300

    @property
    def count(self) -> int:
        return self.warmup + self.keystrokes


QUICK_STUDIO = StudioPlan(keystrokes=15, preview_s=4.0, rounds=2, messages=1000)
FULL_STUDIO = StudioPlan(keystrokes=60, preview_s=10.0, rounds=6, messages=3000)


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
    match = printed_line(children, STUDIO, proc, LOGIN_LINE, 60.0)
    return Studio(base=match.group("base"), login=match.string.split(": ", 1)[1])


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


# --- a curator at work in a running exhibit's studio: what it costs the control path ---------------------------------

LOAD_ID = "bench-studio-load"
LOAD_ENGINE = "studio-load-engine"
LOAD_KEY = "mappings"
"""The load exhibit's top-level key the curator's keystrokes misspell (``ma`` + ``x`` + ``ppings``)."""
CONSOLE_LINE = re.compile(r"^Console / 控制台: (?P<base>https?://[^/\s]+)/login\?token=\S+$")
"""What ``launcher.py run`` prints on stdout while no account exists: its one-time login link (admin)."""
PANES = ("preview", "inspector")
"""What the curator looks at beside the editor, one a round, alternately."""
CURATOR_SETTLE_S = 1.0
"""After the studio page shows its pane's first content, typing already, before the messages: the page's start is
not measured; and after its tab is closed, before anything else is."""
SHOWN = {
    "preview": "() => { const img = document.getElementById('preview-image'); "
    "return !!img && !!img.getAttribute('src') && img.naturalWidth > 0; }",
    "inspector": "() => document.querySelectorAll('#inspect-devices .inspect-row').length > 0",
}
"""Functions, not expressions (the studio's CSP): the preview drew a frame; the inspector listed the devices."""
CHECKS = "() => Number(document.body.dataset.checks || 0)"
T = TypeVar("T")


@dataclass(frozen=True)
class LoadExhibit:
    """``launcher.py run`` of the load exhibit, rendering offscreen, with its console (and so its studio)."""

    pid: int
    udp_port: int
    base: str
    login: str
    topic: str


def start_load_exhibit(children: Children, mqtt_port: int) -> LoadExhibit:
    """The render bench's exhibit (the OSC bench's mapping, the flagship's scene and recorded visitors) run as
    ``launcher.py run EXHIBIT --headless`` (the scene drawn offscreen) with the console on any free port and a
    fresh accounts file, on the bench's Mosquitto; returns once it printed its login link and said ``online``.
    The exhibit lives in a folder of its own (the studio keeps ``.history/`` beside the file)."""
    udp_port = free_port(socket.SOCK_DGRAM)
    folder = children.workdir / LOAD_ID
    folder.mkdir()
    exhibit = folder / "exhibit.yaml"
    exhibit.write_text(render_exhibit(LOAD_ID, udp_port, flagship_scene()), encoding="utf-8")
    argv = [
        sys.executable, "launcher.py", "run", str(exhibit), "--headless",
        "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--console-port", "0",
        "--accounts", str(children.workdir / "load-accounts.json"),
        "--audit-log", str(children.workdir / "load-audit.log"),
    ]  # fmt: skip
    proc = children.start(LOAD_ENGINE, argv, pipes=True, cwd=ROOT)
    match = printed_line(children, LOAD_ENGINE, proc, CONSOLE_LINE, 90.0)
    if not wait_for_payload(mqtt_port, f"exhibit/{LOAD_ID}/status", b"online", timeout=30.0, alive=proc):
        raise children.failed(LOAD_ENGINE, "the exhibit printed its login link but did not say online in 30 s")
    return LoadExhibit(
        pid=proc.pid,
        udp_port=udp_port,
        base=match.group("base"),
        login=match.group(0).split(": ", 1)[1],
        topic=f"exhibit/{LOAD_ID}/devices/probe/set",
    )


def printed_line(
    children: Children, name: str, proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """The first line of the child's stdout that ``pattern`` matches, within ``timeout``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                raise children.failed(name, f"{name} exited with status {proc.wait()}: {seen}")
            seen.append(line.rstrip("\n"))
            match = pattern.match(line.strip())
            if match:
                return match
    raise children.failed(name, f"{name} printed no login link within {timeout:.0f} s: {seen}")


def stop_load_exhibit(children: Children) -> None:
    code = children.stop(LOAD_ENGINE, timeout=STOP_WAIT_S)
    if code != 0:
        log.warning("the load exhibit exited with status %s after SIGTERM:\n%s", code, children.log_text(LOAD_ENGINE))


class Curator:
    """The curator's browser (one headless Chromium, the studio bench's) with an admin session from the exhibit's
    login link; each :meth:`work` opens the studio in a new tab, shows a pane, types, and closes the tab."""

    def __init__(self, context: Any, exhibit: LoadExhibit) -> None:
        self.context = context
        self.exhibit = exhibit
        self.errors: list[str] = []
        self.logged_in = False

    def open(self, pane: str) -> Any:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        if self.logged_in:
            page.goto(f"{self.exhibit.base}/studio")
        else:  # the link is one-time: the session cookie it leaves serves every later tab
            page.goto(f"{self.exhibit.login}&next=/studio")
            self.logged_in = True
        page.wait_for_selector(".cm-content")
        if pane != PANES[0]:
            page.click(f"#studio-tabs button[data-pane={pane}]")
        page.wait_for_function(SHOWN[pane], timeout=60_000)
        return page

    def warm_up(self) -> None:
        """The login, the renderer's first preview frames and the checker's cold first check (its worker process
        spawned, the checker imported), none of it timed; then the tab is closed."""
        page = self.open(PANES[0])
        try:
            page.wait_for_function(CHECKED, arg=0, timeout=60_000)
        finally:
            page.close()
        time.sleep(CURATOR_SETTLE_S)

    def work(self, pane: str, during: Callable[[], T], spacing_s: float) -> tuple[T, CuratorRun]:
        """The studio open on ``pane``, a keystroke every ``spacing_s`` (misspelling :data:`LOAD_KEY`, then fixing
        it); ``during()`` runs in a thread from :data:`CURATOR_SETTLE_S` after the pane showed, the keystrokes go
        on until it returns; then the tab is closed (no studio open). Playwright stays on this thread."""
        page = self.open(pane)
        try:
            line = page.locator(".cm-line", has_text=re.compile(rf"^{LOAD_KEY}:\s*$"))
            if line.count() != 1:
                raise BenchError(f"the studio's editor shows {line.count()} lines `{LOAD_KEY}:`, not one")
            line.click(position={"x": 2, "y": 5})
            page.keyboard.press("Home")
            for _ in range(INSERT_AT):
                page.keyboard.press("ArrowRight")
            checks = int(page.evaluate(CHECKS))
            outcome: dict[str, Any] = {}
            worker = threading.Thread(target=run_into, args=(outcome, during), name="studio-load", daemon=True)
            start = time.monotonic()
            began = None
            index = 0
            while True:
                due = start + index * spacing_s
                if began is None and due - start >= CURATOR_SETTLE_S:
                    began = time.monotonic()
                    worker.start()  # the measurement begins once the curator has been typing for a while
                # An even count of keystrokes leaves the text as the file: no draft is kept.
                if began is not None and not worker.is_alive() and index % 2 == 0:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                if index % 2 == 0:
                    page.keyboard.type(TYPED)
                else:
                    page.keyboard.press("Backspace")
                index += 1
            ended = time.monotonic()
            worker.join()
            page.wait_for_function(CHECKED, arg=checks, timeout=15_000)
            checked = int(page.evaluate(CHECKS)) - checks
        finally:
            page.close()
        time.sleep(CURATOR_SETTLE_S)  # the tab's processes gone before a run with no studio open
        if "error" in outcome:
            raise outcome["error"]
        if self.errors:
            raise BenchError(f"the studio page threw: {self.errors[:3]}")
        assert began is not None
        return outcome["value"], CuratorRun(pane=pane, keystrokes=index, checks=checked, seconds=ended - began)


def run_into(outcome: dict[str, Any], work: Callable[[], Any]) -> None:
    try:
        outcome["value"] = work()
    except BaseException as exc:  # raised again on the curator's thread
        outcome["error"] = exc


@contextlib.contextmanager
def curator_browser(exhibit: LoadExhibit, children: Children, nice: int = 0) -> Iterator[Curator]:
    """Debian's Chromium as :func:`run_studio` starts it (at CPU priority ``nice`` and all its processes with it,
    through a wrapper script, where not 0), closed afterwards; Playwright's errors as BenchError."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    chromium = curator_chromium(children.workdir, nice)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, locale="en-US")
            context.set_default_timeout(30_000)
            yield Curator(context, exhibit)
        except PlaywrightError as exc:
            raise children.failed(LOAD_ENGINE, f"the browser could not drive the studio: {exc}") from None
        finally:
            browser.close()


def curator_chromium(workdir: Path, nice: int) -> str:
    """Debian's Chromium as a curator's browser runs: as root (this bench's machine, often) it would raise its
    display and renderer threads above everything else (nice -8), which a user's browser may not, so it is started
    without CAP_SYS_NICE (``setpriv``), at ``nice``, by a wrapper script in ``workdir``."""
    chromium = find_chromium()
    command = f'nice -n {nice} "{chromium}"'
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = f"setpriv --bounding-set -sys_nice --inh-caps -sys_nice {command}"
    wrapper = workdir / "curator-chromium"
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return str(wrapper)


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of ``pid`` and of every process below it, by pid (those that can be read)."""
    seen: dict[int, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        seen[current] = cpu_seconds(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                pending += [int(child) for child in (task / "children").read_text().split()]
    return {key: value for key, value in seen.items() if math.isfinite(value)}


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


BROWSER_NICE = 0
"""The curator's browser's CPU priority: the exhibit's own, as a browser on the exhibit's computer has (at 19, as
the console bench's clients run, the ratio hardly changed on a 2-core machine: what the browser costs is mostly
its share of the cores while the control path's processes wake up 1,000 times a second, not a priority)."""


def cpu_snapshot(engine_pid: int) -> dict[str, float]:
    """CPU seconds so far by part: the exhibit's process, its render process, its other children (the checker's
    worker), and Chromium (every process of the bench's named ``chrom...``); and the seconds the exhibit's process's
    threads have waited for a core."""
    parts = dict.fromkeys(("engine", "render", "others", "browser"), 0.0)
    parts["engine_wait"] = run_queue_wait(engine_pid)
    engine = tree_cpu(engine_pid)
    for pid, seconds in engine.items():
        part = "engine" if pid == engine_pid else "render" if is_render(pid) else "others"
        parts[part] += seconds
    for pid, seconds in tree_cpu(os.getpid()).items():
        if pid not in engine and process_name(pid).startswith("chrom"):
            parts["browser"] += seconds
    return parts


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> CpuShare:
    """Cores busy between two snapshots (a process that ended in between counts for nothing after it)."""
    return CpuShare(**{part: max(0.0, after[part] - before[part]) / seconds for part in before})


def run_queue_wait(pid: int) -> float:
    """Seconds the process's threads have been ready to run but waiting for a core (Linux's schedstat), so far."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def is_render(pid: int) -> bool:
    """The render process is the exhibit's child with Panda3D loaded (spawned children share one command line)."""
    try:
        return b"libpanda" in Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False
