"""`exhibit privacy`: the disclosure is derived from the exhibit file (issue 17, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.analytics.disclosure import disclose, disclosure_text
from engine.validate import validate_text
from launcher import main

CAMERA = """\
format_version: 1
id: privacy-camera
title: {en: Lanterns, zh: 灯影}
sensors:
  body:
    kind: pose
    source: {camera: /dev/v4l/by-id/usb-cam, width: 1280, height: 720, fps: 25}
    num_poses: 3
    floor:
      image_points: [[0, 0], [1, 0], [1, 1], [0, 1]]
      floor_points: [[0, 0], [5, 0], [5, 4], [0, 4]]
    zones:
      bridge: {polygon: [[0.2, 0.5], [0.8, 0.5], [0.8, 1.0], [0.2, 1.0]]}
analytics:
  retention: 30d
  k: 7
  heatmap_cell: 0.75
"""

VIDEO_OFF = """\
format_version: 1
id: privacy-off
title: {en: Rehearsal}
sensors:
  body:
    kind: pose
    source: {video: visit.avi}
analytics:
  enabled: false
"""

NO_SENSOR = """\
format_version: 1
id: privacy-none
title: {en: Quiet}
"""


def _disclosure(registry, text: str, tmp_path: Path):
    (tmp_path / "visit.avi").touch()  # validation checks that the named files exist
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    return disclose(exhibit, tmp_path / "state")


def test_a_camera_with_analytics_on(registry, tmp_path: Path) -> None:
    disclosure = _disclosure(registry, CAMERA, tmp_path)
    assert [(c.sensor, c.where) for c in disclosure.cameras] == [("body", "/dev/v4l/by-id/usb-cam")]
    assert disclosure.database == tmp_path / "state" / "analytics.sqlite"
    text = disclosure_text(disclosure)
    assert "camera /dev/v4l/by-id/usb-cam (1280×720, 25 fps)" in text
    assert "摄像头 /dev/v4l/by-id/usb-cam" in text
    assert "up to 3 visitors at once" in text and "最多同时 3 人" in text
    assert "`bridge`" in text
    assert "for the heatmap (0.75 m squares)" in text and "0.75 米方格" in text  # it has a floor calibration
    assert "web console, to signed-in staff only" in text and "never an image or a landmark" in text
    assert "kept 30 days" in text and "保存 30 天" in text
    assert str(tmp_path / "state" / "analytics.sqlite") in text
    assert "fewer than 7 visitors" in text and "少于 7 位参观者" in text
    assert "visitors, stopped, holding_s" in text  # the measures kept, from engine.analytics.records
    assert "No image or video of visitors is ever written" in text
    assert "从不写入、记录、发布或发送任何参观者的图像或视频" in text
    assert "Nothing about visitors is stored" not in text


def test_analytics_off_stores_nothing(registry, tmp_path: Path) -> None:
    disclosure = _disclosure(registry, VIDEO_OFF, tmp_path)
    assert disclosure.cameras == [] and disclosure.database is None
    text = disclosure_text(disclosure)
    assert "Nothing about visitors is stored (analytics are off)." in text
    assert "不保存任何参观者数据" in text
    assert "video file `visit.avi`" in text
    assert "analytics.sqlite" not in text and "k-anonymous" not in text
    assert "for the heatmap" not in text  # no floor calibration


def test_an_exhibit_without_a_pose_sensor(registry, tmp_path: Path) -> None:
    text = disclosure_text(_disclosure(registry, NO_SENSOR, tmp_path))
    assert "None: this exhibit has no camera." in text
    assert "Nothing about visitors is stored" in text


def _exhibit_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "exhibit"
    folder.mkdir()
    (folder / "exhibit.yaml").write_text(text, encoding="utf-8")
    return folder


def test_the_command_prints_the_disclosure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _exhibit_folder(tmp_path, CAMERA)
    assert main(["privacy", str(folder), "--state-dir", str(tmp_path / "node")]) == 0
    out = capsys.readouterr().out
    assert "Sensors that see visitors / 看到参观者的传感器" in out
    assert str(tmp_path / "node" / "analytics.sqlite") in out
    assert not list(tmp_path.glob("**/*.sqlite"))  # it says where, it creates nothing


def test_signage_without_a_contact_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _exhibit_folder(tmp_path, CAMERA)
    assert main(["privacy", str(folder), "--signage", str(tmp_path / "signs")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "--contact" in captured.err and "联系方式" in captured.err
    assert not (tmp_path / "signs").exists()


def test_signage_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _exhibit_folder(tmp_path, CAMERA)
    signs = tmp_path / "signs"
    argv = [
        "privacy",
        str(folder),
        "--signage",
        str(signs),
        "--contact",
        "服务台 021-5555 0100",
        "--venue",
        "运河博物馆",
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in signs.iterdir()) == ["privacy-camera-signage.html", "privacy-camera-signage.pdf"]
    assert "privacy-camera-signage.pdf" in capsys.readouterr().out
