"""Visitor analytics keep no picture and no body (issue 17, "Done means", second bullet: the privacy test).

The real launcher runs an exhibit whose pose sensor reads a real video of a walking visitor and runs real MediaPipe
inference on every frame it can, with analytics on (a state folder, so the hour aggregates go to SQLite), its
devices on a real Mosquitto and its console on a free port. It runs under a Python audit hook
(:mod:`tests.support.audited_run`) that notes every file it opens for writing, every rename and every SQLite
database. Meanwhile an outside client keeps every MQTT message of the broker (``#``), and the console's pages
and API are fetched with an admin's API token. After a clean stop, every noted file, every file in the state and
exhibit folders, the process's own output, every MQTT payload and every HTTP body is scanned
(:mod:`tests.support.privacy_scan`): no image magic, no bytes of the frames the sensor saw, nothing as big as a
raw frame, no landmark array as text or binary. The analytics database holds its three tables and the records'
columns only, and real visitors in them (so the sensor did see someone, and the analytics did run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from engine.analytics.records import MEASURES
from engine.control.accounts import Accounts
from tests.conftest import ROOT, Mosquitto
from tests.support.frames import HEIGHT, WIDTH, walking, write_video
from tests.support.peers import TopicWatch, until
from tests.support.privacy_scan import Scan, binary_landmarks, frame_windows, text_landmarks, video_frames

pytestmark = pytest.mark.timeout(150)

EXHIBIT_ID = "privacy-analytics"
EXHIBIT = f"""\
format_version: 1
id: {EXHIBIT_ID}
title: {{en: Analytics keep no picture}}
sensors:
  body:
    kind: pose
    source: {{video: visit.avi}}
    num_poses: 2
    zones:
      left: {{polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}}
devices:
  screen:
    kind: mqtt
    properties:
      visitors: {{type: float, range: [0, 4], safe: 0}}
      x: {{range: [0, 1], safe: 0}}
mappings:
  - {{from: body.count, to: screen.visitors, input: [0, 4]}}
  - {{from: body.nearest.x, to: screen.x}}
analytics:
  interactions: [body.raise_both_hands, body.wave]
"""
CONSOLE = re.compile(r"Console / 控制台: (https?://[^/\s]+)/")
TABLES = {"schema_version", "meta", "records"}
COLUMNS = {"exhibit", "start", "measure", "key", "value", "written_at"}
SEEN_FOR = 6.0
"""Seconds of inference with the visitor in view before the console is read and the run stopped."""
NOT_FETCHED = ("/api/v1/ws", "/api/v1/studio/preview.mjpg", "/api/v1/studio/preview.jpg")
"""The WebSocket (read on its own below) and the studio's scene preview, a JPEG by design (what the exhibit's
screen shows, never the camera unless the exhibit opts in: tests/integration/test_studio_preview_privacy.py)."""


WATCHED = ["body.count", "body.nearest.x", "body.nearest.hands_raised", "body.zone.left.count", "body.visitors"]
"""Signals asked for on the console's WebSocket (as its signal inspector and its Visitors view do)."""
VISITORS = "signal/body.visitors"
"""The stream the console's Visitors view draws from: each visitor's id, features and box, scanned as the rest."""


def test_the_detectors_find_what_they_look_for():
    """The scan would see a leak: a landmark array in any of its usual shapes, a frame or a JPEG of it."""
    import cv2
    import numpy as np

    from tests.support.pose_synth import person

    landmarks = person()
    for text in (
        json.dumps(landmarks.tolist()),
        json.dumps(landmarks[:, :3].tolist()),
        str(landmarks),
        repr(landmarks),
        ",".join(str(v) for v in landmarks[:, :3].ravel()),
    ):
        assert text_landmarks(b"before " + text.encode() + b" after"), text[:60]
    for dtype in ("<f4", "<f8", ">f8"):
        assert binary_landmarks(b"\x01\x02\x03" + landmarks.astype(dtype).tobytes() + b"\x00" * 7), dtype
    frames = walking(4)
    scan = Scan(WIDTH * HEIGHT * 3, frame_windows(frames))
    scan.blob("raw rows", b"x" + frames[2][200:230].tobytes())
    scan.blob("jpeg", cv2.imencode(".jpg", frames[0])[1].tobytes())
    scan.blob("frame", np.zeros((HEIGHT, WIDTH, 3), np.uint8).tobytes())
    scan.blob(
        "health", json.dumps({"status": "ok", "fps": 12.5, "history": [[1.7e9 + i, 0.5] for i in range(300)]}).encode()
    )
    scan.blob("counts", json.dumps({"visitors": 3, "holding_s": {str(i): i % 4 for i in range(200)}}).encode())
    assert set(scan.findings) == {"raw rows", "jpeg", "frame"}, scan.findings


