"""The console's HTTP routes: the page and its files, logging in and out, the reading endpoints, and one
``POST /api/v1/<command>`` for every command of :data:`engine.control.commands.COMMANDS` (the paths
are the commands' names: ``/api/v1/go``, ``/api/v1/estop/reset``).

Every answer is JSON (``{"status": "ok", "data": ...}`` or ``{"status": "error", "error", "code"}``)
but the page's own files. Nothing here blocks the loop: a password check (scrypt, about 0.1 s) runs in
a worker thread, at most two at a time, and commands are the show's own quick calls.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from pathlib import Path
from typing import Any

from aiohttp import web

from content.console.analytics import setup_analytics
from content.console.context import (
    CONTEXT,
    HTTP_STATUS,
    MAX_BODY,
    SESSION_COOKIE,
    ConsoleContext,
    Refusal,
    json_response,
    parse_object,
)
from content.console.openapi import openapi
from content.console.security import (
    add_headers,
    authenticate,
    clear_session_cookie,
    guard,
    require,
    set_session_cookie,
)
from content.console.studio import setup_studio
from content.console.websocket import close_sockets_of, setup_websocket, websocket
from engine.control.accounts import Session
from engine.control.commands import COMMANDS, Actor, Role

STATIC = Path(__file__).resolve().parent / "static"
FONTS = Path(__file__).resolve().parent.parent / "fonts"
LINK_USER = "local"
"""The user name of a session opened with a one-time login link (there is no account yet)."""
MAX_LIMIT = 500

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".ttc": "font/collection",
}
# The page's own files (fonts built from its strings included) are checked again on every load: a new
# version shows at once, an unchanged one costs a 304. The bundled CJK font is 5 MB and never changes.
REVALIDATE = "no-cache"
FONT_CACHE = "public, max-age=604800"


def build_app(ctx: ConsoleContext) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    app.on_response_prepare.append(add_headers)
    setup_websocket(app)
    routes = app.router
    routes.add_get("/", index)
    routes.add_get("/static/{path:.+}", static)
    routes.add_get("/login", login_link)
    routes.add_get("/api/openapi.json", describe)
    routes.add_post("/api/v1/login", login)
    routes.add_post("/api/v1/logout", logout)
    routes.add_get("/api/v1/session", session)
    routes.add_get("/api/v1/state", state)
    routes.add_get("/api/v1/catalogue", catalogue)
    routes.add_get("/api/v1/commands", commands)
    routes.add_get("/api/v1/audit", audit)
    routes.add_get("/api/v1/log", log_lines)
    setup_analytics(app)
    routes.add_get("/api/v1/ws", websocket)
    routes.add_get("/studio", studio_page)
    setup_studio(app, ctx.runtime)
    routes.add_post("/api/v1/{command:.+}", command)  # last: the named routes above come first
    return app


# --- the page --------------------------------------------------------------------------------------


def _file(root: Path, relative: str) -> Path | None:
    """``relative`` under ``root``, if it is a plain file there (no dot files, no way out)."""
    parts = relative.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


def _send(path: Path, cache: str) -> web.FileResponse:
    kind = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return web.FileResponse(path, headers={"Content-Type": kind, "Cache-Control": cache})


async def index(request: web.Request) -> web.StreamResponse:
    page = _file(STATIC, "index.html")
    if page is None:
        raise Refusal("not_found", "the console page is missing from this installation / 本安装缺少控制台页面")
    return _send(page, REVALIDATE)


async def studio_page(request: web.Request) -> web.StreamResponse:
    page = _file(STATIC, "studio.html")
    if page is None:
        raise Refusal("not_found", "the studio page is missing from this installation / 本安装缺少工作室页面")
    return _send(page, REVALIDATE)


async def static(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    found = _file(STATIC, relative)
    if found is not None:
        return _send(found, REVALIDATE)
    bundled = _file(FONTS, relative.removeprefix("fonts/")) if relative.startswith("fonts/") else None
    if bundled is None:  # content/fonts/, read-only: the project's CJK font and its licence
        raise web.HTTPNotFound()
    return _send(bundled, FONT_CACHE)


async def describe(request: web.Request) -> web.StreamResponse:
    return json_response(openapi(), headers={"Cache-Control": REVALIDATE})


# --- logging in and out ------------------------------------------------------------------------------


def _limited(ctx: ConsoleContext, address: str) -> None:
    wait = ctx.limiter.retry_after(address)
    if wait > 0:
        raise Refusal(
            "too_many_requests",
            "too many failed logins from this address: try again in a minute / 登录失败次数过多，请一分钟后再试",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    address = request.remote or ""
    _limited(ctx, address)
    body = parse_object(await request.read())
    user, password = body.get("user"), body.get("password")
    if not (isinstance(user, str) and isinstance(password, str) and user and password):
        raise Refusal("bad_request", "send `user` and `password` as text / 请以文本形式提供用户名和密码")
    async with ctx.checking:
        _limited(ctx, address)  # failures that came in while this one waited count too
        role = await asyncio.to_thread(ctx.accounts.check_password, user, password)
    audit = ctx.runtime.control.audit
    if role is None:
        ctx.limiter.failed(address)
        audit.note(user[:64], "console", address, "login", False, "wrong user name or password")
        raise Refusal("unauthorized", "wrong user name or password / 用户名或密码错误")
    ctx.limiter.succeeded(address)
    ctx.runtime.control.audit.note(user, "console", address, "login", True)
    new = _new_session(ctx, request, user, role)
    response = json_response({"user": new.user, "role": new.role, "csrf": new.csrf})
    set_session_cookie(ctx, response, new)
    return response


def _new_session(ctx: ConsoleContext, request: web.Request, user: str, role: Role) -> Session:
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        ctx.sessions.end(old)  # a new id at every login: a cookie planted before never becomes a session
    return ctx.sessions.create(user, role)


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


async def login_link(request: web.Request) -> web.StreamResponse:
    """``GET /login?token=...``: the one-time link ``run`` prints while no account exists."""
    ctx = request.app[CONTEXT]
    address = request.remote or ""
    if not _loopback(address):
        raise Refusal("forbidden", "login links work only on this computer / 登录链接只能在本机使用")
    known = authenticate(ctx, request)
    if known is not None and known.session is not None:
        raise web.HTTPFound(_next(request))  # logged in already (the link is still in the address bar): keep it unused
    _limited(ctx, address)
    token = request.query.get("token", "")
    role = ctx.links.redeem(token) if token else None
    if role is None:
        ctx.limiter.failed(address)
        ctx.runtime.control.audit.note(LINK_USER, "console", address, "login link", False, "unknown, used or expired")
        raise Refusal(
            "unauthorized",
            "this login link was used already or has expired: start the exhibit again for a new one, or create an "
            "account with `exhibit user add NAME --role operator` / 登录链接已使用或已过期，请重新启动或创建账户",
        )
    ctx.limiter.succeeded(address)
    ctx.runtime.control.audit.note(LINK_USER, "console", address, "login link", True, f"role {role}")
    response = web.Response(status=302, headers={"Location": _next(request)})
    set_session_cookie(ctx, response, _new_session(ctx, request, LINK_USER, role))
    return response


LANDING_PAGES = frozenset({"/", "/studio"})


def _next(request: web.Request) -> str:
    """Where a login link leads: the console, or the studio (``exhibit studio``); never another site."""
    wanted = request.query.get("next", "/")
    return wanted if wanted in LANDING_PAGES else "/"


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    who = require(ctx, request, change=True)
    if who.session is None:
        raise Refusal("bad_request", "an API token does not log out / API 令牌无需登出")
    ctx.sessions.end(who.session)
    ctx.runtime.control.audit.note(who.name, "console", request.remote or "", "logout", True)
    close_sockets_of(ctx, who.session)
    response = json_response({"status": "ok", "data": None})
    clear_session_cookie(ctx, response)
    return response


async def session(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    who = require(ctx, request)
    return json_response({"user": who.name, "role": who.role, "csrf": who.csrf})


# --- reading ------------------------------------------------------------------------------------------


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "100")
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_LIMIT):
        raise Refusal(
            "bad_request",
            f"`limit` must be a whole number from 1 to {MAX_LIMIT} / limit 必须是 1 到 {MAX_LIMIT} 的整数",
        )
    return int(text)


async def state(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    require(ctx, request)
    hub = ctx.runtime.events
    if not hub.state:
        hub.refresh()
    return json_response({"v": 1, "topics": hub.state})


async def catalogue(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    require(ctx, request)
    signals = [
        {"name": info.name, "type": info.type, "meaning": info.meaning, "owner": info.owner, "group": info.group}
        for info in sorted(ctx.runtime.catalogue, key=lambda info: info.name)
    ]
    return json_response({"signals": signals})


def command_list() -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "role": c.role,
            "summary": c.summary,
            "params": {k: {"type": p.type, "required": p.required, "summary": p.summary} for k, p in c.params.items()},
        }
        for c in COMMANDS.values()
    ]


async def commands(request: web.Request) -> web.StreamResponse:
    require(request.app[CONTEXT], request)
    return json_response({"commands": command_list()})


async def audit(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    require(ctx, request)
    limit = _limit(request)
    return json_response({"entries": list(ctx.runtime.control.audit.recent)[-limit:]})


async def log_lines(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    require(ctx, request)
    limit = _limit(request)
    return json_response({"lines": list(ctx.runtime.events.log_lines)[-limit:]})


# --- commands -----------------------------------------------------------------------------------------


async def command(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    who = require(ctx, request, change=True)
    params = parse_object(await request.read())
    actor = Actor(who.name, who.role, who.via, request.remote or "")
    reply = ctx.runtime.control.execute(request.match_info["command"], params, actor)
    status = 200 if reply.ok else HTTP_STATUS.get(reply.code or "bad_request", 400)
    return json_response(reply.as_dict(), status)
