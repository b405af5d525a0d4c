"""What every part of the console shares: the runtime, the accounts and sessions, the addresses it
answers to, its figures, and how it says no (one bilingual sentence in a JSON body)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.control.accounts import Accounts, LoginLimiter, LoginLinks, Sessions
from engine.control.commands import ErrorCode, Role
from engine.control.protocol import plain

if TYPE_CHECKING:
    from engine.runtime import Runtime

SESSION_COOKIE = "exhibit_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 64 * 1024
"""Every request body and WebSocket message is smaller than this (commands are a few fields)."""

HTTP_STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "too_many_requests": 429,
    "unavailable": 503,
    "internal": 500,
}
"""The HTTP status of each error code: the controller's codes, and the ones only HTTP has."""
REFUSED = frozenset({400, 401, 403, 405, 413, 429})
"""Statuses that count as a refused request in the console's health figures."""

NOT_LOGGED_IN = "log in first, or send an API token / 请先登录或提供 API 令牌"
BAD_CSRF = "the CSRF token is missing or wrong: reload the console / CSRF 令牌缺失或错误，请刷新控制台"


class Refusal(Exception):
    """Ends a request with an error body ``{"status": "error", "error", "code"}``."""

    def __init__(self, code: ErrorCode | str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.code, self.message, self.headers)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a logged-in user (``session`` set) or an API token."""

    name: str
    role: Role
    via: str
    """``console`` (a browser session) or ``http`` (an API token)."""
    session: str | None = None
    csrf: str | None = None
    token: str | None = field(default=None, repr=False)
    """The API token itself, to notice when it is removed while a WebSocket is open."""


@dataclass
class ConsoleContext:
    runtime: Runtime
    accounts: Accounts
    sessions: Sessions
    links: LoginLinks
    limiter: LoginLimiter
    tls: bool = False
    hosts: frozenset[str] = frozenset()
    """Host names and addresses (lower case) the console answers to, besides the address a request came in on."""
    requests: int = 0
    refused: int = 0
    sockets: dict[Any, Principal] = field(default_factory=dict)
    checking: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    """Password checks at once (each is scrypt: 32 MiB for 0.1 s): a burst of logins waits, memory stays put."""
    """Open WebSockets (``aiohttp.web.WebSocketResponse``) and who holds each."""

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 as is; anything JSON cannot carry (NaN, objects) made plain first."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=dumps(value), status=status, content_type="application/json", charset="utf-8", headers=headers
    )


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"status": "error", "error": message, "code": code}
    return json_response(body, HTTP_STATUS.get(code, 400), headers)


def _integer(text: str) -> int | float:
    # A huge integer becomes a float (infinite past 1e308): the commands refuse it as a bad value rather
    # than spending the loop on a 100,000-digit number.
    return int(text) if len(text) <= 18 else float(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """Strict JSON (no NaN or Infinity); raises ValueError."""
    return json.loads(text, parse_int=_integer, parse_constant=_no_constant)


def parse_object(text: str | bytes) -> dict[str, Any]:
    """A request's JSON object; an empty body is ``{}``. Raises :class:`Refusal` (bad_request)."""
    if not text or not text.strip():
        return {}
    try:
        value = loads(text)
    except (ValueError, RecursionError):
        raise Refusal("bad_request", "the body is not valid JSON / 请求内容不是有效的 JSON") from None
    if not isinstance(value, dict):
        raise Refusal("bad_request", "the body must be a JSON object / 请求内容必须是 JSON 对象")
    return value


CONTEXT = web.AppKey("console", ConsoleContext)
