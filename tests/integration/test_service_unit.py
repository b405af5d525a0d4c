"""`exhibit service`: the systemd unit that runs an exhibit unattended (written to a folder of the test's own;
the system's systemd is never touched)."""

from __future__ import annotations

import configparser
import itertools
import subprocess
from pathlib import Path

from tests.conftest import ROOT, require_tool, run_launcher


def parse(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    unit.read_string(text)
    return unit


def test_the_unit_starts_at_boot_restarts_feeds_the_watchdog_and_runs_unprivileged_and_hardened() -> None:
    done = run_launcher("service", "install", "canal-lanterns", "--dry-run", "--user", "gallery")
    assert done.returncode == 0, done.stderr
    unit = parse(done.stdout)
    assert unit["Unit"]["After"] == "network-online.target" and unit["Install"]["WantedBy"] == "multi-user.target"
    service = unit["Service"]
    assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0 and service["Restart"] == "on-failure"
    assert service["User"] == "gallery" and service["KillSignal"] == "SIGINT"  # the clean stop: devices safe first
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == str(ROOT / "exhibits" / "canal-lanterns")
    start = service["ExecStart"].split()
    assert start[1:4] == [str(ROOT / "launcher.py"), "run", str(ROOT / "exhibits" / "canal-lanterns" / "exhibit.yaml")]
    assert "--simulate" not in start and "--headless" in start
    assert "运河灯影" in unit["Unit"]["Description"]


def test_install_and_uninstall_into_a_folder_and_root_is_refused(tmp_path: Path) -> None:
    done = run_launcher("service", "install", "canal-lanterns", "--user", "gallery", "--unit-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    written = tmp_path / "exhibit-canal-lanterns.service"
    assert parse(written.read_text(encoding="utf-8"))["Service"]["User"] == "gallery"
    done = run_launcher("service", "uninstall", "canal-lanterns", "--unit-dir", str(tmp_path))
    assert done.returncode == 0 and not written.exists()
    again = run_launcher("service", "uninstall", "canal-lanterns", "--unit-dir", str(tmp_path))
    assert again.returncode == 1 and "not installed" in again.stderr
    root = run_launcher("service", "install", "canal-lanterns", "--dry-run", "--user", "root")
    assert root.returncode == 1 and "never as root" in root.stderr and "Traceback" not in root.stderr


def test_systemd_itself_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    done = run_launcher("service", "install", "canal-lanterns", "--user", "gallery", "--unit-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    verify = subprocess.run(
        [require_tool("systemd-analyze"), "verify", str(tmp_path / "exhibit-canal-lanterns.service")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert "Unknown key" not in verify.stderr and "Unknown section" not in verify.stderr


def test_a_backup_nodes_unit_names_its_broker_node_role_and_state_folder() -> None:
    done = run_launcher(
        "service", "install", "canal-lanterns", "--dry-run", "--user", "gallery",
        "--broker", "mqtt://broker.museum:1883", "--node", "hall-b", "--role", "backup", "--takeover-after", "2.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    start = parse(done.stdout)["Service"]["ExecStart"].split()
    words = dict(itertools.pairwise(start))
    assert words["--broker"] == "mqtt://broker.museum:1883" and words["--node"] == "hall-b"
    assert words["--role"] == "backup" and words["--takeover-after"] == "2.5"
    assert words["--state-dir"] == "/var/lib/exhibit-controller/canal-lanterns"  # crash recovery survives reboots
    wrong = run_launcher(
        "service", "install", "canal-lanterns", "--dry-run", "--user", "gallery",
        "--role", "backup", "--takeover-after", "0",
    )  # fmt: skip
    assert wrong.returncode == 1 and "takeover" in wrong.stderr and "Traceback" not in wrong.stderr
