"""The curator's studio in the console: the exhibit file in an editor, checked as it is typed, saved with its
history, assets uploaded beside it, the scene previewed, and (on a simulated run) the simulation steered.

Every route here needs the ``admin`` role: the studio changes the show's own file. Drafts are checked in a
worker process (:mod:`engine.studio.drafts`), so a keystroke never holds up the control path; a save is
refused while the draft has problems or the show lock is on, is kept as a version (:mod:`engine.studio.history`)
and then hot-reloads the exhibit. Every save, restore and upload is audited.

The preview is the render process's picture as MJPEG. It never carries camera pixels: an AR mirror's camera
background is left out, unless the exhibit opts in (``scene.mirror.preview_camera``) and the browser is on this
computer (``?camera=1`` from loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from content.console.context import CONTEXT, ConsoleContext, Principal, Refusal, json_response, loads
from content.console.security import require
from content.preview import PreviewClosed
from engine.reload import ExhibitWatcher
from engine.studio.assets import AssetRefused, Upload, list_assets
from engine.studio.drafts import MAX_DRAFT, CheckResult, DraftChecker
from engine.studio.history import ExhibitHistory, HistoryError, describe, digest

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("content.console.studio")

MAX_PREVIEW_STREAMS = 4
"""Preview streams at once (each is a few JPEGs a second written from the loop)."""
PREVIEW_WIDTHS = (160, 1280)
PREVIEW_WAIT = 1.0
"""How long a stream waits for a frame before it looks again for a new render process (a reloaded scene)."""
UPLOAD_CHUNK = 256 * 1024


@dataclass
class Studio:
    """The studio's state for one running exhibit."""

    file: Path
    checker: DraftChecker
    history: ExhibitHistory
    previews: int = 0
    schema: dict[str, Any] | None = None
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)

    def close(self) -> None:
        self.checker.close()


STUDIO = web.AppKey("studio", Studio)


def setup_studio(app: web.Application, runtime: Runtime) -> None:
    """Add the studio's routes (before the console's catch-all command route) when the exhibit has a file."""
    file = runtime.options.exhibit_file
    if file is None:
        return
    app[STUDIO] = Studio(file, DraftChecker(file), ExhibitHistory(file))
    app.on_cleanup.append(_close)
    routes = app.router
    routes.add_get("/api/v1/studio/file", read_file)
    routes.add_get("/api/v1/studio/schema", schema)
    routes.add_post("/api/v1/studio/check", check)
    routes.add_post("/api/v1/studio/save", save)
    routes.add_get("/api/v1/studio/history", history)
    routes.add_get(r"/api/v1/studio/history/{number:\d{1,6}}", version_text)
    routes.add_get(r"/api/v1/studio/history/{number:\d{1,6}}/diff", version_diff)
    routes.add_post(r"/api/v1/studio/history/{number:\d{1,6}}/restore", restore)
    routes.add_get("/api/v1/studio/assets", assets)
    routes.add_put("/api/v1/studio/assets/{path:.+}", upload)
    routes.add_get("/api/v1/studio/preview.mjpg", preview_stream)
    routes.add_get("/api/v1/studio/preview.jpg", preview_still)
    routes.add_get("/api/v1/studio/inspect", inspect)
    routes.add_get("/api/v1/studio/simulation", simulation)


async def _close(app: web.Application) -> None:
    app[STUDIO].close()


