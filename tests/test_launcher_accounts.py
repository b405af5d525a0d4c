"""`exhibit user ...` and `exhibit token ...` end to end, as an installer's script would call them, and the
console and audit options of `exhibit run`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from engine.control.accounts import Accounts
from launcher import default_audit_log
from tests.conftest import ROOT


def exhibit(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "launcher.py"), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_users_are_added_listed_and_removed_from_the_command_line(tmp_path):
    file = tmp_path / "accounts.json"
    added = exhibit(
        "user", "add", "alice", "--role", "admin", "--password-stdin", "--accounts", str(file), stdin="pass word 1\n"
    )
    assert added.returncode == 0, added.stderr
    assert "alice" in added.stdout and "已保存用户" in added.stdout
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert "pass word 1" not in file.read_text()
    assert Accounts(file).check_password("alice", "pass word 1") == "admin"  # the real scrypt cost, end to end

    listed = exhibit("user", "list", "--accounts", str(file))
    assert listed.returncode == 0
    assert [line.split()[:3] for line in listed.stdout.splitlines()[1:]] == [["alice", "admin", "管理员"]]

    again = exhibit("user", "add", "alice", "--password-stdin", "--accounts", str(file), stdin="other pass\n")
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "--replace" in again.stderr and "已存在" in again.stderr

    short = exhibit("user", "add", "bob", "--password-stdin", "--accounts", str(file), stdin="short\n")
    assert short.returncode == 1 and "密码太短" in short.stderr
    no_terminal = exhibit("user", "add", "bob", "--accounts", str(file))
    assert no_terminal.returncode == 1 and "--password-stdin" in no_terminal.stderr
    bad_role = exhibit("user", "add", "bob", "--role", "root", "--password-stdin", "--accounts", str(file))
    assert bad_role.returncode == 1 and "viewer, operator, admin" in bad_role.stderr

    removed = exhibit("user", "remove", "alice", "--accounts", str(file))
    assert removed.returncode == 0 and "已删除用户" in removed.stdout
    empty = exhibit("user", "list", "--accounts", str(file))
    assert "exhibit user add NAME --role operator" in empty.stdout and "还没有用户" in empty.stdout
    gone = exhibit("user", "remove", "alice", "--accounts", str(file))
    assert gone.returncode == 1 and "没有用户" in gone.stderr


def test_a_token_is_printed_once_and_only_its_hash_kept(tmp_path):
    file = tmp_path / "deep" / "accounts.json"  # the folder is created, private
    env = {"EXHIBIT_ACCOUNTS": str(file)}  # the default place, without --accounts
    added = exhibit("token", "add", "companion", "--role", "operator", env=env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()  # alone on standard output, for TOKEN=$(exhibit token add ...)
    assert "\n" not in token and len(token) >= 40
    assert "shown only this once" in added.stderr and "只显示这一次" in added.stderr
    assert token not in file.read_text()
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert Accounts(file).check_token(token) == ("companion", "operator")

    listed = exhibit("token", "list", env=env)
    assert "companion" in listed.stdout and token not in listed.stdout
    assert exhibit("token", "remove", "companion", env=env).returncode == 0
    assert Accounts(file).check_token(token) is None
    bad = exhibit("token", "add", "no spaces", env=env)
    assert bad.returncode == 1 and "令牌名" in bad.stderr


def test_run_checks_the_console_port_and_writes_the_audit_log_it_is_given(tmp_path):
    wrong = exhibit("run", "canal-lanterns", "--console-port", "70000")
    assert wrong.returncode == 1
    assert "--console-port" in wrong.stderr and "65535" in wrong.stderr and wrong.stderr.count("\n") == 1

    audit = tmp_path / "logs" / "audit.log"
    ran = exhibit(
        "run", "canal-lanterns", "--simulate", "--no-render", "--headless", "--no-console",
        "--duration", "0.5", "--embedded-port", "0", "--audit-log", str(audit),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert audit.is_file()


def test_the_audit_log_lives_in_the_state_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_audit_log("canal-lanterns") == tmp_path / "exhibit-controller" / "canal-lanterns" / "audit.log"
    monkeypatch.setenv("XDG_STATE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_audit_log("x") == Path(
        tmp_path / "home" / ".local" / "state" / "exhibit-controller" / "x" / "audit.log"
    )
