"""`launcher.py models`: the shipped model works offline; official bundles install
from a mirror; offline installs fail with one sentence."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

from sensors.pose import models
from tests.conftest import run_launcher


def test_the_shipped_model_is_listed_with_its_notice(tmp_path: Path):
    result = run_launcher("models", env={"EXHIBIT_MODELS_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "full     shipped" in result.stdout
    notice = (models.SHIPPED_DIR / "NOTICE").read_text()
    assert "Apache License 2.0" in notice and models.SHIPPED_SHA256 in notice
    assert models.sha256(models.SHIPPED["full"]) == models.SHIPPED_SHA256


def test_install_from_a_mirror(tmp_path: Path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pose_landmarker_lite.task").write_bytes(models.SHIPPED["full"].read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "EXHIBIT_MODELS_DIR": str(tmp_path / "models"),
            "EXHIBIT_MODELS_URL": f"http://127.0.0.1:{server.server_port}/pose_landmarker_{{name}}.task",
        }
        result = run_launcher("models", "--install", "lite", env=env)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "lite     installed" in result.stdout
    assert (tmp_path / "models" / "pose_landmarker_lite.task").stat().st_size > 1_000_000


def test_offline_install_is_one_sentence(tmp_path: Path):
    env = {"EXHIBIT_MODELS_DIR": str(tmp_path), "EXHIBIT_MODELS_URL": "http://127.0.0.1:9/pose_landmarker_{name}.task"}
    result = run_launcher("models", "--install", "heavy", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: This machine cannot download the `heavy` model")
    assert not list(tmp_path.iterdir())  # no half-written file left behind
    assert os.environ.get("EXHIBIT_MODELS_DIR") != str(tmp_path)