def _admin(request: web.Request, *, change: bool = False) -> tuple[ConsoleContext, Studio, Principal]:
    ctx = request.app[CONTEXT]
    who = require(ctx, request, change=change)
    if who.role != "admin":
        raise Refusal("forbidden", "the studio needs the admin role / 工作室需要管理员角色")
    return ctx, request.app[STUDIO], who


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refused once it passes ``limit`` (the console's usual cap is too small for an exhibit file)."""
    if request.content_length is not None and request.content_length > limit:
        raise Refusal("too_large", f"the request is larger than {limit // 1024} KiB / 请求超过 {limit // 1024} KiB")
    body = bytearray()
    while chunk := await request.content.read(UPLOAD_CHUNK):
        body += chunk
        if len(body) > limit:
            raise Refusal("too_large", f"the request is larger than {limit // 1024} KiB / 请求超过 {limit // 1024} KiB")
    return bytes(body)


async def _json_body(request: web.Request, limit: int) -> dict[str, Any]:
    """A JSON object body of at most ``limit`` bytes; an empty body is ``{}``."""
    raw = await _read_limited(request, limit)
    try:
        body = loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise Refusal("bad_request", "the body is not valid JSON / 请求内容不是有效的 JSON") from None
    if not isinstance(body, dict):
        raise Refusal("bad_request", "the body must be a JSON object / 请求内容必须是 JSON 对象")
    return body


async def _draft(request: web.Request) -> dict[str, Any]:
    """The JSON body of a check or save, with its ``text``."""
    body = await _json_body(request, MAX_DRAFT + 64 * 1024)
    if not isinstance(body.get("text"), str):
        raise Refusal("bad_request", "send the exhibit file as `text` / 请以 text 字段提供展项文件内容")
    for key in ("text", "base", "note"):
        value = body.get(key)
        if isinstance(value, str) and not _encodable(value):  # JSON may carry a lone "\ud800"; a file may not
            raise Refusal("bad_request", f"`{key}` is not valid Unicode / {key} 含无效的 Unicode 字符")
    return body


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _current(studio: Studio) -> str:
    """The exhibit file's text as it is now; refused (404) when the file is gone from its folder."""
    try:
        return studio.history.current()
    except FileNotFoundError:
        raise Refusal("not_found", "the exhibit file is gone from its folder / 展项文件已不在其文件夹中") from None


def _file_state(ctx: ConsoleContext, studio: Studio) -> dict[str, Any]:
    text = _current(studio)
    runtime = ctx.runtime
    return {
        "path": str(studio.file),
        "text": text,
        "sha256": digest(text),
        "locked": runtime.control.locked,
        "simulate": runtime.options.simulate,
        "exhibit": runtime.exhibit.id,
        "reload": runtime.control.reloader is not None,
    }


async def read_file(request: web.Request) -> web.StreamResponse:
    ctx, studio, _ = _admin(request)
    studio.checker.start()  # the first check of this page will not wait for the worker to start
    return json_response(_file_state(ctx, studio))


async def schema(request: web.Request) -> web.StreamResponse:
    ctx, studio, _ = _admin(request)
    if studio.schema is None:
        from engine.schema import exhibit_json_schema

        studio.schema = await asyncio.to_thread(exhibit_json_schema, ctx.runtime.registry)  # 50 ms, once
    return json_response(studio.schema, headers={"Cache-Control": "private, max-age=300"})


async def check(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request, change=True)
    body = await _draft(request)
    result = await studio.checker.check(body["text"])
    return json_response(result.as_dict())


def _audit(ctx: ConsoleContext, who: Principal, request: web.Request, action: str, ok: bool, detail: str) -> None:
    ctx.runtime.control.audit.note(who.name, who.via, request.remote or "", action, ok, detail)


async def _save(
    request: web.Request, text: str, base: Any, note: str, action: str, restored_from: int | None = None
) -> web.StreamResponse:
    ctx, studio, who = _admin(request, change=True)
    if base is not None and not isinstance(base, str):
        raise Refusal("bad_request", "`base` is the SHA-256 the editor started from / base 须为 SHA-256 文本")
    runtime = ctx.runtime
    async with studio.saving:
        _refuse_while_locked(ctx, who, request, action)
        result: CheckResult = await studio.checker.check(text)
        if result.problems:
            _audit(ctx, who, request, action, False, f"{len(result.problems)} problems")
            refusal = json_response(
                {
                    "status": "error",
                    "code": "bad_request",
                    "error": f"the file has {len(result.problems)} problems: fix them, then save "
                    f"/ 文件有 {len(result.problems)} 个问题，请修正后再保存",
                    "problems": result.as_dict()["problems"],
                },
                400,
            )
            ctx.refused += 1
            return refusal
        _refuse_while_locked(ctx, who, request, action)  # locked while the draft was checked
        try:
            version = await asyncio.to_thread(  # written and flushed to disk off the loop
                studio.history.save, text, who.name, note, base=base, restored_from=restored_from
            )
        except HistoryError as exc:
            _audit(ctx, who, request, action, False, exc.code)
            raise Refusal(exc.code, str(exc)) from None
        except OSError as exc:
            _audit(ctx, who, request, action, False, exc.strerror or str(exc))
            raise Refusal("internal", f"the file could not be written: {exc.strerror or exc} / 文件无法写入") from None
        reload = await _reload(runtime)
        _audit(ctx, who, request, action, True, f"version {version.number}, reload {reload}")
    return json_response({"version": describe(version), "sha256": version.sha256, "reload": reload})


def _refuse_while_locked(ctx: ConsoleContext, who: Principal, request: web.Request, action: str) -> None:
    if ctx.runtime.control.locked:
        _audit(ctx, who, request, action, False, "show lock")
        raise Refusal(
            "conflict",
            "the show lock is on: the exhibit's files stay as they are until an operator unlocks the show "
            "/ 演出锁定中，解锁后才能修改展项文件",
        )


async def _reload(runtime: Runtime) -> str:
    """Apply the saved file now: ``applied``, ``restart`` (sensors, devices or MQTT changed), ``held`` (the show
    lock came on meanwhile: it reloads at the unlock), ``rejected``, or ``off`` (this run does not reload)."""
    try:
        watcher = runtime.resources.get(ExhibitWatcher)
    except LookupError:
        return "off"
    return await watcher.apply_saved()


async def save(request: web.Request) -> web.StreamResponse:
    _admin(request, change=True)  # who it is before reading a megabyte of body
    body = await _draft(request)
    note = body.get("note")
    if not isinstance(note, str):
        note = ""
    return await _save(request, body["text"], body.get("base"), note, "studio save")


async def history(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request)
    current = _current(studio)
    await asyncio.to_thread(studio.history.record_outside_change)  # written and flushed off the loop
    versions = [describe(v) for v in reversed(studio.history.versions())]
    return json_response({"versions": versions, "current": digest(current)})


def _number(request: web.Request) -> int:
    return int(request.match_info["number"])


def _version(studio: Studio, number: int) -> str:
    try:
        return studio.history.text_of(number)
    except HistoryError as exc:
        raise Refusal(exc.code, str(exc)) from None


async def version_text(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request)
    number = _number(request)
    return json_response({"number": number, "text": _version(studio, number)})


async def version_diff(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request)
    number = _number(request)
    _version(studio, number)
    _current(studio)  # a 404 with a sentence, not a failure, when the file is gone
    diff = await asyncio.to_thread(studio.history.diff, number)  # difflib on a long file: tens of ms
    return json_response({"number": number, "diff": diff})


async def restore(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request, change=True)
    body = await _json_body(request, 64 * 1024)
    number = _number(request)
    text = _version(studio, number)
    note = f"restored version {number} / 恢复第 {number} 版"
    return await _save(request, text, body.get("base"), note, "studio restore", restored_from=number)


# --- assets -------------------------------------------------------------------------------------------


async def assets(request: web.Request) -> web.StreamResponse:
    _, studio, _ = _admin(request)
    found = await asyncio.to_thread(list_assets, studio.file.parent, studio.file.name)
    return json_response({"assets": found})


async def upload(request: web.Request) -> web.StreamResponse:
    """``PUT /api/v1/studio/assets/<path>`` with the file as the body; ``?replace=1`` to replace one."""
    ctx, studio, who = _admin(request, change=True)
    _refuse_while_locked(ctx, who, request, "studio upload")  # a model must not change under a performance
    relative = request.match_info["path"]
    replace = request.query.get("replace") in ("1", "true")
    try:
        # Place, kind and declared size are checked before the body is read; each chunk as it comes.
        incoming = Upload(studio.file.parent, relative, declared_size=request.content_length, replace=replace)
        try:
            while chunk := await request.content.read(UPLOAD_CHUNK):
                incoming.add(chunk)
        except BaseException:
            incoming.abort()
            raise
        size = await asyncio.to_thread(incoming.commit)  # fsync and the whole-file check, off the loop
    except AssetRefused as refused:
        _audit(ctx, who, request, "studio upload", False, f"{relative[:100]}: {refused.code}")
        raise Refusal(refused.code, str(refused)) from None
    except (FileExistsError, NotADirectoryError):  # a folder on the way is a file (`boat.glb/x.png`)
        _audit(ctx, who, request, "studio upload", False, f"{relative[:100]}: a folder on its way is a file")
        raise Refusal(
            "bad_request",
            f"`{relative[:100]}` cannot be uploaded: a folder on its way is a file / 路径中的文件夹与已有文件同名",
        ) from None
    except OSError as exc:
        _audit(ctx, who, request, "studio upload", False, f"{relative[:100]}: {exc.strerror or exc}")
        raise Refusal("internal", f"the file could not be written: {exc.strerror or exc} / 文件无法写入") from None
    _audit(ctx, who, request, "studio upload", True, f"{relative[:100]} ({size} bytes)")
    return json_response({"path": relative, "size": size})


# --- preview ------------------------------------------------------------------------------------------


def _render_host(runtime: Runtime) -> Any:
    service = runtime.service("render")
    return getattr(service, "host", None)


def _preview_options(request: web.Request) -> tuple[bool, int]:
    from content.console.server import _loopback

    camera = request.query.get("camera") in ("1", "true")
    if camera and not _loopback(request.remote or ""):
        raise Refusal(
            "forbidden",
            "the camera picture is shown only on this computer / 摄像头画面只能在本机预览",
        )
    text = request.query.get("width", "640")
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise Refusal("bad_request", "`width` is a whole number of pixels / width 须为整数像素")
    return camera, max(PREVIEW_WIDTHS[0], min(PREVIEW_WIDTHS[1], int(text)))


async def preview_still(request: web.Request) -> web.StreamResponse:
    ctx, _, _ = _admin(request)
    camera, width = _preview_options(request)
    host = _render_host(ctx.runtime)
    if host is None:
        raise Refusal("unavailable", "the scene is not being drawn / 场景未在渲染")
    lease = host.want_preview(camera=camera, width=width)
    try:
        frame = await asyncio.wait_for(host.next_preview(lease, -1), 10.0)
    except TimeoutError:
        raise Refusal("unavailable", "the renderer sent no picture / 渲染器未返回画面") from None
    finally:
        lease.close()
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers={"X-Frame-Sequence": str(frame.sequence)})


