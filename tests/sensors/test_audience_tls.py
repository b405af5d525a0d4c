"""The audience page over HTTPS (issue 19): phones share their motion only with a secure page, so the audience
sensor serves the page and its WebSocket with a certificate and key (made here by the real openssl). A page and a
socket over TLS, a secure session cookie, a certificate that cannot be used stopping the start in one sentence,
and `check` reporting the certificate's problems at their lines."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.errors import UserError
from engine.problems import ExhibitInvalid
from engine.signals import SignalStore
from engine.validate import validate_text
from launcher import build_registry
from sensors.audience.driver import AudienceSensor
from sensors.audience.join import join_url
from sensors.audience.model import AudienceSensorConfig
from tests.support.certs import self_signed
from tests.support.net import free_port

OFFERS = {"lantern": {"type": "tap"}, "shake": {"type": "motion"}}


def config(port: int, cert: str = "page.crt", key: str = "page.key") -> AudienceSensorConfig:
    return AudienceSensorConfig.model_validate(
        {"kind": "audience", "host": "127.0.0.1", "port": port, "offers": OFFERS, "tls": {"cert": cert, "key": key}}
    )


def sensor_in(folder: Path, cfg: AudienceSensorConfig) -> tuple[AudienceSensor, SignalStore]:
    store = SignalStore()
    for name, kind in cfg.signal_types().items():
        store.declare(f"crowd.{name}", kind)
    context = DriverContext("t", store, MonotonicClock(), Resources(), base_dir=folder)
    return AudienceSensor("crowd", cfg, context), store


async def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_over_tls_the_page_and_its_socket_are_https_and_wss_and_the_cookie_is_secure(tmp_path: Path):
    cert, _ = self_signed(tmp_path, "page")
    port = free_port()
    sensor, store = sensor_in(tmp_path, config(port))
    await sensor.open()
    running = asyncio.create_task(sensor.run())
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        await until(lambda: sensor.health.status == "ok")
        url = f"https://127.0.0.1:{port}/"
        assert join_url(sensor.config, host="127.0.0.1") == url
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as phone:
            async with phone.get(url) as page:
                assert page.status == 200 and "lantern" not in page.cookies  # the page is the page
                cookie = page.cookies["aud"]
                assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
            async with phone.ws_connect(f"wss://127.0.0.1:{port}/ws", origin=url.rstrip("/")) as ws:
                assert json.loads((await ws.receive()).data)["t"] == "hello"
                for _ in range(3):
                    await ws.send_str(json.dumps({"t": "tap", "id": "lantern"}))
                await until(lambda: store.get("crowd.lantern.taps").value == 3, 5.0)
        async with aiohttp.ClientSession() as plain:  # plain HTTP on the TLS port gets no page
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(f"http://127.0.0.1:{port}/") as response:
                    await response.read()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_certificate_that_does_not_go_with_its_key_stops_the_start_in_one_sentence(tmp_path: Path):
    self_signed(tmp_path, "page")
    self_signed(tmp_path, "other")
    sensor, _ = sensor_in(tmp_path, config(free_port(), key="other.key"))
    with pytest.raises(UserError, match=r"The TLS certificate `.*page\.crt` or key `.*other\.key` of the audience "
                       r"page of `crowd` cannot be used: .*观众页面的 TLS 证书或私钥无法使用"):  # fmt: skip
        await sensor.open()
    assert sensor.process is None


EXHIBIT = """\
format_version: 1
id: secure-crowd
title: {en: Secure crowd}
sensors:
  crowd:
    kind: audience
    offers:
      shake: {type: motion}
    tls:
      cert: CERT
      key: KEY
"""


def problems(folder: Path, cert: str, key: str) -> list[str]:
    text = EXHIBIT.replace("CERT", cert).replace("KEY", key)
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, str(folder / "exhibit.yaml"), build_registry())
    return [str(problem).replace(str(folder) + "/", "") for problem in caught.value.problems]


def test_check_reports_a_missing_or_unusable_certificate_at_its_line(tmp_path: Path):
    self_signed(tmp_path, "page")
    self_signed(tmp_path, "other")
    validate_text(EXHIBIT.replace("CERT", "page.crt").replace("KEY", "page.key"), str(tmp_path / "e.yaml"),
                  build_registry())  # fmt: skip
    missing = problems(tmp_path, "gone.crt", "gone.key")
    assert any(p.startswith("exhibit.yaml:10:13") and "file `gone.crt` not found" in p for p in missing), missing
    assert any(p.startswith("exhibit.yaml:11:12") and "file `gone.key` not found" in p for p in missing), missing
    mismatched = problems(tmp_path, "page.crt", "other.key")
    assert len(mismatched) == 1 and mismatched[0].startswith("exhibit.yaml:10:7"), mismatched
    assert "the certificate `page.crt` and key `other.key` cannot be used" in mismatched[0]
