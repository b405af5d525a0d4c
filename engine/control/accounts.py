"""Who may operate the show: users (name, password, role) and API tokens in one file on this machine,
the console's sessions, one-time login links and login rate limits.

Passwords are stored with scrypt (memory-hard, in the standard library) as a self-describing string
``scrypt$n$r$p$salt$hash``, so the cost can be raised later without breaking stored ones. API tokens
are random and shown once; only their SHA-256 is kept (they are long enough that a slow KDF adds
nothing). The file is rewritten atomically with mode 0600 and read again whenever it changes on disk,
so ``exhibit user add`` or ``exhibit user remove`` takes effect in a running show without a restart.

No network code: the console service asks these questions; this module only answers them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from engine.control.commands import ROLES, Role
from engine.errors import UserError

log = logging.getLogger("engine.control.accounts")

SCRYPT_N = 2**15
"""scrypt's cost for new passwords (32 MiB, about 0.1 s here); read at call time so tests may lower it."""
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16
"""A stored hash asking for more than this is refused rather than run (a tampered file must not eat the memory)."""

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
ROLE_ZH: dict[str, str] = {"viewer": "查看者", "operator": "操作员", "admin": "管理员"}

TimeSource = Callable[[], float]
"""Monotonic seconds (``time.monotonic``); injected by tests."""


# --- passwords ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int = _KEY_BYTES) -> bytes:
    # The same password typed on a tablet and on a desktop may arrive in different Unicode forms.
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    maxmem = 128 * r * (n + p + 2) + 2**20  # what OpenSSL needs for these parameters, and some room
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (salt and hash in unpadded URL-safe base64) with the current cost."""
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` string); compared in constant time.
    A malformed string, or one with parameters out of range, never matches."""
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt, expected = _unb64(salt_text), _unb64(hash_text)
    except ValueError:
        return False
    if scheme != "scrypt" or not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return False
    if not 16 <= len(expected) <= 64:
        return False
    try:
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


