"""Accounts, sessions, login links and login limits: passwords hashed with scrypt, the file private and
written atomically, changes made by another process seen at once, tokens never stored in clear."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from engine.control import accounts as accounts_module
from engine.control.accounts import (
    Accounts,
    LoginLimiter,
    LoginLinks,
    Sessions,
    hash_password,
    verify_password,
)
from engine.errors import UserError


@pytest.fixture
def cheap(monkeypatch):
    """A small scrypt cost for new hashes, so that the tests stay fast (the real one is tested below)."""
    monkeypatch.setattr(accounts_module, "SCRYPT_N", 2**10)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "accounts.json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- passwords -----------------------------------------------------------------------------------------


def test_the_real_cost_hashes_and_verifies():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)


def test_hashes_are_salted_and_carry_their_parameters(cheap, monkeypatch):
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second
    assert first.startswith("scrypt$1024$8$1$")
    monkeypatch.setattr(accounts_module, "SCRYPT_N", 2**11)  # a later, higher cost
    assert verify_password("same password", first)  # the old hash still works: it says how it was made
    assert hash_password("x" * 8).startswith("scrypt$2048$")


def test_unicode_forms_of_one_password_match(cheap):
    assert verify_password("caf\u0065\u0301-pass", hash_password("caf\u00e9-pass"))


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1024$8$1$c2FsdA$aGFzaA",
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",  # would need 128 GiB
        "scrypt$1024$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",  # a hash too short to mean anything
        "scrypt$x$8$1$salt$hash",
    ],
)
def test_malformed_or_dangerous_hashes_never_match(stored):
    assert not verify_password("any password", stored)


# --- the accounts file ---------------------------------------------------------------------------------


def test_users_log_in_with_their_password_only(cheap, path):
    accounts = Accounts(path)
    assert not accounts.has_users
    accounts.add_user("alice", "s3cret-pass", "operator")
    assert accounts.has_users
    assert accounts.check_password("alice", "s3cret-pass") == "operator"
    assert accounts.check_password("alice", "wrong-pass") is None
    assert accounts.check_password("mallory", "s3cret-pass") is None
    assert [(u.name, u.role) for u in accounts.users()] == [("alice", "operator")]
    assert accounts.users()[0].created.endswith("Z")


def test_the_file_is_private_holds_no_password_and_is_replaced_whole(cheap, path):
    accounts = Accounts(path)
    accounts.add_user("alice", "first-password", "admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "first-password" not in text
    assert json.loads(text)["users"]["alice"]["hash"].startswith("scrypt$")

    with path.open() as before:  # a reader that opened the file keeps a whole, valid old file
        accounts.add_user("bob", "second-password", "viewer")
        old = json.loads(before.read())
    assert set(old["users"]) == {"alice"}
    assert set(json.loads(path.read_text())["users"]) == {"alice", "bob"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["accounts.json"]  # no temporary file left


def test_a_change_by_another_process_is_seen_without_a_restart(cheap, path):
    running = Accounts(path)  # the show's copy
    assert running.check_password("alice", "s3cret-pass") is None
    Accounts(path).add_user("alice", "s3cret-pass", "operator")  # `exhibit user add` meanwhile
    assert running.check_password("alice", "s3cret-pass") == "operator"

    data = json.loads(path.read_text())
    data["users"]["alice"]["role"] = "viewer"  # edited by hand, in place
    path.write_text(json.dumps(data, indent=4))
    assert running.check_password("alice", "s3cret-pass") == "viewer"

    Accounts(path).remove_user("alice")
    assert running.check_password("alice", "s3cret-pass") is None
    assert not running.has_users


def test_a_broken_file_is_refused_at_start_and_ignored_while_running(cheap, path, caplog):
    running = Accounts(path)
    running.add_user("alice", "s3cret-pass", "operator")
    path.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        Accounts(path)
    assert running.check_password("alice", "s3cret-pass") == "operator"  # the last good file stays in force
    assert running.has_users
    assert [r.levelname for r in caplog.records if "not valid JSON" in r.getMessage()] == ["WARNING"]  # said once
    with pytest.raises(UserError):
        running.add_user("bob", "s3cret-pass", "viewer")  # but nothing is written over it
    path.write_text(json.dumps({"users": {"alice": {"role": "root", "hash": "x"}}}))
    with pytest.raises(UserError, match=r"users\.alice"):
        Accounts(path)


def test_names_passwords_and_roles_are_checked_in_both_languages(cheap, path):
    accounts = Accounts(path)
    for name in ("", "a" * 65, "bad name", "a/b", "ünï"):
        with pytest.raises(ValueError, match="用户名"):
            accounts.add_user(name, "long enough", "viewer")
    accounts.add_user("a" * 64, "long enough", "viewer")
    accounts.add_user("desk-1.main_B", "long enough", "viewer")
    with pytest.raises(ValueError, match="密码太短"):
        accounts.add_user("carol", "short", "viewer")
    with pytest.raises(ValueError, match="角色"):
        accounts.add_user("carol", "long enough", "root")
    with pytest.raises(ValueError, match="已存在"):
        accounts.add_user("desk-1.main_B", "another one", "admin")
    with pytest.raises(ValueError, match="没有用户"):
        accounts.remove_user("nobody")
    assert not path.read_text().count("carol")


def test_replace_gives_a_user_a_new_password_and_role(cheap, path):
    accounts = Accounts(path)
    accounts.add_user("alice", "old-password", "viewer")
    accounts.add_user("alice", "new-password", "admin", replace=True)
    assert accounts.check_password("alice", "old-password") is None
    assert accounts.check_password("alice", "new-password") == "admin"


def test_tokens_are_shown_once_and_stored_only_hashed(path):
    accounts = Accounts(path)
    token = accounts.add_token("companion", "operator")
    assert len(token) >= 40
    assert token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not accounts.has_users  # a token is not a user
    assert Accounts(path).check_token(token) == ("companion", "operator")
    assert accounts.check_token(token[:-1]) is None
    assert accounts.check_token("") is None
    other = accounts.add_token("stream-deck", "viewer")
    assert accounts.check_token(other) == ("stream-deck", "viewer")
    assert [(t.name, t.role) for t in accounts.tokens()] == [("companion", "operator"), ("stream-deck", "viewer")]
    with pytest.raises(ValueError, match="已存在"):
        accounts.add_token("companion", "operator")
    accounts.remove_token("companion")
    assert accounts.check_token(token) is None
    assert accounts.check_token(other) == ("stream-deck", "viewer")
    with pytest.raises(ValueError, match="没有令牌"):
        accounts.remove_token("companion")


def test_the_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EXHIBIT_ACCOUNTS", str(tmp_path / "given.json"))
    assert Accounts.default_path() == tmp_path / "given.json"
    monkeypatch.delenv("EXHIBIT_ACCOUNTS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert Accounts.default_path() == tmp_path / "xdg" / "exhibit-controller" / "accounts.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", "")  # empty means unset
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Accounts.default_path() == tmp_path / "home" / ".config" / "exhibit-controller" / "accounts.json"


def test_tests_never_touch_the_real_home():
    assert Path(os.environ["EXHIBIT_ACCOUNTS"]) == Accounts.default_path()
    assert not str(Accounts.default_path()).startswith(str(Path.home() / ".config"))


# --- sessions --------------------------------------------------------------------------------------------


def test_sessions_end_when_idle_and_at_the_absolute_limit():
    clock = FakeClock()
    sessions = Sessions(idle=100, absolute=250, clock=clock)
    session = sessions.create("alice", "operator")
    assert session.expires == 1100
    assert session.id != session.csrf and len(session.id) >= 40
    assert sessions.get("not-a-session") is None

    clock.now += 90
    seen = sessions.get(session.id)
    assert seen is not None and (seen.user, seen.role, seen.csrf) == ("alice", "operator", session.csrf)
    assert seen.expires == 1190  # sliding: used again, it lasts longer
    clock.now += 90
    assert sessions.get(session.id) is not None
    clock.now += 69  # 249 s after login: still inside the absolute limit
    last = sessions.get(session.id)
    assert last is not None and last.expires == 1250
    clock.now += 1
    assert sessions.get(session.id) is None  # used a second ago, but the absolute limit is reached

    idle = sessions.create("bob", "viewer")
    clock.now += 100
    assert sessions.get(idle.id) is None
    assert len(sessions) == 0


def test_sessions_end_on_logout_and_for_a_removed_user():
    sessions = Sessions(clock=FakeClock())
    first, second, other = (sessions.create(name, "operator") for name in ("alice", "alice", "bob"))
    sessions.end(first.id)
    assert sessions.get(first.id) is None
    assert sessions.get(second.id) is not None
    assert sessions.end_user("alice") == 1
    assert sessions.get(second.id) is None
    assert sessions.get(other.id) is not None


def test_sessions_follow_the_accounts_file(cheap, path):
    accounts = Accounts(path)
    accounts.add_user("alice", "s3cret-pass", "admin")
    accounts.add_user("bob", "s3cret-pass", "operator")
    sessions = Sessions(accounts=accounts)
    alice, bob = sessions.create("alice", "admin"), sessions.create("bob", "operator")
    link = sessions.create("login link", "admin")  # not a user of the file: not tied to it
    Accounts(path).remove_user("alice")  # `exhibit user remove alice` while the show runs
    Accounts(path).add_user("bob", "n3w-password", "operator", replace=True)
    assert sessions.get(alice.id) is None
    assert sessions.get(bob.id) is None
    assert sessions.get(link.id) is not None
    again = sessions.create("bob", "operator")
    assert sessions.get(again.id) is not None


def test_sessions_hold_a_bounded_number():
    sessions = Sessions(clock=FakeClock(), limit=3)
    made = [sessions.create(f"user{i}", "viewer") for i in range(4)]
    assert sessions.get(made[0].id) is None
    assert all(sessions.get(s.id) is not None for s in made[1:])


# --- login links -------------------------------------------------------------------------------------------


def test_login_links_work_once_and_expire():
    clock = FakeClock()
    links = LoginLinks(clock=clock)
    token = links.issue()
    assert links.redeem("made-up") is None
    assert links.redeem(token) == "admin"
    assert links.redeem(token) is None  # used
    late = links.issue("operator", ttl=60)
    clock.now += 60
    assert links.redeem(late) is None
    soon = links.issue("operator", ttl=60)
    clock.now += 59
    assert links.redeem(soon) == "operator"
    with pytest.raises(ValueError):
        links.issue("root")  # type: ignore[arg-type]


# --- login limits --------------------------------------------------------------------------------------------


def test_the_limiter_refuses_after_five_failures_and_recovers():
    clock = FakeClock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(4):
        limiter.failed("192.0.2.7")
    assert limiter.allowed("192.0.2.7")
    limiter.failed("192.0.2.7")
    assert not limiter.allowed("192.0.2.7")
    assert limiter.retry_after("192.0.2.7") == 60
    assert limiter.allowed("192.0.2.8")  # another client is not held up
    limiter.succeeded("192.0.2.7")  # a success while refused changes nothing
    clock.now += 59
    assert not limiter.allowed("192.0.2.7")
    clock.now += 1
    assert limiter.allowed("192.0.2.7")
    limiter.failed("192.0.2.7")
    assert limiter.allowed("192.0.2.7")  # counting starts again


def test_old_failures_and_a_success_are_forgotten():
    clock = FakeClock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(4):
        limiter.failed("192.0.2.7")
    clock.now += 61
    limiter.failed("192.0.2.7")  # the four before are out of the window
    assert limiter.allowed("192.0.2.7")
    for _ in range(3):
        limiter.failed("192.0.2.7")
    limiter.succeeded("192.0.2.7")
    limiter.failed("192.0.2.7")
    assert limiter.allowed("192.0.2.7")


def test_the_limiter_counts_an_ipv6_client_by_its_64_and_forgets_old_addresses():
    limiter = LoginLimiter(clock=FakeClock(), limit=2)
    for host in range(1, 6):
        limiter.failed(f"2001:db8:1:2::{host}")  # one client with many addresses
    assert not limiter.allowed("2001:db8:1:2::99")
    assert limiter.allowed("2001:db8:1:3::1")
    for _ in range(5):
        limiter.failed("::ffff:192.0.2.1")  # an IPv4 client seen through a dual-stack socket
    assert not limiter.allowed("192.0.2.1")
    limiter.failed("198.51.100.1")  # a third address: the oldest is forgotten
    assert limiter.allowed("2001:db8:1:2::99")
