"""The console's defences, on by default, loopback included (a web page in the same browser must not
be able to press GO):

- ``Host`` must be the console's own address, ``localhost`` or an allowed host: a DNS-rebinding page
  (``evil.example`` pointed at 127.0.0.1) is refused before anything else runs;
- a request with an ``Origin`` must come from the console's own origin (checked on every request, so
  on every POST and WebSocket upgrade a browser makes);
- nothing but the OpenAPI description, the page and the login answers without a session or token;
- a session's changes carry its CSRF token in ``X-CSRF-Token`` (API tokens are not cookies, so a page
  cannot send one by accident: they need none);
- every response says: same-origin scripts only, no framing, no sniffing, no referrer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from content.console.context import (
    BAD_CSRF,
    CONTEXT,
    CSRF_HEADER,
    NOT_LOGGED_IN,
    REFUSED,
    SESSION_COOKIE,
    ConsoleContext,
    Principal,
    Refusal,
    error_response,
)
from engine.control.accounts import Session

log = logging.getLogger("content.console")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_ERRORS = {
    404: ("not_found", "there is no such page / 页面不存在"),
    405: ("method_not_allowed", "this method is not allowed here / 不允许此请求方法"),
    413: ("too_large", "the request is too large / 请求过大"),
}


def host_name(header: str) -> str:
    """The host of a ``Host`` header, lower case, without port or brackets."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def host_allowed(ctx: ConsoleContext, request: web.BaseRequest) -> bool:
    name = host_name(request.headers.get("Host", ""))
    if name in ctx.hosts:
        return True
    # Listening on every address, a client names the one it reached: an address is no rebinding.
    local = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return local is not None and name == str(local[0]).lower()


def check_host(ctx: ConsoleContext, request: web.Request) -> None:
    if not host_allowed(ctx, request):
        name = host_name(request.headers.get("Host", ""))[:100]
        raise Refusal(
            "forbidden",
            f"this console does not answer to the host `{name}`: add it to `console.allowed_hosts` / "
            f"控制台不接受主机名“{name}”，请将其加入 console.allowed_hosts",
        )


def check_origin(ctx: ConsoleContext, request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers send Origin on every POST and WebSocket; this is the one that omits it by policy.
        if request.method not in SAFE_METHODS and request.headers.get("Sec-Fetch-Site") == "cross-site":
            raise Refusal(
                "forbidden", "this request comes from another site and was refused / 来自其他网站的请求已被拒绝"
            )
        return
    try:
        theirs, own = URL(origin), URL(f"{ctx.scheme}://{request.host}")
        same = (theirs.scheme, theirs.host, theirs.port) == (own.scheme, own.host, own.port)
    except ValueError:
        same = False
    if not same:
        raise Refusal(
            "forbidden",
            f"this request comes from another site (`{origin[:100]}`) and was refused / 来自其他网站的请求已被拒绝",
        )


def authenticate(ctx: ConsoleContext, request: web.Request) -> Principal | None:
    """Who sends ``request``: an API token (``Authorization: Bearer``) or a session cookie; None: nobody.
    A token that is sent but wrong is refused, never taken as anonymous."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        found = ctx.accounts.check_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if found is None:
            raise Refusal(
                "unauthorized",
                "the API token is not valid / API 令牌无效",
                {"WWW-Authenticate": 'Bearer realm="exhibit"'},
            )
        return Principal(found[0], found[1], "http", token=token.strip())
    session_id = request.cookies.get(SESSION_COOKIE)
    session = ctx.sessions.get(session_id) if session_id else None
    if session is None:
        return None
    return Principal(session.user, session.role, "console", session.id, session.csrf)


def require(ctx: ConsoleContext, request: web.Request, *, change: bool = False) -> Principal:
    """The requester, who must be known; for a ``change`` made with a session, with its CSRF token."""
    who = authenticate(ctx, request)
    if who is None:
        raise Refusal("unauthorized", NOT_LOGGED_IN, {"WWW-Authenticate": 'Bearer realm="exhibit"'})
    if change and who.csrf is not None and not csrf_matches(who, request.headers.get(CSRF_HEADER)):
        raise Refusal("forbidden", BAD_CSRF)
    return who


def csrf_matches(who: Principal, sent: object) -> bool:
    if who.csrf is None:  # an API token: no cookie, so nothing a page could forge
        return True
    return isinstance(sent, str) and hmac.compare_digest(sent.encode("utf-8"), who.csrf.encode("utf-8"))


def set_session_cookie(ctx: ConsoleContext, response: web.StreamResponse, session: Session) -> None:
    # No Max-Age: the browser forgets it when it closes; the server ends it after its idle time anyway.
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="Strict", secure=ctx.tls, path="/")


def clear_session_cookie(ctx: ConsoleContext, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=ctx.tls, httponly=True, samesite="Strict")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host and Origin first, then the handler; every refusal becomes a bilingual JSON error, counted."""
    ctx = request.app[CONTEXT]
    ctx.requests += 1
    try:
        check_host(ctx, request)
        check_origin(ctx, request)
        response = await handler(request)
    except Refusal as refusal:
        response = refusal.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect
        code, message = _HTTP_ERRORS.get(exc.status, ("bad_request", "the request is not valid / 请求无效"))
        response = error_response(code, message)
    except Exception:
        log.exception("the console failed on %s %s", request.method, request.path)
        response = error_response(
            "internal", "the console failed on this request: see the log / 控制台出错，请查看日志"
        )
    if response.status in REFUSED:
        ctx.refused += 1
    return response


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What every response says, the WebSocket handshake and static files included."""
    headers = response.headers
    connect = "'self'"
    if host_allowed(request.app[CONTEXT], request):  # a checked host is safe to name in the policy
        connect += f" ws://{request.host} wss://{request.host}"  # older Safari does not count ws: as 'self'
    headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"  # a login link must not travel on in a Referer
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    headers.setdefault("Cache-Control", "no-store")
    headers["Server"] = "exhibit"  # no versions for a scanner to match