_dummies: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    """A hash with the current cost, checked for unknown users so that they take as long as known ones."""
    key = (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    if key not in _dummies:
        _dummies[key] = hash_password(secrets.token_urlsafe(16))
    return _dummies[key]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the accounts file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A user or an API token as listed: never its hash."""

    name: str
    role: Role
    created: str
    """When it was added: ISO 8601, UTC."""


def check_name(name: str, what: str = "user") -> str:
    if not NAME.fullmatch(name):
        zh = "用户名" if what == "user" else "令牌名"
        raise ValueError(
            f"The {what} name `{name}` must be 1 to 64 characters: English letters, digits, `.`, `_` or `-` / "
            f"{zh}“{name}”须为 1 到 64 个字符，只能包含英文字母、数字、“.”、“_”或“-”"
        )
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        choices = ", ".join(ROLES)
        raise ValueError(f"The role `{role}` is not one of {choices} / 角色“{role}”无效，可选：{choices}")
    return cast(Role, role)


def check_password_text(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(
            f"The password is too short: use at least {MIN_PASSWORD} characters / "
            f"密码太短，至少需要 {MIN_PASSWORD} 个字符"
        )
    if len(password) > MAX_PASSWORD:
        raise ValueError(
            f"The password is too long: use at most {MAX_PASSWORD} characters / 密码太长，最多 {MAX_PASSWORD} 个字符"
        )
    return password


class Accounts:
    """The users and API tokens of this machine, in a JSON file::

        {"users": {name: {"role", "hash", "created"}}, "tokens": {name: {"role", "hash", "created"}}}

    A missing file means no accounts yet. Every question reads the file again if it changed on disk.
    Safe to call from several threads (:meth:`check_password` is slow: call it in a worker thread).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, dict[str, str]] = {}
        self._seen: tuple[int, int, int] | None = None
        self._broken: tuple[int, int, int] | None = None  # the broken file already warned about
        with self._lock:
            self._refresh(strict=True)

    @staticmethod
    def default_path() -> Path:
        """``$EXHIBIT_ACCOUNTS``, else ``$XDG_CONFIG_HOME/exhibit-controller/accounts.json``
        (``~/.config/...`` when unset or empty, as XDG says)."""
        explicit = os.environ.get("EXHIBIT_ACCOUNTS")
        if explicit:
            return Path(explicit).expanduser()
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "exhibit-controller" / "accounts.json"

    # reading

    @property
    def has_users(self) -> bool:
        with self._lock:
            self._refresh()
            return bool(self._users)

    def users(self) -> list[Account]:
        with self._lock:
            self._refresh()
            return _listed(self._users)

    def tokens(self) -> list[Account]:
        with self._lock:
            self._refresh()
            return _listed(self._tokens)

    def check_password(self, name: str, password: str) -> Role | None:
        """The user's role when the password is right; None otherwise. Takes as long for an unknown
        user as for a known one (the scrypt work is done on a dummy hash)."""
        with self._lock:
            self._refresh()
            entry = self._users.get(name)
        if entry is None:
            verify_password(password, _dummy_hash())
            return None
        matches = verify_password(password, entry["hash"])  # outside the lock: slow, and needs nothing shared
        return cast(Role, entry["role"]) if matches else None

    def check_token(self, token: str) -> tuple[str, Role] | None:
        """``(name, role)`` of the API token, or None."""
        digest = _token_hash(token)
        with self._lock:
            self._refresh()
            found: tuple[str, Role] | None = None
            for name, entry in self._tokens.items():  # every entry compared: no early exit to time
                if hmac.compare_digest(entry["hash"], digest):
                    found = (name, cast(Role, entry["role"]))
            return found

    # changing

    def add_user(self, name: str, password: str, role: str, *, replace: bool = False) -> None:
        """Add a user (``replace``: or give an existing one a new password and role).
        Raises ValueError with one bilingual sentence for a bad name, password or role."""
        check_name(name)
        check_password_text(password)
        checked = check_role(role)
        stored = hash_password(password)  # before the lock: slow
        with self._lock:
            self._refresh(strict=True)
            if name in self._users and not replace:
                raise ValueError(
                    f"The user `{name}` already exists; remove it first or use --replace / 用户“{name}”已存在"
                )
            self._users[name] = {"role": checked, "hash": stored, "created": _now()}
            self._save()

    def remove_user(self, name: str) -> None:
        with self._lock:
            self._refresh(strict=True)
            if name not in self._users:
                raise ValueError(f"There is no user `{name}` / 没有用户“{name}”")
            del self._users[name]
            self._save()

    def add_token(self, name: str, role: str) -> str:
        """A new API token for a machine (Companion, a script): returned once, only its hash is kept."""
        check_name(name, "token")
        checked = check_role(role)
        token = secrets.token_urlsafe(32)
        while token.startswith("-"):  # `tool --token $TOKEN` in a script would read it as an option
            token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh(strict=True)
            if name in self._tokens:
                raise ValueError(f"The token `{name}` already exists; remove it first / 令牌“{name}”已存在")
            self._tokens[name] = {"role": checked, "hash": _token_hash(token), "created": _now()}
            self._save()
        return token

    def remove_token(self, name: str) -> None:
        with self._lock:
            self._refresh(strict=True)
            if name not in self._tokens:
                raise ValueError(f"There is no token `{name}` / 没有令牌“{name}”")
            del self._tokens[name]
            self._save()

    def _stamp(self, name: str) -> str | None:
        """What changes when the user is removed or gets a new password or role (for :class:`Sessions`)."""
        with self._lock:
            self._refresh()
            entry = self._users.get(name)
            return f"{entry['role']}:{entry['hash']}" if entry else None

    # the file

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UserError(f"Cannot read the accounts file `{self.path}`: {exc.strerror} / 无法读取账户文件") from None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _refresh(self, strict: bool = False) -> None:
        """Read the file again if it changed. A broken file is an error at start and before a change
        (``strict``); in a running show the last good contents stay in force, with a warning."""
        seen = None
        try:
            seen = self._stat()
            if seen == self._seen or (seen == self._broken and seen is not None and not strict):
                return
            users, tokens = self._read() if seen is not None else ({}, {})
        except UserError as exc:
            if strict:
                raise
            if seen is None or seen != self._broken:  # once per broken version, not at every login
                log.warning("%s; the accounts read before stay in force / 仍使用之前读取的账户", exc)
            self._broken = seen
            return
        self._users, self._tokens, self._seen = users, tokens, seen

    def _read(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        where = f"The accounts file `{self.path}`"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}
        except OSError as exc:
            raise UserError(f"Cannot read the accounts file `{self.path}`: {exc.strerror} / 无法读取账户文件") from None
        except ValueError:
            raise UserError(f"{where} is not valid JSON; fix or remove it / 账户文件不是有效的 JSON") from None
        if _mode(self.path) & 0o077:
            log.warning("%s can be read by other users; `chmod 600` it / 其他用户可以读取账户文件", self.path)
        if not isinstance(data, dict):
            raise UserError(f"{where} is not a JSON object; fix or remove it / 账户文件格式无效")
        return _section(data, "users", where), _section(data, "tokens", where)

    def _save(self) -> None:
        target = Path(os.path.realpath(self.path))  # a symlinked file stays a symlink
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"users": self._users, "tokens": self._tokens}, indent=2, sort_keys=True) + "\n"
        # mkstemp creates the file 0600; os.replace swaps it in at once, so a reader never sees half a file.
        handle, temp = tempfile.mkstemp(prefix=".accounts-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._seen = self._stat()


def _section(data: dict[str, Any], key: str, where: str) -> dict[str, dict[str, str]]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise UserError(f"{where}: `{key}` is not an object; fix or remove it / 账户文件格式无效")
    for name, entry in section.items():
        if not (
            isinstance(entry, dict)
            and entry.get("role") in ROLES
            and isinstance(entry.get("hash"), str)
            and isinstance(entry.get("created", ""), str)
        ):
            raise UserError(f"{where}: the entry `{key}.{name}` is not valid; fix or remove it / 账户文件条目无效")
    return {name: {"created": "", **entry} for name, entry in section.items()}


def _mode(path: Path) -> int:
    try:
        return path.stat().st_mode
    except OSError:
        return 0


def _listed(entries: dict[str, dict[str, str]]) -> list[Account]:
    return [Account(name, cast(Role, e["role"]), e["created"]) for name, e in sorted(entries.items())]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- sessions, login links, rate limits (in memory) ------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A logged-in console user. ``id`` goes in the cookie; ``csrf`` must come back in a header with
    every change."""

    id: str
    user: str
    role: Role
    csrf: str
    expires: float
    """When it ends unless used again, in the clock's seconds (monotonic, not wall time)."""


@dataclass
class _Entry:
    session: Session
    started: float
    last: float
    stamp: str | None


class Sessions:
    """The console's sessions, in memory (a restart logs everyone out). A session ends after ``idle``
    seconds unused (each :meth:`get` extends it) and ``absolute`` seconds after login whatever happens.

    With ``accounts``, the session of a user of that file also ends when the user is removed or given a
    new password or role (``exhibit user ...`` while the show runs). A session for a name that is not a
    user there (a login link's) is not tied to the file.
    """

    def __init__(
        self,
        *,
        idle: float = 12 * 3600,
        absolute: float = 7 * 24 * 3600,
        clock: TimeSource = time.monotonic,
        accounts: Accounts | None = None,
        limit: int = 10_000,
    ) -> None:
        self.idle = idle
        self.absolute = absolute
        self.clock = clock
        self.accounts = accounts
        self.limit = limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, user: str, role: Role) -> Session:
        now = self.clock()
        stamp = self.accounts._stamp(user) if self.accounts is not None else None
        session = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), self._expiry(now, now))
        with self._lock:
            self._sweep(now)
            while len(self._entries) >= self.limit:  # the least recently used goes first
                self._entries.popitem(last=False)
            self._entries[session.id] = _Entry(session, now, now, stamp)
        return session

    def get(self, session_id: str) -> Session | None:
        """The session, its idle time restarted; None when unknown, ended or expired."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None:
                return None
            if now >= entry.session.expires or not self._still_valid(entry):
                del self._entries[session_id]
                return None
            entry.last = now
            entry.session = replace(entry.session, expires=self._expiry(entry.started, now))
            self._entries.move_to_end(session_id)
            return entry.session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)

    def end_user(self, name: str) -> int:
        """End every session of ``name`` (removed, or its password changed); how many ended."""
        with self._lock:
            ids = [sid for sid, entry in self._entries.items() if entry.session.user == name]
            for sid in ids:
                del self._entries[sid]
            return len(ids)

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self.clock())
            return len(self._entries)

    def _expiry(self, started: float, last: float) -> float:
        return min(last + self.idle, started + self.absolute)

    def _sweep(self, now: float) -> None:
        for sid in [sid for sid, entry in self._entries.items() if now >= entry.session.expires]:
            del self._entries[sid]

    def _still_valid(self, entry: _Entry) -> bool:
        if entry.stamp is None or self.accounts is None:
            return True
        return self.accounts._stamp(entry.session.user) == entry.stamp


class LoginLinks:
    """One-time login tokens, for the link ``run`` prints while no account exists: each works once,
    within ``ttl`` seconds. Only their hashes are kept."""

    def __init__(self, *, clock: TimeSource = time.monotonic, limit: int = 100) -> None:
        self.clock = clock
        self.limit = limit
        self._links: OrderedDict[str, tuple[Role, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, role: Role = "admin", ttl: float = 900) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            while len(self._links) >= self.limit:
                self._links.popitem(last=False)
            self._links[_token_hash(token)] = (check_role(role), self.clock() + ttl)
        return token

    def redeem(self, token: str) -> Role | None:
        """The link's role, once; None when unknown, used or expired."""
        with self._lock:
            found = self._links.pop(_token_hash(token), None)
        if found is None:
            return None
        role, expires = found
        return role if self.clock() < expires else None