async def preview_stream(request: web.Request) -> web.StreamResponse:
    """MJPEG (``multipart/x-mixed-replace``): one JPEG per frame, as the render process makes them."""
    ctx, studio, _ = _admin(request)
    camera, width = _preview_options(request)
    if ctx.runtime.service("render") is None:
        raise Refusal("unavailable", "this exhibit draws no scene in this run / 本次运行不渲染场景")
    if studio.previews >= MAX_PREVIEW_STREAMS:
        raise Refusal("conflict", "too many previews are open: close one / 打开的预览过多，请关闭一个")
    studio.previews += 1  # counted before the first await: a burst of requests cannot pass the limit together
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        await _stream(ctx.runtime, response, camera, width)
    except ConnectionResetError:
        pass  # the browser went away (the pane was hidden, the page closed)
    finally:
        studio.previews -= 1
    return response


async def _stream(runtime: Runtime, response: web.StreamResponse, camera: bool, width: int) -> None:
    host, lease, after = None, None, -1
    try:
        while True:
            current = _render_host(runtime)
            if current is not host:  # a reloaded scene draws in a new render process
                if lease is not None:
                    lease.close()
                host, lease, after = current, None, -1
                if host is not None:
                    lease = host.want_preview(camera=camera, width=width)
            if host is None or lease is None:
                await asyncio.sleep(PREVIEW_WAIT)
                continue
            try:
                frame = await asyncio.wait_for(host.next_preview(lease, after), PREVIEW_WAIT)
            except TimeoutError:
                continue
            except PreviewClosed:  # the render process went away: take a lease on the next one
                host, lease = None, None
                continue
            after = frame.sequence
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n"
            await response.write(head.encode("ascii") + frame.jpeg + b"\r\n")
    finally:
        if lease is not None:
            with contextlib.suppress(Exception):
                lease.close()


# --- inspector and simulation --------------------------------------------------------------------------


async def inspect(request: web.Request) -> web.StreamResponse:
    ctx, _, _ = _admin(request)
    from engine.studio.inspector import inspect as look

    return json_response(look(ctx.runtime))


async def simulation(request: web.Request) -> web.StreamResponse:
    ctx, _, _ = _admin(request)
    from engine.studio.simulation import simulation_state

    return json_response(simulation_state(ctx.runtime))