async def fetch_console(base: str, token: str) -> dict[str, bytes]:
    """Every GET route of the console without a parameter, and a few seconds of its WebSocket."""
    bodies: dict[str, bytes] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/api/openapi.json") as response:
            assert response.status == 200
            description = await response.read()
        bodies["/api/openapi.json"] = description
        paths = ["/", "/studio"] + [
            path
            for path, operations in json.loads(description)["paths"].items()
            if "get" in operations and "{" not in path and path not in NOT_FETCHED
        ]
        for path in dict.fromkeys(paths):
            async with http.get(base + path) as response:
                bodies[path] = await response.read()
                assert response.status < 500, (path, response.status, bodies[path][:300])
        assert any(path.startswith("/api/v1/state") for path in bodies), sorted(bodies)
        async with http.ws_connect(f"{base}/api/v1/ws") as ws:
            await ws.send_json({"op": "watch", "signals": WATCHED})
            deadline = time.monotonic() + 2.0
            k = 0
            while (left := deadline - time.monotonic()) > 0:
                try:
                    message = await ws.receive(timeout=left)
                except TimeoutError:
                    break
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                topic = json.loads(message.data).get("topic", "")
                bodies[f"/api/v1/ws {topic} #{k}"] = message.data.encode()
                k += 1
    return bodies


def written_paths(audit_log: Path) -> dict[str, set[str]]:
    """What the audit hook noted: path -> the events that named it (``import`` too when it was noted while a
    module was imported)."""
    noted: dict[str, set[str]] = {}
    for line in audit_log.read_text().splitlines():
        entry = json.loads(line)
        noted.setdefault(entry["path"], set()).update({entry["event"]} | ({"import"} if entry["importing"] else set()))
    return noted


def new_files(folder: Path, since: float) -> list[Path]:
    """Plain files directly in ``folder`` changed since ``since``."""
    found = []
    for path in folder.iterdir():
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                found.append(path)
        except OSError:
            continue
    return found


def replaced_by(path: Path) -> bool:
    """Whether ``path`` is the temporary file of an atomic write (``.NAME.<random>.tmp`` / ``.partial``) whose
    file ``NAME`` is there (and scanned)."""
    return (
        path.name.startswith(".")
        and path.parent.is_dir()
        and any(path.name.startswith(f".{sibling.name}.") for sibling in path.parent.iterdir() if sibling.is_file())
    )