@dataclass
class _Failures:
    times: list[float]
    blocked_until: float = 0.0


class LoginLimiter:
    """Slows password guessing: after ``failures`` wrong logins from one address within ``window`` seconds,
    that address is refused for ``block`` seconds. IPv6 addresses count by their /64 (one host usually has
    a whole /64). At most ``limit`` addresses are remembered; the least recently seen are forgotten."""

    def __init__(
        self,
        *,
        failures: int = 5,
        window: float = 60.0,
        block: float = 60.0,
        clock: TimeSource = time.monotonic,
        limit: int = 10_000,
    ) -> None:
        self.failures = failures
        self.window = window
        self.block = block
        self.clock = clock
        self.limit = limit
        self._seen: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def allowed(self, address: str) -> bool:
        return self.retry_after(address) == 0.0

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: now); for a ``Retry-After`` header."""
        with self._lock:
            entry = self._seen.get(_client(address))
            return max(0.0, entry.blocked_until - self.clock()) if entry else 0.0

    def failed(self, address: str) -> None:
        now = self.clock()
        key = _client(address)
        with self._lock:
            entry = self._seen.pop(key, None) or _Failures([])
            entry.times = [t for t in entry.times if now - t < self.window] + [now]
            if len(entry.times) >= self.failures:
                entry.blocked_until = now + self.block
                entry.times = []
            self._seen[key] = entry  # most recent last
            while len(self._seen) > self.limit:
                self._seen.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            entry = self._seen.get(_client(address))
            if entry is not None and entry.blocked_until <= self.clock():
                del self._seen[_client(address)]


def _client(address: str) -> str:
    """The part of an address that names a client: the IP (no port), an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
