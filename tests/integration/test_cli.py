"""The command line as a user meets it: one clear sentence for a mistake, never a traceback."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import FLAGSHIP, ROOT, free_port, run_launcher


def copy_flagship(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """The flagship folder (with its recordings) copied, and its exhibit file edited."""
    folder = tmp_path / "canal-lanterns"
    shutil.copytree(FLAGSHIP.parent, folder)
    exhibit = folder / "exhibit.yaml"
    exhibit.write_text(edit(exhibit.read_text(encoding="utf-8")), encoding="utf-8")
    return exhibit


def test_flagship_runs_on_the_embedded_defaults_with_simulated_sensors():
    result = run_launcher(
        "run", "canal-lanterns", "--simulate", "--headless", "--duration", "2", "--embedded-port", str(free_port())
    )
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "embedded MQTT broker (amqtt) listening" in log
    assert "connected to the MQTT broker" in log
    assert "all 7 devices are in their safe state" in log
    assert "pose sensor body is simulated from recordings/visitors.jsonl.gz" in log
    assert "published offline" in log
    assert "Traceback" not in log


def test_the_console_script_is_the_same_program():
    exhibit = Path(sys.executable).parent / "exhibit"
    assert exhibit.is_file(), "the `exhibit` console script is installed by `pip install -e .`"
    import subprocess

    result = subprocess.run([str(exhibit), "check", str(FLAGSHIP)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout


def test_missing_exhibit_is_one_sentence():
    result = run_launcher("run", "no-such-exhibit")
    assert result.returncode == 1
    assert result.stderr.startswith("error: No exhibit file found at `no-such-exhibit`")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_sentence(tmp_path: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", 0))
        port = holder.getsockname()[1]
        exhibit = copy_flagship(tmp_path, lambda text: text.replace("port: 9000", f"port: {port}"))
        result = run_launcher("run", str(exhibit), "--duration", "5", "--embedded-port", str(free_port()))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: UDP port {port} is already in use, so OSC sensor `controls` cannot listen on "
        f"0.0.0.0:{port}; stop the other program or choose another port."
    ]
    assert "Traceback" not in result.stderr


def test_a_bad_broker_url_is_one_sentence():
    result = run_launcher("run", "canal-lanterns", "--broker", "http://example")
    assert result.returncode == 1
    assert "error: The broker address is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_broker_is_not_fatal():
    port = free_port()
    result = run_launcher(
        "run", "canal-lanterns", "--simulate", "--broker", f"mqtt://127.0.0.1:{port}", "--duration", "2"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("waiting for the MQTT broker") == 1
    assert "exhibit canal-lanterns stopped" in result.stderr


def test_run_refuses_an_invalid_exhibit_and_starts_nothing(tmp_path: Path):
    exhibit = copy_flagship(tmp_path, lambda text: text.replace("kind: mqtt", "kind: mqtt\n    colour: red", 1))
    line = exhibit.read_text().splitlines().index("    colour: red") + 1
    result = run_launcher("run", str(exhibit), "--duration", "1")
    assert result.returncode == 2
    assert f"{exhibit}:{line}:5: unknown key `colour`" in result.stderr
    assert "nothing was started" in result.stderr
    assert "exhibit canal-lanterns started" not in result.stderr and "broker" not in result.stderr


def test_list_shows_the_flagship_bilingually():
    result = run_launcher("list")
    assert result.returncode == 0
    assert "canal-lanterns" in result.stdout and "运河灯影" in result.stdout


def test_json_logs_are_one_object_per_line():
    result = run_launcher(
        "--log-format",
        "json",
        "run",
        "canal-lanterns",
        "--simulate",
        "--duration",
        "1",
        "--embedded-port",
        str(free_port()),
    )
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert any(e["logger"] == "engine.runtime" and "started" in e["msg"] for e in entries)


def test_help_lists_every_subcommand():
    result = run_launcher("--help")
    for command in ("check", "run", "schema", "list", "bench"):
        assert command in result.stdout
    assert (ROOT / "launcher.py").is_file()


def test_a_missing_mqtt_password_is_one_sentence(tmp_path: Path):
    exhibit = copy_flagship(
        tmp_path,
        lambda text: text.replace(
            "  prefix: exhibit\n",
            "  prefix: exhibit\n  security: {username: show, password_env: EXHIBIT_TEST_NO_SUCH_VAR}\n",
        ),
    )
    result = run_launcher("run", str(exhibit), "--duration", "1", "--embedded-port", str(free_port()))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "EXHIBIT_TEST_NO_SUCH_VAR" in errors[0]
    assert "Traceback" not in result.stderr
