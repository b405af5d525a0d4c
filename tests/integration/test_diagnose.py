"""Log files, health history and `exhibit diagnose`, through the real launcher: a run leaves its logs and health
history in its state folder, and the support bundle holds what support needs and none of the secrets or pictures
planted beside them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from engine.diagnose import save_bench_output
from engine.diagnose.redact import MASK, Redactor
from tests.conftest import FLAGSHIP, run_launcher
from tests.support.net import free_port

pytestmark = pytest.mark.timeout(120)

SECRETS = ("hunter2", "pw-in-url", "ONE-TIME-LINK-TOKEN", "yaml-secret-x", "bearer-abcdef123456", "audit-token-77")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def flagship_copy(tmp_path: Path) -> Path:
    """The flagship (with its recordings), on free OSC ports so that no other run is in its way."""
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP.parent, folder)
    exhibit = folder / "exhibit.yaml"
    text = exhibit.read_text(encoding="utf-8")
    exhibit.write_text(
        text.replace("port: 9000", f"port: {free_port()}").replace("port: 9001", f"port: {free_port()}"),
        encoding="utf-8",
    )
    return exhibit


def run_briefly(exhibit: Path, state: Path) -> tuple[int, str]:
    result = run_launcher(
        "run", str(exhibit), "--simulate", "--headless", "--no-render", "--no-console", "--no-reload",
        "--duration", "2", "--embedded-port", str(free_port()), "--state-dir", str(state),
    )  # fmt: skip
    return result.returncode, result.stderr


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        found = {}
        for info in tar.getmembers():
            extracted = tar.extractfile(info)
            assert extracted is not None
            found[info.name.split("/", 1)[1]] = extracted.read()
        return found


def test_a_run_keeps_its_logs_and_health_and_diagnose_bundles_them_without_secrets_or_pictures(
    tmp_path: Path, private_state: Path
):
    exhibit = flagship_copy(tmp_path)
    state = tmp_path / "state"
    returncode, stderr = run_briefly(exhibit, state)
    assert returncode == 0, stderr

    log_file = state / "logs" / "exhibit.log"
    logged = log_file.read_text(encoding="utf-8")
    started = next(line for line in stderr.splitlines() if "exhibit canal-lanterns started" in line)
    assert started in logged.splitlines(), stderr  # the terminal's very line
    assert "exhibit canal-lanterns stopped" in logged
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o640
    health = [json.loads(line) for line in (state / "health.jsonl").read_text(encoding="utf-8").splitlines()]
    assert health[0]["why"] == "start" and health[-1]["why"] == "stop"
    assert any(line["why"] == "change" for line in health), health  # at least the stop's
    assert "body" in health[0]["components"]

    # What a support bundle must never carry, planted where the bundle looks.
    with log_file.open("a", encoding="utf-8") as log:
        log.write("2026-01-01T00:00:00.000 INFO    console: login failed, password=hunter2\n")
        log.write("2026-01-01T00:00:01.000 INFO    mqtt: broker mqtt://venue:pw-in-url@10.0.0.5:1883\n")
        log.write("Console / 控制台: http://127.0.0.1:8080/login?token=ONE-TIME-LINK-TOKEN\n")
        log.write("2026-01-01T00:00:02.000 DEBUG   http: Authorization: Bearer bearer-abcdef123456\n")
    (state / "audit.log").write_text(json.dumps({"who": "api", "params": {"token": "audit-token-77"}}) + "\n")
    (state / "accounts.json").write_text(json.dumps({"users": {"alice": {"hash": "hunter2"}}}))
    (exhibit.parent / "venue.yaml").write_text("venue:\n  wifi_password: yaml-secret-x\n  name: Hall 3\n")
    (exhibit.parent / "visitor.png").write_bytes(PNG)
    (exhibit.parent / "assets").mkdir()
    (exhibit.parent / "assets" / "frame.jpg").write_bytes(JPEG)
    (exhibit.parent / "assets" / "snapshot.json").write_bytes(PNG)  # a picture under a text file's name
    bench = private_state / "exhibit-controller" / "bench"
    assert save_bench_output('{"osc_to_mqtt_latency_p99": {"value": 0.8}}\n', bench) == bench / "latest.json"

    out = tmp_path / "support.tar.gz"
    result = run_launcher("diagnose", str(exhibit), "--state-dir", str(state), "--out", str(out))
    assert result.returncode == 0, result.stderr
    said = result.stdout.strip().splitlines()
    assert len(said) == 1 and str(out) in said[0] and " / 支持包" in said[0]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    found = members(out)
    everything = b"\n".join(found.values())
    for secret in SECRETS:
        assert secret.encode() not in everything, secret
    assert not any(name.endswith((".png", ".jpg")) for name in found)
    assert b"\x89PNG" not in everything and b"\xff\xd8\xff" not in everything
    assert "accounts.json" not in " ".join(found)
    assert found["exhibit/exhibit.yaml"] == exhibit.read_bytes()  # nothing secret in it: unchanged
    assert b"name: Hall 3" in found["exhibit/venue.yaml"] and MASK.encode() in found["exhibit/venue.yaml"]
    assert "exhibit/recordings/visitors.jsonl.gz" not in found
    assert b": ok (canal-lanterns: " in found["check.txt"]
    versions = json.loads(found["versions.json"])
    assert versions["version"] and versions["python"].startswith("3.")
    assert {"numpy", "pydantic", "paho-mqtt"} <= set(versions["packages"])
    assert started.encode() in found["logs/exhibit.log"]
    assert b"login?token=" + MASK.encode() in found["logs/exhibit.log"]
    assert b"mqtt://venue:" + MASK.encode() + b"@10.0.0.5" in found["logs/exhibit.log"]
    assert found["health/health.jsonl"].count(b"\n") == len(health)
    assert json.loads(found["bench/latest.json"]) == {"osc_to_mqtt_latency_p99": {"value": 0.8}}
    assert b"audit.log" in found["state/listing.txt"]
    manifest = found["MANIFEST.txt"].decode()
    assert "exhibit/visitor.png" in manifest and "exhibit/assets/frame.jpg" in manifest
    assert "password in a URL: 1" in manifest and "secret in a link: 1" in manifest


def test_a_log_folder_that_cannot_be_written_does_not_stop_the_run(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "logs").write_text("a file where the log folder should be")
    returncode, stderr = run_briefly(flagship_copy(tmp_path), state)
    assert returncode == 0, stderr
    assert stderr.count("warning: cannot write log files") == 1
    assert "exhibit canal-lanterns stopped" in stderr and "Traceback" not in stderr
    assert (state / "health.jsonl").is_file()  # the rest of the state folder is kept as ever


def test_an_exhibit_that_does_not_check_is_diagnosed_too(tmp_path: Path, private_state: Path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "exhibit.yaml").write_text("format_version: 1\nid: broken-one\ntitle: {en: Broken}\nsensors: 12\n")
    os.chdir(tmp_path)  # the bundle goes to the working folder by default: the launcher runs in the project's
    result = run_launcher("diagnose", str(folder))
    assert result.returncode == 0, result.stderr
    written = [Path(word) for word in result.stdout.split() if word.endswith(".tar.gz")]
    assert len(written) == 1 and written[0].name.startswith("exhibit-diagnose-broken-one-")
    try:
        found = members(written[0])
    finally:
        written[0].unlink()
    assert b"sensors" in found["check.txt"] and b"problem" in found["check.txt"]
    assert "no state folder" in found["MANIFEST.txt"].decode()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("mqtt://user:s3cret@host:1883/x", "mqtt://user:[REDACTED]@host:1883/x"),
        ("  password: hunter2  # the venue's", "  password: [REDACTED]  # the venue's"),
        ('{"api_key": "abc", "keyframes": [1]}', '{"api_key": "[REDACTED]", "keyframes": [1]}'),
        ("security: {username: u, password_env: MQTT_PASS}", "security: {username: u, password_env: MQTT_PASS}"),
        ("Cookie: session=abc; theme=dark", "Cookie: [REDACTED]"),
        ("GET /x?next=/&access_token=zz9&y=1", "GET /x?next=/&access_token=[REDACTED]&y=1"),
        ("auth ok for token=abc123, role=admin", "auth ok for token=[REDACTED], role=admin"),
        ("credentials: {user: a, client_secret: 'q w'}", "credentials: {user: a, client_secret: '[REDACTED]'}"),
        ("sensor body offline (no frames)", "sensor body offline (no frames)"),
    ],
)
def test_redaction(text: str, kept: str):
    assert Redactor().text(text) == kept


def test_bench_output_is_kept_as_json_or_as_the_table(tmp_path: Path):
    assert save_bench_output("", tmp_path) is None
    assert save_bench_output("figure  value\nosc 1.0\n", tmp_path) == tmp_path / "latest.txt"
    assert save_bench_output('{"a": {"value": 1}}', tmp_path) == tmp_path / "latest.json"
    assert json.loads((tmp_path / "latest.json").read_text()) == {"a": {"value": 1}}