@dataclass
class Run:
    """One audited run of the exhibit and what it sent."""

    tmp_path: Path
    folder: Path
    started: float = field(default_factory=time.time)
    payloads: list[tuple[str, bytes]] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.tmp_path / "state"

    @property
    def audit_log(self) -> Path:
        return self.tmp_path / "audit-hook.jsonl"

    @property
    def output(self) -> Path:
        return self.tmp_path / "controller.log"

    def launch(self, broker: str) -> subprocess.Popen[bytes]:
        with self.output.open("wb") as out:
            return subprocess.Popen(
                [
                    sys.executable, str(ROOT / "tests" / "support" / "audited_run.py"), str(self.audit_log),
                    "run", str(self.folder / "exhibit.yaml"), "--broker", broker, "--headless", "--no-render",
                    "--no-reload", "--console-port", "0", "--state-dir", str(self.state),
                    "--accounts", str(self.tmp_path / "accounts.json"),
                    "--audit-log", str(self.tmp_path / "audit.log"), "--duration", "90",
                ],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )  # fmt: skip

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def written(self, noted: dict[str, set[str]]) -> set[Path]:
        """Every file the run wrote that is there: noted by the audit hook (a database with its journals), in the
        test's folder, or new in the temporary folder (what C code, which the hook does not see, may leave)."""
        files: set[Path] = set()
        for name, events in noted.items():
            path = Path(name)
            if path.is_relative_to("/dev") or path.is_relative_to("/proc"):
                continue
            candidates = [path]
            if "sqlite3.connect" in events:
                candidates += [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal", "-shm")]
            files.update(p for p in candidates if p.is_file())
        ours = {
            self.folder / "visit.avi",
            self.folder / "exhibit.yaml",
            self.tmp_path / "accounts.json",
            self.tmp_path / "mosquitto.conf",
            self.audit_log,
            self.output,
        }
        files.update(p for p in self.tmp_path.rglob("*") if p.is_file() and p not in ours)
        files.update(new_files(Path(tempfile.gettempdir()), self.started))
        return files


async def test_analytics_on_real_inference_keep_no_image_and_no_landmarks(tmp_path: Path, mosquitto: Mosquitto):
    folder = tmp_path / EXHIBIT_ID
    folder.mkdir()
    write_video(folder / "visit.avi", walking(60))
    (folder / "exhibit.yaml").write_text(EXHIBIT, encoding="utf-8")
    token = Accounts(tmp_path / "accounts.json").add_token("auditor", "admin")
    run = Run(tmp_path, folder)

    async with TopicWatch(mosquitto.port, "#", "privacy-analytics-watch") as watch:
        controller = run.launch(mosquitto.url)
        try:
            await until(
                "the console is served",
                lambda: CONSOLE.search(run.log()) is not None or controller.poll() is not None,
                30,
                run.log,
            )
            assert controller.poll() is None, run.log()
            match = CONSOLE.search(run.log())
            assert match is not None
            screen = f"exhibit/{EXHIBIT_ID}/devices/screen/set"
            await until(
                "the pose sensor sees the visitor (real inference) and the count reaches MQTT",
                lambda: any(t == screen and json.loads(p).get("visitors", 0) > 0 for t, p in list(watch.history)),
                45,
                lambda: run.log()[-2000:],
            )
            await asyncio.sleep(SEEN_FOR)  # the visitor walks through, again and again (the video loops)
            run.bodies = await fetch_console(match.group(1), token)
        finally:
            if controller.poll() is None:
                controller.send_signal(signal.SIGTERM)  # a clean stop: the analytics' last flush
            code = await asyncio.to_thread(controller.wait, 30)
        await asyncio.sleep(0.3)  # what was published last is still on its way through the broker
        run.payloads = list(watch.history)

    assert code == 0, run.log()[-3000:]
    check(run)


def check(run: Run) -> None:
    """Everything the run wrote, published or served, scanned; then the analytics database itself."""
    scan = Scan(WIDTH * HEIGHT * 3, frame_windows(video_frames(run.folder / "visit.avi")))  # as the sensor decoded
    noted = written_paths(run.audit_log)
    files = run.written(noted)
    for path in sorted(files):
        scan.file(path)
    scan.blob("the controller's output", run.log().encode())
    for k, (topic, payload) in enumerate(run.payloads):
        scan.blob(f"MQTT #{k} {topic}", payload)
    for route, body in run.bodies.items():
        scan.blob(f"HTTP {route}", body)

    database = run.state / "analytics.sqlite"
    assert database in files and not (run.state / "analytics-simulated.sqlite").exists(), sorted(noted)
    assert len(run.payloads) > 20 and len(run.bodies) > 5, (len(run.payloads), sorted(run.bodies))
    assert scan.findings == {}, json.dumps(scan.findings, indent=1)[:4000]
    seen = [
        visitor
        for route, body in run.bodies.items()
        if route.startswith(f"/api/v1/ws {VISITORS} ")
        for visitor in json.loads(body)["data"]["value"] or []
    ]
    assert seen and all(visitor["box"] for visitor in seen), "the Visitors view's stream had nobody: nothing to scan"
    # A file written then removed could not be read: only an atomic write's temporary file (its result was read)
    # or a library's probe while it was imported (before any frame) may be gone.
    gone = [
        name
        for name, events in noted.items()
        if not Path(name).exists() and "import" not in events and not replaced_by(Path(name))
    ]
    assert gone == [], f"written, then removed before it could be read: {gone}"

    # The analytics database: its own tables, the records' columns, measures and short keys only; real visitors.
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
        rows = db.execute("SELECT exhibit, measure, key, typeof(value) FROM records").fetchall()
        totals = dict(db.execute("SELECT measure, SUM(value) FROM records GROUP BY measure").fetchall())
    print(
        f"scanned {scan.looked_at} blobs: {len(files)} files, {len(run.payloads)} MQTT "
        f"messages, {len(run.bodies)} HTTP bodies; analytics {totals}"
    )
    assert tables == TABLES and columns == COLUMNS, (tables, columns)
    assert rows and all(exhibit == EXHIBIT_ID and measure in MEASURES for exhibit, measure, _, _ in rows), rows
    assert all(len(key) <= 40 and kind == "real" for _, _, key, kind in rows), rows
    assert totals.get("visitors", 0) >= 1 and totals.get("occupancy_s", 0) > 1.0, totals
