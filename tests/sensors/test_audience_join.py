"""`exhibit qr` (issue 19): the join address and its QR code for the wall, as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import segno
from PIL import Image

from sensors.audience.join import join_url
from sensors.audience.model import AudienceSensorConfig
from tests.conftest import run_launcher

EXHIBIT = """\
format_version: 1
id: joinable
title: {en: Joinable}
sensors:
  crowd:
    kind: audience
    port: 8091
    path: /join/
    public_url: http://10.0.0.5:8091/join/
    offers:
      lantern: {type: tap}
"""


def modules(png: Path, scale: int = 16, border: int = 4) -> np.ndarray:
    """The dark modules of a QR code picture, as a boolean matrix."""
    pixels = np.asarray(Image.open(png).convert("L"))
    centres = pixels[scale // 2 :: scale, scale // 2 :: scale]
    return (centres < 128)[border:-border, border:-border]


def test_qr_writes_a_code_that_holds_the_join_address(tmp_path: Path):
    (tmp_path / "exhibit.yaml").write_text(EXHIBIT, encoding="utf-8")
    done = run_launcher("qr", str(tmp_path / "exhibit.yaml"), "--out", str(tmp_path / "signage"))
    assert done.returncode == 0, done.stderr
    assert "crowd: http://10.0.0.5:8091/join/" in done.stdout
    png, svg = tmp_path / "signage" / "joinable-crowd-qr.png", tmp_path / "signage" / "joinable-crowd-qr.svg"
    expected = np.array(segno.make("http://10.0.0.5:8091/join/", error="q", micro=False).matrix, dtype=bool)
    assert np.array_equal(modules(png), expected)
    assert svg.read_text(encoding="utf-8").startswith("<?xml") and "http://10.0.0.5:8091/join/" in svg.read_text()


def test_without_a_public_address_it_is_this_computers_and_no_audience_is_one_sentence(tmp_path: Path):
    config = AudienceSensorConfig.model_validate({"kind": "audience", "port": 8090, "offers": {"a": {"type": "tap"}}})
    url = join_url(config)
    assert url.startswith("http://") and url.endswith(":8090/")
    assert join_url(config, host="192.168.1.20") == "http://192.168.1.20:8090/"
    (tmp_path / "exhibit.yaml").write_text(EXHIBIT.split("sensors:")[0], encoding="utf-8")
    done = run_launcher("qr", str(tmp_path / "exhibit.yaml"))
    assert done.returncode != 0 and "has no audience sensor" in done.stderr
